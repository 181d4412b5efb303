"""Validate Kubernetes probe objects and apply the API defaults (pure).

Mirrors ``pkg/apis/core/v1/defaults.go`` (``SetDefaults_Probe``, ``SetDefaults_HTTPGetAction``) and
``pkg/apis/core/validation`` (``validateProbe``, ``validateHandler``, ``validateHTTPGetAction`` ...). Error strings have
apimachinery's ``field.Error`` shape. Where nodelet is stricter than upstream it says so in the error text:

- an explicit ``periodSeconds``/``timeoutSeconds``/``successThreshold``/``failureThreshold`` of 0 is rejected
  (upstream silently turns 0 into the default, which hides typos);
- a named port must exist among the container's ports (upstream finds out only when probing, and the probe errors
  forever);
- unknown keys are rejected (as ``kubectl --validate=strict`` does).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from probes.errors import ProbeSpecError
from probes.types import (
    ContainerPortRef, ContainerProbes, ExecAction, GRPCAction, HTTPGetAction, ProbeHandler, ProbeKind, ProbeSpec,
    TCPSocketAction,
)

__all__ = ["parse_probe", "parse_container_probes", "parse_container_ports", "split_unknown_fields"]

_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_PROBE_KEYS = frozenset(_HANDLERS) | {
    "initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold",
    "terminationGracePeriodSeconds",
}
_HTTP_KEYS = frozenset({"host", "port", "path", "scheme", "httpHeaders"})
_TCP_KEYS = frozenset({"host", "port"})
_GRPC_KEYS = frozenset({"port", "service"})
_EXEC_KEYS = frozenset({"command"})
_HEADER_NAME = re.compile(r"^[-A-Za-z0-9]+$")
_PORT_NAME_CHARS = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_HEADER_NAME_DETAIL = ("a valid HTTP header must consist of alphanumeric characters or '-' "
                       "(e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')")


def parse_probe(obj: Mapping[str, Any], *, field: str, kind: ProbeKind,
                container_ports: Sequence[ContainerPortRef]) -> ProbeSpec:
    """Validate one probe object (``field`` is its full path, e.g. ``spec.containers[0].livenessProbe``)."""
    if not isinstance(obj, Mapping):
        raise ProbeSpecError(field=field, type=ProbeSpecError.INVALID, value=_shown(obj), detail="must be an object")
    _reject_unknown(obj, _PROBE_KEYS, field)
    handler = parse_handler(obj, field=field, container_ports=container_ports)

    initial_delay = _int_field(obj, "initialDelaySeconds", field, default=0, minimum=0)
    timeout = _int_field(obj, "timeoutSeconds", field, default=1, minimum=1)
    period = _int_field(obj, "periodSeconds", field, default=10, minimum=1)
    success = _int_field(obj, "successThreshold", field, default=1, minimum=1)
    failure = _int_field(obj, "failureThreshold", field, default=3, minimum=1)
    if kind is not ProbeKind.READINESS and success != 1:
        raise ProbeSpecError(field=f"{field}.successThreshold", type=ProbeSpecError.INVALID, value=success,
                             detail="must be 1")
    grace: int | None = None
    if obj.get("terminationGracePeriodSeconds") is not None:
        if kind is ProbeKind.READINESS:
            raise ProbeSpecError(field=f"{field}.terminationGracePeriodSeconds", type=ProbeSpecError.INVALID,
                                 value=_shown(obj["terminationGracePeriodSeconds"]),
                                 detail="must not be set for readinessProbes")
        grace = _int_field(obj, "terminationGracePeriodSeconds", field, default=0, minimum=1, bits=64)
    return ProbeSpec(kind=kind, handler=handler, initial_delay_seconds=initial_delay, period_seconds=period,
                     timeout_seconds=timeout, success_threshold=success, failure_threshold=failure,
                     termination_grace_period_seconds=grace)


def parse_container_ports(ports: object, *, field: str) -> tuple[ContainerPortRef, ...]:
    """The container's ``ports`` list as :class:`ContainerPortRef` (shape only; the daemon validates ports fully)."""
    if ports is None:
        return ()
    if not isinstance(ports, Sequence) or isinstance(ports, str):
        raise ProbeSpecError(field=field, type=ProbeSpecError.INVALID, value=_shown(ports), detail="must be a list")
    refs = []
    for i, p in enumerate(ports):
        if not isinstance(p, Mapping):
            raise ProbeSpecError(field=f"{field}[{i}]", type=ProbeSpecError.INVALID, value=_shown(p),
                                 detail="must be an object")
        number = p.get("containerPort")
        if not isinstance(number, int) or isinstance(number, bool):
            raise ProbeSpecError(field=f"{field}[{i}].containerPort", type=ProbeSpecError.INVALID,
                                 value=_shown(number), detail="must be an integer")
        name = p.get("name")
        refs.append(ContainerPortRef(name=name if isinstance(name, str) and name else None,
                                     container_port=int(number), protocol=str(p.get("protocol") or "TCP")))
    return tuple(refs)


