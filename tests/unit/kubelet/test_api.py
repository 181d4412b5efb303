"""The local API over a real unix socket (and the real TCP healthz listener), with a fixed AgentView."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest

from kubelet.server import api as api_mod
from kubelet.server.api import AnotherAgentRunning, LocalAPI, LocalAPIError, StaticView


def _pod(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "status": {"phase": "Running"}}


def _event(name: str, ns: str, reason: str) -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns}, "reason": reason,
            "involvedObject": {"kind": "Pod", "name": name.split(".")[0], "namespace": ns}}


def make_view() -> StaticView:
    return StaticView(
        pod_list=[_pod("web-node1", app="web", tier="front"), _pod("db-node1", app="db"),
                  _pod("dns-node1", "kube-system", app="dns", tier="infra")],
        event_list=[_event("web-node1.1", "default", "Started"), _event("dns-node1.2", "kube-system", "Pulled")],
        metrics="# HELP x y\n# TYPE x counter\nx 1\n",
        node_info={"name": "node1", "nodeletVersion": "0.1.0", "runtimeEndpoint": "unix:///run/containerd.sock"},
        extras={"probes": {"web-node1": {"nginx": {"readiness": "Success"}}}, "note": "plain text"},
    )


@pytest.fixture
def tmpdir_short() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=f"nodelet-api-{os.getpid()}-")  # short: unix socket paths are limited to 108 bytes
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def served(tmpdir_short: str) -> AsyncIterator[tuple[LocalAPI, StaticView, str]]:
    view = make_view()
    path = os.path.join(tmpdir_short, "run", "nodelet.sock")
    api = LocalAPI(view, socket_path=path, healthz_port=0)
    await api.start()
    try:
        yield api, view, path
    finally:
        await api.stop()


async def raw(path: str, data: bytes, *, tcp_port: int | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send bytes, read to EOF, parse status line, headers and body."""
    if tcp_port is not None:
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
    else:
        reader, writer = await asyncio.open_unix_connection(path)
    writer.write(data)
    await writer.drain()
    resp = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    assert lines[0].startswith("HTTP/1.1 ")
    assert headers["connection"] == "close"
    if data.startswith(b"HEAD "):
        assert body == b""
    else:
        assert int(headers["content-length"]) == len(body)
    return code, headers, body


async def get(path: str, target: str, **kw: int) -> tuple[int, dict[str, str], bytes]:
    return await raw(path, f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode(), **kw)


async def get_json(path: str, target: str) -> tuple[int, dict]:
    code, headers, body = await get(path, target)
    assert headers["content-type"] == "application/json"
    return code, json.loads(body)


def names(body: dict) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]


