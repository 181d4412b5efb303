"""SPDY/3.1 framing and an asyncio session — the transport kubectl uses for port-forward (and for exec/attach when
the WebSocket attempt fails), and the one the runtime's streaming server (containerd, Go `moby/spdystream`) speaks.

Pure part (`render_frame`, `parse_frame`, `HeaderCodec`): frames as frozen dataclasses; header blocks compressed with
one zlib stream per direction seeded with the SPDY/3 dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1), each
block ended with a sync flush.

`SpdySession` runs one connection over any byte transport (a TCP stream, or the binary messages of a WebSocket for
`SPDY/3.1+portforward.k8s.io`). Flow control (§2.6.8/3.1): we always advertise our receive windows with
WINDOW_UPDATE; we *enforce* the peer's windows only once the peer shows it does flow control (sends a WINDOW_UPDATE
or an INITIAL_WINDOW_SIZE setting). spdystream — kubectl's and containerd's SPDY — ignores windows and never sends
an update, so enforcing a 64 KiB window against it would stall every stream after 64 KiB.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, Union

log = logging.getLogger(__name__)

__all__ = [
    "DICTIONARY", "DataFrame", "GoAway", "HeaderCodec", "Headers", "Ping", "RstStream", "Settings", "SpdyError",
    "SpdySession", "SpdyStream", "SynReply", "SynStream", "WindowUpdate", "parse_frame", "render_frame",
]

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN, FLAG_UNIDIRECTIONAL = 0x01, 0x02
SETTINGS_INITIAL_WINDOW_SIZE = 7
DEFAULT_WINDOW = 64 * 1024
MAX_FRAME_DATA = 16 * 1024  # what we put in one data frame
MAX_FRAME_LENGTH = (1 << 24) - 1
MAX_HEADER_BLOCK = 1 << 20  # decompressed header bytes we accept per block
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR, FLOW_CONTROL_ERROR = range(1, 8)
STREAM_IN_USE, STREAM_ALREADY_CLOSED = 8, 9

DICTIONARY = (
    b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00\x06de"
    b"lete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00\x0faccept-"
    b"encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03age\x00\x00\x00"
    b"\x05allow\x00\x00\x00\x0dauthorization\x00\x00\x00\x0dcache-control\x00\x00\x00\x0aconnection\x00"
    b"\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language\x00\x00\x00"
    b"\x0econtent-length\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md5\x00\x00\x00\x0dcontent"
    b"-range\x00\x00\x00\x0ccontent-type\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00"
    b"\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11i"
    b"f-modified-since\x00\x00\x00\x0dif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-s"
    b"ince\x00\x00\x00\x0dlast-modified\x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00"
    b"\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\x00\x00\x00\x05range"
    b"\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00"
    b"\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\x0auser-agent"
    b"\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00"
    b"\x00\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07ver"
    b"sion\x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\x0aset-cookie\x00"
    b"\x00\x00\x0akeep-alive\x00\x00\x00\x06origin10010120120220520630030230330430530630740240540640740840"
    b"9410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanent"
    b"ly400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemen"
    b"ted503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, T"
    b"hu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xh"
    b"tml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-88"
    b"59-1,utf-,*,enq=0."
)


class SpdyError(Exception):
    """A protocol violation by the peer (the session answers with GOAWAY and ends)."""


HeaderMap = Mapping[str, str]  # lowercased names; several values of one name are joined with NUL (Go's convention)


@dataclass(frozen=True, kw_only=True)
class DataFrame:
    stream_id: int
    data: bytes = b""
    fin: bool = False


@dataclass(frozen=True, kw_only=True)
class SynStream:
    stream_id: int
    headers: HeaderMap
    associated_to: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True, kw_only=True)
class SynReply:
    stream_id: int
    headers: HeaderMap = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True, kw_only=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True, kw_only=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()  # (flags, id, value)
    clear: bool = False


@dataclass(frozen=True, kw_only=True)
class Ping:
    id: int


@dataclass(frozen=True, kw_only=True)
class GoAway:
    last_good_stream_id: int
    status: int = 0


@dataclass(frozen=True, kw_only=True)
class Headers:
    stream_id: int
    headers: HeaderMap
    fin: bool = False


@dataclass(frozen=True, kw_only=True)
class WindowUpdate:
    stream_id: int  # 0: the session window (SPDY/3.1)
    delta: int


Frame = Union[DataFrame, SynStream, SynReply, RstStream, Settings, Ping, GoAway, Headers, WindowUpdate]


def render_header_block(headers: HeaderMap) -> bytes:
    """The uncompressed name/value block: 32-bit count, then 32-bit-length-prefixed names and values."""
    out = [struct.pack("!I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out += [struct.pack("!I", len(n)), n, struct.pack("!I", len(v)), v]
    return b"".join(out)


def parse_header_block(block: bytes) -> dict[str, str]:
    try:
        (count,) = struct.unpack_from("!I", block, 0)
        pos, out = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from("!I", block, pos)
            name = block[pos + 4:pos + 4 + n]
            pos += 4 + n
            (m,) = struct.unpack_from("!I", block, pos)
            value = block[pos + 4:pos + 4 + m]
            pos += 4 + m
            if len(name) != n or len(value) != m or not name:
                raise SpdyError("truncated header block")
            key = name.decode("latin-1").lower()
            if key in out:
                raise SpdyError(f"duplicate header {key!r}")
            out[key] = value.decode("utf-8", errors="replace")
    except struct.error as e:
        raise SpdyError(f"truncated header block: {e}") from None
    return out


class HeaderCodec:
    """One compression context per direction for the whole session, as SPDY/3 requires."""

    def __init__(self) -> None:
        self._c = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._d = zlib.decompressobj(15, DICTIONARY)

    def compress(self, headers: HeaderMap) -> bytes:
        return self._c.compress(render_header_block(headers)) + self._c.flush(zlib.Z_SYNC_FLUSH)

    def decompress(self, data: bytes) -> dict[str, str]:
        try:
            block = self._d.decompress(data, MAX_HEADER_BLOCK)
        except zlib.error as e:
            raise SpdyError(f"header block does not decompress: {e}") from None
        if self._d.unconsumed_tail:
            raise SpdyError(f"header block larger than {MAX_HEADER_BLOCK} bytes")
        return parse_header_block(block)


def _control(ftype: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_LENGTH:
        raise ValueError("control frame too long")
    return struct.pack("!HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def render_frame(frame: Frame, codec: HeaderCodec) -> bytes:
    """The wire bytes of one frame (header blocks go through the session's compressor, so order matters)."""
    if isinstance(frame, DataFrame):
        if len(frame.data) > MAX_FRAME_LENGTH:
            raise ValueError("data frame too long")
        return struct.pack("!II", frame.stream_id & 0x7FFFFFFF, (int(frame.fin) << 24) | len(frame.data)) + frame.data
    if isinstance(frame, SynStream):
        flags = (FLAG_FIN if frame.fin else 0) | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
        body = struct.pack("!IIBB", frame.stream_id, frame.associated_to, (frame.priority & 7) << 5, 0)
        return _control(SYN_STREAM, flags, body + codec.compress(frame.headers))
    if isinstance(frame, SynReply):
        return _control(SYN_REPLY, int(frame.fin), struct.pack("!I", frame.stream_id) + codec.compress(frame.headers))
    if isinstance(frame, Headers):
        return _control(HEADERS, int(frame.fin), struct.pack("!I", frame.stream_id) + codec.compress(frame.headers))
    if isinstance(frame, RstStream):
        return _control(RST_STREAM, 0, struct.pack("!II", frame.stream_id, frame.status))
    if isinstance(frame, Settings):
        body = struct.pack("!I", len(frame.entries)) + b"".join(
            struct.pack("!II", (f << 24) | i, v) for f, i, v in frame.entries)
        return _control(SETTINGS, int(frame.clear), body)
    if isinstance(frame, Ping):
        return _control(PING, 0, struct.pack("!I", frame.id))
    if isinstance(frame, GoAway):
        return _control(GOAWAY, 0, struct.pack("!II", frame.last_good_stream_id, frame.status))
    if isinstance(frame, WindowUpdate):
        return _control(WINDOW_UPDATE, 0, struct.pack("!II", frame.stream_id, frame.delta & 0x7FFFFFFF))
    raise TypeError(f"not a SPDY frame: {frame!r}")


def parse_frame(buf: bytes | bytearray | memoryview, codec: HeaderCodec) -> tuple[Frame | None, int] | None:
    """The first frame in `buf` and the bytes it used, or None when more bytes are needed. Unknown control frame
    types are skipped (frame None) as §2.2.1 asks."""
    if len(buf) < 8:
        return None
    w1, w2 = struct.unpack_from("!II", buf, 0)
    flags, length = w2 >> 24, w2 & 0xFFFFFF
    if len(buf) < 8 + length:
        return None
    body = bytes(buf[8:8 + length])
    used = 8 + length
    if not w1 & 0x80000000:
        return DataFrame(stream_id=w1 & 0x7FFFFFFF, data=body, fin=bool(flags & FLAG_FIN)), used
    version, ftype = (w1 >> 16) & 0x7FFF, w1 & 0xFFFF
    if version != VERSION:
        raise SpdyError(f"SPDY version {version} (only 3 is spoken)")

    def need(n: int) -> None:
        if length < n:
            raise SpdyError(f"control frame type {ftype} too short ({length} bytes)")

    if ftype == SYN_STREAM:
        need(10)
        sid, assoc, pri = struct.unpack_from("!IIB", body, 0)
        return SynStream(stream_id=sid & 0x7FFFFFFF, associated_to=assoc & 0x7FFFFFFF, priority=pri >> 5,
                         headers=codec.decompress(body[10:]), fin=bool(flags & FLAG_FIN),
                         unidirectional=bool(flags & FLAG_UNIDIRECTIONAL)), used
    if ftype in (SYN_REPLY, HEADERS):
        need(4)
        sid = struct.unpack_from("!I", body, 0)[0] & 0x7FFFFFFF
        cls = SynReply if ftype == SYN_REPLY else Headers
        return cls(stream_id=sid, headers=codec.decompress(body[4:]), fin=bool(flags & FLAG_FIN)), used
    if ftype == RST_STREAM:
        need(8)
        sid, status = struct.unpack_from("!II", body, 0)
        return RstStream(stream_id=sid & 0x7FFFFFFF, status=status), used
    if ftype == SETTINGS:
        need(4)
        (count,) = struct.unpack_from("!I", body, 0)
        if length < 4 + 8 * count:
            raise SpdyError("SETTINGS frame shorter than its entry count")
        entries = []
        for k in range(count):
            fi, value = struct.unpack_from("!II", body, 4 + 8 * k)
            entries.append((fi >> 24, fi & 0xFFFFFF, value))
        return Settings(entries=tuple(entries), clear=bool(flags & 1)), used
    if ftype == PING:
        need(4)
        return Ping(id=struct.unpack_from("!I", body, 0)[0]), used
    if ftype == GOAWAY:
        need(4)
        last = struct.unpack_from("!I", body, 0)[0] & 0x7FFFFFFF
        status = struct.unpack_from("!I", body, 4)[0] if length >= 8 else 0
        return GoAway(last_good_stream_id=last, status=status), used
    if ftype == WINDOW_UPDATE:
        need(8)
        sid, delta = struct.unpack_from("!II", body, 0)
        return WindowUpdate(stream_id=sid & 0x7FFFFFFF, delta=delta & 0x7FFFFFFF), used
    return None, used


class ByteTransport(Protocol):
    """What a session runs over: a TCP stream, an upgraded HTTP connection, or a WebSocket's binary messages."""

    async def read(self) -> bytes:  # b"" at EOF
        ...

    async def write(self, data: bytes) -> None:
        ...

    async def close(self) -> None:
        ...


class StreamPairTransport:
    """asyncio streams (a plain TCP or TLS connection)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, initial: bytes = b"") -> None:
        self.reader, self.writer, self._initial = reader, writer, initial

    async def read(self) -> bytes:
        if self._initial:
            data, self._initial = self._initial, b""
            return data
        try:
            return await self.reader.read(65536)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


BUFFER_LIMIT = 256 * 1024  # unread bytes per stream before the session stops reading (TCP backpressure)


class SpdyStream:
    """One stream: read() returns data until b"" (peer's FIN, a reset, or the session's end); write()/close()
    send data and our FIN; reset() aborts both directions."""

    def __init__(self, session: SpdySession, stream_id: int, headers: HeaderMap, *, local: bool) -> None:
        self.session, self.id, self.headers, self.local = session, stream_id, dict(headers), local
        self.reply_headers: dict[str, str] = {}
        self.replied = asyncio.Event()
        self.got_reply = False
        self.send_window = session.peer_initial_window
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._readable = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._unacked = 0
        self.remote_closed = False
        self.local_closed = False
        self.reset_status = 0

    def __repr__(self) -> str:
        return f"<SpdyStream {self.id} {self.headers.get('streamtype', '')}>"

    # ---- receiving (called by the session) ----

    async def _feed(self, data: bytes) -> None:
        if self.reset_status or self.local_closed and self.remote_closed:
            return
        while self._buffered >= BUFFER_LIMIT and not self.reset_status:
            self._space.clear()
            await self._space.wait()
        self._chunks.append(data)
        self._buffered += len(data)
        self._readable.set()

    def _finish_remote(self) -> None:
        self.remote_closed = True
        self._readable.set()

    def _on_reset(self, status: int, *, discard: bool) -> None:
        """Peer's RST_STREAM (discard False: what arrived before it stays readable — the runtime's streaming server
        writes an exec's status and then resets the stream) or our own reset (discard True)."""
        self.reset_status = status or CANCEL
        self.remote_closed = self.local_closed = True
        if discard:
            self._chunks.clear()
            self._buffered = 0
        self._readable.set()
        self._space.set()
        self.replied.set()
        self.session._window_changed()

    async def read(self) -> bytes:
        while not self._chunks:
            if self.remote_closed:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.pop(0)
        self._buffered -= len(data)
        if self._buffered < BUFFER_LIMIT:
            self._space.set()
        await self.session._consumed(self, len(data))
        return data

    def take_buffered(self) -> bytes:
        """What has arrived and not been read, without waiting (frames are fed in wire order, so anything the peer
        sent on this stream before a later frame on another stream is here once that later frame was seen)."""
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self._space.set()
        return data

    async def read_all(self, limit: int = 1 << 20) -> bytes:
        out = bytearray()
        while chunk := await self.read():
            out += chunk
            if len(out) > limit:
                break
        return bytes(out)

    # ---- sending ----

    async def reply(self, headers: HeaderMap | None = None, *, fin: bool = False) -> None:
        await self.session._send(SynReply(stream_id=self.id, headers=dict(headers or {}), fin=fin))
        if fin:
            self._finish_local()

    async def wait_reply(self, timeout: float) -> None:
        await asyncio.wait_for(self.replied.wait(), timeout)
        if self.reset_status and not self.got_reply:
            raise SpdyError(f"stream {self.id} refused (status {self.reset_status})")

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.local_closed or self.reset_status:
                raise ConnectionResetError(f"SPDY stream {self.id} is closed")
            n = await self.session._reserve(self, min(len(view), MAX_FRAME_DATA))
            await self.session._send(DataFrame(stream_id=self.id, data=bytes(view[:n])))
            view = view[n:]

    async def close(self) -> None:
        """Half-close: our FIN (an empty data frame with FLAG_FIN)."""
        if self.local_closed or self.reset_status:
            return
        self.local_closed = True
        try:
            await self.session._send(DataFrame(stream_id=self.id, fin=True))
        except (ConnectionError, OSError):
            pass
        self._finish_local()

    def _finish_local(self) -> None:
        self.local_closed = True
        if self.remote_closed:
            self.session._forget(self)

    async def reset(self, status: int = CANCEL) -> None:
        if self.reset_status:
            return
        self._on_reset(status, discard=True)
        self.session._forget(self)
        try:
            await self.session._send(RstStream(stream_id=self.id, status=status))
        except (ConnectionError, OSError):
            pass


class SpdySession:
    """One SPDY/3.1 connection. Run `run()` as a task; `accept()` yields the peer's new streams (None at the end),
    `open_stream()` makes ours. Client stream ids are odd, server ids even."""

    def __init__(self, transport: ByteTransport, *, client: bool, window: int = DEFAULT_WINDOW,
                 name: str = "spdy") -> None:
        self.transport, self.client, self.name = transport, client, name
        self.codec = HeaderCodec()
        self.streams: dict[int, SpdyStream] = {}
        self._next_id = 1 if client else 2
        self._last_remote_id = 0
        self._max_seen_id = 0
        self._write_lock = asyncio.Lock()
        self._incoming: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.goaway_received = False
        self.flow_control = False  # enforced once the peer sends a WINDOW_UPDATE or INITIAL_WINDOW_SIZE
        self.peer_initial_window = DEFAULT_WINDOW
        self.send_window = DEFAULT_WINDOW  # the session window (SPDY/3.1)
        self.recv_window = window
        self._session_unacked = 0
        self._window_event = asyncio.Event()
        self._ping_id = 1 if client else 2
        self._pongs: dict[int, asyncio.Future[None]] = {}
        self.error: str = ""

    # ---- the read loop ----

    async def run(self) -> None:
        buf = bytearray()
        try:
            if self.recv_window != DEFAULT_WINDOW:
                await self._send(Settings(entries=((0, SETTINGS_INITIAL_WINDOW_SIZE, self.recv_window),)))
            while True:
                data = await self.transport.read()
                if not data:
                    break
                buf += data
                while (got := parse_frame(buf, self.codec)) is not None:
                    frame, used = got
                    del buf[:used]
                    if frame is not None:
                        await self._handle(frame)
        except SpdyError as e:
            self.error = str(e)
            log.warning("SPDY protocol error session=%s error=%s", self.name, e)
            try:
                await self._send(GoAway(last_good_stream_id=self._last_remote_id, status=1))
            except (ConnectionError, OSError):
                pass
        except (ConnectionError, OSError) as e:
            self.error = str(e)
        finally:
            self._end()

    def _end(self) -> None:
        for s in list(self.streams.values()):
            s._finish_remote()
            s.replied.set()
            s._space.set()
        self.streams.clear()
        self._window_event.set()
        self.closed.set()
        self._incoming.put_nowait(None)
        for fut in self._pongs.values():
            if not fut.done():
                fut.set_exception(ConnectionResetError("session closed"))

    async def _handle(self, frame: Frame) -> None:
        log.debug("SPDY recv session=%s frame=%.200r", self.name, frame)
        if isinstance(frame, DataFrame):
            s = self.streams.get(frame.stream_id)
            if s is None:
                log.debug("SPDY data for a gone stream session=%s stream=%s bytes=%d fin=%s", self.name,
                          frame.stream_id, len(frame.data), frame.fin)
                if frame.stream_id > self._max_seen_id:
                    await self._send(RstStream(stream_id=frame.stream_id, status=INVALID_STREAM))
                return
            if s.remote_closed and not s.reset_status:
                await s.reset(STREAM_ALREADY_CLOSED)
                return
            if frame.data:
                await s._feed(frame.data)
            if frame.fin:
                s._finish_remote()
                if s.local_closed:
                    self._forget(s)
        elif isinstance(frame, SynStream):
            sid = frame.stream_id
            if sid == 0 or (sid % 2 == 1) != (not self.client) or sid <= self._last_remote_id:
                await self._send(RstStream(stream_id=sid, status=PROTOCOL_ERROR))
                return
            self._last_remote_id = sid
            self._max_seen_id = max(self._max_seen_id, sid)
            if self.goaway_received:
                await self._send(RstStream(stream_id=sid, status=REFUSED_STREAM))
                return
            s = SpdyStream(self, sid, frame.headers, local=False)
            self.streams[sid] = s
            if frame.fin:
                s._finish_remote()
            if frame.unidirectional:
                s.local_closed = True
            await self._incoming.put(s)
        elif isinstance(frame, SynReply):
            s = self.streams.get(frame.stream_id)
            if s is not None:
                s.reply_headers = dict(frame.headers)
                s.got_reply = True
                s.replied.set()
                if frame.fin:
                    s._finish_remote()
        elif isinstance(frame, Headers):
            s = self.streams.get(frame.stream_id)
            if s is not None:
                s.reply_headers.update(frame.headers)
                if frame.fin:
                    s._finish_remote()
        elif isinstance(frame, RstStream):
            s = self.streams.pop(frame.stream_id, None)
            if s is not None:
                s._on_reset(frame.status, discard=False)
        elif isinstance(frame, Settings):
            for _flags, sid, value in frame.entries:
                if sid == SETTINGS_INITIAL_WINDOW_SIZE:
                    self.flow_control = True
                    delta = value - self.peer_initial_window
                    self.peer_initial_window = value
                    for s in self.streams.values():
                        s.send_window += delta
                    self._window_changed()
        elif isinstance(frame, Ping):
            if frame.id % 2 == self._ping_id % 2:
                fut = self._pongs.pop(frame.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            else:
                await self._send(frame)
        elif isinstance(frame, GoAway):
            self.goaway_received = True
        elif isinstance(frame, WindowUpdate):
            self.flow_control = True
            if frame.stream_id == 0:
                self.send_window += frame.delta
            elif (s := self.streams.get(frame.stream_id)) is not None:
                s.send_window += frame.delta
            self._window_changed()

    # ---- used by streams ----

    async def _send(self, frame: Frame) -> None:
        if self.closed.is_set() and not isinstance(frame, GoAway):
            raise ConnectionResetError(f"SPDY session {self.name} is closed")
        async with self._write_lock:  # render under the lock: the header compressor's state is ordered
            await self.transport.write(render_frame(frame, self.codec))

    def _window_changed(self) -> None:
        self._window_event.set()

    async def _reserve(self, stream: SpdyStream, want: int) -> int:
        """How many bytes `stream` may send now (waits for windows when the peer does flow control)."""
        while self.flow_control and (stream.send_window <= 0 or self.send_window <= 0):
            if self.closed.is_set() or stream.reset_status:
                raise ConnectionResetError(f"SPDY stream {stream.id} is closed")
            self._window_event.clear()
            await self._window_event.wait()
        n = min(want, stream.send_window, self.send_window) if self.flow_control else want
        stream.send_window -= n
        self.send_window -= n
        return n

    async def _consumed(self, stream: SpdyStream, n: int) -> None:
        """Our reader took n bytes: give the peer its window back in half-window steps."""
        stream._unacked += n
        self._session_unacked += n
        try:
            if stream._unacked >= self.recv_window // 2 and not stream.remote_closed:
                delta, stream._unacked = stream._unacked, 0
                await self._send(WindowUpdate(stream_id=stream.id, delta=delta))
            if self._session_unacked >= DEFAULT_WINDOW // 2:
                delta, self._session_unacked = self._session_unacked, 0
                await self._send(WindowUpdate(stream_id=0, delta=delta))
        except (ConnectionError, OSError):
            pass

    def _forget(self, stream: SpdyStream) -> None:
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]

    # ---- public ----

    async def accept(self) -> SpdyStream | None:
        """The next stream the peer opened; None once the session has ended."""
        s = await self._incoming.get()
        if s is None:
            self._incoming.put_nowait(None)
        return s

    async def open_stream(self, headers: HeaderMap, *, fin: bool = False) -> SpdyStream:
        async with self._write_lock:
            if self.closed.is_set():
                raise ConnectionResetError(f"SPDY session {self.name} is closed")
            sid = self._next_id
            self._next_id += 2
            self._max_seen_id = max(self._max_seen_id, sid)
            s = SpdyStream(self, sid, headers, local=True)
            self.streams[sid] = s
            await self.transport.write(render_frame(SynStream(stream_id=sid, headers=dict(headers), fin=fin), self.codec))
        if fin:
            s.local_closed = True
        return s

    async def ping(self, timeout: float = 10.0) -> None:
        pid = self._ping_id
        self._ping_id += 2
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[pid] = fut
        await self._send(Ping(id=pid))
        await asyncio.wait_for(fut, timeout)

    async def close(self) -> None:
        """GOAWAY, then close the transport (the read loop then ends every stream)."""
        if not self.closed.is_set():
            try:
                await self._send(GoAway(last_good_stream_id=self._last_remote_id))
            except (ConnectionError, OSError):
                pass
        await self.transport.close()
