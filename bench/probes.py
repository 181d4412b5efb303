"""Probe scheduling cost: ProbeManager vs a bare asyncio loop issuing the same probes, in one run.

    python bench/probes.py [--pods 100] [--duration 60] [--exec-rate 10] [--exec-duration 30]

Servers (not measured) run in their own processes on loopback: busybox httpd (a pod's httpd) when available, else a
tiny asyncio HTTP server, and an accept-and-close TCP listener. Each measured variant runs in its own subprocess so
CPU and RSS are per variant:

- ``bare``: one asyncio loop, 2 x pods targets at 1/s each (an HTTP GET on a fresh SO_LINGER-0 socket, a TCP connect),
  each attempt under asyncio.timeout — the floor;
- ``manager``: ProbeManager with ``pods`` containers, each an httpGet readiness and a tcpSocket liveness probe at
  periodSeconds 1 (jittered first probes, as after an agent restart).
- ``exec-bare`` / ``exec-manager``: exec probes of ``true`` at ``exec-rate``/s through the test SubprocessExecRunner
  (a stand-in for CRI ExecSync, which the lead measures on containerd), raw calls vs the manager.

Lateness = actual start of an attempt minus its intended tick. Targets: p99 <= 50 ms; manager CPU <= 1.5 x bare.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# this file is bench/probes.py: keep its directory off sys.path so `import probes` finds the package, not this script
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

HTTP_BODY = b"ok\n"


# --- servers -----------------------------------------------------------------------------------------------------------
async def _serve(http_port_file: str, tcp_port_file: str, with_http: bool) -> None:
    async def http_handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n" + HTTP_BODY)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def tcp_handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    tcp = await asyncio.start_server(tcp_handle, "127.0.0.1", 0, backlog=4096)
    Path(tcp_port_file).write_text(str(tcp.sockets[0].getsockname()[1]))
    if with_http:
        srv = await asyncio.start_server(http_handle, "127.0.0.1", 0, backlog=4096)
        Path(http_port_file).write_text(str(srv.sockets[0].getsockname()[1]))
    await asyncio.Event().wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_file(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"server did not write {path}")
        time.sleep(0.02)
    return path.read_text()


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listening on {port}")
            time.sleep(0.02)


# --- measured side -------------------------------------------------------------------------------------------------
_LINGER0 = struct.pack("ii", 1, 0)
_REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.31\r\nAccept: */*\r\nConnection: close\r\n\r\n"


async def _bare_http(port: int) -> bool:
    loop = asyncio.get_running_loop()
    s = socket.socket()
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
    try:
        await loop.sock_connect(s, ("127.0.0.1", port))
        await loop.sock_sendall(s, _REQ)
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = await loop.sock_recv(s, 16384)
            if not data:
                break
            buf += data
        return buf[9:10] in (b"2", b"3")
    finally:
        s.close()


async def _bare_tcp(port: int) -> bool:
    loop = asyncio.get_running_loop()
    s = socket.socket()
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
    try:
        await loop.sock_connect(s, ("127.0.0.1", port))
        return True
    finally:
        s.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def _cpu(children: bool) -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    total = r.ru_utime + r.ru_stime
    if children:
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += c.ru_utime + c.ru_stime
    return total


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _child(variant: str, http_port: int, tcp_port: int, pods: int, duration: float, warmup: float,
                 exec_rate: int) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    lateness: list[float] = []
    ok = bad = 0
    measuring = False
    is_exec = variant.startswith("exec")

    def note(late: float) -> None:
        if measuring:
            lateness.append(late)

    stop_at = 0.0
    if variant in ("bare", "exec-bare"):
        runner = None
        if is_exec:  # only then: importing probes pulls in grpc, which would inflate the floor's RSS
            from probes.testing import SubprocessExecRunner
            runner = SubprocessExecRunner()
        n_targets = exec_rate if is_exec else 2 * pods

        async def one(i: int, intended: float) -> None:
            nonlocal ok, bad
            note(loop.time() - intended)
            try:
                async with asyncio.timeout(1):
                    if runner is not None:
                        res = await runner.exec_sync("c", ("true",), 1)
                        good = res.exit_code == 0
                    else:
                        good = await (_bare_http(http_port) if i % 2 == 0 else _bare_tcp(tcp_port))
            except (OSError, TimeoutError):
                good = False
            if measuring:
                ok, bad = (ok + 1, bad) if good else (ok, bad + 1)

        def schedule(i: int, at: float) -> None:
            if at > stop_at:
                return
            loop.call_at(at, lambda: (loop.create_task(one(i, at)), schedule(i, at + 1.0)))

        start = loop.time()
        stop_at = start + warmup + duration
        for i in range(n_targets):
            schedule(i, start + random.random())
    else:
        from probes import (
            ContainerId, ContainerProbes, ExecAction, HTTPGetAction, PodKey, PodUID, ProbeEventType, ProbeKind,
            ProbeManager, ProbeSpec, TCPSocketAction,
        )
        from probes.testing import SubprocessExecRunner

        def on_result(event: object) -> None:  # every failed attempt is an Unhealthy event
            nonlocal bad
            if measuring and getattr(event, "type", None) is ProbeEventType.UNHEALTHY:
                bad += 1
                if os.environ.get("PROBES_BENCH_VERBOSE"):
                    print(getattr(event, "message", ""), file=sys.stderr)

        manager = ProbeManager(exec_runner=SubprocessExecRunner(), on_result=on_result, on_probe_started=note)
        if is_exec:
            containers = [ContainerProbes(readiness=ProbeSpec(kind=ProbeKind.READINESS, period_seconds=1,
                                                              handler=ExecAction(command=("true",))))
                          for _ in range(exec_rate)]
        else:
            http = ProbeSpec(kind=ProbeKind.READINESS, period_seconds=1,
                             handler=HTTPGetAction(scheme="HTTP", host=None, port=http_port, path="/", headers=()))
            tcp = ProbeSpec(kind=ProbeKind.LIVENESS, period_seconds=1,
                            handler=TCPSocketAction(host=None, port=tcp_port))
            containers = [ContainerProbes(readiness=http, liveness=tcp) for _ in range(pods)]
        for i, probes in enumerate(containers):
            manager.update_container(pod_key=PodKey(f"bench/pod-{i}"), pod_uid=PodUID(f"uid-{i}"),
                                     container_name="c", container_id=ContainerId(f"cid-{i}"),
                                     started_at=time.time() - 60, running=True, pod_ip="127.0.0.1",
                                     host_ip="127.0.0.1", host_network=False, probes=probes)
    await asyncio.sleep(warmup)
    measuring = True
    cpu0, t0 = _cpu(is_exec), time.monotonic()
    await asyncio.sleep(duration)
    measuring = False
    cpu1, t1 = _cpu(is_exec), time.monotonic()
    if variant in ("manager", "exec-manager"):
        await manager.aclose()
    return {"variant": variant, "probes": len(lateness), "failures": bad, "seconds": t1 - t0,
            "cpu_s": cpu1 - cpu0, "rss_mib": _rss_mib(), "p50_ms": _percentile(lateness, 0.5) * 1000,
            "p99_ms": _percentile(lateness, 0.99) * 1000, "max_ms": max(lateness, default=0) * 1000}


def _run_variant(variant: str, args: argparse.Namespace, http_port: int, tcp_port: int, duration: float) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--http-port", str(http_port), "--tcp-port", str(tcp_port),
           "--pods", str(args.pods), "--duration", str(duration), "--exec-rate", str(args.exec_rate)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    if os.environ.get("PROBES_BENCH_VERBOSE") and out.stderr:
        lines = out.stderr.splitlines()
        counts = {m: lines.count(m) for m in dict.fromkeys(lines)}
        for message, n in sorted(counts.items(), key=lambda kv: -kv[1])[:10]:
            print(f"#   {variant} failure x{n}: {message[:160]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(r: dict) -> str:
    rate = r["probes"] / r["seconds"]
    cpu_pct = 100 * r["cpu_s"] / r["seconds"]
    return (f"{r['variant']:<14} {r['probes']:>7} {rate:>8.1f} {r['failures']:>6} {cpu_pct:>7.2f} "
            f"{1000 * r['cpu_s'] / max(r['probes'], 1):>10.3f} {r['rss_mib']:>8.1f} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['max_ms']:>8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--exec-rate", type=int, default=10)
    ap.add_argument("--exec-duration", type=float, default=30, help="0 skips the exec comparison")
    ap.add_argument("--child")
    ap.add_argument("--http-port", type=int)
    ap.add_argument("--tcp-port", type=int)
    args = ap.parse_args()
    if args.child:
        res = asyncio.run(_child(args.child, args.http_port, args.tcp_port, args.pods, args.duration, args.warmup,
                                 args.exec_rate))
        print(json.dumps(res))
        return

    tmp = Path(tempfile.mkdtemp(prefix="nodelet-probes-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        busybox = shutil.which("busybox")
        if busybox:
            (tmp / "www").mkdir()
            (tmp / "www" / "index.html").write_bytes(HTTP_BODY)
            http_port = _free_port()
            procs.append(subprocess.Popen([busybox, "httpd", "-f", "-p", f"127.0.0.1:{http_port}", "-h",
                                           str(tmp / "www")]))
            _wait_port(http_port)
            server_desc = f"busybox httpd on 127.0.0.1:{http_port}"
        procs.append(subprocess.Popen([sys.executable, "-c", "import asyncio, sys; sys.path.insert(0, sys.argv[1]); "
                                       "import importlib.util as u; s=u.spec_from_file_location('b', sys.argv[2]); "
                                       "m=u.module_from_spec(s); s.loader.exec_module(m); "
                                       "asyncio.run(m._serve(sys.argv[3], sys.argv[4], sys.argv[5] == '1'))",
                                       str(Path(__file__).parent), __file__, str(tmp / "http"), str(tmp / "tcp"),
                                       "0" if busybox else "1"]))
        tcp_port = int(_wait_file(tmp / "tcp"))
        if not busybox:
            http_port = int(_wait_file(tmp / "http"))
            server_desc = f"asyncio HTTP server on 127.0.0.1:{http_port}"
        print(f"# servers: {server_desc}; TCP accept-and-close on 127.0.0.1:{tcp_port}")
        print(f"# {args.pods} pods x (httpGet readiness + tcpSocket liveness) at periodSeconds 1 = "
              f"{2 * args.pods} probes/s, {args.duration:g} s measured after {args.warmup:g} s warm-up; "
              f"{os.cpu_count()} CPUs")
        header = (f"{'variant':<14} {'probes':>7} {'per s':>8} {'fails':>6} {'CPU %':>7} {'CPU ms/pr':>10} "
                  f"{'RSS MiB':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        print(header)
        results = {}
        for v in ("bare", "manager"):
            results[v] = _run_variant(v, args, http_port, tcp_port, args.duration)
            print(_row(results[v]), flush=True)
        ratio = results["manager"]["cpu_s"] / max(results["bare"]["cpu_s"], 1e-9)
        print(f"manager CPU / bare loop CPU = {ratio:.2f} (target <= 1.5); "
              f"manager p99 lateness = {results['manager']['p99_ms']:.2f} ms (target <= 50 ms)")
        if args.exec_duration > 0:
            print(f"# exec probes of `true` at {args.exec_rate}/s through SubprocessExecRunner (CPU includes the "
                  f"children), {args.exec_duration:g} s")
            print(header)
            for v in ("exec-bare", "exec-manager"):
                results[v] = _run_variant(v, args, http_port, tcp_port, args.exec_duration)
                print(_row(results[v]), flush=True)
            er = (results["exec-manager"]["cpu_s"] / max(results["exec-manager"]["probes"], 1)) / max(
                results["exec-bare"]["cpu_s"] / max(results["exec-bare"]["probes"], 1), 1e-9)
            print(f"exec: manager CPU per probe / raw calls CPU per probe = {er:.2f} (target <= 1.1)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
