"""The agent's metrics on ``prometheus-client``, with the kubelet's and kube-proxy's names, types and labels.

Each :class:`AgentMetrics` owns its ``CollectorRegistry`` objects (nothing goes to the client's global registry):

- ``registry`` → ``/metrics``: the kubelet's ``pkg/kubelet/metrics/metrics.go`` set where nodelet has an equivalent
  (``kubelet_pod_worker_duration_seconds{operation_type}``, ``kubelet_running_pods``, ``kubelet_runtime_operations_*
  {operation_type}``, ``kubelet_pleg_last_seen_seconds``, ``kubelet_node_name{node}``), kube-proxy's sync metrics (``pkg/proxy/metrics/metrics.go``:
  ``kubeproxy_sync_proxy_rules_duration_seconds``, ``…_last_timestamp_seconds``, ``…_iptables_restore_failures_total``,
  ``kubeproxy_sync_full|partial_proxy_rules_duration_seconds``), the process collector (``process_cpu_seconds_total``
  is a counter), and ``nodelet_*`` for what the kubelet has no metric for (pods by phase, manifest errors);
- ``probe_registry`` → ``/metrics/probes``: ``prober_probe_total{probe_type,result,container,pod,namespace,pod_uid}``
  and ``prober_probe_duration_seconds``;
- ``/metrics/resource``: :func:`render_resource_metrics` from a :class:`ResourceSnapshot` taken per scrape (CRI
  container stats + the node's /proc), ``pkg/kubelet/metrics/collectors/resource_metrics.go`` names.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

__all__ = [
    "AgentMetrics", "CONTENT_TYPE", "ContainerUsage", "DEFAULT_BUCKETS", "ResourceSnapshot",
    "compute_exponential_buckets", "render_resource_metrics",
]

# client_golang (the kubelet, kube-proxy) writes no *_created series; prometheus-client's switch is process-wide, and
# the metrics of this module are the only prometheus-client users in the daemon.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# what generate_latest writes (the 0.0.4 text format) and client_golang serves by default; prometheus-client's
# CONTENT_TYPE_LATEST names a newer version depending on the release
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# client_golang's DefBuckets (the kubelet's pod worker, PLEG and prober histograms)
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def compute_exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """client_golang's ExponentialBuckets(start, factor, count), multiplied step by step as Go does."""
    if count < 1 or start <= 0 or factor <= 1:
        raise ValueError(f"bad exponential buckets start={start} factor={factor} count={count}")
    out, b = [], start
    for _ in range(count):
        out.append(b)
        b *= factor
    return tuple(out)


POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONTAINER_STATES = ("created", "running", "exited", "unknown")  # the kubelet's container_state values
RUNTIME_BUCKETS = compute_exponential_buckets(0.005, 2.5, 14)  # kubelet_runtime_operations_duration_seconds
PROXY_SYNC_BUCKETS = compute_exponential_buckets(0.001, 2, 15)  # kubeproxy_sync_proxy_rules_duration_seconds
PROBE_RESULTS = {"Success": "successful", "Failure": "failed", "Unknown": "unknown"}  # prober_probe_total{result}


