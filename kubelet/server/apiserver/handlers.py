"""Reads: get, list (label/field selectors, limit/continue, Tables) and watch (chunked NDJSON) of every resource."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from kubelet.server.api import SelectorError, compute_selector_match, parse_label_selector
from kubelet.server.apiserver.resources import Resource
from kubelet.server.apiserver.status import ApiError, bad_request, json_response, not_found
from kubelet.server.apiserver.store import ObjectStore
from kubelet.server.apiserver.tables import render_table_object

__all__ = ["compute_field_match", "compute_matcher", "find_pod", "handle_get", "handle_list", "handle_watch",
           "parse_field_selector", "wants_table"]

log = logging.getLogger(__name__)

WATCH_BUFFER_EVENTS = 1000  # a client this far behind is dropped (it re-lists)
WATCH_WRITE_TIMEOUT = 30.0  # a client that reads nothing for this long is dropped
WATCH_CHECK_EVERY = 15.0
BOOKMARK_EVERY = 60.0


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """`a=b,c!=d,e==f` → [(path, op, value)]; set-based field selectors do not exist (as upstream)."""
    out = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        for op in ("!=", "==", "="):
            if op in term:
                path, _, value = term.partition(op)
                out.append((path.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{term}\'')
    return out


def _field(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return "default" if path == "metadata.namespace" else ""
    return str(cur).lower() if isinstance(cur, bool) else str(cur)


def compute_field_match(terms: list[tuple[str, str, str]], obj: Mapping[str, Any], *, name_suffix: str = "") -> bool:
    """`name_suffix` ("-<node>" for pods): metadata.name=web also matches the static pod web-<node>, as the pod
    routes resolve it (kubectl delete/wait watch by the name they were given)."""
    for path, op, value in terms:
        got = _field(obj, path)
        hit = got == value or (bool(name_suffix) and path == "metadata.name" and got == value + name_suffix)
        if hit != (op == "="):
            return False
    return True


def compute_matcher(query: Mapping[str, str], namespace: str | None, *, name_suffix: str = "") -> Callable[[dict[str, Any]], bool]:
    try:
        labels = parse_label_selector(query.get("labelSelector", ""))
    except SelectorError as e:
        raise bad_request(f"unable to parse requirement: {e}") from e
    fields = parse_field_selector(query.get("fieldSelector", ""))

    def match(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if namespace and (meta.get("namespace") or "default") != namespace:
            return False
        if labels and not compute_selector_match(labels, meta.get("labels")):
            return False
        return compute_field_match(fields, obj, name_suffix=name_suffix)

    return match


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(key)}).encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        ns, name = data["start"]
        return str(ns), str(name)
    except (ValueError, KeyError, TypeError) as e:
        raise bad_request("invalid continue token") from e


def find_pod(pods: list[dict[str, Any]], namespace: str, name: str, node_name: str) -> dict[str, Any]:
    """The pod `name` (exact), else `<name>-<nodeName>` (a static pod's name): what the API's pod routes resolve."""
    for candidate in (name, f"{name}-{node_name}"):
        found = [p for p in pods if (p.get("metadata") or {}).get("name") == candidate
                 and ((p.get("metadata") or {}).get("namespace") or "default") == namespace]
        if found:  # a replaced pod still terminating and its successor share the name: the successor wins
            return next((p for p in found if not p["metadata"].get("deletionTimestamp")), found[0])
    raise not_found("pods", name)


def _object_response(request: web.Request, r: Resource, obj: dict[str, Any]) -> web.Response:
    if wants_table(request.headers.get("Accept", "")):
        return json_response(render_table_object(r.name, [obj], include_object=request.query.get("includeObject", "Metadata"),
                                                 list_meta={"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")}))
    return json_response(obj)


async def handle_get(request: web.Request, store: ObjectStore, r: Resource, namespace: str | None, name: str,
                     node_name: str) -> web.Response:
    _, items = await store.snapshot(r)
    if r.name == "pods" and r.group == "":
        pod = find_pod(items, namespace or "default", name, node_name)
        if pod["metadata"].get("name") != name:
            # asked by the name in its manifest (`web` for the static pod `web-<node>`): answer under that name, so
            # `kubectl apply` of the same file finds it and computes an empty patch ("unchanged")
            pod = dict(pod) | {"metadata": dict(pod["metadata"]) | {"name": name}}
        return _object_response(request, r, pod)
    for obj in items:
        meta = obj.get("metadata") or {}
        if meta.get("name") == name and (not r.namespaced or (meta.get("namespace") or "default") == namespace):
            return _object_response(request, r, obj)
    raise not_found(r.name, name, r.group)


def _suffix(store: ObjectStore, r: Resource) -> str:
    return f"-{store.view.node_name}" if (r.group, r.name) == ("", "pods") else ""


async def handle_list(request: web.Request, store: ObjectStore, r: Resource, namespace: str | None) -> web.StreamResponse:
    q = request.query
    if q.get("watch") in ("true", "1"):
        return await handle_watch(request, store, r, namespace)
    match = compute_matcher(q, namespace, name_suffix=_suffix(store, r))
    rv, items = await store.snapshot(r)
    items = [o for o in items if match(o)]
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if q.get("continue"):
        start = _decode_continue(q["continue"])
        items = [o for o in items if ((o.get("metadata") or {}).get("namespace") or "", o["metadata"].get("name", "")) > start]
    limit = q.get("limit", "")
    if limit:
        try:
            n = int(limit)
        except ValueError:
            raise bad_request(f"invalid limit {limit!r}") from None
        if 0 < n < len(items):
            last = items[n - 1]["metadata"]
            meta["continue"] = _encode_continue(rv, (last.get("namespace") or "", last.get("name", "")))
            meta["remainingItemCount"] = len(items) - n
            items = items[:n]
    if wants_table(request.headers.get("Accept", "")):
        return json_response(render_table_object(r.name, items, include_object=q.get("includeObject", "Metadata"), list_meta=meta))
    return json_response({"kind": r.list_kind, "apiVersion": r.group_version, "metadata": meta, "items": items})


async def handle_watch(request: web.Request, store: ObjectStore, r: Resource, namespace: str | None) -> web.StreamResponse:
    q = request.query
    match = compute_matcher(q, namespace, name_suffix=_suffix(store, r))
    table = wants_table(request.headers.get("Accept", ""))
    include = q.get("includeObject", "Metadata")
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    try:
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
    except ValueError:
        raise bad_request("invalid timeoutSeconds") from None
    await store.check_watch(r, q.get("resourceVersion", ""))
    resp: web.StreamResponse | None = await _start_stream(request)  # headers at once, as the API server
    # a BOOKMARK tick every WATCH_CHECK_EVERY s: sent only when asked; otherwise a moment to notice a vanished client
    events = store.watch(r, since=q.get("resourceVersion", ""), match=match, bookmark_every=WATCH_CHECK_EVERY)
    since_bookmark = 0.0
    first = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout else None

    async def next_event() -> Any:
        if deadline is None:
            return await events.__anext__()
        return await asyncio.wait_for(events.__anext__(), max(0.0, deadline - loop.time()))

    try:
        while True:
            try:
                ev = await next_event()
            except (StopAsyncIteration, asyncio.TimeoutError):
                break
            except ApiError as e:
                if resp is None:
                    raise
                await _write(resp, _encode({"type": "ERROR", "object": e.status()}))
                break
            assert resp is not None
            obj: Any = ev.object
            if ev.type == "BOOKMARK":
                if request.transport is None or request.transport.is_closing():
                    break
                since_bookmark += WATCH_CHECK_EVERY
                if not bookmarks or since_bookmark < BOOKMARK_EVERY:
                    continue
                since_bookmark = 0.0
                obj = {"kind": r.kind, "apiVersion": r.group_version, "metadata": obj["metadata"]}
                await _write(resp, _encode({"type": ev.type, "object": obj}))
                continue
            key = (table, include, first)
            data = ev.encoded.get(key)
            if data is None:
                if table:
                    obj = render_table_object(r.name, [ev.object], include_object=include, with_columns=first,
                                              list_meta={"resourceVersion": str(ev.rv)})
                data = ev.encoded[key] = _encode({"type": ev.type, "object": obj})
            first = False
            await _write(resp, data)
        if resp is None:
            resp = await _start_stream(request)
    except (ConnectionResetError, asyncio.TimeoutError):
        log.debug("watch client went away resource=%s", r.name)
    finally:
        await events.aclose()
    return resp if resp is not None else web.Response()


async def _start_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


async def _write(resp: web.StreamResponse, data: bytes) -> None:
    await asyncio.wait_for(resp.write(data), WATCH_WRITE_TIMEOUT)
