"""`pods/exec` and `pods/attach`: kubectl ↔ nodelet ↔ the runtime's streaming server.

kubectl 1.32 first asks for a WebSocket with subprotocol `v5.channel.k8s.io` (one channel byte per message: 0 stdin,
1 stdout, 2 stderr, 3 status, 4 resize; `[255, ch]` closes a channel); if that gets anything but a 101 it falls back
to SPDY/3.1 with one stream per channel. Towards the runtime nodelet always speaks SPDY/3.1 with
`v4.channel.k8s.io`: containerd 1.6's streaming server has no v5, and over its v4 WebSocket stdin cannot be
half-closed — `echo x | kubectl exec -i … cat` and `kubectl cp` into a pod need that EOF. Over SPDY it is a FIN.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from kubelet.server.streaming.pods import StreamTarget, forbidden_for, locator_for, status_response
from kubelet.server.streaming.spdy import SpdySession, SpdyStream
from kubelet.server.streaming.transports import RuntimeDialError, UpgradedTransport, dial_runtime

log = logging.getLogger(__name__)

__all__ = ["CommandOptions", "handle_attach", "handle_exec", "parse_command_options"]

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHANNEL_OF = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR, "resize": RESIZE}
STREAM_CREATION_TIMEOUT = 30.0  # the kubelet's streamCreationTimeout
SUCCESS = json.dumps({"metadata": {}, "status": "Success"}).encode()


@dataclass(frozen=True, kw_only=True)
class CommandOptions:
    command: tuple[str, ...]
    container: str
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @property
    def stream_types(self) -> tuple[str, ...]:
        """The streams a client opens besides `error` (v4: no stderr with a tty, resize only with one)."""
        out = [n for n, on in (("stdin", self.stdin), ("stdout", self.stdout), ("stderr", self.stderr and not self.tty))
               if on]
        return tuple(out + (["resize"] if self.tty else []))


def _flag(query: object, name: str) -> bool:
    v = query.get(name, "")  # type: ignore[attr-defined]
    return str(v).lower() in ("1", "true", "t", "yes")


def parse_command_options(query: object) -> CommandOptions:
    """The exec/attach query (`command=a&command=b&container=c&stdin=true&stdout=true&stderr=true&tty=true`)."""
    return CommandOptions(command=tuple(query.getall("command", ())), container=str(query.get("container", "")),  # type: ignore[attr-defined]
                          stdin=_flag(query, "stdin"), stdout=_flag(query, "stdout"), stderr=_flag(query, "stderr"),
                          tty=_flag(query, "tty"))


def _pick_container(target: StreamTarget, name: str) -> tuple[str, str] | str:
    """(container name, id), or the error message."""
    if not name:
        if len(target.containers) != 1:
            return (f"a container name must be specified for pod {target.name}, choose one of: "
                    f"[{' '.join(sorted(target.containers))}]")
        name = next(iter(target.containers))
    got = target.containers.get(name)
    if got is None:
        return f"container {name} is not valid for pod {target.name}"
    cid, running = got
    if not running:
        return f"container {name} of pod {target.name} is not running"
    return name, cid


async def handle_exec(request: web.Request) -> web.StreamResponse:
    return await _handle(request, attach=False)


async def handle_attach(request: web.Request) -> web.StreamResponse:
    return await _handle(request, attach=True)


def _wants_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _wants_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/3.1")


async def _handle(request: web.Request, *, attach: bool) -> web.StreamResponse:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    verb = "attach" if attach else "exec"
    if (denied := forbidden_for(request, verb)) is not None:
        return denied
    opts = parse_command_options(request.query)
    if not attach and not opts.command:
        return status_response(400, "you must specify at least 1 command")
    if not (opts.stdin or opts.stdout or opts.stderr):
        return status_response(400, "you must specify at least one of stdin, stdout, stderr")
    ws_protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    if _wants_websocket(request):
        if V5 not in ws_protocols:  # not a 101: kubectl then falls back to SPDY
            return status_response(400, f"WebSocket {verb} needs subprotocol {V5} (offered: {ws_protocols or 'none'})")
    elif not _wants_spdy(request):
        return status_response(400, "Upgrade request required")
    target = await locator_for(request.app).find(ns, name)
    if target is None:
        return status_response(404, f'pods "{name}" not found', details={"name": name, "kind": "pods"})
    name = target.name
    picked = _pick_container(target, opts.container)
    if isinstance(picked, str):
        return status_response(400, picked)
    cname, cid = picked
    runtime = request.app["nodelet.runtime"]
    log_ctx = f"pod={ns}/{name} container={cname} verb={verb}"
    try:
        if attach:
            url = await runtime.attach_url(cid, tty=opts.tty, stdin=opts.stdin, stdout=opts.stdout, stderr=opts.stderr)
        else:
            url = await runtime.exec_url(cid, list(opts.command), tty=opts.tty, stdin=opts.stdin, stdout=opts.stdout,
                                         stderr=opts.stderr)
        backend = await RuntimeCommand.open(url, opts, name=f"{verb}:{ns}/{name}")
    except RuntimeDialError as e:
        log.warning("%s streaming failed: %s", log_ctx, e)
        return status_response(500, f"{verb} into {cname}: {e}")
    except Exception as e:  # the CRI said no (container gone, Unimplemented…): a Status, not a traceback
        log.warning("%s runtime refused: %s", log_ctx, e)
        return status_response(500, f"{verb} into {cname}: {e}")
    log.info("%s stream opened protocol=%s", log_ctx, "websocket" if _wants_websocket(request) else "spdy")
    try:
        if _wants_websocket(request):
            return await _serve_websocket(request, backend, opts)
        return await _serve_spdy(request, backend, opts)
    finally:
        await backend.close()
        log.info("%s stream closed", log_ctx)


class RuntimeCommand:
    """The runtime side of one exec/attach: a SPDY session with its error/stdin/stdout/stderr/resize streams."""

    def __init__(self, session: SpdySession, task: asyncio.Task[None], streams: dict[str, SpdyStream]) -> None:
        self.session, self.task, self.streams = session, task, streams

    @classmethod
    async def open(cls, url: str, opts: CommandOptions, *, name: str) -> RuntimeCommand:
        session, chosen = await dial_runtime(url, [V4], name=name)
        task = asyncio.get_running_loop().create_task(session.run(), name=f"spdy-{name}")
        try:
            if chosen and chosen != V4:
                raise RuntimeDialError(f"the runtime chose stream protocol {chosen!r}, nodelet speaks {V4}")
            streams = {}
            for st in ("error", *opts.stream_types):
                streams[st] = await session.open_stream({"streamtype": st})
            for s in streams.values():
                await s.wait_reply(STREAM_CREATION_TIMEOUT)
        except BaseException as e:
            await session.close()
            task.cancel()
            if isinstance(e, (asyncio.TimeoutError, ConnectionError)):
                raise RuntimeDialError(f"the runtime did not accept the streams: {e!r}") from None
            raise
        return cls(session, task, streams)

    async def status(self) -> bytes:
        """The error stream's Status (v4: a v1 Status JSON, Success included), once the command has ended."""
        body = await self.streams["error"].read_all()
        return body.strip() or SUCCESS

    async def close(self) -> None:
        await self.session.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self.task, 5)


