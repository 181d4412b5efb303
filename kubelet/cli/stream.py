"""Interactive exec through the CRI streaming server (the URL the runtime's Exec returns): a WebSocket client (framing
and masking by the ``wsproto`` library) speaking Kubernetes' `v4.channel.k8s.io` subprotocol — every binary message
starts with its channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a v1 Status with the exit code), 4 terminal resize
({"Width","Height"}).

Synchronous: one thread copies stdin to the socket, the caller's thread reads the socket; one lock guards the
wsproto connection state."""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import urlsplit
from kubelet.errors import PermanentError

__all__ = ["StreamError", "compute_exit_code", "run_exec_stream"]

PROTOCOL = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
STDIN_CHUNK = 64 * 1024  # bytes of stdin per message


class StreamError(PermanentError):
    """The exec/attach stream broke (protocol or connection): the command ends with the message."""


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
        from wsproto import ConnectionType, WSConnection

        u = urlsplit(url)
        if u.scheme not in ("http", "ws"):
            raise StreamError(f"unsupported streaming URL {url!r} (TLS streaming is not supported)")
        host, port = u.hostname or "127.0.0.1", u.port or 80
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.lock = threading.Lock()
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.pending: list[Any] = []
        try:
            self._handshake(path, f"{host}:{port}")
        except BaseException:
            self.sock.close()
            raise

    def _handshake(self, path: str, host: str) -> None:
        from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request

        self.sock.sendall(self.ws.send(Request(host=host, target=path, subprotocols=[PROTOCOL])))
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise StreamError("the streaming server closed the connection during the handshake")
            events = self._receive(chunk)
            for i, ev in enumerate(events):
                if isinstance(ev, AcceptConnection):
                    self.pending = events[i + 1:]  # frames that came with the 101
                    self.sock.settimeout(None)
                    return
                if isinstance(ev, (RejectConnection, RejectData)):
                    code = getattr(ev, "status_code", "")
                    raise StreamError(f"the streaming server refused the upgrade: HTTP {code}".rstrip())

    def _receive(self, chunk: bytes | None) -> list[Any]:
        from wsproto.utilities import RemoteProtocolError

        with self.lock:
            try:
                self.ws.receive_data(chunk)
                return list(self.ws.events())
            except RemoteProtocolError as e:
                raise StreamError(f"websocket: {e}") from None

    def send(self, event: Any) -> None:
        with self.lock:
            data = self.ws.send(event)
        self.sock.sendall(data)

    def send_bytes(self, payload: bytes) -> None:
        from wsproto.events import BytesMessage

        self.send(BytesMessage(data=payload))

    def messages(self) -> Any:
        """Complete binary messages until the server closes (pings answered, text frames skipped)."""
        from wsproto.events import BytesMessage, CloseConnection, Ping

        message = b""
        events, self.pending = self.pending, []
        while True:
            for ev in events:
                if isinstance(ev, Ping):
                    self.send(ev.response())
                elif isinstance(ev, CloseConnection):
                    try:
                        self.send(ev.response())
                    except Exception:  # noqa: BLE001 - already closing either way
                        pass
                    return
                elif isinstance(ev, BytesMessage):
                    message += ev.data
                    if ev.message_finished:
                        yield message
                        message = b""
            chunk = self.sock.recv(65536)
            events = self._receive(chunk or None)
            if not chunk:
                return


def run_exec_stream(url: str, *, stdin: BinaryIO | None, stdout: BinaryIO, stderr: BinaryIO,
                    terminal_size: Callable[[], tuple[int, int] | None] = lambda: None, timeout: float = 10.0) -> tuple[int, str]:
    """Attach to the exec at `url`; copy stdin in (if given), stdout/stderr out. Returns (exit code, error message)."""
    conn = _Conn(url, timeout)
    size = terminal_size()
    if size:
        conn.send_bytes(bytes([RESIZE]) + json.dumps({"Width": size[0], "Height": size[1]}).encode())
    done = threading.Event()

    def pump() -> None:
        assert stdin is not None
        fd = stdin.fileno()
        try:
            while not done.is_set():
                data = os.read(fd, STDIN_CHUNK)
                if not data:
                    break
                conn.send_bytes(bytes([STDIN]) + data)
        except OSError:
            pass

    if stdin is not None:
        threading.Thread(target=pump, daemon=True, name="exec-stdin").start()
    result: tuple[int, str] = (0, "")
    try:
        for data in conn.messages():
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