@dataclass(kw_only=True)
class AgentMetrics:
    """Every metric the agent exports. Create one per daemon; ``render()`` is what ``/metrics`` serves and
    ``render_probes()`` what ``/metrics/probes`` serves."""

    node_name: str = ""
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    probe_registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    process_metrics: bool = True

    def __post_init__(self) -> None:
        r = self.registry
        self.pod_sync_duration = Histogram(
            "kubelet_pod_worker_duration_seconds",
            "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
            ["operation_type"], registry=r, buckets=DEFAULT_BUCKETS)
        self.running_pods = Gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox", registry=r)
        self.running_containers = Gauge("kubelet_running_containers", "Number of containers currently running",
                                        ["container_state"], registry=r)
        self.runtime_operations = Counter(
            "kubelet_runtime_operations_total", "Cumulative number of runtime operations by operation type.",
            ["operation_type"], registry=r)
        self.runtime_operations_errors = Counter(
            "kubelet_runtime_operations_errors_total",
            "Cumulative number of runtime operation errors by operation type.", ["operation_type"], registry=r)
        self.runtime_operations_duration = Histogram(
            "kubelet_runtime_operations_duration_seconds",
            "Duration in seconds of runtime operations. Broken down by operation type.", ["operation_type"],
            registry=r, buckets=RUNTIME_BUCKETS)
        self.pleg_last_seen = Gauge("kubelet_pleg_last_seen_seconds",
                                    "Timestamp in seconds when PLEG was last seen active.", registry=r)
        self.node_name_info = Gauge("kubelet_node_name", "The node's name. The count is always 1.", ["node"],
                                    registry=r)
        if self.node_name:
            self.node_name_info.labels(node=self.node_name).set(1)
        # no kubelet equivalent
        self.pod_worker_sync_errors = Counter("nodelet_pod_worker_sync_errors_total",
                                              "Cumulative number of pod worker syncs that failed.", registry=r)
        self.pods = Gauge("nodelet_pods", "Number of pods the agent manages, by phase.", ["phase"], registry=r)
        self.manifest_errors = Gauge("nodelet_manifest_errors",
                                     "Number of manifest errors in the static pod path right now.", registry=r)
        # kube-proxy
        self.proxy_sync_duration = Histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", registry=r,
            buckets=PROXY_SYNC_BUCKETS)
        self.proxy_full_sync_duration = Histogram(
            "kubeproxy_sync_full_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for full resyncs",
            registry=r, buckets=PROXY_SYNC_BUCKETS)
        self.proxy_partial_sync_duration = Histogram(
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for partial resyncs", registry=r, buckets=PROXY_SYNC_BUCKETS)
        self.proxy_last_sync = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                                     "The last time proxy rules were successfully synced", registry=r)
        self.proxy_restore_failures = Counter(
            "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
            "Cumulative proxy iptables restore failures", registry=r)
        self.proxy_nft_failures = Counter(
            "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
            "Cumulative proxy nftables sync failures", registry=r)
        if self.process_metrics:
            ProcessCollector(registry=r)
        # /metrics/probes
        p = self.probe_registry
        self.probe_total = Counter(
            "prober_probe_total", "Cumulative number of a liveness, readiness or startup probe for a container by "
            "result.", ["probe_type", "result", "container", "pod", "namespace", "pod_uid"], registry=p)
        self.probe_duration = Histogram(
            "prober_probe_duration_seconds", "Duration in seconds for a probe response.",
            ["probe_type", "container", "pod", "namespace"], registry=p, buckets=DEFAULT_BUCKETS)

    # -- helpers for the sync loop, PLEG, the prober and the proxier --
    def set_pod_phases(self, counts: Mapping[str, int]) -> None:
        """nodelet_pods{phase} for every phase (missing phases are 0, so series do not vanish)."""
        for phase in sorted(set(POD_PHASES) | set(counts)):
            self.pods.labels(phase=phase).set(counts.get(phase, 0))

    def set_containers(self, counts: Mapping[str, int]) -> None:
        """kubelet_running_containers{container_state} (created|running|exited|unknown; missing are 0)."""
        for state in sorted(set(CONTAINER_STATES) | set(counts)):
            self.running_containers.labels(container_state=state).set(counts.get(state, 0))

    def observe_runtime_call(self, operation: str, seconds: float, *, error: bool) -> None:
        """One CRI call: ``operation`` is the kubelet's operation_type (e.g. run_podsandbox, create_container)."""
        self.runtime_operations.labels(operation_type=operation).inc()
        self.runtime_operations_duration.labels(operation_type=operation).observe(seconds)
        if error:
            self.runtime_operations_errors.labels(operation_type=operation).inc()

    def observe_probe(self, *, probe_type: str, result: str, container: str, pod: str, namespace: str, pod_uid: str,
                      seconds: float) -> None:
        """One probe attempt: probe_type Liveness|Readiness|Startup, result Success|Failure|Unknown."""
        self.probe_total.labels(probe_type=probe_type, result=PROBE_RESULTS.get(result, "unknown"),
                                container=container, pod=pod, namespace=namespace, pod_uid=pod_uid).inc()
        self.probe_duration.labels(probe_type=probe_type, container=container, pod=pod,
                                   namespace=namespace).observe(seconds)

    def observe_proxy_sync(self, *, kind: str, seconds: float, error: str | None, mode: str, wall: float) -> None:
        """One kube-proxy-style sync (kind full|fresh|partial|none|failed)."""
        if error is not None:
            (self.proxy_nft_failures if mode == "nftables" else self.proxy_restore_failures).inc()
            return
        if kind == "none":
            return
        self.proxy_sync_duration.observe(seconds)
        (self.proxy_partial_sync_duration if kind == "partial" else self.proxy_full_sync_duration).observe(seconds)
        self.proxy_last_sync.set(wall)

    def render(self) -> str:
        return generate_latest(self.registry).decode()

    def render_probes(self) -> str:
        return generate_latest(self.probe_registry).decode()