async def test_pod_list_and_filters(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, _, path = served
    code, body = await get_json(path, "/api/v1/pods")
    assert code == 200
    assert (body["apiVersion"], body["kind"]) == ("v1", "PodList")
    assert names(body) == ["web-node1", "db-node1", "dns-node1"]
    assert names((await get_json(path, "/api/v1/pods?namespace=kube-system"))[1]) == ["dns-node1"]
    assert names((await get_json(path, "/api/v1/namespaces/default/pods"))[1]) == ["web-node1", "db-node1"]
    for selector, expected in [
        ("app=web", ["web-node1"]), ("app==web", ["web-node1"]), ("app!=web", ["db-node1", "dns-node1"]),
        ("tier", ["web-node1", "dns-node1"]), ("!tier", ["db-node1"]), ("app%20in%20(db,%20dns)", ["db-node1", "dns-node1"]),
        ("tier%20notin%20(front)", ["db-node1", "dns-node1"]), ("app=web,tier=front", ["web-node1"]),
        ("app=web,tier=infra", []), ("%20", ["web-node1", "db-node1", "dns-node1"]),
    ]:
        code, body = await get_json(path, f"/api/v1/pods?labelSelector={selector}")
        assert (code, names(body)) == (200, expected), selector
    code, body = await get_json(path, "/api/v1/namespaces/kube-system/pods?labelSelector=tier%3Dinfra")
    assert names(body) == ["dns-node1"]


async def test_bad_selector_is_a_400_status(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, _, path = served
    for bad in ["a%20b", "a=b,", "=x", "a=b%20c", "a%20in%20()", "a%20in%20(x", "-bad=x", "a=-x-"]:
        code, body = await get_json(path, f"/api/v1/pods?labelSelector={bad}")
        assert code == 400, bad
        assert (body["kind"], body["status"], body["reason"], body["code"]) == ("Status", "Failure", "BadRequest", 400)


async def test_get_one_pod_and_404(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, view, path = served
    code, body = await get_json(path, "/api/v1/namespaces/kube-system/pods/dns-node1")
    assert (code, body) == (200, view.pod_list[2])
    code, body = await get_json(path, "/api/v1/namespaces/default/pods/dns-node1")  # wrong namespace
    assert code == 404
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'pods "dns-node1" not found', "reason": "NotFound",
                    "details": {"name": "dns-node1", "kind": "pods"}, "code": 404}


async def test_events_node_extra_metrics_healthz(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, view, path = served
    code, body = await get_json(path, "/api/v1/events")
    assert (code, body["kind"], names(body)) == (200, "EventList", ["web-node1.1", "dns-node1.2"])
    assert names((await get_json(path, "/api/v1/events?namespace=kube-system"))[1]) == ["dns-node1.2"]
    assert names((await get_json(path, "/api/v1/namespaces/default/events"))[1]) == ["web-node1.1"]
    assert await get_json(path, "/api/v1/node") == (200, view.node_info)
    assert await get_json(path, "/api/v1/extra/probes") == (200, view.extras["probes"])
    code, headers, body = await get(path, "/api/v1/extra/note")
    assert (code, headers["content-type"], body) == (200, "text/plain; charset=utf-8", b"plain text")
    code, body = await get_json(path, "/api/v1/extra/services")
    assert (code, body["reason"], body["message"]) == (404, "NotFound", 'extra "services" not found')
    code, headers, body = await get(path, "/metrics")
    assert (code, headers["content-type"], body) == (200, "text/plain; version=0.0.4; charset=utf-8", view.metrics.encode())
    assert (await get(path, "/healthz"))[::2] == (200, b"ok")
    view.healthy = (False, "sync loop stalled for 130s")
    code, headers, body = await get(path, "/healthz")
    assert (code, headers["content-type"], body) == (500, "text/plain; charset=utf-8", b"sync loop stalled for 130s")


async def test_unknown_paths_and_methods(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, _, path = served
    for target in ["/", "/api/v1/services", "/api/v1/pods/", "/api/v1/namespaces//pods", "/api/v2/pods"]:
        code, body = await get_json(path, target)
        assert (code, body["reason"], body["message"]) == (404, "NotFound", "the server could not find the requested resource"), target
    code, headers, body = await raw(path, b"POST /api/v1/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert (code, headers["allow"], json.loads(body)["reason"]) == (405, "GET, HEAD", "MethodNotAllowed")
    code, headers, body = await raw(path, b"DELETE /api/v1/namespaces/default/pods/web-node1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert code == 405
    code, headers, body = await raw(path, b"HEAD /api/v1/pods HTTP/1.1\r\nHost: x\r\n\r\n")
    full = await get(path, "/api/v1/pods")
    assert (code, body, headers["content-length"]) == (200, b"", full[1]["content-length"])


async def test_http10_without_host_and_absolute_form(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, _, path = served
    code, _, body = await raw(path, b"GET /api/v1/node HTTP/1.0\r\n\r\n")
    assert (code, json.loads(body)["name"]) == (200, "node1")
    code, _, body = await raw(path, b"GET http://localhost/api/v1/node HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert code == 200
    code, _, body = await raw(path, b"\r\nGET /healthz HTTP/1.1\nHost: x\n\n")  # leading CRLF, bare LF line ends
    assert (code, body) == (200, b"ok")


@pytest.mark.parametrize(
    ("request_bytes", "code", "fragment"),
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
        (b"GET /healthz\r\n\r\n", 400, "malformed request line"),
        (b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        (b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed method"),
        (b"GET /healthz HTTP/1.1\r\n\r\n", 400, "missing required Host header"),
        (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, "not supported"),
        (b"GET /healthz HTTQ/1.1\r\nHost: x\r\n\r\n", 400, "malformed HTTP version"),
        (b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "unsupported request target"),
        (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "non-ASCII"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400, "malformed header line"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, "malformed header line"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "folding"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "conflicting host"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "malformed Content-Length"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "conflicting content-length"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413, "over the limit"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, "Transfer-Encoding"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request line too long"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "header line too long"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", 431, "request headers too large"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b", 400, "closed in the middle"),
        (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", 400, "closed in the middle of the request body"),
    ],
)
async def test_malformed_requests(served: tuple[LocalAPI, StaticView, str], request_bytes: bytes, code: int, fragment: str) -> None:
    _, _, path = served
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(request_bytes)
    writer.write_eof()  # a client that stops sending: the server must still answer
    resp = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(code).encode(), resp[:200]
    status = json.loads(body)
    assert status["kind"] == "Status" and status["code"] == code
    assert fragment in status["message"]
    # and the server is still fine
    assert (await get(path, "/healthz"))[0] == 200


async def test_slow_client_gets_408(served: tuple[LocalAPI, StaticView, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, path = served
    monkeypatch.setattr(api_mod, "READ_TIMEOUT", 0.2)
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # never finishes the headers
    resp = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert resp.startswith(b"HTTP/1.1 408 ")
    assert json.loads(resp.partition(b"\r\n\r\n")[2])["reason"] == "Timeout"


async def test_connection_limit(served: tuple[LocalAPI, StaticView, str], monkeypatch: pytest.MonkeyPatch) -> None:
    api, _, path = served
    monkeypatch.setattr(api_mod, "MAX_CONNECTIONS", 2)
    idle = [await asyncio.open_unix_connection(path) for _ in range(2)]
    deadline = asyncio.get_running_loop().time() + 2
    while len(api._tasks) < 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    code, _, body = await get(path, "/healthz")
    assert (code, json.loads(body)["reason"]) == (503, "ServiceUnavailable")
    for _, w in idle:
        w.close()
    while api._tasks:  # the idle ones end (EOF) and the slots free up
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    assert (await get(path, "/healthz"))[0] == 200


async def test_client_that_sends_nothing_is_closed_quietly(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, _, path = served
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_view_failure_is_a_500_and_serving_goes_on(served: tuple[LocalAPI, StaticView, str]) -> None:
    api, view, path = served

    def broken() -> list[dict]:
        raise RuntimeError("status manager gone")

    view.pods = broken  # type: ignore[method-assign]
    code, body = await get_json(path, "/api/v1/pods")
    assert (code, body["reason"], body["message"]) == (500, "InternalError", "internal error: RuntimeError: status manager gone")
    assert (await get_json(path, "/api/v1/node"))[0] == 200


async def test_async_view_methods(tmpdir_short: str) -> None:
    class AsyncView(StaticView):
        async def pods(self) -> list[dict]:  # type: ignore[override]
            await asyncio.sleep(0)
            return [_pod("a-node1")]

    path = os.path.join(tmpdir_short, "a.sock")
    api = LocalAPI(AsyncView(), socket_path=path, healthz_port=None)
    await api.start()
    try:
        assert names((await get_json(path, "/api/v1/pods"))[1]) == ["a-node1"]
    finally:
        await api.stop()


async def test_many_concurrent_clients(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, _, path = served
    results = await asyncio.gather(*(get(path, "/api/v1/pods") for _ in range(50)))
    assert {r[0] for r in results} == {200}
    assert len({r[2] for r in results}) == 1


async def test_socket_file_mode_and_parent_dir(served: tuple[LocalAPI, StaticView, str]) -> None:
    api, _, path = served
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o755
    await api.stop()
    assert not os.path.exists(path)  # removed on stop


async def test_existing_parent_dir_mode_is_left_alone(tmpdir_short: str) -> None:
    os.chmod(tmpdir_short, 0o711)
    api = LocalAPI(StaticView(), socket_path=os.path.join(tmpdir_short, "n.sock"), healthz_port=None)
    await api.start()
    await api.stop()
    assert stat.S_IMODE(os.stat(tmpdir_short).st_mode) == 0o711


async def test_stale_socket_is_replaced(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "n.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)  # a socket file nobody listens on: what a kill -9'ed agent leaves
    dead.close()
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    api = LocalAPI(make_view(), socket_path=path, healthz_port=None)
    await api.start()
    try:
        assert (await get(path, "/healthz"))[0] == 200
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        await api.stop()


async def test_live_socket_is_refused(served: tuple[LocalAPI, StaticView, str]) -> None:
    _, _, path = served
    second = LocalAPI(StaticView(), socket_path=path, healthz_port=None)
    with pytest.raises(AnotherAgentRunning, match="another nodelet is running"):
        await second.start()
    await second.stop()  # harmless, and must not remove the first agent's socket
    assert (await get(path, "/healthz"))[0] == 200


async def test_non_socket_file_is_not_touched(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "n.sock")
    with open(path, "w") as f:
        f.write("precious")
    with pytest.raises(LocalAPIError, match="exists and is not a socket"):
        await LocalAPI(StaticView(), socket_path=path, healthz_port=None).start()
    with open(path) as f:
        assert f.read() == "precious"


async def test_stop_leaves_a_newer_agents_socket(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "n.sock")
    old = LocalAPI(StaticView(), socket_path=path, healthz_port=None)
    await old.start()
    os.unlink(path)  # e.g. removed by hand, then a new agent started
    new = LocalAPI(StaticView(healthy=(False, "new one")), socket_path=path, healthz_port=None)
    await new.start()
    try:
        await old.stop()
        assert (await get(path, "/healthz"))[2] == b"new one"
    finally:
        await new.stop()


async def test_stop_ends_idle_connections(served: tuple[LocalAPI, StaticView, str]) -> None:
    api, _, path = served
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # half a request, then silence
    await asyncio.sleep(0)  # maybe still in the backlog, maybe accepted but not handled: stop() must end it
    await asyncio.wait_for(api.stop(), 2)
    try:
        assert await asyncio.wait_for(reader.read(), 2) == b""
    except ConnectionResetError:
        pass  # it was still in the listen backlog when the listening socket closed
    writer.close()


async def test_stop_ends_a_connection_mid_request(served: tuple[LocalAPI, StaticView, str]) -> None:
    api, _, path = served
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    deadline = asyncio.get_running_loop().time() + 2
    while not api._tasks:  # the handler is waiting for the rest of the request
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    await asyncio.wait_for(api.stop(), 2)
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_tcp_healthz(served: tuple[LocalAPI, StaticView, str]) -> None:
    api, view, path = served
    port = api.healthz_port
    assert isinstance(port, int) and port > 0
    code, headers, body = await get(path, "/healthz", tcp_port=port)
    assert (code, headers["content-type"], body) == (200, "text/plain; charset=utf-8", b"ok")
    view.healthy = (False, "runtime unreachable: unix:///run/containerd/containerd.sock")
    code, _, body = await get(path, "/healthz", tcp_port=port)
    assert (code, body) == (500, b"runtime unreachable: unix:///run/containerd/containerd.sock")
    for target in ["/api/v1/pods", "/metrics", "/api/v1/node"]:  # TCP serves /healthz only
        code, _, body = await get(path, target, tcp_port=port)
        assert (code, json.loads(body)["reason"]) == (404, "NotFound"), target
    code, _, _ = await raw(path, b"POST /healthz HTTP/1.1\r\nHost: x\r\n\r\n", tcp_port=port)
    assert code == 405


async def test_healthz_port_in_use_is_an_error_and_cleans_up(tmpdir_short: str) -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    path = os.path.join(tmpdir_short, "n.sock")
    try:
        with pytest.raises(LocalAPIError, match=f"cannot listen on 127.0.0.1:{port}"):
            await LocalAPI(StaticView(), socket_path=path, healthz_port=port).start()
        assert not os.path.exists(path)  # the unix socket it had opened is gone again
    finally:
        blocker.close()


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [
        ("", {}, True), ("a=b", {"a": "b"}, True), ("a=b", {}, False), ("a!=b", {}, True), ("a!=b", {"a": "b"}, False),
        ("a", {"a": ""}, True), ("!a", {"a": ""}, False), ("a in (x, y)", {"a": "y"}, True), ("a in (x)", {}, False),
        ("a notin (x)", {}, True), ("a notin (x)", {"a": "x"}, False), ("a=", {"a": ""}, True),
        ("example.com/role=web , tier", {"example.com/role": "web", "tier": "1"}, True),
    ],
)
def test_selector_semantics(selector: str, labels: dict, match: bool) -> None:
    from kubelet.server.api import compute_selector_match, parse_label_selector
    assert compute_selector_match(parse_label_selector(selector), labels) is match


@pytest.mark.parametrize("bad", ["a b", "a=b,", ",", "a=b=c", "a>1", "a in (x", "a in x)", "A.B/c=d", "a=" + "x" * 64, "!"])
def test_selector_errors(bad: str) -> None:
    from kubelet.server.api import SelectorError, parse_label_selector
    with pytest.raises(SelectorError):
        parse_label_selector(bad)
