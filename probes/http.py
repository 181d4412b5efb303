"""The httpGet probe: a deliberately small HTTP/1.1 client on asyncio (upstream ``pkg/probe/http``).

One GET per attempt on a fresh connection (``Connection: close``, no keep-alive, no proxy), SO_LINGER 1 s sockets (as upstream),
HTTPS without certificate verification, same-host redirects followed (at most 10), at most 10 KiB of body read,
200-399 success, the whole exchange (redirects included) bounded by the probe's timeout, as Go's ``Client.Timeout``.
"""
from __future__ import annotations

import asyncio
import functools
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin
from urllib.parse import urlsplit as _urlsplit

from probes._net import DialError, close_probe_socket, join_host_port, open_probe_socket
from probes.types import KUBE_PROBE_VERSION, HTTPGetAction, ProbeOutcome, ProbeResult
from probes.compat import timeout

__all__ = ["run_http_probe", "render_probe_request", "compute_probe_url", "MAX_BODY_BYTES", "MAX_REDIRECTS"]

MAX_BODY_BYTES = 10 * 1024
MAX_REDIRECTS = 10
_MAX_HEAD_BYTES = 256 * 1024
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_RECV = 16 * 1024


def _insecure_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_TLS = _insecure_context()


class _ProtocolError(Exception):
    pass


@dataclass(frozen=True, kw_only=True)
class _Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


@functools.lru_cache(maxsize=4096)
def urlsplit(url: str) -> SplitResult:
    """Probe URLs repeat every period: parse each once."""
    return _urlsplit(url)


def compute_probe_url(action: HTTPGetAction, default_host: str) -> str:
    host = action.host or default_host
    return f"{action.scheme.lower()}://{join_host_port(host, action.port)}{action.path}"


