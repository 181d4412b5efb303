"""Three simulated nodes running the product: each node a network namespace with its own containerd and a real
`nodelet run` inside, joined through a real etcd (on the test bridge). A Service declared on one node, with pods on
all three: new connections from every node reach pods on every node; kill -9 one agent and cut its namespace off →
within lease TTL + 2 s its endpoints leave the others' rules and no new connection goes to it; bring it back → it
rejoins with the same podCIDR and the other nodes' pods never restart."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubelet.node.etcd.testing import EtcdCluster
from kubelet.node.runtime.containerd import PrivateContainerd
from kubelet.node.runtime.images import PAUSE_IMAGE, ensure_images
from kubelet.node.runtime.testing import DEFAULT_BASE
from kubelet.testing import BUSYBOX, AgentProcess, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(300)]

TTL = 3
CLUSTER_CIDR = "10.245.0.0/16"
SUBNET = "192.168.77"
POD = """apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: %(image)s
    command: ["sh", "-c", "echo %(node)s > /tmp/index.html; httpd -f -p 8080 -h /tmp"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"""
SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=60)


@dataclass
class Node:
    name: str
    ns: str
    veth: str
    ip: str
    runtime: PrivateContainerd
    agent: AgentProcess

    def fetch_many(self, url: str, count: int) -> Counter[str]:
        """`count` new connections from inside the node's namespace; the bodies (node names) or ERR <reason>."""
        code = ("import sys, urllib.request\n"
                "for _ in range(int(sys.argv[2])):\n"
                "    try: print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())\n"
                "    except Exception as e: print('ERR', type(e).__name__, e)\n")
        r = sh("ip", "netns", "exec", self.ns, sys.executable, "-c", code, url, str(count))
        return Counter(r.stdout.splitlines())

    def snapshot(self) -> dict:
        return self.agent.get("/api/v1/extra/cluster")

    def service_endpoints(self) -> set[str]:
        st = self.agent.get("/api/v1/extra/services")
        if st.get("pending"):
            return set()  # not in the kernel yet
        return {ep for p in st.get("ports", []) if p.get("name", "").startswith("default/web") for ep in p.get("endpoints", [])}


def nodelet(n: Node, *args: str) -> str:
    r = sh(sys.executable, "-m", "kubelet.cli.main", *args, "--socket", n.agent.socket, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[EtcdCluster, list[Node]]]:
    tag = f"{os.getpid() % 10000}"
    bridge = f"nlc{tag}br"
    sh("ip", "link", "add", bridge, "type", "bridge")
    sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", bridge)
    sh("ip", "link", "set", bridge, "up")
    nodes: list[Node] = []
    etcd = None
    try:
        etcd = EtcdCluster.start(tmp_path / "etcd", host=f"{SUBNET}.1")
        for i in range(3):
            ns, veth, ip = f"nlc{tag}n{i}", f"nlc{tag}v{i}", f"{SUBNET}.{10 + i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", bridge, "up")
            for cmd in (["ip", "addr", "add", f"{ip}/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                        ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "10.96.0.0/12", "dev", "eth0"],
                        ["sysctl", "-qw", "net.ipv4.ip_forward=1"]):
                sh("ip", "netns", "exec", ns, *cmd)
            wrapper = tmp_path / f"containerd-{i}"
            # nsenter --net, not `ip netns exec`: the pod netns mounts containerd makes must be visible to the agent
            wrapper.write_text(f"#!/bin/sh\nexec nsenter --net=/run/netns/{ns} containerd \"$@\"\n")
            wrapper.chmod(0o755)
            rt = PrivateContainerd(Path(DEFAULT_BASE).parent / f"cluster-n{i}", sandbox_image=PAUSE_IMAGE, containerd_bin=str(wrapper))
            rt.stop(kill=True)  # a leftover from an interrupted run
            rt.start()
            ensure_images(rt, cache_dir=Path(DEFAULT_BASE) / "images")
            agent = AgentProcess(tmp_path / f"n{i}", endpoint=rt.endpoint, node_name=f"n{i}", netns=ns, extra={
                "cniConfDir": str(rt.layout.cni_conf_dir), "cniBinDir": str(rt.cni_bin_dir), "cniBridge": f"nlc{i}",
                "proxyMode": "iptables", "nodeIP": ip, "etcdEndpoints": etcd.endpoints, "clusterCIDR": CLUSTER_CIDR,
                "nodeLeaseDurationSeconds": TTL, "fileCheckFrequency": "2s"})
            nodes.append(Node(name=f"n{i}", ns=ns, veth=veth, ip=ip, runtime=rt, agent=agent))
        yield etcd, nodes
    finally:
        for n in nodes:  # shown when the test failed
            print(f"==== {n.name} agent log\n{n.agent.log()[-2500:]}\n==== {n.name} containerd\n{n.runtime.log_tail(8)}")
        for n in nodes:  # pods first (the agents stop them), then agents, runtimes, namespaces
            for f in n.agent.manifests.glob("*.yaml"):
                f.unlink()
        for n in nodes:
            try:
                if n.agent.proc is not None and n.agent.proc.poll() is None:
                    wait_until(lambda n=n: not n.agent.pods(), timeout=30, what=f"{n.name} pods gone")
            except Exception:  # noqa: BLE001 - clean up the rest anyway
                pass
            n.agent.stop()
        for n in nodes:
            for pid in n.runtime.shim_pids():
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            n.runtime.stop(kill=True)
            sh("ip", "netns", "del", n.ns, check=False)
        sh("ip", "link", "del", bridge, check=False)
        if etcd is not None:
            etcd.stop()


def test_three_nodes_share_a_service_lose_a_dead_node_and_take_it_back(cluster: tuple[EtcdCluster, list[Node]]) -> None:
    etcd, nodes = cluster
    for n in nodes:
        n.agent.write("web.yaml", POD % {"image": BUSYBOX, "node": n.name})
    nodes[0].agent.write("svc.yaml", SERVICE)
    for n in nodes:
        n.agent.start()
    cidrs = {n.name: wait_until(lambda n=n: n.snapshot().get("podCIDR"), timeout=20, what="podCIDR") for n in nodes}
    assert len(set(cidrs.values())) == 3 and all(c.startswith("10.245.") for c in cidrs.values())
    pod_ips = {n.name: wait_until(lambda n=n: (p := n.agent.pod(f"web-{n.name}")) and p["status"].get("podIP"), timeout=60,
                                  what=f"{n.name} pod IP") for n in nodes}
    want = {f"{ip}:8080" for ip in pod_ips.values()}
    for n in nodes:
        wait_until(lambda n=n: n.service_endpoints() == want, timeout=30, what=f"{n.name} has every node's endpoint")
    cip = nodes[1].snapshot() and next(s for s in nodes[1].agent.get("/api/v1/extra/services")["ports"] if s["name"].startswith("default/web"))["cluster_ip"]
    assert all(next(s for s in n.agent.get("/api/v1/extra/services")["ports"] if s["name"].startswith("default/web"))["cluster_ip"] == cip for n in nodes)
    # new connections from every node reach pods on every node
    for n in nodes:
        got = n.fetch_many(f"http://{cip}/", 30)
        assert set(got) == {"n0", "n1", "n2"}, (n.name, got)
    # host-gw routes (proto 201) in each namespace to the two other subnets
    routes = sh("ip", "netns", "exec", "%s" % nodes[0].ns, "ip", "route", "show", "proto", "201").stdout
    assert cidrs["n1"] in routes and cidrs["n2"] in routes and cidrs["n0"] not in routes
    # the cluster from any node: `nodelet get nodes` (-o wide: podCIDR) and every node's pods
    out = nodelet(nodes[1], "get", "nodes", "-o", "wide")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "POD-CIDR", "OS-IMAGE",
                                "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == ["n0", "n1", "n2"]
    assert all(rows[n.name][1:3] == ["Ready", "<none>"] and rows[n.name][4:7] == ["v0.1.0", n.ip, cidrs[n.name]] for n in nodes), rows
    pods_out = nodelet(nodes[0], "cluster", "pods")
    assert all(f"web-{n.name}" in pods_out for n in nodes) and "n2" in pods_out
    # pod-to-pod traffic inside clusterCIDR keeps its source IP: nodelet-cni's masquerade rule exempts all of it
    nat = sh("ip", "netns", "exec", nodes[0].ns, "nft", "list", "table", "ip", "nodelet-cni").stdout
    assert CLUSTER_CIDR in nat and "masquerade" in nat, nat
    health = sh(sys.executable, "-c", "import sys; from kubelet.server.apiclient import APIClient; print(APIClient(sys.argv[1]).get('/healthz'))",
                nodes[0].agent.socket, check=False).stdout
    assert "etcd ok" in health, health
    restarts_before = {n.name: n.agent.pod(f"web-{n.name}")["status"]["containerStatuses"][0]["restartCount"] for n in nodes[:2]}

    # kill -9 n2's agent and cut its namespace off
    dead = nodes[2]
    dead.agent.kill9()
    sh("ip", "link", "set", dead.veth, "down")
    t0 = time.monotonic()
    alive_eps = {f"{pod_ips['n0']}:8080", f"{pod_ips['n1']}:8080"}
    for n in nodes[:2]:
        wait_until(lambda n=n: n.service_endpoints() == alive_eps, timeout=TTL + 2 - (time.monotonic() - t0) + 0.5,
                   interval=0.05, what=f"{n.name} withdrew n2's endpoint")
    withdrawn = time.monotonic() - t0
    assert withdrawn <= TTL + 2, withdrawn
    for n in nodes[:2]:
        got = n.fetch_many(f"http://{cip}/", 20)
        assert set(got) == {"n0", "n1"}, (n.name, got)
        assert cidrs["n2"] not in sh("ip", "netns", "exec", n.ns, "ip", "route", "show", "proto", "201").stdout

    assert "n2" not in {line.split()[0] for line in nodelet(nodes[0], "get", "nodes").splitlines()[1:]}
    # bring it back: the same podCIDR, its endpoint returns, nothing else restarted
    sh("ip", "link", "set", dead.veth, "up")
    dead.agent.start()
    assert wait_until(lambda: dead.snapshot().get("podCIDR"), timeout=20, what="podCIDR again") == cidrs["n2"]
    for n in nodes[:2]:
        wait_until(lambda n=n: n.service_endpoints() == want, timeout=20, what=f"{n.name} has n2 back")
    got = nodes[0].fetch_many(f"http://{cip}/", 30)
    assert set(got) == {"n0", "n1", "n2"}, got
    for n in nodes[:2]:
        assert n.agent.pod(f"web-{n.name}")["status"]["containerStatuses"][0]["restartCount"] == restarts_before[n.name]
        assert n.snapshot()["podCIDR"] == cidrs[n.name]
