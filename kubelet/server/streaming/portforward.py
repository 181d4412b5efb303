"""`pods/portforward`: kubectl's SPDY/3.1 port-forward protocol, relayed to the runtime's.

kubectl 1.32 first dials a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io` and runs SPDY inside its binary
messages; failing that, a plain `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io`. Per
forwarded connection it opens an `error` stream and a `data` stream carrying headers `port` and `requestID`.

Into the pod: one SPDY session to the URL the CRI `PortForward` call returns, with the same stream pair per
connection. The runtime dials `localhost:<port>` inside the sandbox's network namespace (containerd), so servers
bound to the pod's loopback work, hostNetwork pods work, and nodelet needs no setns or nsenter of its own. The URL's
token is single-use and short-lived, so the runtime session is dialled at the first connection and again whenever
it has ended.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from dataclasses import dataclass, field

from aiohttp import web

from kubelet.server.streaming.pods import StreamTarget, forbidden_for, locator_for, status_response
from kubelet.server.streaming.spdy import SpdySession, SpdyStream
from kubelet.server.streaming.transports import RuntimeDialError, UpgradedTransport, WebSocketTransport, dial_runtime

log = logging.getLogger(__name__)

__all__ = ["handle_portforward", "parse_port"]

PROTOCOL = "portforward.k8s.io"
WS_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
PAIR_TIMEOUT = 30.0
ERROR_WAIT = 5.0  # for the runtime's error stream after the data stream has ended


def parse_port(value: str) -> int | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 else None


@dataclass
class _Pair:
    error: SpdyStream | None = None
    data: SpdyStream | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class _Forwarder:
    """One kubectl port-forward session: pairs its streams and relays each pair through the runtime."""

    def __init__(self, client: SpdySession, runtime: object, target: StreamTarget) -> None:
        self.client, self.runtime, self.target = client, runtime, target
        self.pairs: dict[str, _Pair] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._backend: tuple[SpdySession, asyncio.Task[None]] | None = None
        self._backend_lock = asyncio.Lock()
        self.ctx = f"pod={target.namespace}/{target.name}"

    async def run(self) -> None:
        while (s := await self.client.accept()) is not None:
            rid = s.headers.get("requestid", "")
            st = s.headers.get("streamtype", "")
            if st not in ("error", "data") or not rid:
                log.warning("port-forward: stream without a valid streamType/requestID %s headers=%s", self.ctx, s.headers)
                await s.reset()
                continue
            await s.reply()
            pair = self.pairs.setdefault(rid, _Pair())
            if getattr(pair, st) is not None:
                await s.reset()
                continue
            setattr(pair, st, s)
            if pair.error is not None and pair.data is not None:
                del self.pairs[rid]
                if pair.timer:
                    pair.timer.cancel()
                self._spawn(self.forward(pair.error, pair.data))
            elif pair.timer is None:
                pair.timer = asyncio.get_running_loop().call_later(PAIR_TIMEOUT, self._expire, rid)

    def _expire(self, rid: str) -> None:
        pair = self.pairs.pop(rid, None)
        if pair is not None:
            for s in (pair.error, pair.data):
                if s is not None:
                    self._spawn(s.reset())
            log.warning("port-forward: timed out waiting for the stream pair %s requestID=%s", self.ctx, rid)

    def _spawn(self, coro: object) -> None:
        t: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _runtime_session(self) -> SpdySession:
        async with self._backend_lock:
            if self._backend is not None and not self._backend[0].closed.is_set():
                return self._backend[0]
            url = await self.runtime.port_forward_url(self.target.sandbox_id)  # type: ignore[attr-defined]
            session, chosen = await dial_runtime(url, [PROTOCOL], name=f"portforward:{self.target.namespace}/{self.target.name}")
            if chosen and chosen != PROTOCOL:
                await session.close()
                raise RuntimeDialError(f"the runtime chose stream protocol {chosen!r}")
            task = asyncio.get_running_loop().create_task(session.run())
            self._backend = (session, task)
            return session

    async def forward(self, error: SpdyStream, data: SpdyStream) -> None:
        port_s, rid = data.headers.get("port", ""), data.headers.get("requestid", "")
        port = parse_port(port_s)

        async def fail(message: str) -> None:
            with contextlib.suppress(ConnectionError):
                await error.write(message.encode())
                await error.close()
            await data.reset()

        if port is None:
            await fail(f"invalid port {port_s!r}")
            return
        try:
            backend = await self._runtime_session()
            headers = {"port": str(port), "requestid": rid}
            r_error = await backend.open_stream({**headers, "streamtype": "error"})
            await r_error.wait_reply(PAIR_TIMEOUT)
            await r_error.close()  # we never write to it, as kubectl does
            r_data = await backend.open_stream({**headers, "streamtype": "data"})
            await r_data.wait_reply(PAIR_TIMEOUT)
        except Exception as e:  # CRI refused, runtime unreachable, stream refused
            log.warning("port-forward to %s port=%s failed: %s", self.ctx, port, e)
            await fail(f"error forwarding port {port} to pod {self.target.name}: {e}")
            return
        log.debug("port-forward connection %s port=%s requestID=%s", self.ctx, port, rid)

        async def copy(src: SpdyStream, dst: SpdyStream) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await src.read():
                    await dst.write(chunk)
                await dst.close()

        up = asyncio.get_running_loop().create_task(copy(data, r_data))
        try:
            await copy(r_data, data)  # until the pod side has finished (or the runtime session ended)
            # The runtime closes the data stream first and then reports (or not) on its error stream, which it
            # closes right after; kubectl closes the local connection once our error stream has ended.
            try:
                message = await asyncio.wait_for(r_error.read_all(), ERROR_WAIT)
            except asyncio.TimeoutError:
                message = r_error.take_buffered()
            with contextlib.suppress(ConnectionError):
                if message:
                    await error.write(message)
                await error.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(up), PAIR_TIMEOUT)
        finally:
            up.cancel()
            for s in (r_data, r_error):
                if not (s.local_closed and s.remote_closed):
                    await s.reset()

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        if self._backend is not None:
            await self._backend[0].close()
            self._backend[1].cancel()


async def handle_portforward(request: web.Request) -> web.StreamResponse:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    if (denied := forbidden_for(request, "portforward")) is not None:
        return denied
    upgrade = request.headers.get("Upgrade", "").lower()
    ws_protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    offered = [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", ()) for p in v.split(",")]
    if upgrade == "websocket":
        if WS_PROTOCOL not in ws_protocols:
            return status_response(400, f"WebSocket port-forward needs subprotocol {WS_PROTOCOL} (offered: {ws_protocols or 'none'})")
    elif upgrade.startswith("spdy/3.1"):
        if PROTOCOL not in offered:
            return status_response(400, f"no supported port-forward protocol offered (nodelet speaks {PROTOCOL}); got {offered}")
    else:
        return status_response(400, "Upgrade request required")
    target = await locator_for(request.app).find(ns, name)
    if target is None:
        return status_response(404, f'pods "{name}" not found', details={"name": name, "kind": "pods"})
    if not target.sandbox_id or not target.sandbox_ready:
        return status_response(400, f"pod {target.name} has no running sandbox to forward ports into")
    response: web.StreamResponse
    if upgrade == "websocket":
        ws = web.WebSocketResponse(protocols=(WS_PROTOCOL,), autoping=True, heartbeat=None, max_msg_size=16 << 20)
        await ws.prepare(request)
        client = SpdySession(WebSocketTransport(ws), client=False, name=f"pf-client:{ns}/{name}")
        response = ws
    else:
        transport = UpgradedTransport(request)
        await transport.upgrade({"X-Stream-Protocol-Version": PROTOCOL})
        client = SpdySession(transport, client=False, name=f"pf-client:{ns}/{name}")
        response = transport.response  # type: ignore[assignment]
    log.info("port-forward opened pod=%s/%s transport=%s", ns, target.name, "websocket" if upgrade == "websocket" else "spdy")
    fwd = _Forwarder(client, request.app["nodelet.runtime"], target)
    reader = asyncio.get_running_loop().create_task(client.run())
    try:
        await fwd.run()  # until the client's session ends
    finally:
        await fwd.close()
        await client.close()
        reader.cancel()
        log.info("port-forward closed pod=%s/%s", ns, target.name)
    return response
