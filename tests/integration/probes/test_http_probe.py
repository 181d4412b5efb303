"""httpGet probes against real HTTP/HTTPS servers on loopback."""
from __future__ import annotations

import asyncio
import socket
import time

from probes import HTTPGetAction, ProbeResult
from probes.http import run_http_probe
from probes.testing import HTTPTestServer, make_self_signed_cert, server_tls_context

S, F = ProbeResult.SUCCESS, ProbeResult.FAILURE


def action(port: int, path: str = "/", **kw) -> HTTPGetAction:  # type: ignore[no-untyped-def]
    return HTTPGetAction(scheme=kw.pop("scheme", "HTTP"), host=kw.pop("host", None), port=port, path=path,
                         headers=kw.pop("headers", ()))


async def probe(port: int, path: str = "/", timeout: float = 1.0, **kw):  # type: ignore[no-untyped-def]
    return await run_http_probe(action(port, path, **kw), default_host="127.0.0.1", timeout_s=timeout)


async def test_success_then_statuscode_failure() -> None:
    async with HTTPTestServer() as srv:
        out = await probe(srv.port)
        assert (out.result, out.message, out.warning) == (S, "ok\n", False)
        srv.status = 500
        out = await probe(srv.port)
        assert (out.result, out.message) == (F, "HTTP probe failed with statuscode: 500")


async def test_status_range_200_to_399() -> None:
    async with HTTPTestServer() as srv:
        for code, result in [(200, S), (204, S), (299, S), (304, S), (399, S), (199, F), (400, F), (404, F),
                             (503, F)]:
            out = await probe(srv.port, f"/status/{code}")
            assert out.result is result, (code, out)
        assert (await probe(srv.port, "/status/399")).warning  # upstream's probe.Warning: success + event


async def test_default_and_user_headers() -> None:
    async with HTTPTestServer() as srv:
        await probe(srv.port, "/healthz?x=1")
        req = srv.requests[-1]
        assert (req.method, req.target) == ("GET", "/healthz?x=1")
        assert req.header("User-Agent") == "kube-probe/1.31"
        assert req.header("Accept") == "*/*"
        assert req.header("Host") == f"127.0.0.1:{srv.port}"
        assert req.header("Connection") == "close"
        await probe(srv.port, headers=(("Host", "example.com"), ("x-custom", "v1"), ("User-Agent", "mine"),
                                       ("Accept", "application/json")))
        req = srv.requests[-1]
        assert req.header("Host") == "example.com"
        assert req.header("X-Custom") == "v1"
        assert req.header("User-Agent") == "mine"
        assert req.header("Accept") == "application/json"
        assert [k for k, _ in req.headers].count("Host") == 1
        await probe(srv.port, headers=(("Accept", ""),))
        assert srv.requests[-1].header("Accept") is None


async def test_explicit_host_field_wins_over_pod_ip() -> None:
    async with HTTPTestServer(host="127.0.0.3") as srv:
        out = await run_http_probe(action(srv.port, host="127.0.0.3"), default_host="127.0.0.1", timeout_s=1)
        assert out.result is S


async def test_same_host_redirects_followed_up_to_ten() -> None:
    async with HTTPTestServer() as srv:
        out = await probe(srv.port, f"/redirect?to=/status/200")
        assert (out.result, out.warning) == (S, False)
        assert [r.target for r in srv.requests] == ["/redirect?to=/status/200", "/status/200"]
        out = await probe(srv.port, f"/redirect?to=/status/500")
        assert (out.result, out.message) == (F, "HTTP probe failed with statuscode: 500")
        srv.requests.clear()
        out = await probe(srv.port, "/loop/0")
        assert out.result is F
        assert out.message == f'Get "http://127.0.0.1:{srv.port}/loop/10": stopped after 10 redirects'
        assert len(srv.requests) == 10


async def test_same_host_other_port_is_followed() -> None:
    async with HTTPTestServer() as a, HTTPTestServer() as b:
        b.status = 500
        out = await probe(a.port, f"/redirect?to=http://127.0.0.1:{b.port}/")
        assert (out.result, out.message) == (F, "HTTP probe failed with statuscode: 500")
        assert len(b.requests) == 1


async def test_other_host_redirect_not_followed() -> None:
    async with HTTPTestServer() as a, HTTPTestServer(host="127.0.0.2") as b:
        b.status = 500
        out = await probe(a.port, f"/redirect?to=http://127.0.0.2:{b.port}/")
        assert (out.result, out.warning) == (S, True)
        assert out.message == "Probe terminated redirects, Response body: moved"
        assert b.requests == []


async def test_https_without_verification(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert, key = make_self_signed_cert(str(tmp_path))
    async with HTTPTestServer(ssl_context=server_tls_context(cert, key)) as srv:
        out = await probe(srv.port, "/", scheme="HTTPS")
        assert out.result is S
        srv.status = 503
        out = await probe(srv.port, "/", scheme="HTTPS")
        assert (out.result, out.message) == (F, "HTTP probe failed with statuscode: 503")
        # plain HTTP to a TLS port fails, it does not hang
        out = await probe(srv.port, "/", timeout=2)
        assert out.result is F and "deadline" not in out.message


async def test_body_read_is_capped() -> None:
    async with HTTPTestServer() as srv:
        t0 = time.monotonic()
        out = await probe(srv.port, "/big")
        assert out.result is S
        assert len(out.message) == 10 * 1024
        assert time.monotonic() - t0 < 0.5


async def test_connection_refused_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = await probe(port, "/healthz")
    assert out.result is F
    assert out.message == (f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: '
                           f"connection refused")


async def test_hung_server_times_out_and_others_are_unaffected() -> None:
    async with HTTPTestServer() as hung, HTTPTestServer() as fine:
        hung.hang = True
        t0 = time.monotonic()
        slow = asyncio.create_task(probe(hung.port, timeout=1.0))
        fast = [await probe(fine.port, timeout=1.0) for _ in range(20)]
        fast_elapsed = time.monotonic() - t0
        out = await slow
        elapsed = time.monotonic() - t0
        assert all(o.result is S for o in fast)
        assert fast_elapsed < 0.9, fast_elapsed  # well inside the hung probe's 1 s timeout
        assert out.result is F
        assert out.message == (f'Get "http://127.0.0.1:{hung.port}/": context deadline exceeded '
                               f"(Client.Timeout exceeded while awaiting headers)")
        assert 0.95 < elapsed < 1.5, elapsed
