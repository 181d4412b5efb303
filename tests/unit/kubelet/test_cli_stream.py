"""The exec stream client: WebSocket framing, the v4.channel.k8s.io channels and exit codes, against a small
in-process server on a real socket (the real runtime is in tests/e2e/test_cli_tools.py)."""
from __future__ import annotations

import io
import json
import os
import socket
import struct
import threading

from kubelet.cli.stream import OP_BINARY, compute_exit_code, parse_frame_header, render_frame, run_exec_stream


def test_frames() -> None:
    f = render_frame(b"\x00hi", mask=b"\x01\x02\x03\x04")
    assert f == bytes([0x82, 0x83, 1, 2, 3, 4, 0x00 ^ 1, ord("h") ^ 2, ord("i") ^ 3])
    h = parse_frame_header(f)
    assert h is not None and (h.fin, h.opcode, h.length, h.mask, h.size) == (True, OP_BINARY, 3, b"\x01\x02\x03\x04", 6)
    big = render_frame(b"x" * 300)
    assert parse_frame_header(big).length == 300 and parse_frame_header(big).size == 8  # type: ignore[union-attr]
    huge = bytes([0x82, 127]) + struct.pack("!Q", 70000)
    assert parse_frame_header(huge).length == 70000  # type: ignore[union-attr]
    assert parse_frame_header(b"\x82") is None and parse_frame_header(bytes([0x82, 126, 1])) is None


def test_exit_codes() -> None:
    assert compute_exit_code(b'{"metadata":{},"status":"Success"}') == (0, "")
    assert compute_exit_code(json.dumps({"status": "Failure", "reason": "NonZeroExitCode", "message": "command terminated with non-zero exit code",
                                         "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}).encode()) == (3, "")
    assert compute_exit_code(b'{"status":"Failure","message":"executable file not found"}') == (1, "executable file not found")


def _server_frame(payload: bytes, opcode: int = OP_BINARY) -> bytes:
    return bytes([0x80 | opcode, len(payload)]) + payload  # server frames are not masked


def test_run_exec_stream_against_a_socket_server() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got: dict[str, bytes] = {}

    def serve() -> None:
        conn, _ = srv.accept()
        req = b""
        while b"\r\n\r\n" not in req:
            req += conn.recv(4096)
        got["request"] = req
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n")
        data = b""
        while len(data) < 6 + 6:  # the client's stdin frame: header 2 + mask 4 + payload 6
            data += conn.recv(4096)
        h = parse_frame_header(data)
        assert h is not None and h.mask is not None
        got["stdin"] = bytes(b ^ h.mask[i % 4] for i, b in enumerate(data[h.size:h.size + h.length]))
        status = json.dumps({"status": "Failure", "details": {"causes": [{"reason": "ExitCode", "message": "7"}]}}).encode()
        conn.sendall(_server_frame(b"\x01out") + _server_frame(b"\x02err") + _server_frame(b"\x03" + status) + _server_frame(b"\x03\xe8", 0x8))
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r, w = os.pipe()
    os.write(w, b"input")
    try:
        out, err = io.BytesIO(), io.BytesIO()
        with os.fdopen(r, "rb", buffering=0) as stdin:
            code = run_exec_stream(f"http://127.0.0.1:{srv.getsockname()[1]}/exec/abc", stdin=stdin, stdout=out, stderr=err)
        t.join(5)
    finally:
        os.close(w)
        srv.close()
    assert code == (7, "")
    assert (out.getvalue(), err.getvalue(), got["stdin"]) == (b"out", b"err", b"\x00input")
    assert got["request"].startswith(b"GET /exec/abc HTTP/1.1\r\n") and b"Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n" in got["request"]
