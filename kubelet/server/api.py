"""The agent's local API: JSON over HTTP/1.1 on a root-only unix socket, and the kubelet-style `/healthz` on TCP.

Routes on the unix socket (GET and HEAD; every error is a v1 Status object like the API server's):

    /api/v1/pods                              PodList   ?namespace= ?labelSelector=
    /api/v1/namespaces/{ns}/pods              PodList   ?labelSelector=
    /api/v1/namespaces/{ns}/pods/{name}       Pod, or 404 Status
    /api/v1/events                            EventList ?namespace= ?labelSelector=
    /api/v1/namespaces/{ns}/events            EventList ?labelSelector=
    /api/v1/node                              node info (name, versions, runtime endpoint, config)
    /api/v1/extra/{name}                      whatever the daemon exposes under that name (probes, services…)
    /healthz                                  200 "ok" | 500 reason
    /metrics                                  Prometheus text format 0.0.4

The TCP listener (127.0.0.1:10248 by default, as the kubelet's healthzBindAddress/healthzPort) serves `/healthz` only.
Each connection carries one request (`Connection: close`); requests are parsed with strict limits.
"""
from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import inspect
import json
import logging
import os
import re
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from kubelet.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from proxy.labels import Requirement, SelectorError, compute_selector_match, parse_label_selector

__all__ = [
    "AgentView", "AnotherAgentRunning", "LocalAPI", "LocalAPIError", "Requirement", "SelectorError", "StaticView",
    "DEFAULT_SOCKET_PATH", "compute_selector_match", "parse_label_selector", "render_status",
]

log = logging.getLogger(__name__)

DEFAULT_SOCKET_PATH = "/run/nodelet/nodelet.sock"
MAX_LINE = 8 * 1024  # request line and each header line
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
MAX_BODY = 1024 * 1024
READ_TIMEOUT = 10.0
WRITE_TIMEOUT = 30.0
MAX_CONNECTIONS = 128  # open connections per agent; more get a 503 at once (each may hold READ_TIMEOUT)
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


class AgentView(Protocol):
    """What the daemon shows through the API. Methods may also be coroutines; they should be cheap snapshots."""

    def pods(self) -> list[dict[str, Any]]: ...  # v1 Pod objects with status
    def events(self) -> list[dict[str, Any]]: ...  # v1 Event objects, oldest first
    def health(self) -> tuple[bool, str]: ...  # (healthy, reason when not)
    def metrics_text(self) -> str: ...  # Prometheus text format
    def node(self) -> dict[str, Any]: ...  # name, versions, runtime endpoint, config
    def extra(self, name: str) -> Any | None: ...  # None: no such thing (404)


@dataclass(kw_only=True)
class StaticView:
    """An AgentView over fixed data (unit tests, tools serving a snapshot). Mutate the fields to change answers."""

    pod_list: list[dict[str, Any]] = field(default_factory=list)
    event_list: list[dict[str, Any]] = field(default_factory=list)
    healthy: tuple[bool, str] = (True, "")
    metrics: str = ""
    node_info: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def pods(self) -> list[dict[str, Any]]:
        return self.pod_list

    def events(self) -> list[dict[str, Any]]:
        return self.event_list

    def health(self) -> tuple[bool, str]:
        return self.healthy

    def metrics_text(self) -> str:
        return self.metrics

    def node(self) -> dict[str, Any]:
        return self.node_info

    def extra(self, name: str) -> Any | None:
        return self.extras.get(name)


class LocalAPIError(Exception):
    """The API could not start (socket path unusable, port taken…)."""


class AnotherAgentRunning(LocalAPIError):
    """The socket is held by a live process: another nodelet is running."""


# --- label selectors: proxy/labels.py (the one copy; re-exported here for the API and CLI) ---------------------


# --- HTTP ----------------------------------------------------------------------------------------------------------

_STATUS_REASONS = {
    400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 408: "Timeout", 413: "RequestEntityTooLarge",
    414: "RequestURITooLong", 431: "RequestHeaderFieldsTooLarge", 500: "InternalError", 501: "NotImplemented",
    503: "ServiceUnavailable", 505: "HTTPVersionNotSupported",
}
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION_RE = re.compile(r"^HTTP/(\d)\.(\d)$")


class HTTPError(Exception):
    def __init__(self, code: int, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})


