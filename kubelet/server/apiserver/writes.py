"""Writes land in the manifest directory, the node's source of truth: create / replace / patch / delete of a Pod,
Service, ConfigMap or Secret writes or removes `<staticPodPath>/nodelet-api-<namespace>-<kind>-<name>.yaml`
atomically (a dotfile then rename, so the manifest source never reads half a file), after the same validation as
any manifest (errors are 422 Status objects with the field paths). Files of any other name were written by someone
else: the API answers 403 naming the file and never touches it. `dryRun=All` validates and answers without writing.

Patches: application/strategic-merge-patch+json (the subset kubectl's client-side apply sends: maps merge, `null`
deletes, lists of containers/env/ports/volumes/volumeMounts/… merge by their patchMergeKey, `$patch: delete|replace`,
`$setElementOrder`, `$deleteFromPrimitiveList`, `$retainKeys`), application/merge-patch+json (RFC 7386) and
application/apply-patch+yaml (server-side apply, as a single field manager: the applied intent becomes the file).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.server.apiserver.certs import write_private_file
from kubelet.server.apiserver.handlers import find_pod
from kubelet.server.apiserver.resources import Resource
from kubelet.server.apiserver.status import (ApiError, already_exists, bad_request, forbidden, invalid, json_response,
                                             not_found, unsupported_media_type)

__all__ = ["FILE_PREFIX", "apply_json_merge_patch", "apply_strategic_merge_patch", "check_name", "compute_file_name",
           "handle_create", "handle_write", "is_api_file"]

log = logging.getLogger(__name__)

FILE_PREFIX = "nodelet-api-"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_STRIP_META = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink",
               "deletionTimestamp", "deletionGracePeriodSeconds")
#: patchMergeKey of the list fields kubectl's apply patches (k8s.io/api struct tags)
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name", "volumes": "name",
    "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name", "hostAliases": "ip",
    "conditions": "type", "resourceClaims": "name", "topologySpreadConstraints": "topologyKey", "ports": "",
}


def check_name(name: str, *, what: str = "name") -> None:
    """Names travel into file names and paths: only DNS-1123 subdomains (no `/`, no `..`, at most 253 bytes)."""
    if not name or len(name) > 253 or not _NAME_RE.match(name) or ".." in name:
        raise bad_request(f'invalid {what} "{name[:300]}": a lowercase RFC 1123 subdomain must consist of lower case '
                          "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")


def compute_file_name(kind: str, namespace: str, name: str) -> str:
    return f"{FILE_PREFIX}{namespace}-{kind.lower()}-{name}.yaml"


def is_api_file(path: str) -> bool:
    return os.path.basename(path).startswith(FILE_PREFIX)


# ---- patches (pure) -----------------------------------------------------------------------------------------------

def apply_json_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = apply_json_merge_patch(out.get(k), v)
    return out


def _merge_key(field: str, items: list[Any]) -> str:
    key = MERGE_KEYS.get(field)
    if key is None:
        return ""
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return key


def _merge_list(field: str, target: list[Any], patch: list[Any], order: list[Any] | None) -> list[Any]:
    key = _merge_key(field, target + patch)
    if not key or not all(isinstance(i, dict) for i in target + patch):
        return [i for i in patch if not (isinstance(i, dict) and i.get("$patch"))]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [i for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    out = [dict(i) for i in target]
    for item in patch:
        k = item.get(key)
        idx = next((n for n, t in enumerate(out) if t.get(key) == k), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(apply_strategic_merge_patch({}, item))
        else:
            out[idx] = apply_strategic_merge_patch(out[idx], item)
    if order:
        rank = {(o.get(key) if isinstance(o, dict) else o): n for n, o in enumerate(order)}
        out.sort(key=lambda i: rank.get(i.get(key), len(rank)))
    return out


def apply_strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch of `patch` onto `target` (the subset of apimachinery's strategicpatch kubectl sends)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if k.startswith("$setElementOrder/") or k.startswith("$deleteFromPrimitiveList/"):
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = _merge_list(k, out[k], v, patch.get(f"$setElementOrder/{k}"))
        elif isinstance(v, list):
            out[k] = _merge_list(k, [], v, None)
        elif isinstance(v, dict):
            merged = apply_strategic_merge_patch(out.get(k), v)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        else:
            out[k] = v
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in v]
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain or k not in patch}
    return out


# ---- the handlers ----------------------------------------------------------------------------------------------------

async def _body(request: web.Request) -> Any:
    raw = await request.read()  # bounded by the application's client_max_size (413)
    ctype = request.content_type
    try:
        if ctype in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(raw.decode())
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise bad_request(f"the body of the request could not be decoded: {e}".splitlines()[0]) from e


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "status"}
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in _STRIP_META}
    out["metadata"] = meta
    return out


def _check_object(doc: Any, r: Resource, namespace: str, name: str | None) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise bad_request("the body must be a JSON or YAML object")
    if doc.get("kind") != r.writable_kind or doc.get("apiVersion") != r.group_version:
        raise bad_request(f"the API version in the data ({doc.get('apiVersion')}) does not match the expected API "
                          f"version ({r.group_version}), or the kind ({doc.get('kind')}) is not {r.writable_kind}")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise invalid(r.kind, "", [{"field": "metadata.name", "reason": "FieldValueRequired",
                                    "message": "Required value: name or generateName is required"}])
    check_name(str(meta["name"]))
    if name is not None and meta["name"] != name:
        raise bad_request(f'the name of the object ({meta["name"]}) does not match the name on the URL ({name})')
    ns = meta.get("namespace") or namespace
    if ns != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    doc = dict(doc)
    doc["metadata"] = dict(meta) | {"namespace": namespace}
    return doc


def _validate(doc: dict[str, Any], r: Resource, path: str, node_name: str) -> bytes:
    text = ("# Written by nodelet's Kubernetes API (kubectl apply/create/replace). Change it through the API,\n"
            "# or edit it by hand; `kubectl delete` removes it.\n" + yaml.safe_dump(doc, sort_keys=False))
    data = text.encode()
    _, _, errors = parse_manifest_bytes(data, file=path, node_name=node_name)
    if errors:
        causes = [{"field": e.field, "reason": "FieldValueInvalid", "message": e.reason} for e in errors]
        raise invalid(r.kind, doc["metadata"]["name"], causes, group=r.group)
    return data


def _live(items: list[dict[str, Any]], r: Resource, namespace: str, name: str, node_name: str) -> dict[str, Any] | None:
    try:
        if r.name == "pods":
            return find_pod(items, namespace, name, node_name)
    except ApiError:
        return None
    for o in items:
        meta = o.get("metadata") or {}
        if meta.get("name") == name and (meta.get("namespace") or "default") == namespace:
            return o
    return None


def _owned_path(view: Any, r: Resource, namespace: str, name: str, live: dict[str, Any] | None) -> Path:
    """The API's file for the object; 403 when it is defined by a file nodelet did not write."""
    if live is not None:
        source = view.object_source(r.writable_kind, namespace, live["metadata"]["name"])
        if source and not is_api_file(source):
            raise forbidden(f'{r.name} "{name}" is defined by {source}, a manifest nodelet did not write: change or '
                            f"remove that file instead", resource=r.name, name=name, group=r.group)
        if source:
            return Path(source)
    return Path(view.static_pod_path) / compute_file_name(r.writable_kind, namespace, name)


