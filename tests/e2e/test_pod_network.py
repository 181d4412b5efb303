"""Pod networking end to end: containerd runs nodelet-cni (via the agent's in-process server) for every sandbox."""
from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import pytest

from kubelet.node.podnet import compute_cni_network
from kubelet.node.runtime.testing import TEST_BRIDGE, TEST_POD_SUBNET
from kubelet.testing import BUSYBOX, AgentProcess, cstatus, exec_in, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.netns]

WEB = """apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %s
    command: ["sh", "-c", "echo {name} > /tmp/index.html; httpd -f -p 8080 -h /tmp"]
""" % BUSYBOX


def test_two_pods_reach_each_other_and_the_host(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agent = AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}", runtime=containerd).start()
    node = agent.config["nodeName"]
    try:
        agent.write("a.yaml", WEB.format(name="a"))
        agent.write("b.yaml", WEB.format(name="b"))
        a = wait_until(lambda: (p := agent.pod(f"a-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
        b = wait_until(lambda: (p := agent.pod(f"b-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
        a_ip, b_ip = a["status"]["podIP"], b["status"]["podIP"]
        net = TEST_POD_SUBNET.rsplit(".", 1)[0] + "."
        assert a_ip.startswith(net) and b_ip.startswith(net) and a_ip != b_ip
        a_cid = cstatus(a, "web")["containerID"].split("://")[1]

        def fetch(cid: str, url: str) -> bytes:
            r = exec_in(containerd.endpoint, cid, ["timeout", "5", "wget", "-qO-", url])
            return r.stdout if r.exit_code == 0 else b""

        # pod → other pod, through the bridge
        assert wait_until(lambda: fetch(a_cid, f"http://{b_ip}:8080/index.html"), timeout=10) == b"b\n"
        # pod → itself by its own IP, and pod → host (the bridge's gateway address)
        assert fetch(a_cid, f"http://{a_ip}:8080/index.html") == b"a\n"
        gw = net + "1"
        r = exec_in(containerd.endpoint, a_cid, ["ping", "-c", "1", "-W", "2", gw])
        assert r.exit_code == 0, r.stdout + r.stderr
        # host → pod
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"http://{b_ip}:8080/index.html", timeout=5) as resp:
            assert resp.read() == b"b\n"
        # the pod's default route points at the bridge, eth0 is the CNI_IFNAME
        routes = exec_in(containerd.endpoint, a_cid, ["ip", "route"]).stdout.decode()
        assert f"default via {gw} dev eth0" in routes, routes
        # allocation files exist while the pods run, one per IP, under the network's data dir
        net_conf = compute_cni_network(root_dir=agent.config["rootDir"])  # per agent, never the host's default
        alloc = Path(str(net_conf.data_dir)) / net_conf.name
        assert (alloc / a_ip).exists() and (alloc / b_ip).exists()
        bridge_ifaces = Path(f"/sys/class/net/{TEST_BRIDGE}/brif")
        assert len([p for p in bridge_ifaces.iterdir() if p.name.startswith("veth")]) >= 2
        for f in agent.manifests.iterdir():
            f.unlink()
        wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="teardown")
        # DEL released both addresses
        assert not (alloc / a_ip).exists() and not (alloc / b_ip).exists()
    finally:
        for f in agent.manifests.iterdir():
            f.unlink()
        try:
            wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="teardown")
        finally:
            agent.stop()
