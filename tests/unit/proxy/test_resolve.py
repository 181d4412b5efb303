"""Endpoints from local pods (selector, readiness, named ports) and from EndpointSlice/Endpoints documents."""
from __future__ import annotations

from typing import Any

from proxy.ipalloc import Allocations
from proxy.model import ContainerPort, ManifestDoc, PodInfo, Protocol
from proxy.resolve import compute_state


def svc(**spec: Any) -> ManifestDoc:
    spec.setdefault("clusterIP", "10.96.0.10")
    return ManifestDoc(source="/m/web.yaml", doc={"kind": "Service", "metadata": {"name": "web"}, "spec": spec})


def pod(name: str, ip: str, ready: bool = True, ns: str = "default", **labels: str) -> PodInfo:
    return PodInfo(namespace=ns, name=name, labels=labels or {"app": "web"}, ip=ip, ready=ready,
                   ports=(ContainerPort(name="http", port=8080), ContainerPort(name="dns", port=53,
                                                                               protocol=Protocol("UDP"))),
                   node_name="node1")


def eps(docs: list[ManifestDoc], pods: list[PodInfo], ep_docs: list[ManifestDoc] = ()) -> dict[str, list[str]]:  # type: ignore[assignment]
    st = compute_state(services=docs, endpoint_docs=ep_docs, pods=pods, previous=Allocations(), node_name="node1",
                       service_cidr="10.96.0.0/12")
    assert st.errors == ()
    return {str(n): [f"{e.addr}{'*' if e.local else ''}" for e in sp.endpoints] for n, sp in st.ports.items()}


PORTS = [{"name": "http", "port": 80, "targetPort": "http"}]


def test_ready_matching_pods_in_namespace_with_named_port() -> None:
    pods = [pod("a", "10.244.0.3"), pod("b", "10.244.0.2"), pod("c", "10.244.0.4", ready=False),
            pod("d", "10.244.0.5", app="other"), pod("e", "10.244.0.6", ns="elsewhere"), pod("f", "")]
    assert eps([svc(selector={"app": "web"}, ports=PORTS)], pods) == {
        "default/web:http": ["10.244.0.2:8080*", "10.244.0.3:8080*"]}


def test_publish_not_ready_addresses() -> None:
    pods = [pod("a", "10.244.0.3"), pod("c", "10.244.0.4", ready=False)]
    assert eps([svc(selector={"app": "web"}, ports=PORTS, publishNotReadyAddresses=True)], pods) == {
        "default/web:http": ["10.244.0.3:8080*", "10.244.0.4:8080*"]}


def test_named_port_must_match_protocol() -> None:
    ports = [{"name": "dns", "port": 53, "protocol": "TCP", "targetPort": "dns"}]  # the container's dns is UDP
    assert eps([svc(selector={"app": "web"}, ports=ports)], [pod("a", "10.244.0.3")]) == {"default/web:dns": []}


def test_slices_add_remote_endpoints_and_respect_readiness() -> None:
    slice_doc = ManifestDoc(source="/c/s.yaml", doc={
        "kind": "EndpointSlice", "metadata": {"name": "web-x", "labels": {"kubernetes.io/service-name": "web"}},
        "ports": [{"name": "http", "port": 9000}],
        "endpoints": [{"addresses": ["10.9.0.1"], "nodeName": "node2"},
                      {"addresses": ["10.9.0.2"], "conditions": {"ready": False}},
                      {"addresses": ["10.9.0.3"], "nodeName": "node1"}]})
    assert eps([svc(selector={"app": "web"}, ports=PORTS)], [pod("a", "10.244.0.3")], [slice_doc]) == {
        "default/web:http": ["10.9.0.1:9000", "10.9.0.3:9000*", "10.244.0.3:8080*"]}


def test_selectorless_service_with_endpoints_object() -> None:
    ep = ManifestDoc(source="/c/e.yaml", doc={"kind": "Endpoints", "metadata": {"name": "web"},
                                               "subsets": [{"addresses": [{"ip": "192.0.2.7"}],
                                                            "ports": [{"name": "http", "port": 443}]}]})
    assert eps([svc(ports=[{"name": "http", "port": 80}])], [pod("a", "10.244.0.3")], [ep]) == {
        "default/web:http": ["192.0.2.7:443"]}


def test_headless_service_has_no_rules() -> None:
    assert eps([svc(clusterIP="None", selector={"app": "web"}, ports=PORTS)], [pod("a", "10.244.0.3")]) == {}
