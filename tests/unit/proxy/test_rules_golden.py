"""Rendered rulesets compared with the golden files in golden/ (regenerate: NODELET_UPDATE_GOLDEN=1 pytest …).

Each case goes the whole pure path: Service/EndpointSlice documents and local pods → parse → allocate →
resolve endpoints → render, in both modes. A diff in a golden file is a change in the rules users get: review it.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from proxy.ipalloc import Allocations
from proxy.model import ContainerPort, ManifestDoc, PodInfo, Protocol
from proxy.resolve import compute_state
from proxy.rules import RuleConfig, render_iptables
from proxy.rules_nft import render_nftables

GOLDEN = Path(__file__).parent / "golden"
CONFIG = RuleConfig(cluster_cidr="10.244.0.0/16")


def svc(name: str, spec: dict[str, Any]) -> ManifestDoc:
    return ManifestDoc(source=f"/etc/nodelet/manifests/{name}.yaml",
                       doc={"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"},
                            "spec": spec})


def pod(name: str, ip: str, *, ready: bool = True, labels: dict[str, str] | None = None,
        ports: tuple[ContainerPort, ...] = ()) -> PodInfo:
    return PodInfo(namespace="shop", name=name, labels=labels or {"app": "web"}, ip=ip, ready=ready, ports=ports,
                   node_name="node1")


def slice_doc(service: str, ips: list[str], port: int, *, protocol: str = "TCP", name: str = "",
              node: str = "node2") -> ManifestDoc:
    return ManifestDoc(source=f"/etc/nodelet/cluster/{service}-slice.yaml", doc={
        "kind": "EndpointSlice", "metadata": {"name": f"{service}-x", "namespace": "shop",
                                              "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": [{"name": name, "port": port, "protocol": protocol}],
        "endpoints": [{"addresses": [ip], "nodeName": node} for ip in ips]})


WEB_PODS = [pod("web-a", "10.244.1.10"), pod("web-b", "10.244.1.11"), pod("web-c", "10.244.1.12"),
            pod("web-unready", "10.244.1.13", ready=False)]
HTTP = [{"name": "http", "port": 80, "targetPort": 8080}]

CASES: dict[str, dict[str, Any]] = {
    "clusterip": dict(services=[svc("web", {"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "ports": HTTP})],
                      pods=WEB_PODS),
    "nodeport": dict(services=[svc("web", {"type": "NodePort", "clusterIP": "10.96.0.11", "selector": {"app": "web"},
                                           "externalIPs": ["192.0.2.50"],
                                           "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                                      "nodePort": 30080}]})],
                     pods=WEB_PODS[:2]),
    "affinity": dict(services=[svc("web", {"clusterIP": "10.96.0.12", "selector": {"app": "web"}, "ports": HTTP,
                                           "sessionAffinity": "ClientIP",
                                           "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 300}}})],
                     pods=WEB_PODS[:2]),
    "no_endpoints": dict(services=[svc("empty", {"type": "NodePort", "clusterIP": "10.96.0.13",
                                                 "selector": {"app": "nothing"},
                                                 "ports": [{"name": "http", "port": 80, "nodePort": 30081}]})],
                         pods=WEB_PODS),
    "hairpin": dict(services=[svc("self", {"clusterIP": "10.96.0.14", "selector": {"app": "self"}, "ports": HTTP})],
                    pods=[pod("self-0", "10.244.1.20", labels={"app": "self"})]),
    "named_ports": dict(
        services=[svc("multi", {"clusterIP": "10.96.0.15", "selector": {"app": "multi"},
                                "ports": [{"name": "http", "port": 80, "targetPort": "web"},
                                          {"name": "metrics", "port": 9090, "targetPort": "prom"}]})],
        pods=[pod("multi-0", "10.244.1.30", labels={"app": "multi"},
                  ports=(ContainerPort(name="web", port=8080), ContainerPort(name="prom", port=9100))),
              pod("multi-1", "10.244.1.31", labels={"app": "multi"},
                  ports=(ContainerPort(name="web", port=8081),))]),  # no "prom": not a metrics endpoint
    "udp": dict(services=[svc("dns", {"clusterIP": "10.96.0.16",
                                      "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]})],
                endpoint_docs=[slice_doc("dns", ["10.244.2.53", "10.244.3.53"], 5353, protocol="UDP", name="dns")]),
    "local_policy": dict(
        services=[svc("local", {"type": "NodePort", "clusterIP": "10.96.0.17", "selector": {"app": "web"},
                                "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
                                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30082}]})],
        pods=WEB_PODS[:1], endpoint_docs=[slice_doc("local", ["10.244.9.9"], 8080, name="http")]),
}


def resolve(case: dict[str, Any]):  # type: ignore[no-untyped-def]
    state = compute_state(services=case["services"], endpoint_docs=case.get("endpoint_docs", ()),
                          pods=case.get("pods", ()), previous=Allocations(), node_name="node1",
                          service_cidr="10.96.0.0/12")
    assert state.errors == ()
    return state.ports


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("NODELET_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"missing golden file {path} (NODELET_UPDATE_GOLDEN=1 writes it)"
    assert text == path.read_text(), f"rendered rules differ from {path}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_iptables_golden(case: str) -> None:
    check(f"{case}.iptables", render_iptables(resolve(CASES[case]), config=CONFIG).text)


@pytest.mark.parametrize("case", sorted(CASES))
def test_nftables_golden(case: str) -> None:
    check(f"{case}.nft", render_nftables(resolve(CASES[case]), config=CONFIG, fresh=True).text)


def _moved() -> tuple[dict, dict]:  # type: ignore[type-arg]
    before = resolve(CASES["clusterip"])
    (name, sp), = before.items()
    after = {name: dataclasses.replace(sp, endpoints=sp.endpoints[:2] + (
        dataclasses.replace(sp.endpoints[2], ip="10.244.1.99"),))}
    return before, after


def test_iptables_partial_golden() -> None:
    before, after = _moved()
    prev = render_iptables(before, config=CONFIG)
    text = render_iptables(after, config=CONFIG, previous=prev.compiled, changed=set(after)).text
    check("partial_endpoint_moved.iptables", text)
    assert "NODELET-SEP-" in text and "-X NODELET-SEP-" in text  # the old endpoint's chain is deleted


def test_nftables_partial_golden_touches_only_elements() -> None:
    before, after = _moved()
    prev = render_nftables(before, config=CONFIG, fresh=True)
    text = render_nftables(after, config=CONFIG, previous=prev.compiled, changed=set(after),
                           endpoint_ip_counts=prev.endpoint_ip_counts).text
    check("partial_endpoint_moved.nft", text)
    assert "add rule" not in text and "flush chain" not in text  # same endpoint count: only map elements change


def test_named_port_without_container_port_is_not_an_endpoint() -> None:
    ports = resolve(CASES["named_ports"])
    by_port = {n.port: [e.addr for e in sp.endpoints] for n, sp in ports.items()}
    assert by_port == {"http": ["10.244.1.30:8080", "10.244.1.31:8081"], "metrics": ["10.244.1.30:9100"]}


def test_every_iptables_rule_is_commented() -> None:
    for case in CASES.values():
        for line in render_iptables(resolve(case), config=CONFIG).text.splitlines():
            if line.startswith(("-A ", "-I ")):
                assert "-m comment --comment " in line, line


def test_iptables_probabilities_are_kube_proxy_format() -> None:
    text = render_iptables(resolve(CASES["clusterip"]), config=CONFIG).text
    assert "--probability 0.3333333333 " in text and "--probability 0.5000000000 " in text


def test_iptables_partial_edits_shared_chains_in_place() -> None:
    """web gains its endpoints (REJECT out, SERVICES line in), 'old' goes away, 'new' comes."""
    empty_web = dict(CASES["clusterip"], pods=[])
    before = {**resolve(empty_web), **resolve(CASES["hairpin"])}
    after = {**resolve(CASES["clusterip"]), **resolve(CASES["udp"])}
    prev = render_iptables(before, config=CONFIG)
    changed = set(before) | set(after)
    text = render_iptables(after, config=CONFIG, previous=prev.compiled, changed=changed).text
    check("partial_services_changed.iptables", text)
    lines = text.splitlines()
    assert any(l.startswith("-D NODELET-SERVICES") and "has no endpoints" in l for l in lines)  # filter REJECT out
    assert any(l.startswith("-I NODELET-SERVICES 1") and "shop/web:http cluster IP" in l for l in lines)
    assert any(l.startswith("-D NODELET-SERVICES") and "shop/self:http" in l for l in lines)
    assert "-X NODELET-SVC-" in text and ":NODELET-SERVICES" not in text  # shared chains are not flushed
