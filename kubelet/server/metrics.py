"""A tiny dependency-free Prometheus registry and the agent's metrics.

Counter, Gauge and Histogram with labels, rendered in the Prometheus text exposition format 0.0.4 the way
client_golang renders it (families sorted by name, label pairs sorted by name, samples sorted by label values,
floats in Go's shortest `%g` form, vectors without children omitted). Safe to update from threads; the agent
itself updates from its event loop.

The agent's metrics live in one place, :class:`AgentMetrics`; the kubelet equivalent of each is named in a comment.
"""
from __future__ import annotations

import bisect
import math
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from kubelet.errors import PermanentError

__all__ = [
    "AgentMetrics", "Counter", "DEFAULT_BUCKETS", "Gauge", "Histogram", "MetricsError", "Registry",
    "CONTENT_TYPE", "compute_exponential_buckets", "render_float",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# client_golang's DefBuckets (what the kubelet uses for its pod worker and PLEG histograms).
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MetricsError(PermanentError, ValueError):
    """A metric used wrongly (bad name, wrong labels, decreasing counter): a programming error."""


def compute_exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """client_golang's ExponentialBuckets(start, factor, count)."""
    if count < 1 or start <= 0 or factor <= 1:
        raise MetricsError(f"bad exponential buckets start={start} factor={factor} count={count}")
    out, b = [], start
    for _ in range(count):  # multiplied step by step as Go does, so the bounds print identically
        out.append(b)
        b *= factor
    return tuple(out)


def render_float(v: float) -> str:
    """A float as client_golang writes it: Go's strconv.FormatFloat(v, 'g', -1, 64), and +Inf/-Inf/NaN."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits_t, exponent = Decimal(repr(float(v))).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    assert isinstance(exponent, int)
    dp = len(digits) + exponent  # position of the decimal point relative to the first digit
    exp = dp - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:  # Go: %e when exp < -4 || exp >= eprec, eprec = 6 for the shortest form
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return f"{neg}{digits}{'0' * (dp - len(digits))}"
    return f"{neg}{digits[:dp]}.{digits[dp:]}"


def _escape_help(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label_value(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _valid_name(name: str, *, label: bool = False) -> bool:
    if not name:
        return False
    first_ok = name[0].isascii() and (name[0].isalpha() or name[0] == "_" or (name[0] == ":" and not label))
    rest_ok = all(c.isascii() and (c.isalnum() or c == "_" or (c == ":" and not label)) for c in name[1:])
    return first_ok and rest_ok and not (label and name.startswith("__"))


def _render_labels(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in pairs) + "}"


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        if not _valid_name(name):
            raise MetricsError(f"invalid metric name {name!r}")
        for ln in labelnames:
            if not _valid_name(ln, label=True) or (self.kind == "histogram" and ln == "le"):
                raise MetricsError(f"invalid label name {ln!r} for metric {name}")
        if len(set(labelnames)) != len(labelnames):
            raise MetricsError(f"duplicate label names for metric {name}: {list(labelnames)}")
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], object] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()

    def _new_child(self) -> object:
        raise NotImplementedError

    def _key(self, args: tuple[str, ...], kwargs: Mapping[str, str]) -> tuple[str, ...]:
        if args and kwargs:
            raise MetricsError(f"{self.name}: give label values by position or by name, not both")
        if kwargs:
            if set(kwargs) != set(self.labelnames):
                raise MetricsError(f"{self.name}: labels {sorted(kwargs)} != {sorted(self.labelnames)}")
            args = tuple(kwargs[n] for n in self.labelnames)
        if len(args) != len(self.labelnames):
            raise MetricsError(f"{self.name}: expected label values for {list(self.labelnames)}, got {list(args)}")
        return tuple(str(a) for a in args)

    def _child(self, args: tuple[str, ...], kwargs: Mapping[str, str]) -> object:
        key = self._key(args, kwargs)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._new_child()
            return child

    def _unlabelled(self) -> object:
        if self.labelnames:
            raise MetricsError(f"{self.name} has labels {list(self.labelnames)}: use .labels(...)")
        return self._children[()]

    def remove(self, *values: str, **kw: str) -> None:
        """Drop one labelled series (e.g. a phase no pod is in any more, if you prefer absence to 0)."""
        key = self._key(values, kw)
        with self._lock:
            self._children.pop(key, None)

    def clear(self) -> None:
        """Drop every labelled series."""
        if not self.labelnames:
            raise MetricsError(f"{self.name} has no labels to clear")
        with self._lock:
            self._children.clear()

    def _sorted_children(self) -> list[tuple[list[tuple[str, str]], object]]:
        with self._lock:
            items = sorted(self._children.items())
        order = sorted(range(len(self.labelnames)), key=lambda i: self.labelnames[i])
        return [([(self.labelnames[i], key[i]) for i in order], child) for key, child in items]

    def _render_samples(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> str:
        lines = self._render_samples()
        if not lines:
            return ""
        head = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        return "\n".join(head + lines) + "\n"


class _Value:
    __slots__ = ("value", "fn")

    def __init__(self) -> None:
        self.value = 0.0
        self.fn: Callable[[], float] | None = None

    def get(self) -> float:
        return float(self.fn()) if self.fn is not None else self.value


class _CounterChild:
    def __init__(self, v: _Value, lock: threading.Lock) -> None:
        self._v, self._lock = v, lock

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise MetricsError("a counter can only increase")
        with self._lock:
            self._v.value += amount

    def get(self) -> float:
        return self._v.get()


class _GaugeChild(_CounterChild):
    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._v.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.inc(-amount)

    def set(self, value: float) -> None:
        with self._lock:
            self._v.value = float(value)

    def set_function(self, fn: Callable[[], float]) -> None:
        """Read the value from `fn` at render time (e.g. RSS, a queue length)."""
        self._v.fn = fn

    def set_to_current_time(self) -> None:
        self.set(time.time())


class Counter(_Metric):
    kind = "counter"

    def _new_child(self) -> _CounterChild:
        return _CounterChild(_Value(), self._lock)

    def labels(self, *values: str, **kw: str) -> _CounterChild:
        return self._child(values, kw)  # type: ignore[return-value]

    def inc(self, amount: float = 1.0) -> None:
        self._unlabelled().inc(amount)  # type: ignore[attr-defined]

    def get(self) -> float:
        return self._unlabelled().get()  # type: ignore[attr-defined]

    def _render_samples(self) -> list[str]:
        return [f"{self.name}{_render_labels(pairs)} {render_float(c.get())}" for pairs, c in self._sorted_children()]  # type: ignore[attr-defined]


class Gauge(Counter):
    kind = "gauge"

    def _new_child(self) -> _GaugeChild:
        return _GaugeChild(_Value(), self._lock)

    def labels(self, *values: str, **kw: str) -> _GaugeChild:
        return self._child(values, kw)  # type: ignore[return-value]

    def set(self, value: float) -> None:
        self._unlabelled().set(value)  # type: ignore[attr-defined]

    def dec(self, amount: float = 1.0) -> None:
        self._unlabelled().dec(amount)  # type: ignore[attr-defined]

    def set_function(self, fn: Callable[[], float]) -> None:
        self._unlabelled().set_function(fn)  # type: ignore[attr-defined]

    def set_to_current_time(self) -> None:
        self._unlabelled().set_to_current_time()  # type: ignore[attr-defined]


class _HistogramChild:
    def __init__(self, buckets: tuple[float, ...], lock: threading.Lock) -> None:
        self._buckets = buckets
        self._counts = [0] * (len(buckets) + 1)  # last: above the highest bound (+Inf)
        self._sum = 0.0
        self._lock = lock

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self._buckets, value)  # le: value <= bound
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    @contextmanager
    def time(self) -> Iterator[None]:
        """Observe the wall time of the `with` block (also when it raises)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - t0)

    def snapshot(self) -> tuple[list[int], float]:
        with self._lock:
            return list(self._counts), self._sum


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (), *, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        b = tuple(float(x) for x in buckets if not math.isinf(x))
        if not b or any(b[i] >= b[i + 1] for i in range(len(b) - 1)):
            raise MetricsError(f"{name}: buckets must be increasing and non-empty: {list(buckets)}")
        self.buckets = b
        super().__init__(name, help, labelnames)

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self.buckets, self._lock)

    def labels(self, *values: str, **kw: str) -> _HistogramChild:
        return self._child(values, kw)  # type: ignore[return-value]

    def observe(self, value: float) -> None:
        self._unlabelled().observe(value)  # type: ignore[attr-defined]

    def time(self) -> AbstractContextManager[None]:
        return self._unlabelled().time()  # type: ignore[attr-defined]

    def _render_samples(self) -> list[str]:
        lines: list[str] = []
        for pairs, child in self._sorted_children():
            counts, total = child.snapshot()  # type: ignore[attr-defined]
            cum = 0
            for bound, n in zip(self.buckets + (math.inf,), counts):
                cum += n
                lines.append(f"{self.name}_bucket{_render_labels(pairs + [('le', render_float(bound))])} {cum}")
            lines.append(f"{self.name}_sum{_render_labels(pairs)} {render_float(total)}")
            lines.append(f"{self.name}_count{_render_labels(pairs)} {cum}")
        return lines


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: _Metric) -> _Metric:
        if metric.name in self._metrics:
            raise MetricsError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self.register(Counter(name, help, labelnames))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self.register(Gauge(name, help, labelnames))  # type: ignore[return-value]

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (), *, buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        return self.register(Histogram(name, help, labelnames, buckets=buckets))  # type: ignore[return-value]

    def get(self, name: str) -> _Metric:
        return self._metrics[name]

    def render(self) -> str:
        """The whole registry in the text exposition format 0.0.4 (Content-Type: CONTENT_TYPE)."""
        return "".join(self._metrics[n].render() for n in sorted(self._metrics))


