"""In-process cluster members for tests and benchmarks: a real etcd client and ClusterMember, with the agent's side
(pods, declared Services, facts) given as plain data and routes recorded instead of programmed (the routes
themselves are tested on real netns by the three-node e2e test)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelet.lifecycle.nodestatus import NodeFacts
from kubelet.node.etcd import EtcdClient
from proxy.model import ManifestDoc

from .member import ClusterConfig, ClusterMember


class RecordingRoutes:
    """RouteTable's interface, keeping the desired routes in memory."""

    def __init__(self) -> None:
        self.routes: dict[str, str] = {}
        self.applied = 0

    async def apply_routes(self, desired: Mapping[str, str]) -> tuple[int, list[str]]:
        changed = 0 if dict(desired) == self.routes else 1
        self.routes = dict(desired)
        self.applied += 1
        return changed, []


def pod(name: str, ip: str, *, ready: bool = True, labels: Mapping[str, str] | None = None, port: int = 8080,
        namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {"app": "web"}),
                         "annotations": {"kubernetes.io/config.hash": f"h-{name}"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": port, "name": "http"}]}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def service(name: str, *, port: int = 80, target: int | str = 8080, selector: Mapping[str, str] | None = None,
            namespace: str = "default", cluster_ip: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": dict(selector or {"app": "web"}),
                            "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@dataclass(kw_only=True)
class SimNode:
    """One node's agent side, as data the test edits; `member` runs against real etcd."""

    name: str
    ip: str
    state_dir: Path
    endpoints: list[str]
    cluster_cidr: str = "10.244.0.0/16"
    lease_ttl: int = 3
    prefix: str = "/nodelet"
    pods: list[dict[str, Any]] = field(default_factory=list)
    declared: list[ManifestDoc] | None = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    routes: RecordingRoutes = field(default_factory=RecordingRoutes)
    member: ClusterMember | None = None
    task: asyncio.Task[Any] | None = None
    client: EtcdClient | None = None
    changes: int = 0
    on_change: Callable[[], Any] | None = None  # e.g. a real Proxier's update, as the app wires it

    def facts(self) -> NodeFacts:
        return NodeFacts(name=self.name, internal_ip=self.ip, cpu_millis=2000, memory_bytes=2 << 30,
                         ephemeral_storage_bytes=10 << 30, kernel_version="6.1", os_image="test",
                         container_runtime_version="containerd://test", kubelet_version="v0.1.0")

    def _on_change(self) -> None:
        self.changes += 1
        if self.on_change is not None:
            self.on_change()

    async def start(self, *, timeout: float = 15.0) -> ClusterMember:
        self.client = EtcdClient(self.endpoints, timeout=2.0)
        cfg = ClusterConfig(endpoints=tuple(self.endpoints), prefix=self.prefix, node_name=self.name, node_ip=self.ip,
                            cluster_cidr=self.cluster_cidr, lease_ttl=self.lease_ttl, state_dir=str(self.state_dir),
                            status_interval=5.0)
        self.member = ClusterMember(cfg, client=self.client, facts=self.facts, pods=lambda: list(self.pods),
                                    declared_services=lambda: None if self.declared is None else list(self.declared),
                                    on_change=self._on_change, on_event=lambda r, m, t: self.events.append((r, m, t)),
                                    routes=self.routes)  # type: ignore[arg-type]
        await asyncio.wait_for(self.member.acquire_subnet(), timeout)
        self.task = asyncio.create_task(self.member.run(), name=f"member-{self.name}")
        await asyncio.wait_for(self.member.synced.wait(), timeout)
        return self.member

    async def kill(self) -> None:
        """Like kill -9 of the agent: its loops stop, nothing is revoked (the lease runs out on its own)."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.client is not None:
            await self.client.close()
            self.client = None

    def declare(self, *docs: dict[str, Any], source: str = "") -> None:
        self.declared = [ManifestDoc(source=source or f"/etc/kubernetes/manifests/{d['metadata']['name']}.yaml", doc=d) for d in docs]
        if self.member is not None:
            self.member.poke()

    def set_pods(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        if self.member is not None:
            self.member.poke()


async def until(cond: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0, interval: float = 0.02, what: str = "") -> float:
    """Poll `cond` until true; returns the seconds it took. Raises AssertionError naming `what` on timeout."""
    t0 = time.monotonic()
    while True:
        r = cond()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        await asyncio.sleep(interval)