@functools.lru_cache(maxsize=4096)
def render_probe_request(url: str, headers: tuple[tuple[str, str], ...], *, host_override: str | None) -> bytes:
    """The request bytes: Go's header rules (User-Agent and Accept defaulted unless given; an empty value drops it;
    a ``Host`` header overrides the Host line)."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    given = {k.lower() for k, _ in headers}
    host = host_override if host_override else parts.netloc
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}"]
    if "user-agent" not in given:
        lines.append(f"User-Agent: kube-probe/{KUBE_PROBE_VERSION}")
    if "accept" not in given:
        lines.append("Accept: */*")
    for name, value in headers:
        lname = name.lower()
        if lname in ("host", "connection", "content-length", "transfer-encoding"):
            continue
        if lname in ("user-agent", "accept") and value == "":
            continue
        lines.append(f"{_canonical(name)}: {value}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")


def _canonical(name: str) -> str:
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


async def run_http_probe(action: HTTPGetAction, *, default_host: str, timeout_s: float) -> ProbeOutcome:
    url = compute_probe_url(action, default_host)
    host_override = next((v for k, v in action.headers if k.lower() == "host" and v), None)
    first_host = urlsplit(url).hostname
    current = url
    try:
        async with timeout(timeout_s):
            for hop in range(MAX_REDIRECTS):  # 10 requests at most, as Go's len(via) >= 10
                resp = await _exchange(current, action.headers, host_override)
                location = resp.header("Location")
                if resp.status not in _REDIRECT_CODES or not location:
                    break
                nxt = urljoin(current, location)
                nparts = urlsplit(nxt)
                if nparts.hostname != first_host:
                    break  # another host: not followed, the 3xx itself is the answer (a warning upstream)
                if hop == MAX_REDIRECTS - 1:
                    return ProbeOutcome(result=ProbeResult.FAILURE,
                                        message=f'Get "{nxt}": stopped after {MAX_REDIRECTS} redirects')
                if nparts.scheme not in ("http", "https"):
                    return ProbeOutcome(result=ProbeResult.FAILURE,
                                        message=f'Get "{nxt}": unsupported protocol scheme "{nparts.scheme}"')
                if urlsplit(location).scheme or location.startswith("//"):
                    host_override = None  # Go keeps a custom Host only through relative redirects
                current = nxt
    except asyncio.TimeoutError:
        return ProbeOutcome(result=ProbeResult.FAILURE,
                            message=f'Get "{current}": context deadline exceeded '
                                    f'(Client.Timeout exceeded while awaiting headers)')
    except DialError as e:
        return ProbeOutcome(result=ProbeResult.FAILURE, message=f'Get "{current}": {e}')
    except _ProtocolError as e:
        return ProbeOutcome(result=ProbeResult.FAILURE, message=f'Get "{current}": {e}')
    except ssl.SSLError as e:
        return ProbeOutcome(result=ProbeResult.FAILURE, message=f'Get "{current}": tls: {e.reason or e}')
    except OSError as e:
        return ProbeOutcome(result=ProbeResult.FAILURE,
                            message=f'Get "{current}": {e.strerror or type(e).__name__}'.rstrip())
    body = resp.body.decode("utf-8", errors="replace")
    if 200 <= resp.status < 300:
        return ProbeOutcome(result=ProbeResult.SUCCESS, message=body)
    if 300 <= resp.status < 400:
        return ProbeOutcome(result=ProbeResult.SUCCESS, warning=True,
                            message=f"Probe terminated redirects, Response body: {body}")
    return ProbeOutcome(result=ProbeResult.FAILURE, message=f"HTTP probe failed with statuscode: {resp.status}")


async def _exchange(url: str, headers: tuple[tuple[str, str], ...], host_override: str | None) -> _Response:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    request = render_probe_request(url, headers, host_override=host_override)
    sock = await open_probe_socket(host, port)
    if parts.scheme == "https":
        return await _exchange_tls(sock, host, request)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(sock, request)
        reader = _Reader(lambda: loop.sock_recv(sock, _RECV))
        return await _read_response(reader)
    finally:
        close_probe_socket(sock)


async def _exchange_tls(sock: socket.socket, host: str, request: bytes) -> _Response:
    server_name = None if _is_ip(host) else host
    try:
        reader, writer = await asyncio.open_connection(sock=sock, ssl=_TLS, server_hostname=server_name or "")
    except BaseException:  # handshake failed or timed out: the socket is still ours to close
        close_probe_socket(sock)
        raise
    try:
        writer.write(request)
        await writer.drain()
        return await _read_response(_Reader(lambda: reader.read(_RECV)))
    finally:
        writer.transport.abort()  # no close_notify dance; the transport closes the lingering socket (FIN)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return True
    except OSError:
        return False


class _Reader:
    def __init__(self, recv) -> None:  # type: ignore[no-untyped-def]
        self._recv = recv
        self.buf = b""
        self.eof = False

    async def fill(self) -> bool:
        if self.eof:
            return False
        data = await self._recv()
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True


async def _read_response(r: _Reader) -> _Response:
    while True:
        end = r.buf.find(b"\r\n\r\n")
        while end < 0:
            if len(r.buf) > _MAX_HEAD_BYTES:
                raise _ProtocolError("net/http: server response headers exceeded 262144 bytes; aborted")
            if not await r.fill():
                raise _ProtocolError("EOF" if not r.buf else "unexpected EOF")
            end = r.buf.find(b"\r\n\r\n")
        head, r.buf = r.buf[:end].decode("latin-1"), r.buf[end + 4:]
        lines = head.split("\r\n")
        status = _parse_status(lines[0])
        headers = tuple(_parse_header(line) for line in lines[1:] if line)
        if 100 <= status < 200 and status != 101:
            continue  # interim response (100 Continue): the real one follows
        resp = _Response(status=status, headers=headers, body=b"")
        return _Response(status=status, headers=headers, body=await _read_body(r, resp))


def _parse_status(line: str) -> int:
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise _ProtocolError(f'net/http: HTTP/1.x transport connection broken: malformed HTTP response "{line[:80]}"')
    return int(parts[1])


def _parse_header(line: str) -> tuple[str, str]:
    name, sep, value = line.partition(":")
    if not sep:
        raise _ProtocolError(f'net/http: HTTP/1.x transport connection broken: malformed MIME header line: {line[:80]}')
    return name.strip(), value.strip()


async def _read_body(r: _Reader, resp: _Response) -> bytes:
    if resp.status in (204, 304):
        return b""
    if (resp.header("Transfer-Encoding") or "").lower().endswith("chunked"):
        return await _read_chunked(r)
    length_text = resp.header("Content-Length")
    want = MAX_BODY_BYTES
    if length_text is not None and length_text.isdigit():
        want = min(int(length_text), MAX_BODY_BYTES)
    while len(r.buf) < want and await r.fill():
        pass
    return r.buf[:want]


async def _read_chunked(r: _Reader) -> bytes:
    body = b""
    while len(body) < MAX_BODY_BYTES:
        while b"\r\n" not in r.buf:
            if not await r.fill():
                return body
        size_line, r.buf = r.buf.split(b"\r\n", 1)
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return body
        if size == 0:
            return body
        while len(r.buf) < size + 2 and len(body) + len(r.buf) < MAX_BODY_BYTES and await r.fill():
            pass
        body += r.buf[:size]
        r.buf = r.buf[size + 2:]
    return body[:MAX_BODY_BYTES]