async def _pump(read: Callable[[], Awaitable[bytes]], write: Callable[[bytes], Awaitable[None]]) -> None:
    while data := await read():
        await write(data)


async def _finish(tasks: list[asyncio.Task[Any]], timeout: float = 5.0) -> None:
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            t.cancel()


async def _serve_websocket(request: web.Request, backend: RuntimeCommand, opts: CommandOptions) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(V5,), autoping=True, heartbeat=None, max_msg_size=16 << 20)
    await ws.prepare(request)
    loop = asyncio.get_running_loop()
    send_lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        async with send_lock:
            await ws.send_bytes(bytes([channel]) + data)

    def sender(ch: int) -> Callable[[bytes], Awaitable[None]]:
        return lambda d: send(ch, d)

    outputs = [loop.create_task(_pump(backend.streams[st].read, sender(CHANNEL_OF[st])))
               for st in ("stdout", "stderr") if st in backend.streams]

    async def from_client() -> None:
        stdin, resize = backend.streams.get("stdin"), backend.streams.get("resize")
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            ch, body = msg.data[0], bytes(msg.data[1:])
            if ch == STDIN and stdin is not None and body:
                await stdin.write(body)
            elif ch == RESIZE and resize is not None:
                await resize.write(body)
            elif ch == CLOSE and body and body[0] == STDIN and stdin is not None:
                await stdin.close()

    inbound = loop.create_task(from_client())
    status_task = loop.create_task(backend.status())
    try:
        await asyncio.wait([status_task, inbound], return_when=asyncio.FIRST_COMPLETED)
        log.debug("exec websocket: status_done=%s inbound_done=%s", status_task.done(), inbound.done())
        if inbound.done() and not inbound.cancelled() and inbound.exception() is not None:
            log.warning("exec websocket: reading the client failed: %r", inbound.exception())
        if status_task.done():
            log.debug("exec websocket: status=%r", status_task.result())
            await _finish(outputs)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await send(ERROR, status_task.result())
            await ws.close(code=1000)
        # else: the client went away; closing the runtime session ends the stream there too
    finally:
        for t in (inbound, status_task, *outputs):
            t.cancel()
    return ws