def _read_file(path: Path) -> dict[str, Any] | None:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError) as e:
        raise ApiError(500, f"cannot read {path}: {e}") from e
    return doc if isinstance(doc, dict) else None


def _answer(doc: dict[str, Any], live: dict[str, Any] | None, code: int) -> web.Response:
    out = dict(doc)
    meta = dict(out.get("metadata") or {})
    meta.setdefault("creationTimestamp", ((live or {}).get("metadata") or {}).get("creationTimestamp")
                    or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if live is not None:
        meta["uid"] = live["metadata"].get("uid", "")
        meta["resourceVersion"] = live["metadata"].get("resourceVersion", "")
    out["metadata"] = meta
    return json_response(out, status=code)


async def _write(path: Path, data: bytes, kind: str) -> None:
    await asyncio.to_thread(write_private_file, path, data, 0o600 if kind == "Secret" else 0o644)
    log.info("API wrote manifest path=%s", path)


async def handle_create(request: web.Request, store: Any, r: Resource, namespace: str) -> web.Response:
    dry = _dry_run(request)
    doc = _check_object(await _body(request), r, namespace, None)
    doc = _clean(doc)
    name = doc["metadata"]["name"]
    view = store.view
    _, items = await store.snapshot(r)
    live = _live(items, r, namespace, name, view.node_name)
    path = Path(view.static_pod_path) / compute_file_name(r.writable_kind, namespace, name)
    if live is not None or path.exists():
        raise already_exists(r.name, name, r.group)
    data = _validate(doc, r, str(path), view.node_name)
    if not dry:
        await _write(path, data, r.writable_kind)
    return _answer(doc, None, 201)


async def handle_write(request: web.Request, store: Any, r: Resource, namespace: str, name: str) -> web.Response:
    view = store.view
    dry = _dry_run(request)
    _, items = await store.snapshot(r)
    live = _live(items, r, namespace, name, view.node_name)
    path = _owned_path(view, r, namespace, name, live)
    current = _read_file(path)
    if request.method == "DELETE":
        if current is None and live is None:
            raise not_found(r.name, name, r.group)
        if not dry and current is not None:
            await asyncio.to_thread(_unlink, path)
            log.info("API removed manifest path=%s", path)
        return _answer(live or current or {}, live, 200)
    if request.method == "PUT":
        if current is None:
            raise not_found(r.name, name, r.group)
        doc = _check_object(await _body(request), r, namespace, (current.get("metadata") or {}).get("name", name))
    else:  # PATCH
        ctype = request.content_type
        patch = await _body(request)
        if ctype == "application/apply-patch+yaml":
            doc = _check_object(patch, r, namespace, None)
        elif current is None:
            raise not_found(r.name, name, r.group)
        elif ctype == "application/strategic-merge-patch+json":
            doc = apply_strategic_merge_patch(current, patch)
        elif ctype == "application/merge-patch+json":
            doc = apply_json_merge_patch(current, patch)
        else:
            raise unsupported_media_type(ctype)
        doc = _check_object(doc, r, namespace, None)
    doc = _clean(doc)
    data = _validate(doc, r, str(path), view.node_name)
    created = current is None
    if not dry:
        await _write(path, data, r.writable_kind)
    return _answer(doc, live, 201 if created else 200)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
