"""The aiohttp application (`make_api_app`) and its TLS server (`ApiServer`).

Routing: routes added to ``app.router`` (the streaming verbs, see the package docstring) match first; every other
path goes to this module's dispatcher (a middleware runs it when the router found nothing), which serves discovery,
OpenAPI and the resources of :mod:`kubelet.server.apiserver.resources`.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from kubelet.server.apiserver import discovery, handlers, logs, openapi, writes
from kubelet.server.apiserver.auth import PUBLIC_PATHS, READ_METHODS, USER_KEY, UserInfo, compute_user, require_write
from kubelet.server.apiserver.resources import Resource, find_resource
from kubelet.server.apiserver.status import (ApiError, bad_request, json_response, method_not_allowed, not_found,
                                             too_large, unauthorized)
from kubelet.server.apiserver.store import ObjectStore

__all__ = ["DEFAULT_PORT", "MAX_BODY", "RUNTIME_KEY", "STORE_KEY", "VIEW_KEY", "ApiServer", "make_api_app"]

log = logging.getLogger(__name__)

VIEW_KEY = "nodelet.view"
RUNTIME_KEY = "nodelet.runtime"
STORE_KEY = "nodelet.store"
VERSION_KEY = "nodelet.version"
DEFAULT_PORT = 10443
MAX_BODY = 3 * 1024 * 1024  # the API server's default max request body (3 MiB)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_NOT_FOUND = "the server could not find the requested resource"


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return e.response()
    except web.HTTPRequestEntityTooLarge:
        return too_large(request.app._client_max_size).response()
    except web.HTTPException as e:
        if e.status >= 400:
            return ApiError(e.status, e.reason or _NOT_FOUND).response()
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as e:  # a bug or the view failing: a 500 Status, keep serving
        log.exception("API handler failed method=%s path=%s", request.method, request.path)
        return ApiError(500, f"internal error: {type(e).__name__}: {e}").response()


IDENTIFY_KEY = "nodelet.identify"


def identify_by_certificate(request: web.Request) -> UserInfo | None:
    """The default authenticator: the verified TLS client certificate."""
    peercert = request.transport.get_extra_info("peercert") if request.transport is not None else None
    return compute_user(peercert)


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    user = request.app[IDENTIFY_KEY](request)
    if user is None and not (request.method in READ_METHODS and request.path in PUBLIC_PATHS):
        raise unauthorized()
    request[USER_KEY] = user
    if request.method not in READ_METHODS and request.path not in PUBLIC_PATHS:
        parts = [p for p in request.path.split("/") if p]
        require_write(user, verb={"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(request.method, request.method.lower()),
                      resource=_resource_word(parts), name=_name_word(parts), namespace=_ns_word(parts))
    return await handler(request)


def _ns_word(parts: list[str]) -> str:
    return parts[parts.index("namespaces") + 1] if "namespaces" in parts and parts.index("namespaces") + 1 < len(parts) else ""


def _rest(parts: list[str]) -> list[str]:
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    return rest


def _resource_word(parts: list[str]) -> str:
    rest = _rest(parts)
    return "/".join(rest[:1] + rest[2:3]) if rest else ""


def _name_word(parts: list[str]) -> str:
    rest = _rest(parts)
    return rest[1] if len(rest) > 1 else ""


@web.middleware
async def _dispatch(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.http_exception is None:
        return await handler(request)  # a registered route (exec, attach, portforward…)
    return await dispatch(request)


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Every path the router has no route for."""
    app = request.app
    view = app[VIEW_KEY]
    segs = [unquote(s) for s in request.raw_path.split("?", 1)[0].split("/")[1:]]  # %2F stays inside its segment
    if segs and segs[-1] == "":
        segs = segs[:-1]
    method = request.method
    accept = request.headers.get("Accept", "")
    if segs in (["healthz"], ["livez"], ["readyz"]):
        health = getattr(view, "health", None)
        ok, reason = health() if health else (True, "")
        return web.Response(text="ok" if ok else reason or "unhealthy", status=200 if ok else 500)
    if segs == ["version"]:
        return json_response(discovery.compute_version(app[VERSION_KEY]))
    if segs[:2] == ["openapi", "v3"] or segs[:2] == ["openapi", "v2"]:
        return openapi.handle(request, segs)
    if method not in ("GET", "HEAD") and len(segs) <= 3:
        raise method_not_allowed(method)
    if segs == ["api"]:
        if discovery.wants_aggregated(accept):
            return _aggregated(discovery.compute_aggregated(core=True))
        return json_response(discovery.compute_api_versions(request.host))
    if segs == ["apis"]:
        if discovery.wants_aggregated(accept):
            return _aggregated(discovery.compute_aggregated(core=False))
        return json_response(discovery.compute_api_group_list())
    if segs == ["api", "v1"]:
        return json_response(discovery.compute_resource_list("", "v1"))
    if len(segs) == 3 and segs[0] == "apis":
        found = discovery.compute_resource_list(segs[1], segs[2])
        if found is None:
            raise ApiError(404, _NOT_FOUND)
        return json_response(found)
    if len(segs) == 2 and segs[0] == "apis":
        return json_response(next((g for g in discovery.compute_api_group_list()["groups"] if g["name"] == segs[1]), None)
                             or _raise(ApiError(404, _NOT_FOUND)))
    if segs[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", segs[2:]
    elif segs[:1] == ["apis"] and len(segs) >= 4:
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        raise ApiError(404, _NOT_FOUND)
    namespace: str | None = None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    r = find_resource(group, version, rest[0])
    if r is None or (namespace is not None and not r.namespaced):
        raise ApiError(404, _NOT_FOUND)
    if namespace is not None:
        writes.check_name(namespace, what="namespace")
    return await _resource(request, r, namespace, rest[1:])


def _raise(e: Exception) -> Any:
    raise e


def _aggregated(doc: dict[str, Any]) -> web.Response:
    resp = json_response(doc)
    resp.headers["Content-Type"] = discovery.AGGREGATED_V2
    return resp


async def _resource(request: web.Request, r: Resource, namespace: str | None, rest: list[str]) -> web.StreamResponse:
    app = request.app
    store: ObjectStore = app[STORE_KEY]
    view = app[VIEW_KEY]
    method = request.method
    if r.name == "namespaces" and r.group == "" and len(rest) >= 2:
        raise ApiError(404, _NOT_FOUND)  # /api/v1/namespaces/{ns}/{res} was handled above; anything else is unknown
    if not rest:
        if method in ("GET", "HEAD"):
            if r.group == "metrics.k8s.io":
                return await _metrics(request, r, namespace, None)
            return await handlers.handle_list(request, store, r, namespace)
        if method == "POST" and r.writable_kind:
            return await writes.handle_create(request, store, r, namespace or "default")
        if method == "DELETE" and r.writable_kind:
            raise method_not_allowed("DELETE (deletecollection)")
        raise method_not_allowed(method)
    name = rest[0]
    writes.check_name(name)
    if len(rest) == 1:
        if method in ("GET", "HEAD"):
            if r.group == "metrics.k8s.io":
                return await _metrics(request, r, namespace, name)
            return await handlers.handle_get(request, store, r, namespace, name, view.node_name)
        if r.writable_kind and method in ("PUT", "PATCH", "DELETE"):
            return await writes.handle_write(request, store, r, namespace or "default", name)
        raise method_not_allowed(method)
    if len(rest) == 2 and r.group == "" and r.name == "pods":
        if rest[1] == "log" and method in ("GET", "HEAD"):
            return await logs.handle_log(request, store, namespace or "default", name)
        if rest[1] == "status" and method in ("GET", "HEAD"):
            return await handlers.handle_get(request, store, r, namespace, name, view.node_name)
    raise ApiError(404, _NOT_FOUND)


async def _metrics(request: web.Request, r: Resource, namespace: str | None, name: str | None) -> web.Response:
    _, items = await request.app[STORE_KEY].snapshot(r)
    match = handlers.compute_matcher(request.query, namespace)
    items = [i for i in items if match(i)]
    if name is not None:
        for i in items:
            if i["metadata"].get("name") == name:
                return json_response(i)
        raise not_found(r.name, name, r.group)
    return json_response({"kind": r.list_kind, "apiVersion": r.group_version, "metadata": {}, "items": items})


def make_api_app(view: Any, *, runtime: Any = None, nodelet_version: str = "0", max_body: int = MAX_BODY,
                 extra_routes: Sequence[tuple[str, str, Handler]] = (), store: ObjectStore | None = None,
                 identify: Callable[[web.Request], UserInfo | None] = identify_by_certificate) -> web.Application:
    """The API as an aiohttp Application over `view` (an APIView). Add streaming routes before it starts.
    `identify` maps a request to its user (default: the TLS client certificate; unit tests pass a fixed one)."""
    app = web.Application(middlewares=[_errors, _authenticate, _dispatch], client_max_size=max_body)
    with warnings.catch_warnings():  # plain string keys: the documented contract for handlers added from outside
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app[IDENTIFY_KEY] = identify
        app[VIEW_KEY] = view
        app[RUNTIME_KEY] = runtime
        app[VERSION_KEY] = nodelet_version
        app[STORE_KEY] = store or ObjectStore(view)
    for method, path, handler in extra_routes:
        app.router.add_route(method, path, handler)

    async def close_store(app: web.Application) -> None:
        await app[STORE_KEY].aclose()

    app.on_cleanup.append(close_store)
    return app


def compute_ssl_context(*, cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL  # no certificate → 401 from the middleware, not a handshake failure
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


TLS_READ_BUFFER = 32 * 1024


def _bound_tls_buffers() -> None:
    """asyncio's TLS transport gives every connection a zero-filled 256 KiB read buffer (SSLProtocol.max_size): with
    1,000 idle watches that is ~280 MiB of RSS for nothing (measured: bench/api.py --many). A TLS record is at most
    16 KiB, so 32 KiB reads lose nothing. Process-wide, set once before the first TLS connection; nodelet has no
    other asyncio TLS (the CRI client is gRPC over a unix socket)."""
    import asyncio.sslproto

    if getattr(asyncio.sslproto.SSLProtocol, "max_size", 0) > TLS_READ_BUFFER:
        asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


class ApiServer:
    """The HTTPS listener of the application. `start()` binds (port 0: any free port, see `.port`)."""

    def __init__(self, app: web.Application, *, address: str, port: int, ssl_context: ssl.SSLContext) -> None:
        self.app = app
        self.address = address
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        _bound_tls_buffers()
        # handler_cancellation: a client that goes away cancels its handler (idle watches and follows end at once)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, self.port, ssl_context=self.ssl_context, backlog=1024,
                           reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(e.errno, f"cannot listen on {self.address}:{self.port} for the Kubernetes API: "
                                   f"{e.strerror or e} (set apiPort)") from e
        if self.port == 0 and self._runner.addresses:
            self.port = self._runner.addresses[0][1]
        log.info("Kubernetes API listening address=%s port=%d", self.address, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 5.0)
            self._runner = None
