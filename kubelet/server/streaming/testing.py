"""A minimal Kubernetes API for kubectl's streaming verbs, for tests: TLS with a throw-away CA, a client-certificate
kubeconfig, `/version` (minor 32, so the kubectl dispatcher runs 1.32), legacy discovery, `GET pod` built from the
runtime view, and nodelet's streaming routes. It runs in a thread of the test process against the real containerd
the agent under test uses (the same `RuntimeView` the agent builds), so kubectl talks to real pods."""
from __future__ import annotations

import asyncio
import datetime
import json
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import cri
from kubelet.kuberuntime.view import RuntimeView
from kubelet.server.streaming import register_streaming_routes


def _cert(subject: str, *, issuer: tuple[Any, Any] | None, org: str = "", ca: bool = False, server: bool = False) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, subject)] + ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else [])
    name = x509.Name(attrs)
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer[0].subject if issuer else name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        import ipaddress
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _pem(cert: Any, key: Any | None = None) -> tuple[bytes, bytes]:
    c = cert.public_bytes(serialization.Encoding.PEM)
    k = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()) if key else b""
    return c, k


class KubectlAPI:
    def __init__(self, workdir: Path, *, endpoint: str, node_name: str) -> None:
        self.workdir, self.endpoint, self.node_name = workdir, endpoint, node_name
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="kubectl-api")
        self.port = 0
        self.kubeconfig = workdir / "kubeconfig"
        self.requests: list[str] = []

    def _certs(self) -> ssl.SSLContext:
        ca = _cert("nodelet-test-ca", issuer=None, ca=True)
        srv = _cert("127.0.0.1", issuer=ca, server=True)
        cli = _cert("admin", issuer=ca, org="system:masters")
        ca_pem = _pem(ca[0])[0]
        (self.workdir / "ca.crt").write_bytes(ca_pem)
        (self.workdir / "server.crt").write_bytes(b"".join(_pem(*srv)))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.workdir / "server.crt")
        ctx.load_verify_locations(self.workdir / "ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
        import base64
        c, k = _pem(*cli)
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "nodelet",
            "clusters": [{"name": "nodelet", "cluster": {"server": f"https://127.0.0.1:{self.port}",
                                                         "certificate-authority-data": b64(ca_pem)}}],
            "users": [{"name": "admin", "user": {"client-certificate-data": b64(c), "client-key-data": b64(k)}}],
            "contexts": [{"name": "nodelet", "context": {"cluster": "nodelet", "user": "admin", "namespace": "default"}}],
        }))
        self.kubeconfig.chmod(0o600)
        return ctx

    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        ctx = self._certs()
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sock, ctx), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _serve(self, sock: socket.socket, ctx: ssl.SSLContext) -> None:
        self.client = cri.RuntimeClient(self.endpoint)
        view = RuntimeView(self.client, node_name=self.node_name)

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path}")
            return await handler(request)

        app = web.Application(middlewares=[record])
        app["nodelet.view"] = view
        app["nodelet.runtime"] = self.client

        async def version(_: web.Request) -> web.Response:
            return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"})

        async def api(_: web.Request) -> web.Response:
            return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]})

        async def apis(_: web.Request) -> web.Response:
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

        async def api_v1(_: web.Request) -> web.Response:
            res = [{"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
                    "verbs": ["get", "list"]}]
            res += [{"name": f"pods/{s}", "singularName": "", "namespaced": True, "kind": k, "verbs": ["create", "get"]}
                    for s, k in (("exec", "PodExecOptions"), ("attach", "PodAttachOptions"), ("portforward", "PodPortForwardOptions"))]
            return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": res})

        async def get_pod(request: web.Request) -> web.Response:
            ns, name = request.match_info["namespace"], request.match_info["name"]
            for p in (await view.all_pods()).values():
                if p.namespace == ns and p.name == name:
                    names: list[str] = []
                    for c in reversed(p.containers):
                        if c.name not in names:
                            names.append(c.name)
                    sb = p.newest_sandbox
                    return web.json_response({
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "namespace": ns, "uid": p.uid},
                        "spec": {"containers": [{"name": n, "image": p.latest(n).image} for n in sorted(names)]},  # type: ignore[union-attr]
                        "status": {"phase": "Running", "podIP": sb.ip if sb else "",
                                   "containerStatuses": [{"name": n, "ready": True, "restartCount": 0,
                                                          "state": {"running": {}} if p.latest(n).running else {"terminated": {}}}  # type: ignore[union-attr]
                                                         for n in sorted(names)]}})
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                      "message": f'pods "{name}" not found', "code": 404}, status=404)

        app.add_routes([web.get("/version", version), web.get("/api", api), web.get("/apis", apis),
                        web.get("/api/v1", api_v1), web.get("/api/v1/namespaces/{namespace}/pods/{name}", get_pod)])
        register_streaming_routes(app)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        await web.SockSite(self.runner, sock, ssl_context=ctx).start()