def parse_container_probes(container: Mapping[str, Any], *, field: str) -> ContainerProbes:
    """All three probes of one container object (``field`` is e.g. ``spec.containers[0]``)."""
    ports = parse_container_ports(container.get("ports"), field=f"{field}.ports")
    found: dict[ProbeKind, ProbeSpec | None] = {}
    for kind in ProbeKind:
        obj = container.get(kind.field_name)
        found[kind] = None if obj is None else parse_probe(
            obj, field=f"{field}.{kind.field_name}", kind=kind, container_ports=ports)
    return ContainerProbes(liveness=found[ProbeKind.LIVENESS], readiness=found[ProbeKind.READINESS],
                           startup=found[ProbeKind.STARTUP])


def parse_handler(obj: Mapping[str, Any], *, field: str,
                  container_ports: Sequence[ContainerPortRef]) -> ProbeHandler:
    """One handler object (exec / httpGet / tcpSocket / grpc): the probe grammar, which lifecycle hooks share."""
    present = [name for name in _HANDLERS if obj.get(name) is not None]
    if not present:
        raise ProbeSpecError(field=field, type=ProbeSpecError.REQUIRED, detail="must specify a handler type")
    if len(present) > 1:
        raise ProbeSpecError(field=f"{field}.{present[1]}", type=ProbeSpecError.FORBIDDEN,
                             detail="may not specify more than 1 handler type")
    name = present[0]
    sub = obj[name]
    path = f"{field}.{name}"
    if not isinstance(sub, Mapping):
        raise ProbeSpecError(field=path, type=ProbeSpecError.INVALID, value=_shown(sub), detail="must be an object")
    if name == "exec":
        return _parse_exec(sub, path)
    if name == "httpGet":
        return _parse_http(sub, path, container_ports)
    if name == "tcpSocket":
        _reject_unknown(sub, _TCP_KEYS, path)
        return TCPSocketAction(host=_host(sub, path), port=_port(sub, path, container_ports))
    _reject_unknown(sub, _GRPC_KEYS, path)
    port = sub.get("port")
    if port is None:
        raise ProbeSpecError(field=f"{path}.port", type=ProbeSpecError.REQUIRED, detail="")
    if not _is_int(port):
        raise ProbeSpecError(field=f"{path}.port", type=ProbeSpecError.INVALID, value=_shown(port),
                             detail="must be an integer")
    _check_port_number(int(port), f"{path}.port")
    service = sub.get("service")
    if service is not None and not isinstance(service, str):
        raise ProbeSpecError(field=f"{path}.service", type=ProbeSpecError.INVALID, value=_shown(service),
                             detail="must be a string")
    return GRPCAction(port=int(port), service=service or "")


def _parse_exec(sub: Mapping[str, Any], path: str) -> ExecAction:
    _reject_unknown(sub, _EXEC_KEYS, path)
    command = sub.get("command")
    if not command:
        raise ProbeSpecError(field=f"{path}.command", type=ProbeSpecError.REQUIRED, detail="")
    if isinstance(command, str) or not isinstance(command, Sequence):
        raise ProbeSpecError(field=f"{path}.command", type=ProbeSpecError.INVALID, value=_shown(command),
                             detail="must be a list of strings")
    for i, arg in enumerate(command):
        if not isinstance(arg, str):
            raise ProbeSpecError(field=f"{path}.command[{i}]", type=ProbeSpecError.INVALID, value=_shown(arg),
                                 detail="must be a string")
    return ExecAction(command=tuple(command))


