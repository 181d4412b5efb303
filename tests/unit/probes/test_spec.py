"""parse_probe: defaults, and every bad input with its exact error (field path and reason)."""
from __future__ import annotations

import pytest

from probes import (
    ContainerPortRef, ExecAction, GRPCAction, HTTPGetAction, ProbeKind, ProbeSpecError, TCPSocketAction,
    parse_container_probes, parse_probe,
)

F = "spec.containers[0].livenessProbe"
PORTS = (ContainerPortRef(name="http", container_port=8080), ContainerPortRef(name="metrics", container_port=9090),
         ContainerPortRef(name="dns", container_port=53, protocol="UDP"))


def parse(obj, kind=ProbeKind.LIVENESS, field=F):  # type: ignore[no-untyped-def]
    return parse_probe(obj, field=field, kind=kind, container_ports=PORTS)


def test_defaults_follow_the_api() -> None:
    spec = parse({"httpGet": {"port": 8080}})
    assert (spec.initial_delay_seconds, spec.period_seconds, spec.timeout_seconds, spec.success_threshold,
            spec.failure_threshold, spec.termination_grace_period_seconds) == (0, 10, 1, 1, 3, None)
    assert spec.handler == HTTPGetAction(scheme="HTTP", host=None, port=8080, path="/", headers=())


def test_every_field_is_carried() -> None:
    spec = parse({"httpGet": {"port": "http", "path": "/healthz?full=1", "scheme": "HTTPS", "host": "10.1.2.3",
                              "httpHeaders": [{"name": "Host", "value": "example.com"},
                                              {"name": "X-Custom", "value": "a"}]},
                  "initialDelaySeconds": 5, "periodSeconds": 3, "timeoutSeconds": 2, "successThreshold": 1,
                  "failureThreshold": 7, "terminationGracePeriodSeconds": 4})
    assert spec.handler == HTTPGetAction(scheme="HTTPS", host="10.1.2.3", port=8080, path="/healthz?full=1",
                                         headers=(("Host", "example.com"), ("X-Custom", "a")))
    assert (spec.initial_delay_seconds, spec.period_seconds, spec.timeout_seconds, spec.success_threshold,
            spec.failure_threshold, spec.termination_grace_period_seconds) == (5, 3, 2, 1, 7, 4)


@pytest.mark.parametrize("obj, handler", [
    ({"exec": {"command": ["cat", "/tmp/healthy"]}}, ExecAction(command=("cat", "/tmp/healthy"))),
    ({"tcpSocket": {"port": "metrics"}}, TCPSocketAction(host=None, port=9090)),
    ({"tcpSocket": {"port": 22, "host": "127.0.0.1"}}, TCPSocketAction(host="127.0.0.1", port=22)),
    ({"grpc": {"port": 50051}}, GRPCAction(port=50051, service="")),
    ({"grpc": {"port": 50051, "service": "liveness"}}, GRPCAction(port=50051, service="liveness")),
    ({"httpGet": {"port": 80, "path": "healthz"}}, HTTPGetAction(scheme="HTTP", host=None, port=80, path="/healthz")),
    ({"httpGet": {"port": 80}, "exec": None}, HTTPGetAction(scheme="HTTP", host=None, port=80, path="/")),
])
def test_handlers(obj, handler) -> None:  # type: ignore[no-untyped-def]
    assert parse(obj).handler == handler


def test_readiness_may_have_a_success_threshold() -> None:
    assert parse({"tcpSocket": {"port": 80}, "successThreshold": 3}, ProbeKind.READINESS).success_threshold == 3


