"""OpenAPI v3 as kubectl 1.32 reads it (REF §9): `/openapi/v3` lists one document per group-version; each document
has the paths of the resources served there — the PATCH operations carry the `fieldValidation` parameter, so
`kubectl apply/create --validate=strict` sends `fieldValidation=Strict` and leaves validation to the server (which
validates strictly, as every manifest) — and the component schemas `kubectl explain` walks (package data generated
by :mod:`openapi_gen` from the kubernetes 1.32 Python client's models). `/openapi/v2` is not served (kubectl then
uses its compiled-in types for strategic merge patches)."""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
from typing import Any

from aiohttp import web

from kubelet.server.apiserver.discovery import KUBE_VERSION
from kubelet.server.apiserver.openapi_gen import ROOT_MODELS, SCHEMA_FILE, schema_name
from kubelet.server.apiserver.resources import RESOURCES, Resource, group_versions
from kubelet.server.apiserver.status import ApiError

__all__ = ["compute_gv_document", "compute_root", "handle"]

_NOT_FOUND = "the server could not find the requested resource"
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


@functools.lru_cache(maxsize=1)
def _schemas() -> dict[str, Any]:
    try:
        return dict(json.loads(gzip.decompress(SCHEMA_FILE.read_bytes())))
    except OSError:
        return {}


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _kind_ref(r: Resource, list_kind: bool = False) -> dict[str, Any]:
    kind = r.list_kind if list_kind else r.kind
    for model, (g, v, k) in ROOT_MODELS.items():
        if (g, v, k) == (r.group, r.version, kind):
            return {"$ref": f"#/components/schemas/{schema_name(model)}"}
    return {"type": "object"}


def _param(name: str, where: str = "query", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": {"type": "string", "uniqueItems": True}}


def _op(r: Resource, action: str, *, body: tuple[str, ...] = (), list_kind: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{action}{r.kind}", "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": _kind_ref(r, list_kind)}}}},
        "parameters": [],
    }
    if action in ("post", "put", "patch"):
        op["parameters"] = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]
        if action == "patch":
            op["parameters"].append(_param("force"))
        op["requestBody"] = {"content": {t: {"schema": {"type": "object"} if action == "patch" else _kind_ref(r)} for t in body}}
    return op


def compute_gv_document(group: str, version: str) -> dict[str, Any]:
    prefix = "/" + _gv_key(group, version)
    paths: dict[str, Any] = {}
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        writable = bool(r.writable_kind)
        ns_params = [_param("namespace", "path", True)] if r.namespaced else []
        base = f"{prefix}/namespaces/{{namespace}}/{r.name}" if r.namespaced else f"{prefix}/{r.name}"
        coll: dict[str, Any] = {"get": _op(r, "list", list_kind=True), "parameters": ns_params}
        if writable:
            coll["post"] = _op(r, "post", body=("application/json", "application/yaml"))
        paths[base] = coll
        item: dict[str, Any] = {"get": _op(r, "get"), "parameters": ns_params + [_param("name", "path", True)]}
        if writable:
            item["put"] = _op(r, "put", body=("application/json", "application/yaml"))
            item["patch"] = _op(r, "patch", body=_PATCH_TYPES)
            item["delete"] = _op(r, "delete")
        paths[f"{base}/{{name}}"] = item
        if r.namespaced:
            paths[f"{prefix}/{r.name}"] = {"get": _op(r, "list", list_kind=True)}
    major, minor, patch = KUBE_VERSION
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (nodelet)", "version": f"v{major}.{minor}.{patch}"},
            "paths": paths, "components": {"schemas": _schemas()}}


@functools.lru_cache(maxsize=16)
def _document_bytes(group: str, version: str) -> bytes:
    return json.dumps(compute_gv_document(group, version), separators=(",", ":")).encode()


def compute_root() -> dict[str, Any]:
    out = {}
    for g, v in group_versions():
        h = hashlib.sha512(_document_bytes(g, v)).hexdigest()[:64].upper()
        out[_gv_key(g, v)] = {"serverRelativeURL": f"/openapi/v3/{_gv_key(g, v)}?hash={h}"}
    return {"paths": out}


def handle(request: web.Request, segs: list[str]) -> web.Response:
    if segs[:2] != ["openapi", "v3"]:
        raise ApiError(404, _NOT_FOUND)
    if len(segs) == 2:
        return web.json_response(compute_root())
    rest = segs[2:]
    for g, v in group_versions():
        if rest == _gv_key(g, v).split("/"):
            resp = web.Response(body=_document_bytes(g, v), content_type="application/json")
            resp.headers["Cache-Control"] = "public, immutable" if request.query.get("hash") else "no-cache, private"
            resp.enable_compression()
            return resp
    raise ApiError(404, _NOT_FOUND)