def _parse_http(sub: Mapping[str, Any], path: str, container_ports: Sequence[ContainerPortRef]) -> HTTPGetAction:
    _reject_unknown(sub, _HTTP_KEYS, path)
    scheme = sub.get("scheme")
    if scheme is None or scheme == "":
        scheme = "HTTP"
    if scheme not in ("HTTP", "HTTPS"):
        raise ProbeSpecError(field=f"{path}.scheme", type=ProbeSpecError.UNSUPPORTED, value=_shown(scheme),
                             detail='supported values: "HTTP", "HTTPS"')
    url_path = sub.get("path")
    if url_path is None or url_path == "":
        url_path = "/"
    if not isinstance(url_path, str):
        raise ProbeSpecError(field=f"{path}.path", type=ProbeSpecError.INVALID, value=_shown(url_path),
                             detail="must be a string")
    if any(c in url_path for c in " \r\n\t") or not url_path.isprintable():
        raise ProbeSpecError(field=f"{path}.path", type=ProbeSpecError.INVALID, value=url_path,
                             detail="must not contain whitespace or control characters")
    if not url_path.startswith("/"):
        url_path = "/" + url_path  # as Go's url.URL renders a relative path joined to a host
    headers_obj = sub.get("httpHeaders") or []
    if not isinstance(headers_obj, Sequence) or isinstance(headers_obj, str):
        raise ProbeSpecError(field=f"{path}.httpHeaders", type=ProbeSpecError.INVALID, value=_shown(headers_obj),
                             detail="must be a list")
    headers: list[tuple[str, str]] = []
    for i, h in enumerate(headers_obj):
        hpath = f"{path}.httpHeaders[{i}]"
        if not isinstance(h, Mapping):
            raise ProbeSpecError(field=hpath, type=ProbeSpecError.INVALID, value=_shown(h), detail="must be an object")
        _reject_unknown(h, frozenset({"name", "value"}), hpath)
        name, value = h.get("name"), h.get("value", "")
        if not isinstance(name, str) or not name:
            raise ProbeSpecError(field=f"{hpath}.name", type=ProbeSpecError.REQUIRED, detail="")
        if not _HEADER_NAME.match(name):
            raise ProbeSpecError(field=f"{hpath}.name", type=ProbeSpecError.INVALID, value=name,
                                 detail=_HEADER_NAME_DETAIL)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ProbeSpecError(field=f"{hpath}.value", type=ProbeSpecError.INVALID, value=_shown(value),
                                 detail="must be a string")
        if "\r" in value or "\n" in value:
            raise ProbeSpecError(field=f"{hpath}.value", type=ProbeSpecError.INVALID, value=value,
                                 detail="must not contain line breaks")
        headers.append((name, value))
    return HTTPGetAction(scheme=scheme, host=_host(sub, path), port=_port(sub, path, container_ports),
                         path=url_path, headers=tuple(headers))


def _host(sub: Mapping[str, Any], path: str) -> str | None:
    host = sub.get("host")
    if host is None or host == "":
        return None
    if not isinstance(host, str) or any(c in host for c in "/ \t\r\n@?#"):
        raise ProbeSpecError(field=f"{path}.host", type=ProbeSpecError.INVALID, value=_shown(host),
                             detail="must be an IP address or a DNS name")
    return host


