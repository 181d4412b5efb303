"""Parsing Service / EndpointSlice / Endpoints documents: values out, or one precise error (file, field, reason)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from proxy.errors import ServiceSpecError
from proxy.model import EndpointAddress, EndpointPort, parse_endpoint_doc, parse_service

SRC = "/etc/nodelet/manifests/web.yaml"


def doc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}
    base["spec"].update(spec)
    return base


def test_defaults_and_fields() -> None:
    s = parse_service(doc(ports=[{"name": "http", "port": 80, "targetPort": "web"},
                                 {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}],
                          sessionAffinity="ClientIP", externalIPs=["192.0.2.1"], publishNotReadyAddresses=True),
                      source=SRC)
    assert (s.namespace, s.name, s.type, s.cluster_ip, s.source) == ("shop", "web", "ClusterIP", "", SRC)
    assert s.affinity_timeout == 10800  # upstream default
    assert [(p.name, p.protocol, p.port, p.target_port) for p in s.ports] == [
        ("http", "TCP", 80, "web"), ("dns", "UDP", 53, 5353)]
    assert s.selector == (("app", "web"),) and s.external_ips == ("192.0.2.1",) and s.publish_not_ready
    assert not s.internal_local and not s.external_local


def test_namespace_defaults_and_single_port_needs_no_name() -> None:
    d = doc(ports=[{"port": 8080}])
    del d["metadata"]["namespace"]
    s = parse_service(d, source=SRC)
    assert s.namespace == "default" and s.ports[0].name == "" and s.ports[0].target_port == 8080


def test_headless() -> None:
    assert parse_service(doc(clusterIP="None"), source=SRC).headless


BAD: list[tuple[dict[str, Any], str]] = [
    ({"ports": [{"name": "http", "port": 70000}]},
     "spec.ports[0].port: must be between 1 and 65535, got 70000"),
    ({"ports": [{"name": "http", "port": "80"}]}, "spec.ports[0].port: must be an integer, got '80'"),
    ({"clusterIP": "10.96.0.300"}, "spec.clusterIP: invalid IP address '10.96.0.300'"),
    ({"clusterIP": "fd00::1"}, "spec.clusterIP: only IPv4 is supported, got 'fd00::1'"),
    ({"externalIPs": ["192.0.2.1", "nope"]}, "spec.externalIPs[1]: invalid IP address 'nope'"),
    ({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]},
     "spec.ports[1].name: duplicate port name 'http' (also spec.ports[0])"),
    ({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]},
     "spec.ports[1].port: duplicate port 80/TCP (also spec.ports[0])"),
    ({"ports": [{"port": 80}, {"name": "b", "port": 81}]},
     "spec.ports[0].name: required when the service has more than one port"),
    ({"ports": [{"name": "http", "port": 80, "protocol": "ICMP"}]},
     "spec.ports[0].protocol: unsupported protocol 'ICMP' (supported: TCP, UDP, SCTP)"),
    ({"ports": [{"name": "http", "port": 80, "targetPort": "Not_A_Name"}]},
     "spec.ports[0].targetPort: invalid port name 'Not_A_Name' (must be an IANA_SVC_NAME)"),
    ({"ports": [{"name": "http", "port": 80, "nodePort": 30080}]},
     "spec.ports[0].nodePort: may not be set when type is ClusterIP"),
    ({"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 80}]},
     "spec.ports[0].nodePort: 80 is outside the node port range 30000-32767"),
    ({"type": "LoadBalancer"},
     "spec.type: type LoadBalancer is not supported by nodelet (use ClusterIP or NodePort)"),
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400, got 0"),
    ({"sessionAffinity": "Cookie"}, "spec.sessionAffinity: unsupported value 'Cookie' (supported: None, ClientIP)"),
    ({"externalTrafficPolicy": "Local"},
     "spec.externalTrafficPolicy: may only be Local for NodePort services or with externalIPs"),
    ({"internalTrafficPolicy": "local"},
     "spec.internalTrafficPolicy: unsupported value 'local' (supported: Cluster, Local)"),
    ({"ports": []}, "spec.ports: required: at least one port"),
    ({"publishNotReadyAddresses": "yes"}, "spec.publishNotReadyAddresses: must be a boolean, got 'yes'"),
]


@pytest.mark.parametrize(("spec", "message"), BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_service_names_file_object_field_and_reason(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ServiceSpecError) as e:
        parse_service(doc(**spec), source=SRC)
    assert str(e.value) == f"{SRC}: Service shop/web: {message}"
    assert e.value.source == SRC and message.startswith(e.value.field)


def test_bad_metadata() -> None:
    d = doc()
    d["metadata"]["name"] = "Web_1"
    with pytest.raises(ServiceSpecError) as e:
        parse_service(d, source=SRC)
    assert str(e.value) == f"{SRC}: Service shop/Web_1: metadata.name: invalid name 'Web_1' (must be a DNS-1035 label)"
    with pytest.raises(ServiceSpecError) as e:
        parse_service({"kind": "Service", "spec": {}}, source=SRC)
    assert str(e.value) == f"{SRC}: Service: metadata.name: required"


def test_parse_does_not_mutate_input() -> None:
    d = doc(ports=[{"name": "http", "port": 80}])
    before = copy.deepcopy(d)
    parse_service(d, source=SRC)
    assert d == before


SLICE = {"kind": "EndpointSlice", "metadata": {"name": "web-1", "namespace": "shop",
                                               "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
         "endpoints": [{"addresses": ["10.1.0.1"], "nodeName": "n2"},
                       {"addresses": ["10.1.0.2"], "conditions": {"ready": False}}]}


def test_endpoint_slice() -> None:
    (es,) = parse_endpoint_doc(SLICE, source="s.yaml")
    assert (es.namespace, es.service) == ("shop", "web")
    assert es.ports == (EndpointPort(name="http", port=8080, protocol="TCP"),)
    assert es.addresses == (EndpointAddress(ip="10.1.0.1", ready=True, node_name="n2"),
                            EndpointAddress(ip="10.1.0.2", ready=False, node_name=None))


def test_endpoints_subsets() -> None:
    d = {"kind": "Endpoints", "metadata": {"name": "web"},
         "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "notReadyAddresses": [{"ip": "10.1.0.2"}],
                      "ports": [{"name": "http", "port": 8080}]}]}
    (es,) = parse_endpoint_doc(d, source="e.yaml")
    assert es.service == "web" and es.namespace == "default"
    assert [(a.ip, a.ready) for a in es.addresses] == [("10.1.0.1", True), ("10.1.0.2", False)]


BAD_EP: list[tuple[dict[str, Any], str]] = [
    ({**SLICE, "metadata": {"name": "x", "namespace": "shop"}},
     "s.yaml: EndpointSlice shop/x: metadata.labels: the label kubernetes.io/service-name is required"),
    ({**SLICE, "addressType": "IPv6"}, "s.yaml: EndpointSlice shop/web-1: addressType: only IPv4 is supported, got 'IPv6'"),
    ({**SLICE, "endpoints": [{"addresses": ["10.1.0.999"]}]},
     "s.yaml: EndpointSlice shop/web-1: endpoints[0].addresses[0]: invalid IP address '10.1.0.999'"),
    ({**SLICE, "ports": [{"name": "http", "port": 0}]},
     "s.yaml: EndpointSlice shop/web-1: ports[0].port: must be between 1 and 65535, got 0"),
    ({**SLICE, "ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]},
     "s.yaml: EndpointSlice shop/web-1: ports[1].name: duplicate port name 'a'"),
    ({"kind": "Pod", "metadata": {"name": "p"}}, "s.yaml: kind: expected EndpointSlice or Endpoints, got 'Pod'"),
]


@pytest.mark.parametrize(("d", "message"), BAD_EP)
def test_bad_endpoint_docs(d: dict[str, Any], message: str) -> None:
    with pytest.raises(ServiceSpecError) as e:
        parse_endpoint_doc(d, source="s.yaml")
    assert str(e.value) == message
