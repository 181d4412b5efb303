"""The streaming handlers' refusals before any upgrade (each a v1 Status kubectl prints), and their query parsing.
The runtime side is exercised for real in tests/e2e/test_kubectl_streams.py."""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import MultiDict

from kubelet.server.streaming import StreamTarget, register_streaming_routes, streaming_route_table
from kubelet.server.streaming.portforward import parse_port
from kubelet.server.streaming.remotecommand import parse_command_options

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


class Locator:
    async def find(self, namespace: str, name: str) -> StreamTarget | None:
        if (namespace, name) != ("default", "web"):
            return None
        return StreamTarget(namespace="default", name="web-node1", sandbox_id="", sandbox_ready=False,
                            containers={"web": ("c1", True), "old": ("c0", False)})


class User:
    def __init__(self, can_write: bool) -> None:
        self.name, self.can_write = ("admin" if can_write else "viewer"), can_write


async def client(user: User | None = None) -> TestClient:
    @web.middleware
    async def identity(request: web.Request, handler: Any) -> web.StreamResponse:
        if user is not None:
            request["nodelet.user"] = user
        return await handler(request)

    app = web.Application(middlewares=[identity])
    app["nodelet.view"] = Locator()
    app["nodelet.runtime"] = None  # never reached: every request here is refused first
    register_streaming_routes(app)
    c = TestClient(TestServer(app))
    await c.start_server()
    return c


WS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def status_of(resp: Any) -> tuple[int, str, str]:
    body = await resp.json()
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == resp.status
    return resp.status, body["reason"], body["message"]


async def test_refusals_are_statuses() -> None:
    c = await client()
    try:
        base = "/api/v1/namespaces/default/pods"
        v5 = {**WS, "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}
        cases = [
            (f"{base}/web/exec?stdout=true", v5, (400, "BadRequest", "you must specify at least 1 command")),
            (f"{base}/web/exec?command=ls", v5, (400, "BadRequest", "you must specify at least one of stdin, stdout, stderr")),
            (f"{base}/nope/exec?command=ls&stdout=true", v5, (404, "NotFound", 'pods "nope" not found')),
            (f"{base}/web/exec?command=ls&stdout=true&container=db", v5, (400, "BadRequest", "container db is not valid for pod web-node1")),
            (f"{base}/web/exec?command=ls&stdout=true&container=old", v5, (400, "BadRequest", "container old of pod web-node1 is not running")),
            (f"{base}/web/exec?command=ls&stdout=true", v5, (400, "BadRequest", "a container name must be specified for pod web-node1, choose one of: [old web]")),
            (f"{base}/web/exec?command=ls&stdout=true&container=web", {**WS, "Sec-WebSocket-Protocol": "v4.channel.k8s.io"},
             (400, "BadRequest", "WebSocket exec needs subprotocol v5.channel.k8s.io (offered: ['v4.channel.k8s.io'])")),
            (f"{base}/web/exec?command=ls&stdout=true&container=web", {}, (400, "BadRequest", "Upgrade request required")),
            (f"{base}/web/portforward", {**WS, "Sec-WebSocket-Protocol": "SPDY/3.1+portforward.k8s.io"},
             (400, "BadRequest", "pod web-node1 has no running sandbox to forward ports into")),
            (f"{base}/web/portforward", {**WS, "Sec-WebSocket-Protocol": "v4.channel.k8s.io"},
             (400, "BadRequest", "WebSocket port-forward needs subprotocol SPDY/3.1+portforward.k8s.io (offered: ['v4.channel.k8s.io'])")),
        ]
        for path, headers, want in cases:
            assert await status_of(await c.get(path, headers=headers)) == want, path
        r = await c.post(f"{base}/web/portforward", headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade",
                                                              "X-Stream-Protocol-Version": "v4.channel.k8s.io"})
        assert (await status_of(r))[0] == 400
    finally:
        await c.close()


async def test_a_read_only_identity_gets_403_on_the_websocket_upgrade() -> None:
    c = await client(User(can_write=False))
    try:
        for sub in ("exec?command=ls&stdout=true", "attach?stdout=true", "portforward"):
            r = await c.get(f"/api/v1/namespaces/default/pods/web/{sub}", headers={**WS, "Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
            code, reason, message = await status_of(r)
            assert (code, reason) == (403, "Forbidden") and 'User "viewer" cannot create resource "pods/' in message
    finally:
        await c.close()
    c = await client(User(can_write=True))
    try:
        r = await c.get("/api/v1/namespaces/default/pods/nope/exec?command=ls&stdout=true", headers={**WS, "Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
        assert (await status_of(r))[0] == 404  # past the identity check
    finally:
        await c.close()


def test_query_parsing() -> None:
    q = MultiDict([("command", "sh"), ("command", "-c"), ("command", "echo hi"), ("container", "web"), ("stdin", "true"),
                   ("stdout", "1"), ("stderr", "false"), ("tty", "true")])
    o = parse_command_options(q)
    assert (o.command, o.container, o.stdin, o.stdout, o.stderr, o.tty) == (("sh", "-c", "echo hi"), "web", True, True, False, True)
    assert o.stream_types == ("stdin", "stdout", "resize")
    o = parse_command_options(MultiDict([("command", "ls"), ("stdout", "true"), ("stderr", "true")]))
    assert o.stream_types == ("stdout", "stderr")
    assert [parse_port(v) for v in ("80", "65535", "0", "65536", "x", "")] == [80, 65535, None, None, None, None]


def test_the_route_table_for_make_api_app() -> None:
    routes = {(m, p) for m, p, _ in streaming_route_table()}
    for sub in ("exec", "attach", "portforward"):
        for m in ("GET", "POST"):
            assert (m, f"/api/v1/namespaces/{{namespace}}/pods/{{name}}/{sub}") in routes
