"""Two "nodes" as network namespaces joined by a veth link, each with nodelet's CNI bridge and pod namespaces
running `python -m http.server`; host-gw routes from `kind: Node` documents in a shared cluster dir; a Service
whose endpoints live on both nodes, programmed by the proxy in node 1's namespace.

    client ─┐                                              ┌─ web-b (10.244.2.x)
    web-a  ─┴─ nltc0 bridge [node1 ns] ══ veth 192.168.77.0/24 ══ [node2 ns] nltc0 bridge ─┘
             10.244.1.0/24                                       10.244.2.0/24
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from cni.config import render_conflist
from cni.testing import CniHarness, run_in
from kubelet.node.cluster import ROUTE_PROTO, ClusterState, ClusterSync
from proxy.model import ContainerPort, PodInfo, Protocol
from proxy.proxier import Proxier, ProxyConfig

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]

CLUSTER_IP = "10.96.77.10"
SERVICE = f"""\
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  clusterIP: {CLUSTER_IP}
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""
CLIENT = textwrap.dedent("""
    import collections, json, sys, urllib.request
    url, n = sys.argv[1], int(sys.argv[2])
    seen, errors = collections.Counter(), collections.Counter()
    for _ in range(n):
        try:
            seen[urllib.request.urlopen(url, timeout=2).read().decode().strip()] += 1
        except Exception as e:
            errors[type(e).__name__] += 1
    print(json.dumps({"seen": seen, "errors": errors}))
""")


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def named_netns(tag: str) -> Iterator[str]:
    name = f"nltc-{os.getpid()}-{secrets.token_hex(3)}-{tag}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@dataclass
class Node:
    name: str
    ns: str
    ip: str
    pod_cidr: str
    cni: CniHarness
    pods: dict[str, tuple[str, str]] = field(default_factory=dict)  # pod name -> (netns name, ip)
    web: list[PodInfo] = field(default_factory=list)

    def conf(self) -> dict[str, Any]:
        conflist = render_conflist(pod_cidr=self.pod_cidr, bridge="nltc0", data_dir=self.cni.data_dir)
        return {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **conflist["plugins"][0]}

    def add_pod(self, pod_ns: str, pod: str) -> str:
        r = self.cni.call("ADD", conf=self.conf(), container_id=f"nltc-{pod}", netns=f"/run/netns/{pod_ns}",
                          args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}", fast=False)
        assert r.rc == 0, (r.stdout, r.stderr[-2000:])
        ip = r.json["ips"][0]["address"].split("/")[0]
        self.pods[pod] = (pod_ns, ip)
        return ip


def ns_route_lines(ns: str) -> list[str]:
    out = run_in(f"/run/netns/{ns}", "ip", "-4", "route", "show", "proto", str(ROUTE_PROTO)).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


