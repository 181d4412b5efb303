"""Field paths, field problems and apimachinery's name rules (``pkg/util/validation``: ``IsDNS1123Label``,
``IsValidPortName`` …), messages verbatim: the primitives both validation modules build on (pure).

`kubelet.manifest.validation` (pod rules) and `kubelet.manifest.validation_spec` (volumes, security, DNS …) import
from here, and neither imports the other's internals, so there is no import circle.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probes.errors import render_field_value
from proxy.labels import DNS1123_LABEL_FMT, DNS1123_LABEL_RE, DNS1123_SUBDOMAIN_FMT, DNS1123_SUBDOMAIN_RE

Path = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class FieldProblem:
    path: Path
    reason: str


def render_path(path: Path) -> str:
    """("spec", "containers", 1, "name") → ``spec.containers[1].name``; keys with dots in brackets as upstream."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out and not re.fullmatch(r"[A-Za-z0-9_-]+", part):
            shown = part if part.isprintable() else part.encode("unicode_escape").decode("ascii")
            out += f"[{shown}]"  # a key with a newline must not break the one-line error
        else:
            out += f".{part}" if out else part
    return out


def parse_path(text: str) -> Path:
    """The inverse of :func:`render_path` for plain paths (``a.b[1].c``)."""
    out: list[str | int] = []
    for m in re.finditer(r"([^.\[\]]+)|\[(\d+)\]|\[([^\]]*)\]", text):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append(m.group(3))
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------------------
# apimachinery name rules (messages verbatim)

_LABEL_FMT, _LABEL_RE = DNS1123_LABEL_FMT, DNS1123_LABEL_RE
_SUBDOMAIN_FMT, _SUBDOMAIN_RE = DNS1123_SUBDOMAIN_FMT, DNS1123_SUBDOMAIN_RE
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_QNAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    msg += " (e.g. "
    for i, example in enumerate(examples):
        if i:
            msg += " or "
        msg += f"'{example}', "
    return msg + f"regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _LABEL_RE.match(value):
        if _SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                                     "or '-', and must start and end with an alphanumeric character",
                                     _LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not _SUBDOMAIN_RE.match(value):
        errs.append(_regex_error("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                                 "'-' or '.', and must start and end with an alphanumeric character",
                                 _SUBDOMAIN_FMT, "example.com"))
    return errs


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if len(port) > 15:
        errs.append(_max_len(15))
    if not re.fullmatch(r"[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens (-)")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen (-)")
    return errs


def is_env_var_name(value: str) -> list[str]:
    """``IsRelaxedEnvVarName`` (the default since Kubernetes 1.32): printable ASCII except '='."""
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in value):
        errs.append("a valid environment variable name must consist only of printable ASCII characters other "
                    "than '='")
    return errs


def is_qualified_name(value: str) -> list[str]:
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        errs = [f"prefix part {m}" for m in is_dns1123_subdomain(prefix)]
        if errs:
            return errs
    else:
        return ["a qualified name " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        return ["name part must be non-empty"]
    errs = []
    if len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QNAME_RE.match(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(_regex_error("a valid label must be an empty string or consist of alphanumeric characters, '-', "
                                 "'_' or '.', and must start and end with an alphanumeric character",
                                 _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


# ---------------------------------------------------------------------------------------------------------------------
# field.Error bodies

def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return render_field_value(value)


def required(detail: str = "") -> str:
    return f"Required value: {detail}" if detail else "Required value"


def invalid(value: Any, detail: str) -> str:
    return f"Invalid value: {_shown(value)}: {detail}"


def duplicate(value: Any) -> str:
    return f"Duplicate value: {_shown(value)}"


def unsupported(value: Any, choices: Sequence[str]) -> str:
    return f"Unsupported value: {_shown(value)}: supported values: " + ", ".join(f'"{c}"' for c in choices)


def forbidden(detail: str) -> str:
    return f"Forbidden: {detail}"


def int_fits(value: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= value < (1 << (bits - 1))


def out_of_range(value: int, bits: int) -> str:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return invalid(value, f"must be a {bits}-bit integer (between {lo} and {hi}, inclusive): the field is an "
                          f"int{bits} in the Pod API")


def api_reference(resource: str) -> str:
    """The kubelet's refusal of a static pod that needs the API server (``podutil.HasAPIObjectReference``)."""
    return forbidden(f"static pods may not reference {resource}")


def type_error(value: Any, expected: str) -> str:
    return invalid(value, f"must be {expected}")


def container_port_refs(ctr: Mapping[str, Any]) -> list[Any]:
    """The container's well-formed ports as ``probes.types.ContainerPortRef`` (to resolve named probe ports)."""
    from probes.types import ContainerPortRef

    refs = []
    ports = ctr.get("ports")
    for p in ports if isinstance(ports, list) else []:
        if isinstance(p, Mapping) and isinstance(p.get("containerPort"), int):
            name = p.get("name")
            refs.append(ContainerPortRef(name=name if isinstance(name, str) and name else None,
                                         container_port=p["containerPort"], protocol=str(p.get("protocol") or "TCP")))
    return refs
