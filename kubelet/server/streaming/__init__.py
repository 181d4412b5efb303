"""kubectl's streaming verbs on nodelet's API: `pods/exec`, `pods/attach` (WebSocket v5.channel.k8s.io or SPDY/3.1)
and `pods/portforward` (SPDY/3.1, plain or inside a WebSocket), bridged to the runtime's streaming server.

The API server calls `register_streaming_routes(app)`; handlers find pods through `app["nodelet.view"]` (a
`RuntimeView`, or anything with `find(namespace, name) -> StreamTarget`) and reach the runtime through
`app["nodelet.runtime"]` (a `cri.RuntimeClient`)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from kubelet.server.streaming.pods import PodLocator, RuntimeViewLocator, StreamTarget
from kubelet.server.streaming.portforward import handle_portforward
from kubelet.server.streaming.remotecommand import handle_attach, handle_exec

__all__ = ["PodLocator", "RuntimeViewLocator", "StreamTarget", "register_streaming_routes", "streaming_route_table",
           "streaming_routes"]

POD_PATH = "/api/v1/namespaces/{namespace}/pods/{name}"


def streaming_routes() -> list[web.RouteDef]:
    out = []
    for sub, handler in (("exec", handle_exec), ("attach", handle_attach), ("portforward", handle_portforward)):
        out += [web.get(f"{POD_PATH}/{sub}", handler), web.post(f"{POD_PATH}/{sub}", handler)]
    return out


def register_streaming_routes(app: web.Application) -> None:
    app.add_routes(streaming_routes())


def streaming_route_table() -> list[tuple[str, str, Any]]:
    """(method, path, handler) triples, the shape `make_api_app(extra_routes=…)` takes."""
    out = []
    for sub, handler in (("exec", handle_exec), ("attach", handle_attach), ("portforward", handle_portforward)):
        out += [("GET", f"{POD_PATH}/{sub}", handler), ("POST", f"{POD_PATH}/{sub}", handler)]
    return out