async def _serve_spdy(request: web.Request, backend: RuntimeCommand, opts: CommandOptions) -> web.StreamResponse:
    offered = [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", ()) for p in v.split(",")]
    for proto in (V4, "v3.channel.k8s.io", "v2.channel.k8s.io"):
        if proto in offered:
            break
    else:
        return status_response(400, f"no supported stream protocol offered (nodelet speaks {V4}); got {offered}")
    transport = UpgradedTransport(request)
    await transport.upgrade({"X-Stream-Protocol-Version": proto})
    client = SpdySession(transport, client=False, name=f"client-{request.match_info['name']}")
    loop = asyncio.get_running_loop()
    reader = loop.create_task(client.run())
    expected = {"error", *opts.stream_types}
    if proto == "v2.channel.k8s.io":
        expected.discard("resize")
    got: dict[str, SpdyStream] = {}
    tasks: list[asyncio.Task[Any]] = []
    try:
        async def collect() -> None:
            while expected - set(got):
                s = await client.accept()
                if s is None:
                    raise ConnectionResetError("client went away while opening streams")
                st = s.headers.get("streamtype", "")
                if st not in expected or st in got:
                    await s.reset()
                    continue
                await s.reply()
                got[st] = s

        try:
            await asyncio.wait_for(collect(), STREAM_CREATION_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError) as e:
            log.warning("exec over SPDY: streams not opened: %r", e)
            return transport.response or web.Response(status=500)

        async def copy(src: SpdyStream, dst: SpdyStream) -> None:
            with contextlib.suppress(ConnectionError):
                await _pump(src.read, dst.write)
                await dst.close()

        for st in ("stdin", "resize"):
            if st in got and st in backend.streams:
                tasks.append(loop.create_task(copy(got[st], backend.streams[st])))
        outputs = [loop.create_task(copy(backend.streams[st], got[st])) for st in ("stdout", "stderr")
                   if st in got and st in backend.streams]
        status_task = loop.create_task(backend.status())
        tasks += [*outputs, status_task]
        await asyncio.wait([status_task, reader], return_when=asyncio.FIRST_COMPLETED)
        if status_task.done():
            await _finish(outputs)
            status = status_task.result()
            with contextlib.suppress(ConnectionError):
                if status != SUCCESS and b'"Success"' not in status:
                    await got["error"].write(status)
                await got["error"].close()
    finally:
        for t in tasks:
            t.cancel()
        await client.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(reader, 5)
    return transport.response or web.Response(status=500)
