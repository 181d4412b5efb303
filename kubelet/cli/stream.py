"""Interactive exec through the CRI streaming server (the URL the runtime's Exec returns): a minimal RFC 6455 client
speaking Kubernetes' `v4.channel.k8s.io` subprotocol — every binary message starts with its channel byte: 0 stdin,
1 stdout, 2 stderr, 3 error (a v1 Status with the exit code), 4 terminal resize ({"Width","Height"}).

Synchronous and stdlib-only: one thread copies stdin to the socket, the caller's thread reads the socket."""
from __future__ import annotations

import base64
import json
import os
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit
from kubelet.errors import PermanentError

__all__ = ["StreamError", "compute_exit_code", "parse_frame_header", "render_frame", "run_exec_stream"]

PROTOCOL = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class StreamError(PermanentError):
    """The exec/attach stream broke (protocol or connection): the command ends with the message."""


def render_frame(payload: bytes, *, opcode: int = OP_BINARY, mask: bytes | None = None) -> bytes:
    """One final, masked client frame (clients must mask: RFC 6455 §5.3)."""
    mask = mask if mask is not None else os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@dataclass(frozen=True, kw_only=True)
class FrameHeader:
    fin: bool
    opcode: int
    length: int
    mask: bytes | None
    size: int  # bytes of header


def parse_frame_header(data: bytes) -> FrameHeader | None:
    """The header at the start of `data`, or None when more bytes are needed."""
    if len(data) < 2:
        return None
    fin, opcode = bool(data[0] & 0x80), data[0] & 0x0F
    masked, n = bool(data[1] & 0x80), data[1] & 0x7F
    pos = 2
    if n == 126:
        if len(data) < 4:
            return None
        n, pos = struct.unpack("!H", data[2:4])[0], 4
    elif n == 127:
        if len(data) < 10:
            return None
        n, pos = struct.unpack("!Q", data[2:10])[0], 10
    mask = None
    if masked:
        if len(data) < pos + 4:
            return None
        mask, pos = data[pos:pos + 4], pos + 4
    return FrameHeader(fin=fin, opcode=opcode, length=n, mask=mask, size=pos)


def compute_exit_code(status_json: bytes) -> tuple[int, str]:
    """The error channel's v1 Status → (exit code, message): Success → 0; NonZeroExitCode → its ExitCode cause."""
    try:
        st = json.loads(status_json or b"{}")
    except ValueError:
        return 1, status_json.decode(errors="replace")
    if st.get("status") == "Success":
        return 0, ""
    for cause in (st.get("details") or {}).get("causes") or ():
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", 1)), ""
            except ValueError:
                break
    return 1, str(st.get("message") or "exec failed")


class _Conn:
    def __init__(self, url: str, timeout: float) -> None:
        u = urlsplit(url)
        if u.scheme not in ("http", "ws"):
            raise StreamError(f"unsupported streaming URL {url!r} (TLS streaming is not supported)")
        host, port = u.hostname or "127.0.0.1", u.port or 80
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {PROTOCOL}\r\n\r\n")
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise StreamError("the streaming server closed the connection during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            raise StreamError(f"the streaming server refused the upgrade: {status}")
        self.sock.settimeout(None)
        self.lock = threading.Lock()

    def send(self, payload: bytes, opcode: int = OP_BINARY) -> None:
        with self.lock:
            self.sock.sendall(render_frame(payload, opcode=opcode))

    def recv(self) -> tuple[int, bytes] | None:
        """The next complete message (opcode, payload); None at EOF."""
        message = b""
        first_opcode = None
        while True:
            while (h := parse_frame_header(self.buf)) is None or len(self.buf) < h.size + h.length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                self.buf += chunk
            payload = self.buf[h.size:h.size + h.length]
            self.buf = self.buf[h.size + h.length:]
            if h.mask:
                payload = bytes(b ^ h.mask[i % 4] for i, b in enumerate(payload))
            if h.opcode == OP_PING:
                self.send(payload, OP_PONG)
                continue
            if h.opcode in (OP_CLOSE, OP_PONG) and first_opcode is None:
                if h.opcode == OP_CLOSE:
                    return OP_CLOSE, payload
                continue
            first_opcode = h.opcode if first_opcode is None else first_opcode
            message += payload
            if h.fin:
                return first_opcode, message


def run_exec_stream(url: str, *, stdin: BinaryIO | None, stdout: BinaryIO, stderr: BinaryIO,
                    terminal_size: Callable[[], tuple[int, int] | None] = lambda: None, timeout: float = 10.0) -> tuple[int, str]:
    """Attach to the exec at `url`; copy stdin in (if given), stdout/stderr out. Returns (exit code, error message)."""
    conn = _Conn(url, timeout)
    size = terminal_size()
    if size:
        conn.send(bytes([RESIZE]) + json.dumps({"Width": size[0], "Height": size[1]}).encode())
    done = threading.Event()

    def pump() -> None:
        assert stdin is not None
        fd = stdin.fileno()
        try:
            while not done.is_set():
                data = os.read(fd, 4096)
                if not data:
                    break
                conn.send(bytes([STDIN]) + data)
        except OSError:
            pass

    if stdin is not None:
        threading.Thread(target=pump, daemon=True, name="exec-stdin").start()
    result: tuple[int, str] = (0, "")
    try:
        while True:
            msg = conn.recv()
            if msg is None or msg[0] == OP_CLOSE:
                break
            opcode, data = msg
            if opcode == OP_TEXT:  # base64 subprotocols only; v4 sends binary
                continue
            if not data:
                continue
            channel, body = data[0], data[1:]
            if channel == STDOUT:
                stdout.write(body)
                stdout.flush()
            elif channel == STDERR:
                stderr.write(body)
                stderr.flush()
            elif channel == ERROR and body:
                result = compute_exit_code(body)
    finally:
        done.set()
        try:
            conn.sock.close()
        except OSError:
            pass
    return result


def terminal_size_of(stream: Any = None) -> tuple[int, int] | None:
    stream = stream or sys.stdout
    try:
        cols, rows = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return (cols, rows) if cols and rows else None  # a fresh pty is 0x0: leave the runtime's default