@dataclass(frozen=True, kw_only=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    version: str
    headers: Mapping[str, str]  # lower-case names

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True, kw_only=True)
class Response:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def render_status(code: int, message: str, *, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A v1 Status (failure) object as the API server sends it."""
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
        "reason": _STATUS_REASONS.get(code, "Unknown"), "details": dict(details or {}), "code": code,
    }


def _json(code: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    return Response(status=code, body=body, content_type=JSON_TYPE, headers=headers)


def _status_response(e: HTTPError) -> Response:
    headers = (("Allow", "GET, HEAD"),) if e.code == 405 else ()
    return _json(e.code, render_status(e.code, e.message, details=e.details), headers)


def render_response(resp: Response, *, head: bool = False) -> bytes:
    lines = [
        f"HTTP/1.1 {resp.status} {http.HTTPStatus(resp.status).phrase}",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(resp.body)}",
        "Connection: close",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        "X-Content-Type-Options: nosniff",
        *(f"{k}: {v}" for k, v in resp.headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else resp.body)


async def _read_line(reader: asyncio.StreamReader, too_long: int) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as e:
        raise HTTPError(too_long, "request line too long" if too_long == 414 else "header line too long") from e
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            raise
        raise HTTPError(400, "connection closed in the middle of the request") from e


def parse_request_head(request_line: str, header_lines: list[str]) -> Request:
    """Request line + header lines (without CRLF) → Request. Raises HTTPError with the precise reason."""
    parts = request_line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise HTTPError(400, f"malformed request line {request_line[:100]!r}")
    method, target, version = parts
    if not _TOKEN_RE.match(method):
        raise HTTPError(400, f"malformed method {method[:40]!r}")
    m = _VERSION_RE.match(version)
    if not m:
        raise HTTPError(400, f"malformed HTTP version {version[:20]!r}")
    if m[1] != "1":
        raise HTTPError(505, f"HTTP version {version} is not supported")
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in target):
        raise HTTPError(400, "request target contains control or non-ASCII characters")
    if target.startswith("/"):
        split = urlsplit(target)
    elif target.lower().startswith(("http://", "https://")):
        split = urlsplit(target)
    else:
        raise HTTPError(400, f"unsupported request target {target[:100]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        if line[:1] in (" ", "\t"):
            raise HTTPError(400, "obsolete header line folding is not allowed")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN_RE.match(name):
            raise HTTPError(400, f"malformed header line {line[:100]!r}")
        name, value = name.lower(), value.strip(" \t")
        if name in headers:
            if name in ("host", "content-length") and headers[name] != value:
                raise HTTPError(400, f"conflicting {name} headers")
            if name not in ("host", "content-length"):
                value = headers[name] + ", " + value
        headers[name] = value
    if version == "HTTP/1.1" and "host" not in headers:
        raise HTTPError(400, "missing required Host header")
    try:
        query = parse_qs(split.query, keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except ValueError as e:
        raise HTTPError(400, f"bad query string: {e}") from e
    return Request(method=method, path=split.path or "/", query=query, version=version, headers=headers)


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request from the stream (its body read and discarded). None: the client closed without sending one."""
    try:
        line = await _read_line(reader, 414)
        for _ in range(3):  # RFC 9112 §2.2: ignore empty lines before the request line
            if line.strip(b"\r\n"):
                break
            line = await _read_line(reader, 414)
    except asyncio.IncompleteReadError:
        return None
    header_lines: list[str] = []
    total = 0
    while True:
        try:
            raw = await _read_line(reader, 431)
        except asyncio.IncompleteReadError as e:
            raise HTTPError(400, "connection closed in the middle of the request headers") from e
        total += len(raw)
        if total > MAX_HEADER_BYTES or len(header_lines) > MAX_HEADERS:
            raise HTTPError(431, "request headers too large")
        text = raw.rstrip(b"\n").rstrip(b"\r")
        if not text:
            break
        try:
            header_lines.append(text.decode("ascii"))
        except UnicodeDecodeError as e:
            raise HTTPError(400, "non-ASCII bytes in a header") from e
    try:
        request_line = line.rstrip(b"\n").rstrip(b"\r").decode("ascii")
    except UnicodeDecodeError as e:
        raise HTTPError(400, "non-ASCII bytes in the request line") from e
    req = parse_request_head(request_line, header_lines)
    if "transfer-encoding" in req.headers:
        raise HTTPError(501, "Transfer-Encoding is not supported: send Content-Length")
    cl = req.headers.get("content-length")
    if cl is not None:
        if not cl.isdigit():
            raise HTTPError(400, f"malformed Content-Length {cl[:20]!r}")
        if int(cl) > MAX_BODY:
            raise HTTPError(413, f"request body of {cl} bytes is over the limit of {MAX_BODY}")
        try:
            await reader.readexactly(int(cl))
        except asyncio.IncompleteReadError as e:
            raise HTTPError(400, "connection closed in the middle of the request body") from e
    return req


# --- routes --------------------------------------------------------------------------------------------------------

async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _selector(req: Request) -> tuple[Requirement, ...]:
    try:
        return parse_label_selector(req.param("labelSelector") or "")
    except SelectorError as e:
        raise HTTPError(400, str(e)) from e


def _filter(items: list[dict[str, Any]], *, namespace: str | None, reqs: tuple[Requirement, ...]) -> list[dict[str, Any]]:
    out = []
    for obj in items:
        meta = obj.get("metadata") or {}
        if namespace and meta.get("namespace", "default") != namespace:
            continue
        if reqs and not compute_selector_match(reqs, meta.get("labels")):
            continue
        out.append(obj)
    return out


def _list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": ""}, "items": items}


async def _healthz(view: AgentView) -> Response:
    ok, reason = await _call(view.health)
    if ok:  # a detail besides "ok" (cluster mode: etcd's state) goes on the next line; the status says healthy
        return Response(status=200, body=b"ok" if reason in ("", "ok") else f"ok\n{reason}".encode(), content_type=TEXT_TYPE)
    return Response(status=500, body=(reason or "unhealthy").encode(), content_type=TEXT_TYPE)


_NOT_FOUND = "the server could not find the requested resource"


async def compute_response(view: AgentView, req: Request, *, healthz_only: bool = False) -> Response:
    """Route one request to the view. Raises HTTPError for 4xx; lets the view's own exceptions through."""
    segs = [unquote(s) for s in req.path.split("/")[1:]]
    if healthz_only and segs != ["healthz"]:
        raise HTTPError(404, _NOT_FOUND)
    if req.method not in ("GET", "HEAD"):
        raise HTTPError(405, "the server does not allow this method on the requested resource")
    match segs:
        case ["healthz"]:
            return await _healthz(view)
        case ["metrics"]:
            text = await _call(view.metrics_text)
            return Response(status=200, body=text.encode(), content_type=METRICS_CONTENT_TYPE)
        case ["api", "v1", "pods"]:
            return _json(200, _list("PodList", _filter(await _call(view.pods), namespace=req.param("namespace"), reqs=_selector(req))))
        case ["api", "v1", "namespaces", ns, "pods"] if ns:
            return _json(200, _list("PodList", _filter(await _call(view.pods), namespace=ns, reqs=_selector(req))))
        case ["api", "v1", "namespaces", ns, "pods", name] if ns and name:
            for pod in await _call(view.pods):
                meta = pod.get("metadata") or {}
                if meta.get("name") == name and meta.get("namespace", "default") == ns:
                    return _json(200, pod)
            raise HTTPError(404, f'pods "{name}" not found', details={"name": name, "kind": "pods"})
        case ["api", "v1", "events"]:
            return _json(200, _list("EventList", _filter(await _call(view.events), namespace=req.param("namespace"), reqs=_selector(req))))
        case ["api", "v1", "namespaces", ns, "events"] if ns:
            return _json(200, _list("EventList", _filter(await _call(view.events), namespace=ns, reqs=_selector(req))))
        case ["api", "v1", "node"]:
            return _json(200, await _call(view.node))
        case ["api", "v1", "extra", name] if name:
            value = await _call(view.extra, name)
            if value is None:
                raise HTTPError(404, f'extra "{name}" not found', details={"name": name, "kind": "extra"})
            if isinstance(value, str):
                return Response(status=200, body=value.encode(), content_type=TEXT_TYPE)
            return _json(200, value)
    raise HTTPError(404, _NOT_FOUND)


# --- the server ----------------------------------------------------------------------------------------------------

def _prepare_unix_socket(path: str) -> socket.socket:
    """A listening socket at `path`, mode 0600; a stale socket is replaced, a live one is an error."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        try:
            os.makedirs(parent, exist_ok=True)
            os.chmod(parent, 0o755)
        except OSError as e:
            raise LocalAPIError(f"cannot create the socket directory {parent}: {e.strerror}") from e
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise LocalAPIError(f"{path} exists and is not a socket: refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("replacing stale API socket path=%s", path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        except OSError as e:
            raise LocalAPIError(f"cannot check whether {path} is in use: {e.strerror or e}") from e
        else:
            raise AnotherAgentRunning(f"another nodelet is running: {path} is held by a live process")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.fchmod(sock.fileno(), 0o600)  # Linux: the socket file is created with this mode (no window at umask's)
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise LocalAPIError(f"cannot listen on {path}: {e.strerror or e}") from e
    return sock


@dataclass(kw_only=True)
class _Listener:
    server: asyncio.AbstractServer
    healthz_only: bool


@dataclass(eq=False)
class LocalAPI:
    view: AgentView
    socket_path: str = field(default=DEFAULT_SOCKET_PATH, kw_only=True)
    healthz_address: str = field(default="127.0.0.1", kw_only=True)
    healthz_port: int | None = field(default=10248, kw_only=True)  # None: no TCP listener; 0: any free port
    _listeners: list[_Listener] = field(default_factory=list, init=False, repr=False)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set, init=False, repr=False)
    _inode: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _closing: bool = field(default=False, init=False, repr=False)

    async def start(self) -> None:
        """Listen on the socket (and the healthz port). Raises AnotherAgentRunning / LocalAPIError."""
        if self._listeners:
            raise LocalAPIError("already started")
        self._closing = False
        sock = _prepare_unix_socket(self.socket_path)
        st = os.stat(self.socket_path)
        self._inode = (st.st_dev, st.st_ino)
        try:
            srv = await asyncio.start_unix_server(self._connection(False), sock=sock, limit=MAX_LINE)
            self._listeners.append(_Listener(server=srv, healthz_only=False))
            if self.healthz_port is not None:
                try:
                    tcp = await asyncio.start_server(
                        self._connection(True), self.healthz_address, self.healthz_port, limit=MAX_LINE, reuse_address=True)
                except OSError as e:
                    raise LocalAPIError(
                        f"cannot listen on {self.healthz_address}:{self.healthz_port} for /healthz: {e.strerror or e}"
                        " (is a kubelet or another nodelet using it? set healthzPort)") from e
                self._listeners.append(_Listener(server=tcp, healthz_only=True))
                self.healthz_port = tcp.sockets[0].getsockname()[1]
        except BaseException:
            await self.stop()
            raise
        log.info("local API listening socket=%s healthz=%s:%s", self.socket_path, self.healthz_address, self.healthz_port)

    async def stop(self) -> None:
        """Stop listening, end open connections and remove our socket file (not a newer agent's)."""
        self._closing = True
        for lst in self._listeners:
            lst.server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for lst in self._listeners:
            with contextlib.suppress(Exception):
                await lst.server.wait_closed()
        self._listeners.clear()
        if self._inode is not None:
            with contextlib.suppress(OSError):
                st = os.lstat(self.socket_path)
                if (st.st_dev, st.st_ino) == self._inode:
                    os.unlink(self.socket_path)
            self._inode = None

    def _connection(self, healthz_only: bool) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._closing:  # accepted just before stop(): the handler started after it
                writer.close()
                return
            if len(self._tasks) >= MAX_CONNECTIONS:
                writer.write(render_response(_status_response(HTTPError(503, "too many open connections, retry later"))))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.drain(), 1.0)
                writer.close()
                return
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await self._serve_one(reader, writer, healthz_only)
            except asyncio.CancelledError:
                pass  # stop(): _serve_one closed the connection on its way out
            finally:
                self._tasks.discard(task)
        return handle

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, healthz_only: bool) -> None:
        head = False
        try:
            try:
                req = await asyncio.wait_for(read_request(reader), READ_TIMEOUT)
                if req is None:
                    return
                head = req.method == "HEAD"
                resp = await compute_response(self.view, req, healthz_only=healthz_only)
            except HTTPError as e:
                resp = _status_response(e)
            except asyncio.TimeoutError:
                resp = _status_response(HTTPError(408, f"no complete request within {READ_TIMEOUT:g}s"))
            except (ConnectionError, asyncio.IncompleteReadError):
                return
            except Exception as e:  # the view failed: say so, keep serving
                log.exception("local API handler failed")
                resp = _status_response(HTTPError(500, f"internal error: {type(e).__name__}: {e}"))
            writer.write(render_response(resp, head=head))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
