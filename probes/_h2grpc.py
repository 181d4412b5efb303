"""One unary gRPC call (grpc.health.v1.Health/Check) over a minimal HTTP/2 client on a probe socket.

Why not grpc.aio: its sockets cannot take SO_LINGER 0, so every probe left a TIME-WAIT entry (35 per 50 probes
measured here); upstream dials gRPC probes with the same linger-0 dialer as HTTP and TCP. This client speaks just
enough HTTP/2 (RFC 9113) for one request on stream 1: preface, SETTINGS (and their ACK), HEADERS(+CONTINUATION),
DATA, RST_STREAM, GOAWAY, PING; HPACK in probes/_hpack.py.
"""
from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from urllib.parse import unquote

from probes._hpack import Decoder, HPACKError, encode_header

__all__ = ["GRPCCallError", "ConnectPhaseError", "GRPCReply", "grpc_unary_call", "GRPC_CODES"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
_MAX_FRAME = 1 << 20

GRPC_CODES = ("OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
              "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
              "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated")
_HTTP_TO_GRPC = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}


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


def _frame(type_: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream) + payload


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buf = b""

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def read_frame(self) -> tuple[int, int, int, bytes]:
        while len(self.buf) < 9:
            await self._fill()
        length = int.from_bytes(self.buf[:3], "big")
        if length > _MAX_FRAME:
            raise ConnectionError("frame too large")
        while len(self.buf) < 9 + length:
            await self._fill()
        type_, flags = self.buf[3], self.buf[4]
        stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
        payload, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
        return type_, flags, stream, payload

    async def _fill(self) -> None:
        data = await self.loop.sock_recv(self.sock, 65536)
        if not data:
            raise ConnectionError("EOF")
        self.buf += data


def _strip_padding(flags: int, payload: bytes, *, headers: bool) -> bytes:
    if flags & PADDED:
        pad = payload[0]
        payload = payload[1:len(payload) - pad]
    if headers and flags & PRIORITY_FLAG:
        payload = payload[5:]
    return payload


async def grpc_unary_call(sock: socket.socket, *, authority: str, path: str, message: bytes, user_agent: str,
                          timeout_ms: int, on_ready: object = None) -> GRPCReply:
    """Send one unary request on stream 1 and read the reply. Raises ConnectPhaseError before the server's
    SETTINGS arrive, GRPCCallError for a non-OK status. ``on_ready()`` is called once the transport is ready."""
    conn = _Conn(sock)
    block = b"".join([
        encode_header(":method", "POST"), encode_header(":scheme", "http"), encode_header(":path", path),
        encode_header(":authority", authority), encode_header("content-type", "application/grpc"),
        encode_header("user-agent", user_agent), encode_header("te", "trailers"),
        encode_header("grpc-timeout", f"{max(timeout_ms, 1)}m"),
    ])
    body = b"\x00" + struct.pack(">I", len(message)) + message
    try:
        await conn.send(_PREFACE + _frame(SETTINGS, 0, 0) + _frame(HEADERS, END_HEADERS, 1, block)
                        + _frame(DATA, END_STREAM, 1, body))
    except OSError as e:
        raise ConnectPhaseError(str(e)) from e
    decoder = Decoder()
    ready = False
    header_lists: list[list[tuple[str, str]]] = []
    pending_block = b""
    pending_end = False
    data = b""
    while True:
        try:
            type_, flags, stream, payload = await conn.read_frame()
        except (OSError, ConnectionError) as e:
            if not ready:
                raise ConnectPhaseError(str(e) or "EOF") from e
            raise GRPCCallError(14, f"error reading from server: {e or 'EOF'}") from e
        if not ready:
            if type_ != SETTINGS or flags & ACK:
                raise ConnectPhaseError("server did not start with SETTINGS")
            ready = True
            if callable(on_ready):
                on_ready()
        if type_ == SETTINGS:
            if not flags & ACK:
                await conn.send(_frame(SETTINGS, ACK, 0))
            continue
        if type_ == PING:
            if not flags & ACK:
                await conn.send(_frame(PING, ACK, 0, payload))
            continue
        if type_ == GOAWAY:
            raise GRPCCallError(14, "the connection is draining due to a server GOAWAY")
        if stream != 1:
            continue  # WINDOW_UPDATE, PRIORITY, anything on another stream
        if type_ == RST_STREAM:
            code = int.from_bytes(payload[:4], "big")
            raise GRPCCallError(13 if code != 8 else 1,
                                f"stream terminated by RST_STREAM with error code: {_rst_name(code)}")
        if type_ in (HEADERS, CONTINUATION):
            pending_block += _strip_padding(flags, payload, headers=type_ == HEADERS) if type_ == HEADERS else payload
            if type_ == HEADERS:
                pending_end = bool(flags & END_STREAM)
            if flags & END_HEADERS:
                try:
                    header_lists.append(decoder.decode(pending_block))
                except HPACKError as e:
                    raise GRPCCallError(13, f"hpack: {e}") from e
                pending_block = b""
                if pending_end:
                    break
            continue
        if type_ == DATA:
            data += _strip_padding(flags, payload, headers=False)
            if flags & END_STREAM:
                break
    return _reply(header_lists, data)


def _reply(header_lists: list[list[tuple[str, str]]], data: bytes) -> GRPCReply:
    first = dict(header_lists[0]) if header_lists else {}
    status = first.get(":status", "")
    if status != "200":
        code = int(status) if status.isdigit() else 0
        raise GRPCCallError(_HTTP_TO_GRPC.get(code, 2),
                            f"unexpected HTTP status code received from server: {status or 'none'}")
    trailers: dict[str, str] = {}
    for hl in header_lists:
        trailers.update(hl)
    grpc_status = trailers.get("grpc-status")
    if grpc_status is None:
        raise GRPCCallError(13, "server closed the stream without sending trailers")
    if grpc_status != "0":
        code = int(grpc_status) if grpc_status.isdigit() else 2
        raise GRPCCallError(code, unquote(trailers.get("grpc-message", "")))
    if len(data) < 5:
        raise GRPCCallError(13, "server returned no response message")
    if data[0] != 0:
        raise GRPCCallError(13, "compressed response message not supported")
    length = int.from_bytes(data[1:5], "big")
    return GRPCReply(message=data[5:5 + length])


def _rst_name(code: int) -> str:
    names = ("NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
             "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
             "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED")
    return names[code] if code < len(names) else str(code)