async def wait_for(pred: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while True:
        last = pred()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s; last={last!r}")
        await asyncio.sleep(0.1)


def request(client_ns: str, url: str, n: int) -> dict[str, Any]:
    p = subprocess.run([sys.executable, "-I", "-c", CLIENT, url, str(n)], capture_output=True, text=True, timeout=120,
                       preexec_fn=lambda: _setns(client_ns))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _setns(ns: str) -> None:
    from cni.testing import _setns_path

    _setns_path(f"/run/netns/{ns}")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    stack = contextlib.ExitStack()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        n1ns, n2ns = stack.enter_context(named_netns("node1")), stack.enter_context(named_netns("node2"))
        sh("ip", "-n", n1ns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", n2ns)
        nodes = {}
        for i, ns in ((1, n1ns), (2, n2ns)):
            sh("ip", "-n", ns, "addr", "add", f"192.168.77.{i}/24", "dev", "eth1")
            sh("ip", "-n", ns, "link", "set", "eth1", "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            work = tmp_path / f"node{i}"
            work.mkdir()
            nodes[i] = Node(name=f"node{i}", ns=ns, ip=f"192.168.77.{i}", pod_cidr=f"10.244.{i}.0/24",
                            cni=CniHarness(host=f"/run/netns/{ns}", workdir=str(work), network="nodelet", bridge="nltc0",
                                           subnet=f"10.244.{i}.0/24"))
        # pods: a web server on each node, a client on node 1
        for node, pod in ((nodes[1], "web-a"), (nodes[2], "web-b"), (nodes[1], "client")):
            pod_ns = stack.enter_context(named_netns(pod))
            ip = node.add_pod(pod_ns, pod)
            if pod.startswith("web"):
                www = tmp_path / pod
                www.mkdir()
                (www / "index.html").write_text(pod + "\n")
                procs.append(subprocess.Popen([sys.executable, "-I", "-m", "http.server", "8080", "--bind", ip, "--directory", str(www)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda ns=pod_ns: _setns(ns)))
                node.web.append(PodInfo(namespace="default", name=pod, labels={"app": "web"}, ip=ip, ready=True,
                                        ports=(ContainerPort(name="http", port=8080, protocol=Protocol("TCP")),), node_name=node.name))
        cluster_dir = tmp_path / "cluster"
        (cluster_dir / "services").mkdir(parents=True)
        (cluster_dir / "services" / "web.yaml").write_text(SERVICE)
        proxier = Proxier(ProxyConfig(mode="iptables", cluster_cidr="10.244.0.0/16", command_prefix=("ip", "netns", "exec", n1ns),
                                      state_dir=str(tmp_path / "proxy-state"), node_name="node1"))
        states: list[ClusterState] = []

        async def to_proxy(state: ClusterState) -> None:  # what the daemon's wiring does on node 1
            states.append(state)
            errors = proxier.update(services=state.view.services, endpoint_docs=state.view.endpoint_docs, pods=nodes[1].web)
            assert errors == ()
            result = await proxier.sync()
            assert result.error is None, result.error

        syncs = {
            i: ClusterSync(cluster_dir=cluster_dir, node_name=n.name, node_ip=n.ip, pod_cidr=n.pod_cidr, pods=lambda n=n: n.web,
                           on_change=to_proxy if i == 1 else None, netns=n.ns, poll_interval=0.2)
            for i, n in nodes.items()
        }
        tasks = [asyncio.create_task(s.run()) for s in syncs.values()]
        try:
            await wait_for(lambda: all(s.sync_count for s in syncs.values()) or any(t.done() for t in tasks), "first syncs")
            for t in tasks:
                if t.done():
                    t.result()
            yield {"nodes": nodes, "dir": cluster_dir, "syncs": syncs, "proxier": proxier, "states": states}
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        stack.close()


def served_names(cluster: dict[str, Any]) -> set[str]:
    st = cluster["proxier"].status()
    port = next((p for p in st.ports if p.cluster_ip == CLUSTER_IP), None)
    return set(port.endpoints) if port else set()


async def test_service_ip_reaches_pods_on_both_nodes_and_node_removal_withdraws(cluster: dict[str, Any]) -> None:
    nodes, cdir = cluster["nodes"], cluster["dir"]
    a_ip, b_ip = nodes[1].pods["web-a"][1], nodes[2].pods["web-b"][1]
    client_ns = nodes[1].pods["client"][0]

    # registration: each agent wrote its kind: Node document
    for i in (1, 2):
        doc = yaml.safe_load((cdir / "nodes" / f"node{i}.yaml").read_text())
        assert doc["kind"] == "Node" and doc["spec"]["podCIDR"] == f"10.244.{i}.0/24"
        assert {"type": "InternalIP", "address": f"192.168.77.{i}"} in doc["status"]["addresses"]
    # host-gw routes to the other node's pod CIDR, marked as nodelet's
    await wait_for(lambda: ns_route_lines(nodes[1].ns) == ["10.244.2.0/24 via 192.168.77.2 dev eth1"], "node1 route")
    await wait_for(lambda: ns_route_lines(nodes[2].ns) == ["10.244.1.0/24 via 192.168.77.1 dev eth1"], "node2 route")
    # node 2 published its ready web pod for the cluster Service (one atomic file per node)
    pub = await wait_for(lambda: (cdir / "endpoints" / "node2.yaml").exists() and yaml.safe_load((cdir / "endpoints" / "node2.yaml").read_text()), "node2 publish")
    (s,) = pub["items"]
    assert s["kind"] == "EndpointSlice" and s["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert s["endpoints"][0]["addresses"] == [b_ip] and s["endpoints"][0]["nodeName"] == "node2"
    assert not [p for p in (cdir / "endpoints").iterdir() if p.name.startswith(".")]  # no temp files left

    # pod-to-pod across nodes over the host-gw route
    direct = await asyncio.to_thread(request, client_ns, f"http://{b_ip}:8080/", 1)
    assert direct["seen"] == {"web-b": 1}, direct
    # the proxy on node 1 has both endpoints; requests from a pod on node 1 to the Service IP reach both nodes
    await wait_for(lambda: served_names(cluster) == {f"{a_ip}:8080", f"{b_ip}:8080"}, "both endpoints in the proxy")
    res = await asyncio.to_thread(request, client_ns, f"http://{CLUSTER_IP}/", 40)
    assert res["errors"] == {} and set(res["seen"]) == {"web-a", "web-b"}, res

    # removing node 2's document removes its route and its endpoints on node 1
    (cdir / "nodes" / "node2.yaml").unlink()
    await wait_for(lambda: ns_route_lines(nodes[1].ns) == [], "node1 route removed")
    await wait_for(lambda: served_names(cluster) == {f"{a_ip}:8080"}, "node2 endpoints withdrawn")
    res = await asyncio.to_thread(request, client_ns, f"http://{CLUSTER_IP}/", 20)
    assert res["errors"] == {} and res["seen"] == {"web-a": 20}, res
    # nothing else in node 1's routing table was touched
    main = run_in(f"/run/netns/{nodes[1].ns}", "ip", "-4", "route", "show").stdout
    assert "192.168.77.0/24 dev eth1" in main and "10.244.1.0/24 dev nltc0" in main

    # a bad document is reported precisely and disturbs nothing else
    (cdir / "nodes" / "bad.yaml").write_text("apiVersion: v1\nkind: Node\nmetadata: {name: bad}\nspec: {podCIDR: 10.244.3.1/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.77.3}]}\n")
    sync1 = cluster["syncs"][1]
    await wait_for(lambda: sync1.state and sync1.state.view.errors, "bad node reported")
    (err,) = sync1.state.view.errors
    assert str(err).endswith("(Node bad): spec.podCIDR: must be an IPv4 CIDR with no host bits set, got '10.244.3.1/24' (10.244.3.1/24 has host bits set)")
    assert ns_route_lines(nodes[1].ns) == [] and served_names(cluster) == {f"{a_ip}:8080"}
