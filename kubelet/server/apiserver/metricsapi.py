"""metrics.k8s.io/v1beta1 for `kubectl top`: PodMetrics from the CRI's ListContainerStats (working set, CPU rate) and
NodeMetrics from /proc through psutil, computed as metrics-server does (a rate over the window between two samples;
the previous sample is kept, so only the first call waits one short window)."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import psutil

__all__ = ["MetricsSampler", "compute_cpu_quantity", "compute_memory_quantity"]

WINDOW = 1.0
MAX_AGE = 60.0  # an older previous sample is not a useful window: sample again


def compute_cpu_quantity(nano_cores: int) -> str:
    return f"{nano_cores}n"


def compute_memory_quantity(b: int) -> str:
    return f"{b // 1024}Ki"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class MetricsSampler:
    def __init__(self, *, client: Any, node_name: str, label_key: str = "io.nodelet.node") -> None:
        self.client = client
        self.node_name = node_name
        self.label_key = label_key
        self._containers: tuple[float, dict[str, tuple[int, int]]] | None = None
        self._node: tuple[float, float, float] | None = None  # monotonic, busy seconds, total seconds
        self._lock = asyncio.Lock()

    async def _stats(self) -> list[Any]:
        import cri.api as capi

        sel = {self.label_key: self.node_name}
        running = {c.id for c in await self.client.list_containers(labels=sel, state=capi.ContainerState.RUNNING)}
        return [s for s in await self.client.list_container_stats(labels=sel) if s.id in running]

    async def pod_metrics(self) -> list[dict[str, Any]]:
        async with self._lock:
            stats = await self._stats()
            now = time.monotonic()
            prev = self._containers
            if prev is None or now - prev[0] > MAX_AGE or now - prev[0] < 0.2:
                first = {s.id: (s.timestamp, s.cpu_usage_core_nanoseconds or 0) for s in stats}
                await asyncio.sleep(WINDOW)
                stats = await self._stats()
            else:
                first = prev[1]
            second = {s.id: (s.timestamp, s.cpu_usage_core_nanoseconds or 0) for s in stats}
            self._containers = (time.monotonic(), second)
        pods: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for s in stats:
            rate = s.cpu_usage_nano_cores
            if rate is None and s.id in first:
                t0, c0 = first[s.id]
                t1, c1 = second[s.id]
                rate = int((c1 - c0) * 1e9 / (t1 - t0)) if t1 > t0 and c1 >= c0 else 0
            ns = s.labels.get("io.kubernetes.pod.namespace", "default")
            pod = s.labels.get("io.kubernetes.pod.name", "")
            pods.setdefault((ns, pod), []).append({
                "name": s.labels.get("io.kubernetes.container.name", s.name),
                "usage": {"cpu": compute_cpu_quantity(rate or 0),
                          "memory": compute_memory_quantity(s.memory_working_set_bytes or 0)}})
        ts = _now()
        return [{"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                 "metadata": {"name": pod, "namespace": ns, "creationTimestamp": ts},
                 "timestamp": ts, "window": f"{WINDOW:g}s", "containers": sorted(cs, key=lambda c: c["name"])}
                for (ns, pod), cs in sorted(pods.items())]

    def _cpu_sample(self) -> tuple[float, float, float]:
        t = psutil.cpu_times()
        total = sum(t)
        idle = t.idle + getattr(t, "iowait", 0.0)
        return time.monotonic(), total - idle, total

    async def node_metrics(self) -> list[dict[str, Any]]:
        async with self._lock:
            prev = self._node
            cur = self._cpu_sample()
            if prev is None or cur[0] - prev[0] > MAX_AGE or cur[0] - prev[0] < 0.2:
                prev = cur
                await asyncio.sleep(WINDOW)
                cur = self._cpu_sample()
            self._node = cur
        cores = psutil.cpu_count() or 1
        busy_fraction = (cur[1] - prev[1]) / (cur[2] - prev[2]) if cur[2] > prev[2] else 0.0
        vm = psutil.virtual_memory()
        ts = _now()
        return [{"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                 "metadata": {"name": self.node_name, "creationTimestamp": ts, "labels": {}},
                 "timestamp": ts, "window": f"{WINDOW:g}s",
                 "usage": {"cpu": compute_cpu_quantity(int(busy_fraction * cores * 1e9)),
                           "memory": compute_memory_quantity(vm.total - vm.available)}}]