# --- the agent's metrics ------------------------------------------------------------------------------------------

POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONTAINER_STATES = ("created", "running", "exited", "unknown")  # kubelet's container_state values
# kubelet_runtime_operations_duration_seconds buckets: ExponentialBuckets(.005, 2.5, 14)
RUNTIME_BUCKETS = compute_exponential_buckets(0.005, 2.5, 14)
# kubelet_pod_start_sli_duration_seconds buckets
POD_START_BUCKETS = (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600)


def _process_rss_bytes() -> float:
    try:
        with open("/proc/self/statm", "rb") as f:
            return float(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except OSError:
        return 0.0


def _process_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _process_open_fds() -> float:
    try:
        return float(len(os.listdir("/proc/self/fd")))
    except OSError:
        return 0.0


@dataclass(kw_only=True)
class AgentMetrics:
    """Every metric the agent exports. Create one per daemon; `render()` is what `/metrics` serves.

    The lead's code updates the fields directly (`m.pod_sync_duration.labels(operation_type="sync").observe(dt)`)
    or through the helpers below.
    """

    node_name: str = ""
    registry: Registry = field(default_factory=Registry)

    def __post_init__(self) -> None:
        r = self.registry
        # kubelet: kubelet_pod_worker_duration_seconds{operation_type=create|update|sync|kill} (DefBuckets)
        self.pod_sync_duration = r.histogram(
            "nodelet_pod_sync_duration_seconds",
            "Duration in seconds to sync a single pod. Broken down by operation type: create, update, sync or kill.",
            ["operation_type"],
        )
        # no kubelet equivalent (the kubelet only logs a failed sync): pod worker syncs that returned an error
        self.pod_worker_sync_errors = r.counter(
            "nodelet_pod_worker_sync_errors_total", "Cumulative number of pod worker syncs that failed.",
        )
        # no kubelet equivalent (kube-state-metrics: kube_pod_status_phase{phase}): pods by phase
        self.pods = r.gauge("nodelet_pods", "Number of pods the agent manages, by phase.", ["phase"])
        # kubelet: kubelet_running_pods
        self.running_pods = r.gauge("nodelet_running_pods", "Number of pods that have a running pod sandbox")
        # kubelet: kubelet_running_containers{container_state}
        self.running_containers = r.gauge(
            "nodelet_running_containers", "Number of containers currently running", ["container_state"],
        )
        # kubelet: kubelet_runtime_operations_total{operation_type}
        self.runtime_operations = r.counter(
            "nodelet_runtime_operations_total", "Cumulative number of runtime operations by operation type.", ["operation"],
        )
        # kubelet: kubelet_runtime_operations_errors_total{operation_type}
        self.runtime_operations_errors = r.counter(
            "nodelet_runtime_operations_errors_total", "Cumulative number of runtime operation errors by operation type.",
            ["operation"],
        )
        # kubelet: kubelet_runtime_operations_duration_seconds{operation_type} (ExponentialBuckets(.005, 2.5, 14))
        self.runtime_operations_duration = r.histogram(
            "nodelet_runtime_operations_duration_seconds", "Duration in seconds of runtime operations. Broken down by operation type.",
            ["operation"], buckets=RUNTIME_BUCKETS,
        )
        # kubelet: kubelet_pleg_relist_duration_seconds (DefBuckets)
        self.pleg_relist_duration = r.histogram(
            "nodelet_pleg_relist_duration_seconds", "Duration in seconds for relisting pods in PLEG.",
        )
        # kubelet: kubelet_pleg_last_seen_seconds
        self.pleg_last_seen = r.gauge("nodelet_pleg_last_seen_seconds", "Timestamp in seconds when PLEG was last seen active.")
        # kubelet: kubelet_pod_start_sli_duration_seconds-like: first seen → all containers running
        self.pod_start_duration = r.histogram(
            "nodelet_pod_start_duration_seconds",
            "Duration in seconds from the agent seeing a pod for the first time to the pod starting to run",
            buckets=POD_START_BUCKETS,
        )
        # kubelet: kubelet_started_containers_total{container_type}
        self.started_containers = r.counter(
            "nodelet_started_containers_total", "Cumulative number of containers started", ["container_type"],
        )
        # kubelet: kubelet_started_containers_errors_total{container_type,code}
        self.started_containers_errors = r.counter(
            "nodelet_started_containers_errors_total", "Cumulative number of errors when starting containers",
            ["container_type", "code"],
        )
        # kubelet: kubelet_started_pods_total
        self.started_pods = r.counter("nodelet_started_pods_total", "Cumulative number of pods started")
        # no kubelet equivalent: manifest files currently in error (their last good pods keep running)
        self.manifest_errors = r.gauge("nodelet_manifest_errors", "Number of manifest errors in the static pod path right now.")
        # kubelet: kubelet_node_name{node} (always 1)
        self.node_name_info = r.gauge("nodelet_node_name", "The node's name. The count is always 1.", ["node"])
        if self.node_name:
            self.node_name_info.labels(node=self.node_name).set(1)
        # client_golang's process collector names
        self.process_rss = r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        self.process_rss.set_function(_process_rss_bytes)
        self.process_cpu = r.gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
        self.process_cpu.set_function(_process_cpu_seconds)
        self.process_fds = r.gauge("process_open_fds", "Number of open file descriptors.")
        self.process_fds.set_function(_process_open_fds)
        self.process_start = r.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
        self.process_start.set(_process_start_time())

    # -- helpers for the sync loop and PLEG --
    def set_pod_phases(self, counts: Mapping[str, int]) -> None:
        """Set nodelet_pods{phase} for every phase (missing phases are 0, so series do not vanish)."""
        for phase in sorted(set(POD_PHASES) | set(counts)):
            self.pods.labels(phase=phase).set(counts.get(phase, 0))

    def set_containers(self, counts: Mapping[str, int]) -> None:
        """Set nodelet_running_containers{container_state} (created|running|exited|unknown; missing are 0)."""
        for state in sorted(set(CONTAINER_STATES) | set(counts)):
            self.running_containers.labels(container_state=state).set(counts.get(state, 0))

    def observe_runtime_call(self, operation: str, seconds: float, *, error: bool) -> None:
        """One CRI call: operation is the kubelet's operation_type (e.g. run_podsandbox, create_container)."""
        self.runtime_operations.labels(operation=operation).inc()
        self.runtime_operations_duration.labels(operation=operation).observe(seconds)
        if error:
            self.runtime_operations_errors.labels(operation=operation).inc()

    def render(self) -> str:
        return self.registry.render()


def _process_start_time() -> float:
    try:
        with open("/proc/self/stat", "rb") as f:
            start_ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return btime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return time.time()
