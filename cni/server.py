"""The fast path: a long-lived asyncio unix-socket server running plugin requests in-process (warm pyroute2).

The installed `nodelet-cni` executable (see install.py) forwards its CNI_* env and stdin here and prints the
answer, so a runtime's exec costs one bare interpreter start (`python -IS`) instead of importing pyroute2.

Wire format (one request per connection, client half-closes after sending):
  request:  b"NCNI1 <env-len> <stdin-len>\\n" + env (b"K=V" joined by NUL, CNI_* only) + stdin
  response: b"<exit code>\\n" + stdout bytes, then close.
The daemon hosts `serve()` inside `nodelet run`; `python -m cni.server --socket PATH` runs it standalone.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import time

from .__main__ import BridgeCommands, handle

log = logging.getLogger(__name__)
DEFAULT_SOCKET = "/run/nodelet/cni.sock"
MAGIC = b"NCNI1"
MAX_REQUEST = 16 << 20


def parse_request(header: bytes) -> tuple[int, int]:
    parts = header.split()
    if len(parts) != 3 or parts[0] != MAGIC:
        raise ValueError(f"bad request header {header[:40]!r}")
    env_len, stdin_len = int(parts[1]), int(parts[2])
    if not (0 <= env_len <= MAX_REQUEST and 0 <= stdin_len <= MAX_REQUEST):
        raise ValueError("request too large")
    return env_len, stdin_len


def parse_env_blob(blob: bytes) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in blob.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key.startswith(b"CNI_"):
            env[key.decode()] = value.decode(errors="surrogateescape")
    return env


def render_request(env: dict[str, str], stdin: bytes) -> bytes:
    blob = b"\0".join(f"{k}={v}".encode() for k, v in env.items() if k.startswith("CNI_"))
    return b"%s %d %d\n" % (MAGIC, len(blob), len(stdin)) + blob + stdin


def _socket_in_use(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


async def serve(socket_path: str = DEFAULT_SOCKET, *, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled. Refuses to steal a socket another live server answers on; a stale one is replaced."""
    commands = BridgeCommands()  # imports pyroute2 once, up front
    from . import netlink

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            env_len, stdin_len = parse_request(await reader.readline())
            env = parse_env_blob(await reader.readexactly(env_len))
            stdin = await reader.readexactly(stdin_len)
            t0 = time.perf_counter()
            code, out = await handle(env, stdin, commands=commands)
            log.info("request command=%s container=%s rc=%d ms=%.2f", env.get("CNI_COMMAND"),
                      env.get("CNI_CONTAINERID", "-"), code, (time.perf_counter() - t0) * 1000)
            writer.write(b"%d\n" % code + out)
            await writer.drain()
        except (ValueError, asyncio.IncompleteReadError, ConnectionError) as e:
            log.warning("bad request socket=%s error=%s", socket_path, e)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    os.makedirs(os.path.dirname(socket_path) or ".", mode=0o755, exist_ok=True)
    if os.path.exists(socket_path):
        if _socket_in_use(socket_path):
            raise RuntimeError(f"{socket_path}: another nodelet-cni server is answering there")
        os.unlink(socket_path)
    await netlink.open_shared_host()
    try:
        server = await asyncio.start_unix_server(on_client, path=socket_path, backlog=256)
        os.chmod(socket_path, 0o600)  # root's runtime only (not umask: that is process-wide in the daemon)
        inode = os.stat(socket_path).st_ino
    except BaseException:
        netlink.close_shared_host()
        raise
    log.info("cni server listening socket=%s", socket_path)
    try:
        async with server:
            if ready is not None:
                ready.set()
            await server.serve_forever()
    finally:
        netlink.close_shared_host()
        with contextlib.suppress(FileNotFoundError):
            if os.stat(socket_path).st_ino == inode:  # still ours, not a successor's
                os.unlink(socket_path)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m cni.server", description="nodelet-cni request server")
    p.add_argument("--socket", default=DEFAULT_SOCKET)
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        with contextlib.suppress(asyncio.CancelledError):
            await serve(args.socket)

    asyncio.run(run())


if __name__ == "__main__":
    main()
