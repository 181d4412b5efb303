"""Cluster members (kubelet.node.cluster) against a real etcd: registration and leases, subnets by txn, Services
and ClusterIPs by txn, EndpointSlices bound to the node lease, compaction, bad data under the prefix."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kubelet.node.cluster.testing import SimNode, pod, service, until
from kubelet.node.etcd import EtcdClient
from kubelet.node.etcd.testing import EtcdCluster

pytestmark = [pytest.mark.timeout(120)]


def nodes(etcd: EtcdCluster, tmp_path: Path, n: int, **kw) -> list[SimNode]:  # type: ignore[no-untyped-def]
    return [SimNode(name=f"n{i}", ip=f"192.168.56.{11 + i}", state_dir=tmp_path / f"n{i}", endpoints=etcd.endpoints, **kw)
            for i in range(n)]


def slice_ips(n: SimNode, service_name: str = "web") -> set[str]:
    assert n.member is not None
    return {a for d in n.member.endpoint_docs() if d.doc["metadata"]["labels"]["kubernetes.io/service-name"] == service_name
            for ep in d.doc["endpoints"] if ep["conditions"]["ready"] for a in ep["addresses"]}


async def test_three_members_share_nodes_services_and_endpoints(etcd: EtcdCluster, tmp_path: Path) -> None:
    a, b, c = nodes(etcd, tmp_path, 3)
    try:
        for i, n in enumerate((a, b, c)):
            n.pods = [pod(f"web-{n.name}", f"10.244.{i}.5")]
        a.declare(service("web"))
        for n in (a, b, c):
            await n.start()
        cidrs = {n.member.pod_cidr for n in (a, b, c)}  # type: ignore[union-attr]
        assert len(cidrs) == 3 and all(x.startswith("10.244.") and x.endswith("/24") for x in cidrs)
        # every node sees all three, with routes to the other two
        await until(lambda: all(len(n.member.view.nodes) == 3 for n in (a, b, c)), what="3 nodes everywhere")  # type: ignore[union-attr]
        await until(lambda: len(a.routes.routes) == 2, what="routes on a")
        assert a.routes.routes == {n.member.pod_cidr: n.ip for n in (b, c)}  # type: ignore[union-attr]
        node_doc = next(d for d in b.member.nodes() if d["metadata"]["name"] == "n0")  # type: ignore[union-attr]
        assert node_doc["spec"]["podCIDR"] == a.member.pod_cidr  # type: ignore[union-attr]
        assert {c["type"]: c["reason"] for c in node_doc["status"]["conditions"]}["Ready"] == "KubeletReady"
        # the Service declared on a reaches everyone with one ClusterIP; every node's pods are endpoints elsewhere
        await until(lambda: all(len(n.member.services()) == 1 for n in (a, b, c)), what="service everywhere")  # type: ignore[union-attr]
        ips = {n.member.services()[0].doc["spec"]["clusterIP"] for n in (a, b, c)}  # type: ignore[union-attr]
        assert len(ips) == 1 and next(iter(ips)).startswith("10.")
        await until(lambda: slice_ips(a) == {"10.244.1.5", "10.244.2.5"}, what="b's and c's endpoints on a")
        await until(lambda: slice_ips(c) == {"10.244.0.5", "10.244.1.5"}, what="a's and b's endpoints on c")
        # mirror pods of every node, marked as mirrors, from any node
        await until(lambda: len(c.member.pods()) == 3, what="mirror pods")  # type: ignore[union-attr]
        mp = next(p for p in c.member.pods() if p["metadata"]["name"] == "web-n0")  # type: ignore[union-attr]
        assert mp["metadata"]["annotations"]["kubernetes.io/config.mirror"] == "h-web-n0" and mp["spec"]["nodeName"] == "n0"
        # readiness flip on b → gone from a's endpoints, back again
        b.set_pods([pod("web-n1", "10.244.1.5", ready=False)])
        await until(lambda: slice_ips(a) == {"10.244.2.5"}, what="not-ready pod withdrawn", timeout=3)
        b.set_pods([pod("web-n1", "10.244.1.5")])
        await until(lambda: slice_ips(a) == {"10.244.1.5", "10.244.2.5"}, what="ready again", timeout=3)
        # c declares the same Service differently: an error naming file and field on c; a's stays in force
        c.declare(service("web", port=8081), source="/etc/kubernetes/manifests/web-c.yaml")
        await until(lambda: any(r == "FailedService" for r, _, _ in c.events), what="conflict reported")
        msg = next(m for r, m, _ in c.events if r == "FailedService")
        assert msg.startswith("/etc/kubernetes/manifests/web-c.yaml: spec.ports[0].port: Service default/web is already declared differently by node n0")
        assert "8081 here, 80 there" in msg
        assert b.member.services()[0].doc["spec"]["ports"][0]["port"] == 80  # type: ignore[union-attr]
        # removing the declaration on a removes the Service everywhere (c's conflicting one then takes over)
        c.declare()
        a.declare()
        await until(lambda: all(not n.member.services() for n in (a, b, c)), what="service withdrawn")  # type: ignore[union-attr]
        async with EtcdClient(etcd.endpoints) as cl:
            kvs, _ = await cl.range("/nodelet/clusterips/", prefix=True)
            assert kvs == []
            # a node writes only its own keys: every key under endpointslices/<node>/ was written with that node's lease
            kvs, _ = await cl.range("/nodelet/pods/", prefix=True)
            owners = {kv.key.split("/")[3]: kv.lease for kv in kvs}
            assert owners == {n.name: n.member.state.node_lease for n in (a, b, c)}  # type: ignore[union-attr]
    finally:
        for n in (a, b, c):
            await n.kill()


async def test_dead_node_vanishes_with_its_lease_and_a_quick_restart_does_not_flap(etcd: EtcdCluster, tmp_path: Path) -> None:
    a, b = nodes(etcd, tmp_path, 2, lease_ttl=3)
    try:
        a.pods = [pod("web-n0", "10.244.0.5")]
        b.pods = [pod("web-n1", "10.244.1.5")]
        b.declare(service("web"))
        await a.start()
        await b.start()
        await until(lambda: slice_ips(b) == {"10.244.0.5"}, what="a's endpoint on b")
        lease, cidr = a.member.state.node_lease, a.member.pod_cidr  # type: ignore[union-attr]
        # quick restart (within the TTL): same lease, same podCIDR; b never loses a
        seen_without_a = []

        async def watch_b() -> None:
            while True:
                if not any(n.name == "n0" for n in b.member.view.nodes):  # type: ignore[union-attr]
                    seen_without_a.append(True)
                await asyncio.sleep(0.02)

        w = asyncio.create_task(watch_b())
        await a.kill()
        a2 = SimNode(name="n0", ip=a.ip, state_dir=a.state_dir, endpoints=etcd.endpoints, lease_ttl=3, pods=a.pods)
        await a2.start()
        assert (a2.member.state.node_lease, a2.member.pod_cidr) == (lease, cidr)  # type: ignore[union-attr]
        await asyncio.sleep(4)  # longer than the TTL: the reused lease is being kept alive
        w.cancel()
        assert not seen_without_a and slice_ips(b) == {"10.244.0.5"}
        # kill -9: gone from b within TTL + 2 s, endpoints and route too
        await a2.kill()
        took = await until(lambda: not any(n.name == "n0" for n in b.member.view.nodes) and not slice_ips(b),  # type: ignore[union-attr]
                           timeout=3 + 2, what="dead node withdrawn")
        assert b.routes.routes == {}
        assert took <= 5
        # it comes back after its lease expired: same podCIDR (the subnet lease is separate and long)
        a3 = SimNode(name="n0", ip=a.ip, state_dir=a.state_dir, endpoints=etcd.endpoints, lease_ttl=3, pods=a.pods)
        await a3.start()
        assert a3.member.pod_cidr == cidr  # type: ignore[union-attr]
        await until(lambda: a3.member.state.node_lease not in (0, lease), what="a new node lease")  # type: ignore[union-attr]
        await until(lambda: slice_ips(b) == {"10.244.0.5"}, what="rejoined")
        await a3.kill()
    finally:
        await a.kill()
        await b.kill()


async def test_ten_members_at_once_and_twenty_services_at_once(etcd: EtcdCluster, tmp_path: Path) -> None:
    ns = nodes(etcd, tmp_path, 10)
    try:
        await asyncio.gather(*(n.start() for n in ns))
        cidrs = [n.member.pod_cidr for n in ns]  # type: ignore[union-attr]
        assert len(set(cidrs)) == 10, cidrs
        for i, n in enumerate(ns):
            n.declare(service(f"svc{2 * i}"), service(f"svc{2 * i + 1}"))
        await until(lambda: all(len(n.member.services()) == 20 for n in ns), timeout=20, what="20 services everywhere")  # type: ignore[union-attr]
        views = [{d.doc["metadata"]["name"]: d.doc["spec"]["clusterIP"] for d in n.member.services()} for n in ns]  # type: ignore[union-attr]
        assert all(v == views[0] for v in views)
        assert len(set(views[0].values())) == 20
    finally:
        await asyncio.gather(*(n.kill() for n in ns))


async def test_compaction_under_a_running_member_relists_and_keeps_going(tmp_path: Path) -> None:
    with EtcdCluster.start(tmp_path / "etcd", members=3) as cluster:
        # the member talks to m0 only; while m0 is down the history it missed is compacted away
        a = SimNode(name="n0", ip="192.168.56.11", state_dir=tmp_path / "a", endpoints=[cluster.endpoints[0]], lease_ttl=5)
        b = SimNode(name="n1", ip="192.168.56.12", state_dir=tmp_path / "b", endpoints=cluster.endpoints[1:], lease_ttl=5)
        try:
            await a.start()
            await b.start()
            b.set_pods([pod("web-n1", "10.244.9.5")])
            b.declare(service("web"))
            await until(lambda: slice_ips(a) == {"10.244.9.5"}, what="b's endpoint on a")
            cluster.kill(0)
            await until(lambda: not a.member.connected, what="a notices")  # type: ignore[union-attr]
            b.declare(service("web"), service("api"))
            b.set_pods([pod("web-n1", "10.244.9.5"), pod("web2-n1", "10.244.9.6")])
            async with EtcdClient(cluster.endpoints[1:]) as cl:
                await until(lambda: len(b.member.services()) == 2, what="api on b")  # type: ignore[union-attr]
                await asyncio.sleep(0.3)
                _, rev = await cl.range("/nodelet/", prefix=True)
                await cl.compact(rev)
            cluster.restart(0)
            await until(lambda: a.member.resyncs >= 1, timeout=20, what="re-list after ErrCompacted")  # type: ignore[union-attr]
            await until(lambda: len(a.member.services()) == 2 and slice_ips(a) == {"10.244.9.5", "10.244.9.6"}, what="caught up")  # type: ignore[union-attr]
            assert any(r == "ClusterResync" for r, _, _ in a.events) and any(r == "EtcdUnavailable" for r, _, _ in a.events)
            # and it keeps going: a later change arrives through the new watch
            b.set_pods([pod("web-n1", "10.244.9.5")])
            await until(lambda: slice_ips(a) == {"10.244.9.5"}, what="later change")
        finally:
            await a.kill()
            await b.kill()


async def test_bad_values_under_the_prefix_are_reported_precisely_and_disturb_nothing(etcd: EtcdCluster, tmp_path: Path) -> None:
    a, b = nodes(etcd, tmp_path, 2)
    try:
        b.pods = [pod("web-n1", "10.244.1.5")]
        a.declare(service("web"))
        await a.start()
        await b.start()
        await until(lambda: slice_ips(a) == {"10.244.1.5"}, what="endpoint before")
        async with EtcdClient(etcd.endpoints) as cl:
            await cl.put("/nodelet/nodes/bogus", "{not json")
            await cl.put("/nodelet/services/default/x", json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))
            await cl.put("/nodelet/whatever/y", "{}")
            await cl.put("/other/prefix/untouched", "1")
        await until(lambda: len(a.member.view.errors) == 3, what="three errors")  # type: ignore[union-attr]
        errs = sorted(str(e) for e in a.member.view.errors)  # type: ignore[union-attr]
        assert errs[0].startswith("/nodelet/nodes/bogus: value is not valid JSON")
        assert errs[1] == "/nodelet/services/default/x: kind: must be 'Service' under services/, got 'ConfigMap'"
        assert errs[2].startswith("/nodelet/whatever/y: unknown kind of key 'whatever'")
        assert any(r == "InvalidClusterData" for r, _, _ in a.events)
        # nothing else disturbed
        assert slice_ips(a) == {"10.244.1.5"} and len(a.member.view.nodes) == 2 and len(a.member.services()) == 1  # type: ignore[union-attr]
        async with EtcdClient(etcd.endpoints) as cl:
            assert (await cl.get("/other/prefix/untouched")).value == b"1"  # type: ignore[union-attr]
    finally:
        await a.kill()
        await b.kill()


async def test_leaving_on_purpose_frees_the_subnet_and_withdraws_at_once(etcd: EtcdCluster, tmp_path: Path) -> None:
    a, b = nodes(etcd, tmp_path, 2, lease_ttl=30)  # a long TTL: only the leave can explain a quick withdrawal
    try:
        a.pods = [pod("web-n0", "10.244.0.5")]
        a.declare(service("api"))
        b.declare(service("web"))
        await a.start()
        await b.start()
        await until(lambda: slice_ips(b) == {"10.244.0.5"} and len(b.member.services()) == 2, what="a seen from b")  # type: ignore[union-attr]
        cidr = a.member.pod_cidr  # type: ignore[union-attr]
        await a.kill()
        member = a.member
        async with EtcdClient(etcd.endpoints) as cl:
            member.client = cl  # type: ignore[union-attr]
            out = await member.leave()  # type: ignore[union-attr]
            assert out["node"] == "n0" and len(out["revokedLeases"]) == 2
            assert await cl.get(f"/nodelet/subnets/{cidr.replace('/', '-')}") is None
        await until(lambda: [n.name for n in b.member.view.nodes] == ["n1"] and not slice_ips(b), timeout=3, what="gone at once")  # type: ignore[union-attr]
        assert [d.doc["metadata"]["name"] for d in b.member.services()] == ["web"]  # type: ignore[union-attr]
        assert not (a.state_dir / "cluster-state.json").exists()
    finally:
        await a.kill()
        await b.kill()