# --- /metrics/resource ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ContainerUsage:
    namespace: str
    pod: str
    container: str
    cpu_seconds: float  # cumulative
    working_set_bytes: int
    start_time: float  # seconds since the epoch; 0 unknown


@dataclass(frozen=True, kw_only=True)
class ResourceSnapshot:
    node_cpu_seconds: float
    node_working_set_bytes: int
    containers: Sequence[ContainerUsage] = ()
    error: bool = False  # the runtime's stats could not be read


class _Snapshot:
    def __init__(self, snap: ResourceSnapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterable[Any]:
        s = self.snap
        yield CounterMetricFamily("node_cpu_usage_seconds", "Cumulative cpu time consumed by the node in core-seconds",
                                  value=s.node_cpu_seconds)
        yield GaugeMetricFamily("node_memory_working_set_bytes", "Current working set of the node in bytes",
                                value=s.node_working_set_bytes)
        labels = ["container", "pod", "namespace"]
        cpu = CounterMetricFamily("container_cpu_usage_seconds", "Cumulative cpu time consumed by the container in "
                                  "core-seconds", labels=labels)
        mem = GaugeMetricFamily("container_memory_working_set_bytes", "Current working set of the container in bytes",
                                labels=labels)
        start = GaugeMetricFamily("container_start_time_seconds", "Start time of the container since unix epoch in "
                                  "seconds", labels=labels)
        pod_cpu = CounterMetricFamily("pod_cpu_usage_seconds", "Cumulative cpu time consumed by the pod in "
                                      "core-seconds", labels=["pod", "namespace"])
        pod_mem = GaugeMetricFamily("pod_memory_working_set_bytes", "Current working set of the pod in bytes",
                                    labels=["pod", "namespace"])
        per_pod: dict[tuple[str, str], list[float]] = {}
        for c in sorted(s.containers, key=lambda c: (c.namespace, c.pod, c.container)):
            cpu.add_metric([c.container, c.pod, c.namespace], c.cpu_seconds)
            mem.add_metric([c.container, c.pod, c.namespace], c.working_set_bytes)
            if c.start_time:
                start.add_metric([c.container, c.pod, c.namespace], c.start_time)
            acc = per_pod.setdefault((c.pod, c.namespace), [0.0, 0.0])
            acc[0] += c.cpu_seconds
            acc[1] += c.working_set_bytes
        for (pod, ns), (c_s, ws) in sorted(per_pod.items()):
            pod_cpu.add_metric([pod, ns], c_s)
            pod_mem.add_metric([pod, ns], ws)
        yield from (cpu, mem, start, pod_cpu, pod_mem)
        yield GaugeMetricFamily("scrape_error", "1 if there was an error while getting container metrics, 0 otherwise",
                                value=1 if s.error else 0)
        yield GaugeMetricFamily("resource_scrape_error", "1 if there was an error while getting container metrics, 0 "
                                "otherwise", value=1 if s.error else 0)


def render_resource_metrics(snap: ResourceSnapshot) -> str:
    """``/metrics/resource`` for one snapshot (a fresh registry per scrape: the values are read, not kept)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Snapshot(snap))
    return generate_latest(reg).decode()


def read_node_usage(proc: str = "/proc") -> tuple[float, int]:
    """(cumulative node CPU core-seconds, working set bytes = MemTotal - MemAvailable), as the kubelet's summary."""
    import os

    with open(f"{proc}/stat") as f:
        fields_ = f.readline().split()[1:]
    ticks = sum(int(x) for x in fields_[:8])  # user nice system idle iowait irq softirq steal
    idle = int(fields_[3]) + int(fields_[4])
    cpu_seconds = (ticks - idle) / os.sysconf("SC_CLK_TCK")
    mem: dict[str, int] = {}
    with open(f"{proc}/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            mem[k] = int(v.split()[0]) * 1024
    working = mem.get("MemTotal", 0) - mem.get("MemAvailable", 0)
    return (cpu_seconds if math.isfinite(cpu_seconds) else 0.0), max(working, 0)
