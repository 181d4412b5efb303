"""The exec stream client: the v4.channel.k8s.io channels and exit codes over WebSocket (wsproto), against a small
in-process wsproto server on a real socket (the real runtime is in tests/e2e/test_cli_tools.py)."""
from __future__ import annotations

import io
import json
import os
import socket
import threading
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from kubelet.cli.stream import StreamError, compute_exit_code, run_exec_stream


def test_exit_codes() -> None:
    assert compute_exit_code(b'{"metadata":{},"status":"Success"}') == (0, "")
    assert compute_exit_code(json.dumps({"status": "Failure", "reason": "NonZeroExitCode", "message": "command terminated with non-zero exit code",
                                         "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}).encode()) == (3, "")
    assert compute_exit_code(b'{"status":"Failure","message":"executable file not found"}') == (1, "executable file not found")


class ExecServer:
    """A CRI-streaming-like server: accepts the upgrade (v4.channel.k8s.io), collects stdin until `expect` bytes,
    then writes stdout/stderr/exit status and closes. wsproto on the server side rejects unmasked client frames."""

    def __init__(self, *, expect: int, exit_code: int = 7) -> None:
        self.expect, self.exit_code = expect, exit_code
        self.got: dict[str, Any] = {"stdin": b""}
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.srv.accept()
        ws = WSConnection(ConnectionType.SERVER)
        done = False
        message = b""
        while not done:
            data = conn.recv(65536)
            if not data:
                return
            ws.receive_data(data)
            for ev in ws.events():
                if isinstance(ev, Request):
                    self.got["request"] = (ev.target, ev.subprotocols)
                    conn.sendall(ws.send(AcceptConnection(subprotocol="v4.channel.k8s.io")))
                elif isinstance(ev, BytesMessage):  # wsproto hands large messages over in parts
                    message += ev.data
                    if ev.message_finished:
                        assert message[:1] == b"\x00"
                        self.got["stdin"] += message[1:]
                        message = b""
                        done = len(self.got["stdin"]) >= self.expect
        status = json.dumps({"status": "Failure",
                             "details": {"causes": [{"reason": "ExitCode", "message": str(self.exit_code)}]}})
        out = b"".join(ws.send(BytesMessage(data=m)) for m in (b"\x01out", b"\x02err", b"\x03" + status.encode()))
        conn.sendall(out + ws.send(CloseConnection(code=1000)))
        conn.close()


def run_with_stdin(srv: ExecServer, data: bytes) -> tuple[tuple[int, str], bytes, bytes]:
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)), daemon=True)
    writer.start()
    out, err = io.BytesIO(), io.BytesIO()
    try:
        with os.fdopen(r, "rb", buffering=0) as stdin:
            code = run_exec_stream(f"http://127.0.0.1:{srv.port}/exec/abc", stdin=stdin, stdout=out, stderr=err)
        srv.thread.join(5)
    finally:
        srv.srv.close()
    return code, out.getvalue(), err.getvalue()


def test_run_exec_stream_against_a_socket_server() -> None:
    srv = ExecServer(expect=5)
    code, out, err = run_with_stdin(srv, b"input")
    assert code == (7, "")
    assert (out, err, srv.got["stdin"]) == (b"out", b"err", b"input")
    assert srv.got["request"] == ("/exec/abc", ["v4.channel.k8s.io"])


def test_one_mebibyte_of_stdin_arrives_intact() -> None:
    payload = os.urandom(1 << 20)
    srv = ExecServer(expect=len(payload), exit_code=0)
    code, out, _ = run_with_stdin(srv, payload)
    assert srv.got["stdin"] == payload and out == b"out" and code == (0, "")


def test_a_refused_upgrade_is_a_clear_error() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def refuse() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=refuse, daemon=True).start()
    try:
        run_exec_stream(f"http://127.0.0.1:{srv.getsockname()[1]}/exec/x", stdin=None, stdout=io.BytesIO(),
                        stderr=io.BytesIO())
    except StreamError as e:
        assert str(e) == "the streaming server refused the upgrade: HTTP 404"
    else:
        raise AssertionError("no StreamError")
    finally:
        srv.close()
