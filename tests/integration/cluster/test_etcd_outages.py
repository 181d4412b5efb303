"""etcd unavailable is not an outage: a 3-member etcd cluster losing one member, then two; bad endpoints and CAs."""
from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from kubelet.node import etcd
from kubelet.node.cluster.testing import SimNode, pod, service, until
from kubelet.node.etcd import EtcdClient, TLSFiles
from kubelet.node.etcd.testing import EtcdCluster, free_port

pytestmark = [pytest.mark.timeout(120)]


def ready_ips(n: SimNode) -> set[str]:
    assert n.member is not None
    return {a for d in n.member.endpoint_docs() for ep in d.doc["endpoints"] if ep["conditions"]["ready"] for a in ep["addresses"]}


async def test_one_member_down_keeps_working_two_down_keeps_the_last_state(tmp_path: Path) -> None:
    with EtcdCluster.start(tmp_path / "etcd", members=3) as cluster:
        a = SimNode(name="n0", ip="192.168.56.11", state_dir=tmp_path / "a", endpoints=cluster.endpoints, lease_ttl=3)
        b = SimNode(name="n1", ip="192.168.56.12", state_dir=tmp_path / "b", endpoints=cluster.endpoints, lease_ttl=3)
        try:
            a.declare(service("web"))
            b.pods = [pod("web-n1", "10.244.1.5")]
            await a.start()
            await b.start()
            await until(lambda: ready_ips(a) == {"10.244.1.5"}, what="endpoint")
            # one member down (the leader or not): leases, new endpoints and routes keep working
            cluster.kill(0)
            await asyncio.sleep(2 * 3)  # two lease TTLs: the leases must have been renewed through the others
            assert len(a.member.view.nodes) == 2 and a.routes.routes  # type: ignore[union-attr]
            b.set_pods([pod("web-n1", "10.244.1.5"), pod("web2-n1", "10.244.1.6")])
            await until(lambda: ready_ips(a) == {"10.244.1.5", "10.244.1.6"}, timeout=10, what="new endpoint with 2/3 members")
            # two down: no quorum. The data plane keeps the last known state; the agents say so
            cluster.kill(1)
            await until(lambda: not a.member.connected and not b.member.connected, timeout=15, what="both notice")  # type: ignore[union-attr]
            routes_before = dict(a.routes.routes)
            await asyncio.sleep(2 * 3)
            assert ready_ips(a) == {"10.244.1.5", "10.244.1.6"} and a.routes.routes == routes_before
            assert len(a.member.view.nodes) == 2 and len(a.member.services()) == 1  # type: ignore[union-attr]
            assert "etcd unreachable" in a.member.health_detail()  # type: ignore[union-attr]
            assert any(r == "EtcdUnavailable" for r, _, _ in a.events)
            # a change made meanwhile is published once etcd is back
            b.set_pods([pod("web-n1", "10.244.1.5")])
            cluster.restart(0)
            cluster.restart(1)
            await until(lambda: a.member.connected and b.member.connected, timeout=30, what="reconnected")  # type: ignore[union-attr]
            await until(lambda: ready_ips(a) == {"10.244.1.5"}, timeout=10, what="converged")
            assert len(a.member.view.nodes) == 2 and any(r == "EtcdConnected" for r, _, _ in a.events)
        finally:
            await a.kill()
            await b.kill()


async def test_unreachable_endpoint_is_a_precise_error() -> None:
    port = free_port()
    async with EtcdClient([f"http://127.0.0.1:{port}"], timeout=1) as cl:
        with pytest.raises(etcd.Unavailable) as e:
            await cl.get("/nodelet/nodes/x")
    assert str(e.value).startswith(f"etcd Range on http://127.0.0.1:{port}: failed to connect")
    assert "Connection refused" in str(e.value)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.pem",
             "-days", "1", "-subj", f"/CN={name}", cwd=d)


async def test_wrong_ca_is_a_precise_error_and_the_right_one_works(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    d.mkdir()
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=etcd", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", "server.pem",
             "-days", "1", "-extfile", "san.cnf", cwd=d)
    port = free_port()
    with _tls_etcd(tmp_path, d, port):
        url = f"https://127.0.0.1:{port}"
        async with EtcdClient([url], tls=TLSFiles(ca_file=str(d / "other-ca.pem")), timeout=2) as cl:
            with pytest.raises(etcd.TLSError) as e:
                await cl.get("/nodelet/x")
        assert str(e.value).startswith(f"etcd Range on {url}: TLS handshake failed")
        async with EtcdClient([url], tls=TLSFiles(ca_file=str(d / "ca.pem")), timeout=2) as cl:
            await until(lambda: _put_ok(cl), timeout=15, what="TLS etcd answers")
            assert (await cl.get("/nodelet/x")).value == b"1"  # type: ignore[union-attr]


async def _put_ok(cl: EtcdClient) -> bool:
    try:
        await cl.put("/nodelet/x", "1")
        return True
    except etcd.Unavailable:
        return False


class _tls_etcd:
    """One etcd serving clients over TLS (the fixture's health check speaks plain HTTP, so no wait here)."""

    def __init__(self, tmp_path: Path, pki: Path, port: int) -> None:
        import os

        self.port = port
        self.log = open(tmp_path / "etcd-tls.log", "wb")
        peer = free_port()
        self.proc = subprocess.Popen(
            ["etcd", "--name", "tls", "--data-dir", str(tmp_path / "tls.etcd"),
             "--listen-client-urls", f"https://127.0.0.1:{port}", "--advertise-client-urls", f"https://127.0.0.1:{port}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"tls=http://127.0.0.1:{peer}", "--cert-file", str(pki / "server.pem"),
             "--key-file", str(pki / "server-key.pem")],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("ETCD")})

    def __enter__(self) -> "_tls_etcd":
        import socket
        import time

        deadline = time.monotonic() + 15
        while True:  # listening (TLS itself is what the test checks)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("TLS etcd did not start") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()
