"""ClusterIP / nodePort allocation: deterministic, persisted, conflicts are errors naming both services."""
from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from proxy.ipalloc import Allocations, AllocationStore
from proxy.model import ManifestDoc, PodInfo
from proxy.resolve import compute_state


def svc(name: str, *, source: str | None = None, ns: str = "default", **spec: Any) -> ManifestDoc:
    spec.setdefault("ports", [{"name": "http", "port": 80}])
    return ManifestDoc(source=source or f"/m/{name}.yaml",
                       doc={"kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec})


def state(docs: list[ManifestDoc], previous: Allocations = Allocations(), cidr: str = "10.96.0.0/12"):  # type: ignore[no-untyped-def]
    return compute_state(services=docs, endpoint_docs=[], pods=[], previous=previous, service_cidr=cidr)


def ips(st) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.key: s.cluster_ip for s in st.services}


def test_allocation_is_deterministic_and_in_cidr() -> None:
    docs = [svc(f"s{i}") for i in range(50)]
    a, b = state(docs), state(list(reversed(docs)))
    assert ips(a) == ips(b) and len(set(ips(a).values())) == 50
    net = ipaddress.ip_network("10.96.0.0/12")
    assert all(ipaddress.ip_address(ip) in net for ip in ips(a).values())
    assert all(ip not in ("10.96.0.0", "10.111.255.255") for ip in ips(a).values())


def test_allocation_survives_restart_and_new_neighbours(tmp_path: Path) -> None:
    store = AllocationStore(tmp_path)
    first = state([svc("web")])
    store.save(first.allocations)
    on_disk = json.loads((tmp_path / "allocations.json").read_text())
    assert on_disk["clusterIPs"] == {"default/web": ips(first)["default/web"]}
    # a restarted agent, with another service that would hash onto the same address, keeps the old one
    restarted = AllocationStore(tmp_path)
    taken = ips(first)["default/web"]
    again = state([svc("aaa", clusterIP=taken), svc("web")], previous=restarted.current)
    assert ips(again).get("default/web") == taken
    (err,) = again.errors
    assert str(err) == (f"/m/aaa.yaml: Service default/aaa: spec.clusterIP: {taken} is already allocated to "
                        "Service default/web (/m/web.yaml)")
    assert not list(tmp_path.glob(".allocations.*"))  # no temp files left behind


def test_conflicting_explicit_ips_name_both_services_and_the_rest_keeps_working() -> None:
    st = state([svc("a", clusterIP="10.96.0.50"), svc("b", clusterIP="10.96.0.50"), svc("c")])
    assert set(ips(st)) == {"default/a", "default/c"}
    (err,) = st.errors
    assert str(err) == ("/m/b.yaml: Service default/b: spec.clusterIP: 10.96.0.50 is already allocated to "
                        "Service default/a (/m/a.yaml)")


def test_cluster_ip_outside_cidr() -> None:
    st = state([svc("a", clusterIP="10.0.0.1")])
    assert [str(e) for e in st.errors] == [
        "/m/a.yaml: Service default/a: spec.clusterIP: 10.0.0.1 is not in the service CIDR 10.96.0.0/12"]
    assert st.ports == {}


def test_same_service_in_two_files() -> None:
    st = state([svc("a", source="/m/1.yaml"), svc("a", source="/m/2.yaml")])
    assert [str(e) for e in st.errors] == [
        "/m/2.yaml: Service default/a: metadata.name: Service default/a is also defined in /m/1.yaml"]
    assert len(st.services) == 1


def test_node_ports_allocated_and_clash_reported() -> None:
    st = state([
        svc("a", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}]),
        svc("b", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}]),
        svc("u", type="NodePort", ports=[{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30080}]),
        svc("auto", type="NodePort", ports=[{"name": "http", "port": 80}]),
    ])
    assert [str(e) for e in st.errors] == [
        "/m/b.yaml: Service default/b: spec.ports[0].nodePort: 30080/TCP is already allocated to "
        "Service default/a (/m/a.yaml)"]
    by = {s.key: s.ports[0].node_port for s in st.services}
    assert by["default/a"] == 30080 and by["default/u"] == 30080  # another protocol may share the number
    assert 30000 <= by["default/auto"] <= 32767 and by["default/auto"] != 30080
    assert st.allocations.node_ports["default/auto:http/TCP"] == by["default/auto"]


def test_external_ip_port_claimed_twice() -> None:
    st = state([svc("a", externalIPs=["192.0.2.1"]), svc("b", externalIPs=["192.0.2.1"]),
                svc("c", externalIPs=["192.0.2.1"], ports=[{"name": "x", "port": 81}])])
    assert [str(e) for e in st.errors] == [
        "/m/b.yaml: Service default/b: spec.externalIPs: 192.0.2.1:80/TCP is already used by Service default/a "
        "(/m/a.yaml)"]
    assert {s.key for s in st.services} == {"default/a", "default/c"}


def test_a_bad_file_keeps_its_address_reserved() -> None:
    good = state([svc("web"), svc("db")])
    broken = state([svc("web", ports=[{"name": "http", "port": 0}]), svc("db")], previous=good.allocations)
    assert len(broken.errors) == 1
    assert broken.allocations.cluster_ips["default/web"] == good.allocations.cluster_ips["default/web"]
    healed = state([svc("web"), svc("db")], previous=broken.allocations)
    assert ips(healed) == ips(good)


def test_bad_document_disturbs_nothing_else() -> None:
    pods = [PodInfo(namespace="default", name="p", labels={"app": "x"}, ip="10.244.0.5", ready=True)]
    st = compute_state(services=[svc("ok", selector={"app": "x"}), svc("bad", ports=[{"name": "h", "port": -1}])],
                       endpoint_docs=[ManifestDoc(source="/m/e.yaml", doc={"kind": "EndpointSlice"})],
                       pods=pods, previous=Allocations(), service_cidr="10.96.0.0/12")
    assert len(st.errors) == 2
    assert [e.addr for sp in st.ports.values() for e in sp.endpoints] == ["10.244.0.5:80"]
