"""Test helpers for probes (and for the daemon's own tests): a fake clock, a scripted prober, an ExecRunner backed by
real subprocesses, and real loopback servers (HTTP/HTTPS with switchable answers, TCP, gRPC health)."""
from __future__ import annotations

import asyncio
import datetime
import heapq
import itertools
import os
import signal
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.errors import ExecTimeoutError
from probes.compat import timeout
from probes.types import (
    ContainerId, ContainerProbes, ExecResult, HTTPGetAction, PodKey, PodUID, ProbeKind, ProbeOutcome, ProbeResult,
    ProbeSpec, ProbeTarget, TCPSocketAction,
)

__all__ = ["FakeClock", "ScriptedProber", "SubprocessExecRunner", "HTTPTestServer", "TCPAcceptServer",
           "GRPCHealthServer", "make_self_signed_cert", "make_spec", "wait_until", "EventLog"]


# --- time -----------------------------------------------------------------------------------------------------------
class FakeClock:
    """Monotonic and wall time that only move when a test calls :meth:`advance`."""

    def __init__(self, *, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = monotonic
        self._wall_offset = wall - monotonic
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._mono + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        await fut

    async def settle(self) -> None:
        """Let every runnable task run until it blocks again (fakes answer without real I/O)."""
        for _ in range(30):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in order and letting them run at their own instant."""
        target = self._mono + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            due, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self._mono = max(self._mono, due)
            fut.set_result(None)
            await self.settle()
        self._mono = target
        await self.settle()


# --- a prober that answers from a script ----------------------------------------------------------------------------
@dataclass(kw_only=True)
class _Call:
    kind: ProbeKind
    container_id: ContainerId
    at: float


class ScriptedProber:
    """Answers each probe kind with the result set by the test (default SUCCESS); logs every call."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self.answers: dict[ProbeKind, ProbeOutcome] = {}
        self.calls: list[_Call] = []

    def set(self, kind: ProbeKind, result: ProbeResult, message: str = "", *, warning: bool = False) -> None:
        self.answers[kind] = ProbeOutcome(result=result, message=message, warning=warning)

    def count(self, kind: ProbeKind) -> int:
        return sum(1 for c in self.calls if c.kind is kind)

    async def probe(self, spec: ProbeSpec, target: ProbeTarget) -> ProbeOutcome:
        self.calls.append(_Call(kind=spec.kind, container_id=target.container_id, at=self._clock.monotonic()))
        return self.answers.get(spec.kind, ProbeOutcome(result=ProbeResult.SUCCESS))


@dataclass
class EventLog:
    """An ``on_result`` sink that keeps the events."""

    events: list[Any] = field(default_factory=list)  # list[ProbeResultEvent]

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def of(self, type_: Any) -> list[Any]:
        return [e for e in self.events if e.type is type_]


def make_spec(kind: ProbeKind, *, handler=None, **kw) -> ProbeSpec:  # type: ignore[no-untyped-def]
    return ProbeSpec(kind=kind, handler=handler or TCPSocketAction(host=None, port=80), **kw)


async def wait_until(predicate, *, timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    """Poll with a deadline (never a bare sleep as synchronisation)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


# --- exec through real subprocesses -----------------------------------------------------------------------------------
class SubprocessExecRunner:
    """An ExecRunner that runs the command on the host (the container ID is ignored). A command outliving its
    timeout is killed with its whole process group, then ExecTimeoutError; cancellation kills it too."""

    def __init__(self) -> None:
        self.started_pids: list[int] = []

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout_s: float) -> ExecResult:
        proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    start_new_session=True)
        self.started_pids.append(proc.pid)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            await self._kill(proc)
            raise ExecTimeoutError(f"command {list(cmd)} timed out") from None
        except BaseException:
            await self._kill(proc)
            raise
        return ExecResult(exit_code=proc.returncode or 0, stdout=out, stderr=err)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()


# --- real servers on loopback ---------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class SeenRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class HTTPTestServer:
    """A tiny HTTP/1.1 server (asyncio, Connection: close). ``status`` answers ``/``; ``hang`` makes it accept and
    never answer; ``/status/<n>`` answers n; ``/redirect?to=<url>`` answers 302 to url; ``/loop/<n>`` redirects to
    ``/loop/<n+1>``; ``/big`` sends a 1 MiB body. Every request is recorded in ``requests``."""

    def __init__(self, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = 0
        self.status = 200
        self.hang = False
        self.requests: list[SeenRequest] = []
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> HTTPTestServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self._ssl, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._conns):
            w.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [tuple(p.strip() for p in line.split(":", 1)) for line in lines[1:] if ":" in line]
            self.requests.append(SeenRequest(method=method, target=target, headers=headers))  # type: ignore[arg-type]
            if self.hang:
                await asyncio.Event().wait()
            status, extra, body = self._answer(target)
            writer.write((f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n")
                         .encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(writer)
            writer.transport.abort() if writer.transport.is_closing() else writer.close()

    def _answer(self, target: str) -> tuple[int, str, bytes]:
        if target.startswith("/status/"):
            return int(target.split("/")[2]), "", b"status"
        if target.startswith("/redirect?to="):
            return 302, f"Location: {target.split('=', 1)[1]}\r\n", b"moved"
        if target.startswith("/loop/"):
            n = int(target.split("/")[2])
            return 302, f"Location: /loop/{n + 1}\r\n", b""
        if target == "/big":
            return 200, "", b"x" * (1024 * 1024)
        return self.status, "", b"ok\n"


class TCPAcceptServer:
    """Accepts connections and closes them."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TCPAcceptServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.transport.abort()


class GRPCHealthServer:
    """A grpc.aio server with the standard health service; ``set(service, serving)`` flips a service."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._server: Any = None
        self._health: Any = None

    async def __aenter__(self) -> GRPCHealthServer:
        import grpc
        from grpc_health.v1 import health, health_pb2_grpc
        self._server = grpc.aio.server()
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self.port = self._server.add_insecure_port(f"{self.host}:0")
        await self._server.start()
        return self

    async def set(self, service: str, serving: bool) -> None:
        from grpc_health.v1 import health_pb2
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self._health.set(service, status)

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop(None)


def make_self_signed_cert(directory: str | None = None) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for CN=localhost / 127.0.0.1; returns (cert, key) paths. Uses the
    ``cryptography`` package when installed, else the ``openssl`` CLI."""
    d = Path(directory or tempfile.mkdtemp(prefix="nodelet-probes-tls-"))
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    try:
        import cryptography  # noqa: F401
    except ImportError:
        import subprocess
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key_path), "-out", str(cert_path), "-days", "1", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        return cert_path, key_path
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def http_action(port: int, path: str = "/", *, scheme: str = "HTTP", host: str | None = None,
                headers: tuple[tuple[str, str], ...] = ()) -> HTTPGetAction:
    return HTTPGetAction(scheme=scheme, host=host, port=port, path=path, headers=headers)


def loopback_target(container_id: str = "c1") -> ProbeTarget:
    return ProbeTarget(container_id=ContainerId(container_id), pod_ip="127.0.0.1", host_ip="127.0.0.1")


POD = PodKey("default/web-node1")
UID = PodUID("0123456789abcdef0123456789abcdef")
NO_PROBES = ContainerProbes()
