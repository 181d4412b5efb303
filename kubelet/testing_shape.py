"""Checks that an object is a Kubernetes v1 object as the official ``kubernetes`` Python client models it: every key a
field of the model (unknown fields rejected, at any depth), every value of the field's type, required fields present.

``assert_v1_shape("Pod", obj)`` — for tests of anything that emits Kubernetes objects (the local API, the aiohttp
Kubernetes API, the CLI's runtime fallback). Test-only: the ``kubernetes`` package is in the ``test`` extra.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ShapeError", "assert_v1_shape", "compute_shape_problems"]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
# the client's type strings: "list[V1Container]" / "dict(str, str)" (up to v35), "List[V1Container]" /
# "Dict[str, str]" (the pydantic-based models of later releases)
_LIST = re.compile(r"^[Ll]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")


class ShapeError(AssertionError):
    pass


def _model(name: str) -> Any:
    import kubernetes.client as k8s

    return getattr(k8s, name, None)


def compute_shape_problems(type_name: str, value: Any, path: str = "") -> list[str]:
    """Every way ``value`` differs from the client's ``type_name`` ('V1Pod', 'list[V1Container]', 'str', ...)."""
    where = path or "."
    if value is None:
        return []  # null is how every optional field may be written
    if m := _LIST.match(type_name):
        if not isinstance(value, list):
            return [f"{where}: must be a list, not {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in compute_shape_problems(m.group(1), item, f"{path}[{i}]")]
    if m := _DICT.match(type_name):
        if not isinstance(value, Mapping):
            return [f"{where}: must be a mapping, not {type(value).__name__}"]
        inner = m.group(1) or m.group(2)
        return [p for k, v in value.items() for p in compute_shape_problems(inner, v, f"{path}.{k}")]
    if type_name in ("object", "Any", "IntOrString"):
        return []  # IntOrString, Quantity, RawExtension
    if type_name == "str":
        return [] if isinstance(value, str) else [f"{where}: must be a string, not {type(value).__name__}"]
    if type_name == "int":
        return [] if isinstance(value, int) and not isinstance(value, bool) else [
            f"{where}: must be an integer, not {type(value).__name__}"]
    if type_name == "float":
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [
            f"{where}: must be a number, not {type(value).__name__}"]
    if type_name == "bool":
        return [] if isinstance(value, bool) else [f"{where}: must be a boolean, not {type(value).__name__}"]
    if type_name == "datetime":
        return [] if isinstance(value, str) and _RFC3339.match(value) else [f"{where}: must be an RFC 3339 time"]
    model = _model(type_name)
    if model is None:
        return [f"{where}: unknown model {type_name}"]
    if not isinstance(value, Mapping):
        return [f"{where}: must be an object ({type_name}), not {type(value).__name__}"]
    by_json = {j: attr for attr, j in model.attribute_map.items()}
    problems = []
    for key, v in value.items():
        attr = by_json.get(key)
        if attr is None:
            problems.append(f"{path}.{key}: not a field of {type_name}")
            continue
        problems += compute_shape_problems(model.openapi_types[attr], v, f"{path}.{key}")
    if not problems:
        problems += _required_problems(model, type_name, value, where)
    return problems


def _required_problems(model: Any, type_name: str, value: Mapping[str, Any], where: str) -> list[str]:
    """Missing required fields: from the pydantic field table of newer clients, else by constructing the model
    (older clients raise for a missing required one)."""
    fields = getattr(model, "model_fields", None)
    if fields is not None:
        missing = [model.attribute_map[attr] for attr, f in fields.items()
                   if f.is_required() and value.get(model.attribute_map[attr]) is None]
        return [f"{where}: {type_name}: missing required field {', '.join(missing)}"] if missing else []
    from kubernetes.client import Configuration

    conf = Configuration()
    conf.client_side_validation = True
    kwargs = {attr: value.get(j) for attr, j in model.attribute_map.items()}
    try:
        model(local_vars_configuration=conf, **kwargs)
    except ValueError as e:
        return [f"{where}: {type_name}: {e}"]
    return []


def assert_v1_shape(kind: str, obj: Any) -> None:
    """Raise ShapeError listing every field of ``obj`` that the official client's ``V1<kind>`` model does not have,
    every value of the wrong type and missing required fields. ``kind``: "Pod", "Event", "Node", "PodList", ..."""
    problems = compute_shape_problems(f"V1{kind}" if kind != "Event" else "CoreV1Event", obj)
    if problems:
        raise ShapeError(f"not a v1 {kind}:\n  " + "\n  ".join(problems))
