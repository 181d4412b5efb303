"""Test helpers (real parts): a network-namespace topology with real TCP/UDP servers and clients.

Topology (every name carries a per-run suffix so parallel runs never collide):

    client ──veth── node ──veth── backend-1..n        (pod CIDR 10.244.0.0/16, routed /24 per link)
                     │
                    veth── external host              (192.168.<x>.0/24; the node's default route)

The node namespace holds the proxy rules; nothing is programmed outside namespaces created here. In each namespace
an *agent* (the real interpreter running ``AGENT_SOURCE``) serves ``<name>`` over TCP/UDP and runs client requests
on command, one JSON line per answer.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxy.model import ContainerPort, ManifestDoc, PodInfo

POD_CIDR = "10.244.0.0/16"

AGENT_SOURCE = r'''
import json, socket, sys, threading
name = sys.argv[1]
def tcp_bind(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(512)
    return s
def udp_bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    return s
def tcp_server(s):
    while True:
        c, _ = s.accept()
        try: c.sendall(name.encode())
        except OSError: pass
        c.close()
def udp_server(s):
    while True:
        data, peer = s.recvfrom(2048); s.sendto(name.encode(), peer)
udp_client = None
def tcp(ip, port, n, timeout):
    counts, errors = {}, {}
    for _ in range(n):
        c = socket.socket(); c.settimeout(timeout)
        try:
            c.connect((ip, port)); data = b""
            while True:
                chunk = c.recv(256)
                if not chunk: break
                data += chunk
            k = data.decode(); counts[k] = counts.get(k, 0) + 1
        except OSError as e:
            k = type(e).__name__; errors[k] = errors.get(k, 0) + 1
        finally:
            c.close()
    return {"counts": counts, "errors": errors}
def udp(ip, port, timeout):
    global udp_client
    if udp_client is None:
        udp_client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp_client.bind(("0.0.0.0", 0))
    udp_client.settimeout(timeout)
    udp_client.sendto(b"ping", (ip, port))
    try:
        while True:
            data, peer = udp_client.recvfrom(2048)
            return {"reply": data.decode(), "port": udp_client.getsockname()[1]}
    except OSError as e:
        return {"error": type(e).__name__}
print(json.dumps({"ready": name}), flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd: continue
    if cmd[0] == "serve":
        proto, port = cmd[1], int(cmd[2])
        sock = tcp_bind(port) if proto == "tcp" else udp_bind(port)
        srv = tcp_server if proto == "tcp" else udp_server
        threading.Thread(target=srv, args=(sock,), daemon=True).start()
        out = {"serving": port}
    elif cmd[0] == "tcp":
        out = tcp(cmd[1], int(cmd[2]), int(cmd[3]), float(cmd[4]))
    elif cmd[0] == "udp":
        out = udp(cmd[1], int(cmd[2]), float(cmd[3]))
    else:
        out = {"error": "unknown command"}
    print(json.dumps(out), flush=True)
'''


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, input=input)


def in_ns(ns: str, *argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv, check=check, input=input)


class Agent:
    """One agent process inside a namespace."""

    def __init__(self, ns: str, name: str) -> None:
        self.ns = ns
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.ns, sys.executable, "-u", "-c", AGENT_SOURCE, self.name,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        ready = await self._read()
        assert ready == {"ready": self.name}, ready

    async def _read(self) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=120)
        if not line:
            raise RuntimeError(f"agent {self.name} in {self.ns} exited")
        return json.loads(line)

    async def call(self, command: str) -> Any:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._read()

    async def serve(self, proto: str, port: int) -> None:
        await self.call(f"serve {proto} {port}")

    async def tcp(self, ip: str, port: int, n: int = 1, timeout: float = 2.0) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = await self.call(f"tcp {ip} {port} {n} {timeout}")
        return result

    async def udp(self, ip: str, port: int, timeout: float = 1.0) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(f"udp {ip} {port} {timeout}")
        return result

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class Topology:
    """Namespaces and links for one test; ``close()`` removes all of them (also after a failure)."""

    suffix: str = field(default_factory=lambda: f"{os.getpid() % 100000}{secrets.token_hex(2)}")
    backends: int = 3
    namespaces: list[str] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)
    backend_ips: list[str] = field(default_factory=list)
    node_external_ip: str = ""

    @property
    def node(self) -> str:
        return f"pxnode-{self.suffix}"

    def ns(self, role: str) -> str:
        return f"px{role}-{self.suffix}"

    def _link(self, other: str, idx: int, node_ip: str, peer_ip: str, plen: int) -> None:
        a, b = f"pxa{idx}-{self.suffix}"[:15], f"pxb{idx}-{self.suffix}"[:15]
        sh("ip", "link", "add", a, "netns", self.node, "type", "veth", "peer", "name", b, "netns", other)
        in_ns(self.node, "ip", "addr", "add", f"{node_ip}/{plen}", "dev", a)
        in_ns(self.node, "ip", "link", "set", a, "up")
        in_ns(other, "ip", "addr", "add", f"{peer_ip}/{plen}", "dev", b)
        in_ns(other, "ip", "link", "set", b, "up")
        in_ns(other, "ip", "link", "set", "lo", "up")
        in_ns(other, "ip", "route", "add", "default", "via", node_ip)

    def build(self) -> Topology:
        x = 100 + int(secrets.token_hex(1), 16) % 100
        for ns in [self.node, self.ns("client"), self.ns("ext"), *(self.ns(f"b{i}") for i in range(self.backends))]:
            sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
        in_ns(self.node, "ip", "link", "set", "lo", "up")
        in_ns(self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i in range(self.backends):
            self._link(self.ns(f"b{i}"), i, f"10.244.{i}.1", f"10.244.{i}.2", 24)
            self.backend_ips.append(f"10.244.{i}.2")
        self._link(self.ns("client"), 90, "10.244.90.1", "10.244.90.2", 24)
        # the external host is the node's default gateway, as a LAN router would be
        sh("ip", "link", "add", f"pxa99-{self.suffix}"[:15], "netns", self.node, "type", "veth",
           "peer", "name", f"pxb99-{self.suffix}"[:15], "netns", self.ns("ext"))
        self.node_external_ip = f"192.168.{x}.1"
        in_ns(self.node, "ip", "addr", "add", f"192.168.{x}.1/24", "dev", f"pxa99-{self.suffix}"[:15])
        in_ns(self.node, "ip", "link", "set", f"pxa99-{self.suffix}"[:15], "up")
        in_ns(self.node, "ip", "route", "add", "default", "via", f"192.168.{x}.2")
        in_ns(self.ns("ext"), "ip", "addr", "add", f"192.168.{x}.2/24", "dev", f"pxb99-{self.suffix}"[:15])
        in_ns(self.ns("ext"), "ip", "link", "set", f"pxb99-{self.suffix}"[:15], "up")
        in_ns(self.ns("ext"), "ip", "link", "set", "lo", "up")
        return self

    async def start_agents(self) -> None:
        roles = ["client", "ext", *(f"b{i}" for i in range(self.backends))]
        for role in roles:
            agent = Agent(self.ns(role), role)
            self.agents[role] = agent
        await asyncio.gather(*(a.start() for a in self.agents.values()))

    def agent(self, role: str) -> Agent:
        return self.agents[role]

    def pods(self, *, ready: Mapping[int, bool] | None = None, labels: Mapping[str, str] | None = None,
             ports: Sequence[ContainerPort] = ()) -> list[PodInfo]:
        ready = ready or {}
        return [
            PodInfo(namespace="default", name=f"b{i}", labels=dict(labels or {"app": "web"}), ip=ip,
                    ready=ready.get(i, True), ports=tuple(ports), node_name="node1")
            for i, ip in enumerate(self.backend_ips)
        ]

    async def close(self) -> None:
        for a in self.agents.values():
            await a.stop()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)


def service_doc(name: str, *, cluster_ip: str | None = None, ports: Sequence[Mapping[str, Any]],
                selector: Mapping[str, str] | None = None, **spec: Any) -> ManifestDoc:
    s: dict[str, Any] = {"ports": [dict(p) for p in ports], **spec}
    if selector is not None:
        s["selector"] = dict(selector)
    if cluster_ip is not None:
        s["clusterIP"] = cluster_ip
    return ManifestDoc(source=f"/manifests/{name}.yaml",
                       doc={"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": s})


def endpoint_slice_doc(service: str, addresses: Sequence[str], *, port: int, protocol: str = "TCP",
                       port_name: str = "", ready: bool = True, node_name: str | None = None) -> ManifestDoc:
    return ManifestDoc(
        source=f"/manifests/{service}-slice.yaml",
        doc={
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-1", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": protocol}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}, **({"nodeName": node_name} if node_name else {})}
                          for a in addresses],
        },
    )