BAD = [
    # handlers
    ({}, ProbeKind.LIVENESS, F, f"{F}: Required value: must specify a handler type"),
    ({"periodSeconds": 5}, ProbeKind.READINESS, F, f"{F}: Required value: must specify a handler type"),
    ({"exec": {"command": ["true"]}, "httpGet": {"port": 80}}, ProbeKind.LIVENESS, f"{F}.httpGet",
     f"{F}.httpGet: Forbidden: may not specify more than 1 handler type"),
    ({"tcpSocket": {"port": 80}, "grpc": {"port": 80}}, ProbeKind.STARTUP, f"{F}.grpc",
     f"{F}.grpc: Forbidden: may not specify more than 1 handler type"),
    ({"exec": {}}, ProbeKind.LIVENESS, f"{F}.exec.command", f"{F}.exec.command: Required value"),
    ({"exec": {"command": "true"}}, ProbeKind.LIVENESS, f"{F}.exec.command",
     f'{F}.exec.command: Invalid value: "true": must be a list of strings'),
    ({"exec": {"command": ["sh", 1]}}, ProbeKind.LIVENESS, f"{F}.exec.command[1]",
     f"{F}.exec.command[1]: Invalid value: 1: must be a string"),
    ({"httpGet": "x"}, ProbeKind.LIVENESS, f"{F}.httpGet", f'{F}.httpGet: Invalid value: "x": must be an object'),
    # ports
    ({"httpGet": {"path": "/"}}, ProbeKind.LIVENESS, f"{F}.httpGet.port", f"{F}.httpGet.port: Required value"),
    ({"httpGet": {"port": "web"}}, ProbeKind.LIVENESS, f"{F}.httpGet.port",
     f'{F}.httpGet.port: Invalid value: "web": no TCP container port with this name '
     f'(container ports named: "dns", "http", "metrics")'),
    ({"tcpSocket": {"port": "dns"}}, ProbeKind.LIVENESS, f"{F}.tcpSocket.port",
     f'{F}.tcpSocket.port: Invalid value: "dns": no TCP container port with this name '
     f'(container ports named: "dns", "http", "metrics")'),
    ({"tcpSocket": {"port": 0}}, ProbeKind.LIVENESS, f"{F}.tcpSocket.port",
     f"{F}.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive"),
    ({"tcpSocket": {"port": 65536}}, ProbeKind.LIVENESS, f"{F}.tcpSocket.port",
     f"{F}.tcpSocket.port: Invalid value: 65536: must be between 1 and 65535, inclusive"),
    ({"tcpSocket": {"port": "8080"}}, ProbeKind.LIVENESS, f"{F}.tcpSocket.port",
     f'{F}.tcpSocket.port: Invalid value: "8080": must contain at least one letter (a-z)'),
    ({"tcpSocket": {"port": "Web_Port"}}, ProbeKind.LIVENESS, f"{F}.tcpSocket.port",
     f'{F}.tcpSocket.port: Invalid value: "Web_Port": must contain only alpha-numeric characters (a-z, 0-9), '
     f'and hyphens (-), must not begin or end with a hyphen nor contain adjacent hyphens'),
    ({"tcpSocket": {"port": "a-very-long-port-name"}}, ProbeKind.LIVENESS, f"{F}.tcpSocket.port",
     f'{F}.tcpSocket.port: Invalid value: "a-very-long-port-name": must be no more than 15 characters'),
    ({"tcpSocket": {"port": 1.5}}, ProbeKind.LIVENESS, f"{F}.tcpSocket.port",
     f"{F}.tcpSocket.port: Invalid value: 1.5: must be a port number or a port name"),
    ({"grpc": {"port": "http"}}, ProbeKind.LIVENESS, f"{F}.grpc.port",
     f'{F}.grpc.port: Invalid value: "http": must be an integer'),
    ({"grpc": {}}, ProbeKind.LIVENESS, f"{F}.grpc.port", f"{F}.grpc.port: Required value"),
    ({"grpc": {"port": 70000}}, ProbeKind.LIVENESS, f"{F}.grpc.port",
     f"{F}.grpc.port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ({"grpc": {"port": 1, "service": 3}}, ProbeKind.LIVENESS, f"{F}.grpc.service",
     f"{F}.grpc.service: Invalid value: 3: must be a string"),
    # http fields
    ({"httpGet": {"port": 80, "scheme": "FTP"}}, ProbeKind.LIVENESS, f"{F}.httpGet.scheme",
     f'{F}.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"'),
    ({"httpGet": {"port": 80, "scheme": "https"}}, ProbeKind.LIVENESS, f"{F}.httpGet.scheme",
     f'{F}.httpGet.scheme: Unsupported value: "https": supported values: "HTTP", "HTTPS"'),
    ({"httpGet": {"port": 80, "path": "/a b"}}, ProbeKind.LIVENESS, f"{F}.httpGet.path",
     f'{F}.httpGet.path: Invalid value: "/a b": must not contain whitespace or control characters'),
    ({"httpGet": {"port": 80, "httpHeaders": [{"name": "Bad Header", "value": "x"}]}}, ProbeKind.LIVENESS,
     f"{F}.httpGet.httpHeaders[0].name",
     f"{F}.httpGet.httpHeaders[0].name: Invalid value: \"Bad Header\": a valid HTTP header must consist of "
     f"alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')"),
    ({"httpGet": {"port": 80, "httpHeaders": [{"value": "x"}]}}, ProbeKind.LIVENESS,
     f"{F}.httpGet.httpHeaders[0].name", f"{F}.httpGet.httpHeaders[0].name: Required value"),
    ({"httpGet": {"port": 80, "httpHeaders": [{"name": "X-A", "value": "a\r\nEvil: 1"}]}}, ProbeKind.LIVENESS,
     f"{F}.httpGet.httpHeaders[0].value",
     f'{F}.httpGet.httpHeaders[0].value: Invalid value: "a\\r\\nEvil: 1": must not contain line breaks'),
    ({"httpGet": {"port": 80, "host": "http://x"}}, ProbeKind.LIVENESS, f"{F}.httpGet.host",
     f'{F}.httpGet.host: Invalid value: "http://x": must be an IP address or a DNS name'),
    ({"httpGet": {"port": 80, "paht": "/"}}, ProbeKind.LIVENESS, f"{F}.httpGet.paht",
     f"{F}.httpGet.paht: Forbidden: unknown field"),
    # timing
    ({"tcpSocket": {"port": 80}, "periodSeconds": 0}, ProbeKind.LIVENESS, f"{F}.periodSeconds",
     f"{F}.periodSeconds: Invalid value: 0: must be greater than 0"),
    ({"tcpSocket": {"port": 80}, "periodSeconds": -5}, ProbeKind.READINESS, f"{F}.periodSeconds",
     f"{F}.periodSeconds: Invalid value: -5: must be greater than 0"),
    ({"tcpSocket": {"port": 80}, "periodSeconds": "10"}, ProbeKind.LIVENESS, f"{F}.periodSeconds",
     f'{F}.periodSeconds: Invalid value: "10": must be an integer'),
    ({"tcpSocket": {"port": 80}, "periodSeconds": True}, ProbeKind.LIVENESS, f"{F}.periodSeconds",
     f"{F}.periodSeconds: Invalid value: true: must be an integer"),
    ({"tcpSocket": {"port": 80}, "timeoutSeconds": 0}, ProbeKind.LIVENESS, f"{F}.timeoutSeconds",
     f"{F}.timeoutSeconds: Invalid value: 0: must be greater than 0"),
    ({"tcpSocket": {"port": 80}, "initialDelaySeconds": -1}, ProbeKind.LIVENESS, f"{F}.initialDelaySeconds",
     f"{F}.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0"),
    ({"tcpSocket": {"port": 80}, "failureThreshold": 0}, ProbeKind.LIVENESS, f"{F}.failureThreshold",
     f"{F}.failureThreshold: Invalid value: 0: must be greater than 0"),
    ({"tcpSocket": {"port": 80}, "successThreshold": 0}, ProbeKind.READINESS, f"{F}.successThreshold",
     f"{F}.successThreshold: Invalid value: 0: must be greater than 0"),
    ({"tcpSocket": {"port": 80}, "successThreshold": 2}, ProbeKind.LIVENESS, f"{F}.successThreshold",
     f"{F}.successThreshold: Invalid value: 2: must be 1"),
    ({"tcpSocket": {"port": 80}, "successThreshold": 3}, ProbeKind.STARTUP, f"{F}.successThreshold",
     f"{F}.successThreshold: Invalid value: 3: must be 1"),
    ({"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 0}, ProbeKind.LIVENESS,
     f"{F}.terminationGracePeriodSeconds", f"{F}.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"),
    ({"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 5}, ProbeKind.READINESS,
     f"{F}.terminationGracePeriodSeconds",
     f"{F}.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes"),
    ({"tcpSocket": {"port": 80}, "periodSecond": 5}, ProbeKind.LIVENESS, f"{F}.periodSecond",
     f"{F}.periodSecond: Forbidden: unknown field"),
    (["tcpSocket"], ProbeKind.LIVENESS, F, f'{F}: Invalid value: a list: must be an object'),
]


@pytest.mark.parametrize("obj, kind, field, text", BAD, ids=[t for *_, t in BAD])
def test_bad_input(obj, kind, field, text) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProbeSpecError) as err:
        parse(obj, kind)
    assert err.value.field == field
    assert str(err.value) == text


def test_container_probes_resolve_ports_from_the_container() -> None:
    container = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}],
                 "livenessProbe": {"httpGet": {"port": "http"}},
                 "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}
    probes = parse_container_probes(container, field="spec.containers[2]")
    assert probes.liveness is not None and probes.liveness.handler.port == 8080  # type: ignore[union-attr]
    assert probes.readiness is not None and probes.readiness.period_seconds == 1
    assert probes.startup is None


def test_container_probes_name_the_container_in_errors() -> None:
    container = {"name": "web", "startupProbe": {"httpGet": {"port": "http"}}}
    with pytest.raises(ProbeSpecError) as err:
        parse_container_probes(container, field="spec.initContainers[1]")
    assert err.value.field == "spec.initContainers[1].startupProbe.httpGet.port"
    assert str(err.value) == ('spec.initContainers[1].startupProbe.httpGet.port: Invalid value: "http": '
                              'no TCP container port with this name (container ports named: none)')
