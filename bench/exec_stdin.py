"""1 MiB of `nodelet exec -i` stdin through the exec stream client: wsproto (now) vs the byte-by-byte masking client
nodelet had before (loaded from git, revision --before), in one run.

    python bench/exec_stdin.py [--mib 1] [--rounds 5] [--before d0ffc1b]

The server is a separate process (a wsproto CRI-streaming stand-in on loopback that reads all stdin, then sends the
exit status), so the figure is the client's cost: framing + masking + socket writes. Reference: the old client
(the issue measured 0.2 s for 1 MiB). Prints the median of --rounds per client.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = r'''
import json, socket, sys
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(("127.0.0.1", 0)); srv.listen(8)
print(srv.getsockname()[1], flush=True)
expect = int(sys.argv[1])
while True:
    conn, _ = srv.accept(); ws = WSConnection(ConnectionType.SERVER); got = 0; done = False
    while not done:
        data = conn.recv(1 << 20)
        if not data: break
        ws.receive_data(data)
        for ev in ws.events():
            if isinstance(ev, Request): conn.sendall(ws.send(AcceptConnection(subprotocol="v4.channel.k8s.io")))
            elif isinstance(ev, BytesMessage):
                got += len(ev.data)
                done = got >= expect
    st = json.dumps({"status": "Success"}).encode()
    try:
        conn.sendall(ws.send(BytesMessage(data=b"\x03" + st)) + ws.send(CloseConnection(code=1000)))
    except OSError:
        pass
    conn.close()
'''


def load_before(rev: str):  # type: ignore[no-untyped-def]
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:kubelet/cli/stream.py"], check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "stream_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("stream_before", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["stream_before"] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def one(run_exec_stream, port: int, payload: bytes) -> float:  # type: ignore[no-untyped-def]
    import io

    r, w = os.pipe()
    t = threading.Thread(target=lambda: (os.write(w, payload), os.close(w)), daemon=True)
    t0 = time.perf_counter()
    t.start()
    with os.fdopen(r, "rb", buffering=0) as stdin:
        code = run_exec_stream(f"http://127.0.0.1:{port}/exec/x", stdin=stdin, stdout=io.BytesIO(), stderr=io.BytesIO())
    dt = time.perf_counter() - t0
    assert code == (0, ""), code
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=float, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--before", default="d0ffc1b")
    args = ap.parse_args()
    payload = os.urandom(int(args.mib * (1 << 20)))
    # stdin bytes + one channel byte per message; the server counts message bytes, so expect the payload length
    srv = subprocess.Popen([sys.executable, "-c", SERVER, str(len(payload))], stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline())  # type: ignore[union-attr]
        from kubelet.cli.stream import run_exec_stream as now

        before = load_before(args.before).run_exec_stream
        results = {}
        for name, fn in (("before (byte-by-byte masking)", before), ("now (wsproto)", now)):
            times = [one(fn, port, payload) for _ in range(args.rounds)]
            results[name] = statistics.median(times)
        print(json.dumps({"mib": args.mib, "rounds": args.rounds,
                          "median_seconds": {k: round(v, 4) for k, v in results.items()}}))
        for k, v in results.items():
            print(f"{args.mib:g} MiB exec -i stdin, {k}: {v * 1000:.1f} ms")
    finally:
        srv.kill()
        srv.wait()


if __name__ == "__main__":
    main()
