"""One unary gRPC call (grpc.health.v1.Health/Check) over HTTP/2 on a probe socket, framed by the ``h2`` library.

Why not grpc.aio: its channels own their sockets, so the probe socket options (upstream's SO_LINGER 1 s probe dialer,
TCP_NODELAY) cannot be set. ``h2`` does the HTTP/2 state machine and HPACK; this module only moves bytes between the
socket and the connection and maps the outcome to gRPC status codes the way grpc-go reports them.
"""
from __future__ import annotations

import asyncio
from typing import Any
import socket
import struct
from dataclasses import dataclass
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

__all__ = ["GRPCCallError", "ConnectPhaseError", "GRPCReply", "grpc_unary_call", "GRPC_CODES"]

GRPC_CODES = ("OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
              "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
              "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated")
# grpc-go's HTTP status → code mapping for a non-200 reply
_HTTP_TO_GRPC = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}
_CANCEL = 8  # RST_STREAM CANCEL → Canceled, anything else → Internal (grpc-go)


class ConnectPhaseError(Exception):
    """The transport never became ready (no server SETTINGS): like a grpc-go dial that keeps failing."""


class GRPCCallError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def code_name(self) -> str:
        return GRPC_CODES[self.code] if 0 <= self.code < len(GRPC_CODES) else f"Code({self.code})"


@dataclass(frozen=True, kw_only=True)
class GRPCReply:
    message: bytes


async def grpc_unary_call(sock: socket.socket, *, authority: str, path: str, message: bytes, user_agent: str,
                          timeout_ms: int, on_ready: object = None) -> GRPCReply:
    """Send one unary request on stream 1 and read the reply. Raises ConnectPhaseError before the server's
    SETTINGS arrive, GRPCCallError for a non-OK status. ``on_ready()`` is called once the transport is ready."""
    loop = asyncio.get_running_loop()
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority),
        ("content-type", "application/grpc"), ("user-agent", user_agent), ("te", "trailers"),
        ("grpc-timeout", f"{max(timeout_ms, 1)}m"),
    ])
    conn.send_data(stream, b"\x00" + struct.pack(">I", len(message)) + message, end_stream=True)
    try:
        await loop.sock_sendall(sock, conn.data_to_send())
    except OSError as e:
        raise ConnectPhaseError(str(e)) from e
    ready = False
    headers: list[tuple[str, str]] = []
    trailers: list[tuple[str, str]] = []
    data = b""
    done = False
    while not done:
        try:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                raise ConnectionError("EOF")
        except (OSError, ConnectionError) as e:
            if not ready:
                raise ConnectPhaseError(str(e) or "EOF") from e
            raise GRPCCallError(14, f"error reading from server: {e or 'EOF'}") from e
        try:
            events = conn.receive_data(chunk)
        except h2.exceptions.ProtocolError as e:
            if not ready:
                raise ConnectPhaseError(f"http2: {e}") from e
            raise GRPCCallError(13, f"http2: {e}") from e
        for ev in events:
            if not ready:
                if not isinstance(ev, h2.events.RemoteSettingsChanged):
                    raise ConnectPhaseError("server did not start with SETTINGS")
                ready = True
                if callable(on_ready):
                    on_ready()
            if isinstance(ev, h2.events.ConnectionTerminated):
                raise GRPCCallError(14, "the connection is draining due to a server GOAWAY")
            if getattr(ev, "stream_id", stream) != stream:
                continue
            if isinstance(ev, h2.events.StreamReset):
                raise GRPCCallError(1 if ev.error_code == _CANCEL else 13,
                                    f"stream terminated by RST_STREAM with error code: {_rst_name(ev.error_code)}")
            if isinstance(ev, h2.events.ResponseReceived):
                headers = _str_headers(ev.headers)
            elif isinstance(ev, h2.events.TrailersReceived):
                trailers = _str_headers(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                data += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if isinstance(ev, h2.events.StreamEnded):
                done = True
        pending = conn.data_to_send()  # SETTINGS ACK, PING ACK, WINDOW_UPDATE
        if pending:
            try:
                await loop.sock_sendall(sock, pending)
            except OSError:
                pass  # the reply may already be complete; a broken write shows up as EOF on the next read
    return _reply(headers, trailers, data)


def _str_headers(raw: Any) -> list[tuple[str, str]]:
    """h2 decodes headers to str with header_encoding set; bytes are decoded the same way if not."""
    return [(k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v) for k, v in raw]


def _reply(headers: list[tuple[str, str]], trailers: list[tuple[str, str]], data: bytes) -> GRPCReply:
    first = dict(headers)
    status = first.get(":status", "")
    if status != "200":
        code = int(status) if status.isdigit() else 0
        raise GRPCCallError(_HTTP_TO_GRPC.get(code, 2),
                            f"unexpected HTTP status code received from server: {status or 'none'}")
    meta = {**first, **dict(trailers)}  # a trailers-only reply carries grpc-status in the headers
    grpc_status = meta.get("grpc-status")
    if grpc_status is None:
        raise GRPCCallError(13, "server closed the stream without sending trailers")
    if grpc_status != "0":
        code = int(grpc_status) if grpc_status.isdigit() else 2
        raise GRPCCallError(code, unquote(meta.get("grpc-message", "")))
    if len(data) < 5:
        raise GRPCCallError(13, "server returned no response message")
    if data[0] != 0:
        raise GRPCCallError(13, "compressed response message not supported")
    length = int.from_bytes(data[1:5], "big")
    return GRPCReply(message=data[5:5 + length])


def _rst_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return str(code)

