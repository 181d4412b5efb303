"""The proxier against real backends (iptables-nft / nft) inside throwaway network namespaces, in both modes."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.backend import CommandContext
from proxy.cleanup import cleanup
from proxy.model import ContainerPort, Protocol
from proxy.proxier import Proxier, ProxyConfig
from proxy.testing import POD_CIDR, Topology, endpoint_slice_doc, in_ns, service_doc

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(120)]

CIP = "10.96.0.10"
WEB = [{"name": "http", "port": 80, "targetPort": 8080}]


@pytest.fixture(params=["iptables", "nftables"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def topo() -> AsyncIterator[Topology]:
    t = Topology()
    try:
        t.build()
        await t.start_agents()
        for i in range(t.backends):
            await t.agent(f"b{i}").serve("tcp", 8080)
            await t.agent(f"b{i}").serve("udp", 5353)
        yield t
    finally:
        await t.close()


@pytest.fixture
def proxier(topo: Topology, mode: str, tmp_path: Path) -> Proxier:
    return Proxier(
        ProxyConfig(
            mode=mode,
            cluster_cidr=POD_CIDR,
            command_prefix=("ip", "netns", "exec", topo.node),
            state_dir=str(tmp_path / "state"),
            node_name="node1",
        )
    )


async def synced(p: Proxier, **kw: object) -> None:
    errors = p.update(**kw)  # type: ignore[arg-type]
    assert errors == ()
    result = await p.sync()
    assert result.error is None, result.error


def ruleset(topo: Topology) -> str:
    return in_ns(topo.node, "iptables-nft-save").stdout + in_ns(topo.node, "nft", "list", "ruleset").stdout


async def test_cluster_ip_spreads_300_requests_over_3_endpoints(topo: Topology, proxier: Proxier) -> None:
    await synced(proxier, services=[service_doc("web", cluster_ip=CIP, ports=WEB, selector={"app": "web"})],
                 pods=topo.pods())
    res = await topo.agent("client").tcp(CIP, 80, n=300)
    assert res["errors"] == {}
    assert sum(res["counts"].values()) == 300
    assert set(res["counts"]) == {"b0", "b1", "b2"}
    assert all(c >= 60 for c in res["counts"].values()), res["counts"]  # each >= 20 %


async def test_no_endpoints_is_rejected_not_blackholed(topo: Topology, proxier: Proxier) -> None:
    await synced(proxier, services=[service_doc("web", cluster_ip=CIP, ports=WEB, selector={"app": "none"})],
                 pods=topo.pods())
    start = time.monotonic()
    res = await topo.agent("client").tcp(CIP, 80, n=1, timeout=5)
    assert res["errors"] == {"ConnectionRefusedError": 1}
    assert time.monotonic() - start < 2


async def test_client_ip_affinity_sticks(topo: Topology, proxier: Proxier) -> None:
    svc = service_doc("web", cluster_ip=CIP, ports=WEB, selector={"app": "web"}, sessionAffinity="ClientIP",
                      sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    await synced(proxier, services=[svc], pods=topo.pods())
    res = await topo.agent("client").tcp(CIP, 80, n=40)
    assert res["errors"] == {}
    assert len(res["counts"]) == 1 and sum(res["counts"].values()) == 40, res["counts"]


async def test_node_port_from_external_host(topo: Topology, proxier: Proxier) -> None:
    svc = service_doc("web", ports=[{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080}],
                      selector={"app": "web"}, type="NodePort")
    pods = topo.pods(ports=[ContainerPort(name="http", port=8080, protocol=Protocol("TCP"))])
    await synced(proxier, services=[svc], pods=pods)
    res = await topo.agent("ext").tcp(topo.node_external_ip, 30080, n=30)
    assert res["errors"] == {}
    assert sum(res["counts"].values()) == 30 and len(res["counts"]) >= 2, res["counts"]
    # the allocated ClusterIP works too, from a pod
    cip = proxier.status().ports[0].cluster_ip
    assert (await topo.agent("client").tcp(cip, 80, n=3))["counts"]


async def test_hairpin_pod_reaches_itself_through_its_service(topo: Topology, proxier: Proxier) -> None:
    only_b1 = [p for p in topo.pods() if p.name == "b1"]
    await synced(proxier, services=[service_doc("web", cluster_ip=CIP, ports=WEB, selector={"app": "web"})],
                 pods=only_b1)
    res = await topo.agent("b1").tcp(CIP, 80, n=5)
    assert res == {"counts": {"b1": 5}, "errors": {}}


async def test_endpoint_turning_unready_stops_new_connections_within_2s(topo: Topology, proxier: Proxier) -> None:
    svc = [service_doc("web", cluster_ip=CIP, ports=WEB, selector={"app": "web"})]
    proxier.update(services=svc, pods=topo.pods())
    task = asyncio.create_task(proxier.run())
    try:
        deadline = time.monotonic() + 10
        while not (await topo.agent("client").tcp(CIP, 80, n=30))["counts"].get("b2"):
            assert time.monotonic() < deadline, "b2 never served"
        changed_at = time.monotonic()
        proxier.update(services=svc, pods=topo.pods(ready={2: False}))
        clean_batches = 0
        while clean_batches < 3:
            res = await topo.agent("client").tcp(CIP, 80, n=20)
            clean_batches = clean_batches + 1 if "b2" not in res["counts"] else 0
            assert time.monotonic() - changed_at < 2.0 + 1.0, f"b2 still served: {res}"
        # the first clean batch started within 2 s of the change
        assert time.monotonic() - changed_at < 2.0 + 1.0
        assert proxier.status().ports[0].endpoints == ("10.244.0.2:8080", "10.244.1.2:8080")
    finally:
        proxier.stop()
        await asyncio.wait_for(task, 10)


async def test_udp_service_survives_endpoint_replacement(topo: Topology, proxier: Proxier) -> None:
    svc = [service_doc("dns", cluster_ip=CIP, ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])]
    client = topo.agent("client")
    await synced(proxier, services=svc, endpoint_docs=[
        endpoint_slice_doc("dns", ["10.244.0.2"], port=5353, protocol="UDP", port_name="dns")])
    first = await client.udp(CIP, 53)
    assert first["reply"] == "b0"
    # b0 keeps running but is no longer an endpoint: only conntrack cleanup moves the flow (same source port)
    await synced(proxier, services=svc, endpoint_docs=[
        endpoint_slice_doc("dns", ["10.244.1.2"], port=5353, protocol="UDP", port_name="dns")])
    second = await client.udp(CIP, 53)
    assert second == {"reply": "b1", "port": first["port"]}


async def test_rules_flushed_by_hand_are_restored_by_next_sync(topo: Topology, proxier: Proxier, mode: str) -> None:
    svc = [service_doc("web", cluster_ip=CIP, ports=WEB, selector={"app": "web"})]
    await synced(proxier, services=svc, pods=topo.pods())
    assert (await topo.agent("client").tcp(CIP, 80, n=3))["counts"]
    if mode == "iptables":
        for table in ("nat", "filter"):
            in_ns(topo.node, "iptables-nft", "-t", table, "-F")
            in_ns(topo.node, "iptables-nft", "-t", table, "-X")
    else:
        in_ns(topo.node, "nft", "flush", "ruleset")
    broken = await topo.agent("client").tcp(CIP, 80, n=1, timeout=0.5)
    assert broken["counts"] == {}
    proxier.update(services=svc, pods=topo.pods())  # nothing changed: only the canary can tell
    result = await proxier.sync()
    assert result.kind == "fresh" and result.error is None
    res = await topo.agent("client").tcp(CIP, 80, n=30)
    assert res["errors"] == {} and sum(res["counts"].values()) == 30


async def test_cleanup_removes_ours_and_leaves_foreign_rules(topo: Topology, proxier: Proxier, mode: str) -> None:
    in_ns(topo.node, "iptables-nft", "-t", "nat", "-N", "FOREIGN-CHAIN")
    in_ns(topo.node, "iptables-nft", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9", "-j", "FOREIGN-CHAIN")
    in_ns(topo.node, "iptables-nft", "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "ACCEPT")
    in_ns(topo.node, "nft", "add table ip foreign; add chain ip foreign c; add rule ip foreign c tcp dport 9 accept")
    svc = service_doc("web", cluster_ip=CIP, ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}],
                      selector={"app": "web"}, type="NodePort", sessionAffinity="ClientIP")
    await synced(proxier, services=[svc], pods=topo.pods())
    before = ruleset(topo)
    assert ("NODELET-SEP-" in before) if mode == "iptables" else ("table ip nodelet" in before)

    summary = await cleanup(mode, ctx=CommandContext.in_netns(topo.node))
    after = ruleset(topo)
    assert "NODELET" not in after and "nodelet" not in after, after
    assert ":FOREIGN-CHAIN" in after and "-A PREROUTING -p tcp -m tcp --dport 9 -j FOREIGN-CHAIN" in after
    assert "-A INPUT -p tcp -m tcp --dport 9 -j ACCEPT" in after
    assert "table ip foreign" in after and "tcp dport 9 accept" in after
    assert (await topo.agent("client").tcp(CIP, 80, n=1, timeout=0.5))["counts"] == {}
    if mode == "iptables":
        assert summary.iptables["nft"]["jumps"] == 8 and summary.iptables["nft"]["chains"] > 5
    else:
        assert summary.nftables == {"tables": 1}
    again = await cleanup(mode, ctx=CommandContext.in_netns(topo.node))  # idempotent
    assert str(again) == "nothing to clean" or again.nftables == {"tables": 0}


async def test_failed_sync_logs_the_lines_around_the_error_and_next_sync_is_full(
    topo: Topology, proxier: Proxier, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    svc = [service_doc("web", cluster_ip=CIP, ports=WEB, selector={"app": "web"})]
    await synced(proxier, services=svc, pods=topo.pods())
    chain = proxier.status().ports[0].chains[0]
    if mode == "iptables":  # our jump removed behind our back: the next full sync's restore cannot delete it
        in_ns(topo.node, "iptables-nft", "-t", "nat", "-D", "PREROUTING", "-m", "comment", "--comment",
              "nodelet service portals", "-j", "NODELET-SERVICES")
        failed = await proxier.sync(full=True)
    else:  # an element of our endpoints map deleted behind our back: the partial sync removing it fails
        assert chain.startswith("svc-")
        in_ns(topo.node, "nft", "delete element ip nodelet endpoints { 2 }")
        proxier.update(services=svc, pods=topo.pods(ready={2: False}))
        failed = await proxier.sync()
    assert failed.kind == "failed" and failed.error is not None
    (marked,) = [line for line in failed.error.splitlines() if line.startswith(">")]  # the line the tool rejected
    culprit = "-D PREROUTING" if mode == "iptables" else "delete element ip nodelet endpoints { 2 }"
    assert culprit in marked, failed.error
    assert any("next sync is full" in r.getMessage() for r in caplog.records)
    healed = await proxier.sync()
    assert healed.kind == "fresh" and healed.error is None
    res = await topo.agent("client").tcp(CIP, 80, n=30)
    assert res["errors"] == {} and set(res["counts"]) <= {"b0", "b1", "b2"} and sum(res["counts"].values()) == 30
    if mode == "nftables":
        assert "b2" not in res["counts"]  # the change that failed was not lost


async def test_partial_syncs_add_remove_services_and_fill_an_empty_one(topo: Topology, proxier: Proxier,
                                                                       mode: str) -> None:
    old = service_doc("old", cluster_ip="10.96.0.20", ports=WEB, selector={"app": "web"})
    web = service_doc("web", cluster_ip=CIP, ports=WEB, selector={"app": "web"})
    await synced(proxier, services=[old, web], pods=[])  # web has no endpoints yet: rejected
    assert (await topo.agent("client").tcp(CIP, 80, n=1))["errors"] == {"ConnectionRefusedError": 1}
    assert (await topo.agent("client").tcp("10.96.0.20", 80, n=1))["errors"] == {"ConnectionRefusedError": 1}
    new = service_doc("new", cluster_ip="10.96.0.21", ports=WEB, selector={"app": "web"})
    proxier.update(services=[web, new], pods=topo.pods())
    result = await proxier.sync()
    assert result.kind == "partial" and result.changed == 3 and result.error is None
    for ip in (CIP, "10.96.0.21"):
        res = await topo.agent("client").tcp(ip, 80, n=20)
        assert res["errors"] == {} and sum(res["counts"].values()) == 20
    gone = await topo.agent("client").tcp("10.96.0.20", 80, n=1, timeout=0.5)
    assert "ConnectionRefusedError" not in gone["errors"] and gone["counts"] == {}  # no rules of "old" left
    assert "10.96.0.20" not in ruleset(topo)
