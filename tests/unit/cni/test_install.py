"""The installed client: real interpreter with -IS, idempotent install, and the wire protocol end to end
(client exec'ed against an in-process server, and the no-server fallback) on commands that need no root."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from cni.install import ensure_plugin_installed
from cni.server import parse_env_blob, render_request, serve


@pytest.mark.parametrize("kind", ["python", "c"])
def test_install_is_idempotent_and_follows_its_inputs(tmp_path, kind) -> None:  # type: ignore[no-untyped-def]
    p = ensure_plugin_installed(tmp_path / "bin", socket_path=str(tmp_path / "s.sock"), client=kind)
    assert os.access(p, os.X_OK)
    data = p.read_bytes()
    if kind == "python":
        first = data.decode().splitlines()[0]
        assert first == f"#!{sys.executable} -IS" and "shims" not in first
    else:
        assert data.startswith(b"\x7fELF") and sys.executable.encode() in data  # fallback names the real python
    ino = os.stat(p).st_ino
    assert ensure_plugin_installed(tmp_path / "bin", socket_path=str(tmp_path / "s.sock"), client=kind) == p
    assert os.stat(p).st_ino == ino  # up to date → not rewritten
    ensure_plugin_installed(tmp_path / "bin", socket_path=str(tmp_path / "other.sock"), client=kind)
    assert b"other.sock" in p.read_bytes() and os.stat(p).st_ino != ino
    assert [x.name for x in (tmp_path / "bin").iterdir()] == ["nodelet-cni"]  # no temp files left


def test_auto_prefers_the_compiled_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cni.install import find_compiler
    p = ensure_plugin_installed(tmp_path / "bin", socket_path=str(tmp_path / "s.sock"))
    assert p.read_bytes().startswith(b"\x7fELF") == (find_compiler() is not None)


def test_request_encoding_only_forwards_cni_vars() -> None:
    req = render_request({"CNI_COMMAND": "ADD", "HOME": "/root", "CNI_ARGS": "A=b=c"}, b"{}")
    header, _, rest = req.partition(b"\n")
    _, env_len, stdin_len = header.split()
    assert parse_env_blob(rest[:int(env_len)]) == {"CNI_COMMAND": "ADD", "CNI_ARGS": "A=b=c"}
    assert rest[int(env_len):] == b"{}" and int(stdin_len) == 2


def _exec(client: str, env: dict[str, str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([client], input=stdin, env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize("kind", ["python", "c"])
async def test_client_through_server_and_fallback(tmp_path, kind) -> None:  # type: ignore[no-untyped-def]
    sock = str(tmp_path / "cni.sock")
    client = str(ensure_plugin_installed(tmp_path / "bin", socket_path=sock, client=kind))
    bad_add = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x", "CNI_NETNS": "/nonexistent", "CNI_IFNAME": "eth0",
               "CNI_PATH": "/usr/lib/cni"}
    conf = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "nodelet-cni",
                       "ipam": {"type": "dhcp"}}).encode()
    # no server: fallback path answers the same
    r = await asyncio.to_thread(_exec, client, bad_add, conf)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == 2, r.stderr
    ready = asyncio.Event()
    task = asyncio.create_task(serve(sock, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        r = await asyncio.to_thread(_exec, client, {"CNI_COMMAND": "VERSION"}, b"{}")
        assert r.returncode == 0 and json.loads(r.stdout)["supportedVersions"][-1] == "1.1.0"
        r = await asyncio.to_thread(_exec, client, bad_add, conf)
        assert r.returncode == 1 and json.loads(r.stdout) == {
            "cniVersion": "1.0.0", "code": 2,
            "msg": "ipam.type: 'dhcp' is not supported; nodelet-cni has host-local built in "
                   "(use \"type\": \"host-local\")"}
        # a second server refuses to steal the live socket
        try:
            await serve(sock)
            raise AssertionError("second serve() should refuse")
        except RuntimeError as e:
            assert "another nodelet-cni server" in str(e)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not os.path.exists(sock)


@pytest.mark.parametrize("kind", ["python", "c"])
async def test_server_vanishing_mid_request(tmp_path, kind) -> None:  # type: ignore[no-untyped-def]
    """A server that accepts and dies: ADD answers 11 (try again), DEL falls back to the in-process plugin."""
    sock = str(tmp_path / "cni.sock")
    client = str(ensure_plugin_installed(tmp_path / "bin", socket_path=sock, client=kind))

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # take the whole request, answer nothing
        writer.close()

    server = await asyncio.start_unix_server(drop, path=sock)
    conf = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "nodelet-cni",
                       "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}]],
                                "dataDir": str(tmp_path / "data")}}).encode()
    env = {"CNI_CONTAINERID": "x", "CNI_NETNS": "/nonexistent", "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"}
    try:
        r = await asyncio.to_thread(_exec, client, {**env, "CNI_COMMAND": "ADD"}, conf)
        assert r.returncode == 1 and json.loads(r.stdout)["code"] == 11
        r = await asyncio.to_thread(_exec, client, {**env, "CNI_COMMAND": "DEL"}, conf)
        assert r.returncode == 0 and r.stdout == b"", (r.stdout, r.stderr)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("kind", ["python", "c"])
def test_version_is_answered_by_the_client_itself(tmp_path, kind) -> None:  # type: ignore[no-untyped-def]
    """No server and no Python plugin: VERSION (which podman runs for every network) costs a client start only.
    The C client is installed with an interpreter that does not exist, so falling back would fail."""
    from cni.__main__ import handle

    interp = "/nonexistent/python3" if kind == "c" else None
    client = str(ensure_plugin_installed(tmp_path / "bin", socket_path=str(tmp_path / "none.sock"), client=kind,
                                         interpreter=interp))
    r = _exec(client, {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
    code, out = asyncio.run(handle({"CNI_COMMAND": "VERSION"}, b"{}"))
    assert (r.returncode, r.stdout) == (code, out) == (0, out), r.stderr
