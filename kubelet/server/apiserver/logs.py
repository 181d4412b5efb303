"""`GET pods/{name}/log`: a container's CRI log files, as the kubelet's containerLogs serves them (container,
follow, previous, tailLines, sinceSeconds, sinceTime, timestamps, limitBytes). A follow reads the file in a thread
of its own (the event loop never blocks on the disk) and hands lines over through a small bounded queue, so a
client that reads slowly slows only its own reader; a client that goes away stops it."""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from typing import Any

from aiohttp import web

from kubelet.kuberuntime import crilogs
from kubelet.server.apiserver.handlers import find_pod
from kubelet.server.apiserver.resources import find_resource
from kubelet.server.apiserver.status import ApiError, bad_request

__all__ = ["compute_log_request", "handle_log"]

FOLLOW_QUEUE = 256
WRITE_TIMEOUT = 30.0


def _int(q: Any, name: str) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return None
    try:
        n = int(v)
    except ValueError:
        raise bad_request(f"{name}: invalid value {v!r}: must be an integer") from None
    if n < 0 or (name in ("sinceSeconds", "limitBytes") and n == 0):
        raise bad_request(f"{name}: Invalid value: {n}: must be greater than 0")
    return n


def compute_log_request(q: Any, *, now_ns: int) -> dict[str, Any]:
    """Query → the options (pure; raises 400 Status)."""
    since_ns = None
    secs = _int(q, "sinceSeconds")
    if secs is not None:
        since_ns = now_ns - secs * 1_000_000_000
    if q.get("sinceTime"):
        if since_ns is not None:
            raise bad_request("at most one of sinceTime or sinceSeconds may be specified")
        since_ns = crilogs.parse_rfc3339_ns(q["sinceTime"])
        if since_ns is None:
            raise bad_request(f"sinceTime: invalid value {q['sinceTime']!r}: not RFC 3339")
    follow = q.get("follow") in ("true", "1")
    previous = q.get("previous") in ("true", "1")
    if follow and previous:
        raise bad_request("only one of follow (-f) or previous (-p) is allowed")
    return {"container": q.get("container", ""), "follow": follow, "previous": previous,
            "tail": _int(q, "tailLines"), "since_ns": since_ns, "timestamps": q.get("timestamps") in ("true", "1"),
            "limit_bytes": _int(q, "limitBytes")}


def _container(pod: dict[str, Any], wanted: str) -> str:
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("initContainers") or []] + [c["name"] for c in spec.get("containers") or []]
    regular = [c["name"] for c in spec.get("containers") or []]
    pod_name = pod["metadata"]["name"]
    if not wanted:
        if len(regular) == 1:
            return regular[0]
        raise bad_request(f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(regular)}]"
                          + (f" or one of the init containers: [{' '.join(n for n in names if n not in regular)}]"
                             if len(names) > len(regular) else ""))
    if wanted not in names:
        raise bad_request(f"container {wanted} is not valid for pod {pod_name}")
    return wanted


def _status(pod: dict[str, Any], name: str) -> dict[str, Any]:
    st = pod.get("status") or {}
    for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
        if cs.get("name") == name:
            return cs
    return {}


def _running_id(pod: dict[str, Any] | None, name: str) -> str:
    if pod is None:
        return ""
    cs = _status(pod, name)
    return cs.get("containerID", "") if "running" in (cs.get("state") or {}) else ""


async def handle_log(request: web.Request, store: Any, namespace: str, name: str) -> web.StreamResponse:
    opts = compute_log_request(request.query, now_ns=time.time_ns())
    view = store.view
    pods_r = find_resource("", "v1", "pods")
    assert pods_r is not None
    _, pods = await store.snapshot(pods_r)
    pod = find_pod(pods, namespace, name, view.node_name)
    meta = pod["metadata"]
    cname = _container(pod, opts["container"])
    cs = _status(pod, cname)
    log_dir = os.path.join(view.pod_logs_dir, f"{meta.get('namespace') or 'default'}_{meta['name']}_{meta.get('uid', '')}", cname)
    files = crilogs.list_container_logs(log_dir)
    path = crilogs.compute_log_file(files, restart_count=int(cs.get("restartCount") or 0), previous=opts["previous"])
    if path is None:
        if opts["previous"]:
            raise bad_request(f'previous terminated container "{cname}" in pod "{meta["name"]}" not found')
        waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating"
        raise bad_request(f'container "{cname}" in pod "{meta["name"]}" is waiting to start: {waiting}')
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    lines = await asyncio.to_thread(crilogs.read_log, path, tail=opts["tail"], since_ns=opts["since_ns"],
                                    limit=size if opts["follow"] else None)
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    budget = opts["limit_bytes"]

    async def send(data: bytes) -> bool:
        nonlocal budget
        if budget is not None:
            data = data[:budget]
            budget -= len(data)
        if data:
            await asyncio.wait_for(resp.write(data), WRITE_TIMEOUT)
        return budget is None or budget > 0

    chunk = b"".join(crilogs.render_line(ln, timestamps=opts["timestamps"]) for ln in lines)
    if not await send(chunk) or not opts["follow"]:
        await resp.write_eof()
        return resp
    await _follow(resp, send, store, pods_r, namespace, meta["name"], cname, path, size, opts["timestamps"],
                  _running_id(pod, cname), view.node_name)
    return resp


async def _follow(resp: web.StreamResponse, send: Any, store: Any, pods_r: Any, namespace: str, pod_name: str,
                  cname: str, path: str, offset: int, timestamps: bool, cid: str, node_name: str) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(FOLLOW_QUEUE)
    stop = threading.Event()
    running = {"value": bool(cid)}

    def still_running() -> bool:
        return running["value"] and not stop.is_set()

    def reader() -> None:
        try:
            for ln in crilogs.follow_log(path, start_offset=offset, still_running=still_running,
                                         sleep=lambda s: stop.wait(s)):
                if stop.is_set():
                    return
                fut = asyncio.run_coroutine_threadsafe(queue.put(crilogs.render_line(ln, timestamps=timestamps)), loop)
                while not stop.is_set():
                    try:
                        fut.result(timeout=1.0)
                        break
                    except concurrent.futures.TimeoutError:
                        continue
                    except Exception:
                        return
        finally:
            if not stop.is_set():
                with _suppress():
                    asyncio.run_coroutine_threadsafe(queue.put(None), loop)

    async def watch_container() -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                _, pods = await store.snapshot(pods_r)
                pod = next((p for p in pods if p["metadata"].get("name") == pod_name
                            and (p["metadata"].get("namespace") or "default") == namespace), None)
                running["value"] = bool(cid) and _running_id(pod, cname) == cid
            except ApiError:
                running["value"] = False

    thread = threading.Thread(target=reader, name=f"logs-{pod_name}-{cname}", daemon=True)
    thread.start()
    checker = asyncio.ensure_future(watch_container())
    try:
        while True:
            data = await queue.get()
            if data is None:
                break
            if not await send(data):
                break
        await resp.write_eof()
    except (ConnectionResetError, asyncio.TimeoutError):
        pass
    finally:
        stop.set()
        checker.cancel()
        while not queue.empty():
            queue.get_nowait()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return True
