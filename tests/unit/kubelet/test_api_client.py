"""The CLI's synchronous client against a real LocalAPI on a unix socket, and against nobody."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest

from kubelet.server.api import LocalAPI, StaticView
from kubelet.server.apiclient import APIClient, APIError, APIUnavailable


@pytest.fixture
def tmpdir_short() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=f"nodelet-apic-{os.getpid()}-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def served(tmpdir_short: str) -> AsyncIterator[tuple[StaticView, str]]:
    view = StaticView(pod_list=[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-node1", "namespace": "default"}}],
                      metrics="x 1\n", node_info={"name": "node1"})
    path = os.path.join(tmpdir_short, "n.sock")
    api = LocalAPI(view, socket_path=path, healthz_port=None)
    await api.start()
    try:
        yield view, path
    finally:
        await api.stop()


async def test_json_and_text(served: tuple[StaticView, str]) -> None:
    view, path = served
    client = APIClient(path)
    body = await asyncio.to_thread(client.get, "/api/v1/pods?labelSelector=")
    assert isinstance(body, dict) and body["items"] == view.pod_list
    assert await asyncio.to_thread(client.get, "/metrics") == "x 1\n"
    assert await asyncio.to_thread(client.get, "/healthz") == "ok"


async def test_status_errors_carry_the_message(served: tuple[StaticView, str]) -> None:
    view, path = served
    client = APIClient(path)
    with pytest.raises(APIError) as ei:
        await asyncio.to_thread(client.get, "/api/v1/namespaces/default/pods/nope")
    assert (ei.value.code, ei.value.reason, str(ei.value)) == (404, "NotFound", 'pods "nope" not found')
    with pytest.raises(APIError, match="unable to parse requirement"):
        await asyncio.to_thread(client.get, "/api/v1/pods?labelSelector=a%20b")
    view.healthy = (False, "runtime unreachable")
    with pytest.raises(APIError) as ei:
        await asyncio.to_thread(client.get, "/healthz")
    assert (ei.value.code, str(ei.value)) == (500, "runtime unreachable")


def test_missing_socket_is_unavailable(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "none.sock")
    with pytest.raises(APIUnavailable) as ei:
        APIClient(path).get("/api/v1/pods")
    assert str(ei.value) == f"cannot reach the nodelet daemon at {path} (is `nodelet run` running?)"


def test_stale_socket_is_unavailable(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # file left, nobody listening: connection refused
    with pytest.raises(APIUnavailable, match="is `nodelet run` running"):
        APIClient(path).get("/api/v1/pods")


def test_hung_daemon_is_unavailable_after_the_timeout(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "hung.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)  # accepts (in the backlog) but never answers
    try:
        with pytest.raises(APIUnavailable) as ei:
            APIClient(path, timeout=0.3).get("/api/v1/pods")
        assert ei.value.detail == "no answer within 0.3s"
    finally:
        s.close()


def test_default_socket_path_is_the_servers() -> None:
    from kubelet.server import api
    from kubelet.server import apiclient
    assert apiclient.DEFAULT_SOCKET_PATH == api.DEFAULT_SOCKET_PATH == "/run/nodelet/nodelet.sock"