def _port(sub: Mapping[str, Any], path: str, container_ports: Sequence[ContainerPortRef]) -> int:
    port = sub.get("port")
    fpath = f"{path}.port"
    if port is None or port == "":
        raise ProbeSpecError(field=fpath, type=ProbeSpecError.REQUIRED, detail="")
    if _is_int(port):
        _check_port_number(int(port), fpath)
        return int(port)
    if not isinstance(port, str):
        raise ProbeSpecError(field=fpath, type=ProbeSpecError.INVALID, value=_shown(port),
                             detail="must be a port number or a port name")
    # a named port: IANA_SVC_NAME rules, then it must name one of the container's ports
    if len(port) > 15:
        raise ProbeSpecError(field=fpath, type=ProbeSpecError.INVALID, value=port,
                             detail="must be no more than 15 characters")
    if not _PORT_NAME_CHARS.match(port) or "--" in port:
        raise ProbeSpecError(field=fpath, type=ProbeSpecError.INVALID, value=port,
                             detail="must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), "
                                    "must not begin or end with a hyphen nor contain adjacent hyphens")
    if not any(c.isalpha() for c in port):
        raise ProbeSpecError(field=fpath, type=ProbeSpecError.INVALID, value=port,
                             detail="must contain at least one letter (a-z)")
    for ref in container_ports:
        if ref.name == port and ref.protocol.upper() == "TCP":
            return ref.container_port
    names = sorted(r.name for r in container_ports if r.name)
    known = ", ".join(f'"{n}"' for n in names) if names else "none"
    raise ProbeSpecError(field=fpath, type=ProbeSpecError.INVALID, value=port,
                         detail=f"no TCP container port with this name (container ports named: {known})")


def _check_port_number(port: int, fpath: str) -> None:
    if not 1 <= port <= 65535:
        raise ProbeSpecError(field=fpath, type=ProbeSpecError.INVALID, value=port,
                             detail="must be between 1 and 65535, inclusive")


def _int_field(obj: Mapping[str, Any], key: str, field: str, *, default: int, minimum: int, bits: int = 32) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if not _is_int(value):
        raise ProbeSpecError(field=f"{field}.{key}", type=ProbeSpecError.INVALID, value=_shown(value),
                             detail="must be an integer")
    if value < minimum:
        raise ProbeSpecError(field=f"{field}.{key}", type=ProbeSpecError.INVALID, value=value,
                             detail="must be greater than 0" if minimum == 1 else "must be greater than or equal to 0")
    if value > 2**(bits - 1) - 1:
        raise ProbeSpecError(field=f"{field}.{key}", type=ProbeSpecError.INVALID, value=value,
                             detail=f"must be a {bits}-bit integer")
    return int(value)


_HANDLER_KEYS = {"exec": _EXEC_KEYS, "httpGet": _HTTP_KEYS, "tcpSocket": _TCP_KEYS, "grpc": _GRPC_KEYS}


def split_unknown_fields(obj: object, *, field: str) -> tuple[object, list[ProbeSpecError]]:
    """A probe object without its unknown fields, and one error per unknown field (probe, handler and header
    levels), so that a caller can report them all and still learn what else is wrong (a typo'd ``prot`` is unknown
    AND leaves ``port`` missing)."""
    if not isinstance(obj, Mapping):
        return obj, []
    errors: list[ProbeSpecError] = []

    def keep(m: Mapping[str, Any], allowed: frozenset[str], path: str) -> dict[str, Any]:
        for key in m:
            if key not in allowed:
                errors.append(ProbeSpecError(field=f"{path}.{key}", type=ProbeSpecError.FORBIDDEN,
                                             detail="unknown field"))
        return {k: v for k, v in m.items() if k in allowed}

    out = keep(obj, _PROBE_KEYS, field)
    for name, allowed in _HANDLER_KEYS.items():
        sub = out.get(name)
        if isinstance(sub, Mapping):
            sub = keep(sub, allowed, f"{field}.{name}")
            headers = sub.get("httpHeaders")
            if name == "httpGet" and isinstance(headers, list):
                sub["httpHeaders"] = [keep(h, frozenset({"name", "value"}), f"{field}.{name}.httpHeaders[{i}]")
                                      if isinstance(h, Mapping) else h for i, h in enumerate(headers)]
            out[name] = sub
    return out, errors


def _reject_unknown(obj: Mapping[str, Any], allowed: frozenset[str], field: str) -> None:
    for key in obj:
        if key not in allowed:
            raise ProbeSpecError(field=f"{field}.{key}", type=ProbeSpecError.FORBIDDEN, detail="unknown field")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> object:
    """A value for an error message: scalars as they are, containers by type (never a whole subtree)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return {} if isinstance(value, Mapping) else []  # rendered "an object" / "a list", as everywhere else
