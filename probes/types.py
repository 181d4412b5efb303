"""Plain data shared by the probes package and its callers: kinds, results, specs, events, snapshots."""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NewType, Protocol, TypeAlias

__all__ = [
    "PodKey", "PodUID", "ContainerId", "ProbeKind", "ProbeResult", "ContainerPortRef", "ExecAction",
    "HTTPGetAction", "TCPSocketAction", "GRPCAction", "ProbeHandler", "ProbeSpec", "ContainerProbes",
    "ProbeTarget", "ProbeOutcome", "ExecResult", "ExecRunner", "ProbeEventType", "ProbeResultEvent",
    "ProbeState", "Clock", "KUBE_PROBE_VERSION",
]

PodKey = NewType("PodKey", str)  # "<namespace>/<name>"
PodUID = NewType("PodUID", str)
ContainerId = NewType("ContainerId", str)

#: the Kubernetes minor version whose kubelet nodelet's probes imitate (User-Agent ``kube-probe/1.31``)
KUBE_PROBE_VERSION = "1.31"


class ProbeKind(enum.Enum):
    LIVENESS = "liveness"
    READINESS = "readiness"
    STARTUP = "startup"

    @property
    def title(self) -> str:
        """As in event messages: ``Liveness``, ``Readiness``, ``Startup``."""
        return self.value.capitalize()

    @property
    def field_name(self) -> str:
        """As in the pod spec: ``livenessProbe``..."""
        return f"{self.value}Probe"


class ProbeResult(enum.Enum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, kw_only=True)
class ContainerPortRef:
    """One entry of a container's ``ports`` list, enough to resolve a named probe port."""

    name: str | None
    container_port: int
    protocol: str = "TCP"


@dataclass(frozen=True, kw_only=True)
class ExecAction:
    command: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class HTTPGetAction:
    scheme: str  # "HTTP" | "HTTPS"
    host: str | None  # None: the pod IP (host IP for hostNetwork pods)
    port: int  # resolved: named ports are looked up at validation time
    path: str  # as given, may carry a query
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class TCPSocketAction:
    host: str | None
    port: int


@dataclass(frozen=True, kw_only=True)
class GRPCAction:
    port: int
    service: str = ""


ProbeHandler: TypeAlias = ExecAction | HTTPGetAction | TCPSocketAction | GRPCAction


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """A validated, defaulted probe (``parse_probe`` builds it)."""

    kind: ProbeKind
    handler: ProbeHandler
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_seconds: int | None = None  # liveness/startup only


@dataclass(frozen=True, kw_only=True)
class ContainerProbes:
    liveness: ProbeSpec | None = None
    readiness: ProbeSpec | None = None
    startup: ProbeSpec | None = None

    def get(self, kind: ProbeKind) -> ProbeSpec | None:
        return {ProbeKind.LIVENESS: self.liveness, ProbeKind.READINESS: self.readiness,
                ProbeKind.STARTUP: self.startup}[kind]


@dataclass(frozen=True, kw_only=True)
class ProbeTarget:
    """Where one probe attempt goes."""

    container_id: ContainerId
    pod_ip: str | None
    host_ip: str | None
    host_network: bool = False

    @property
    def address(self) -> str | None:
        """Default host of network probes: the pod IP, or the host IP for hostNetwork pods."""
        return (self.host_ip or self.pod_ip) if self.host_network else self.pod_ip


@dataclass(frozen=True, kw_only=True)
class ProbeOutcome:
    """One probe attempt. ``warning`` marks a success upstream reports as ``probe.Warning`` (redirect not followed)."""

    result: ProbeResult
    message: str = ""
    warning: bool = False
    latency_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


class ExecRunner(Protocol):
    """CRI ExecSync as the probes see it. Must raise :class:`probes.errors.ExecTimeoutError` (or let the caller's
    cancellation stop the command) when ``timeout_s`` passes: a timed-out command may not keep running."""

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout_s: float) -> ExecResult: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float:
        """Wall clock (seconds since the epoch), compared with a container's StartedAt."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class ProbeEventType(enum.Enum):
    #: one probe attempt failed (upstream records an event per failed attempt): Warning ``Unhealthy``
    UNHEALTHY = "Unhealthy"
    #: a success upstream flags (redirect to another host not followed): Warning ``ProbeWarning``
    PROBE_WARNING = "ProbeWarning"
    #: a liveness/startup failure took effect: kill the container with ``grace_period_seconds`` and restart per policy
    KILL_CONTAINER = "KillContainer"
    #: container readiness changed (started and running and readiness passing): update Ready conditions, endpoints
    READY_CHANGED = "ReadyChanged"
    #: the container's Started flag changed (startup probe succeeded, or reset by a new container)
    STARTED_CHANGED = "StartedChanged"


@dataclass(frozen=True, kw_only=True)
class ProbeResultEvent:
    type: ProbeEventType
    pod_key: PodKey
    pod_uid: PodUID
    container_name: str
    container_id: ContainerId
    kind: ProbeKind | None  # None for READY_CHANGED/STARTED_CHANGED computed from several probes
    message: str = ""
    #: KILL_CONTAINER: the failing attempt's event text, e.g. ``Liveness probe failed: HTTP probe failed with ...``
    probe_message: str = ""
    #: KILL_CONTAINER: the probe-level terminationGracePeriodSeconds, or None for the pod's own
    grace_period_seconds: int | None = None
    #: READY_CHANGED / STARTED_CHANGED: the new value
    value: bool | None = None


@dataclass(frozen=True, kw_only=True)
class ProbeState:
    """One probe worker as the local API shows it."""

    pod_key: PodKey
    pod_uid: PodUID
    container_name: str
    container_id: ContainerId | None
    kind: ProbeKind
    handler: str  # "exec" | "httpGet" | "tcpSocket" | "grpc"
    result: ProbeResult  # the result in effect (after thresholds)
    last_probe_result: ProbeResult | None  # the latest attempt
    consecutive_successes: int
    consecutive_failures: int
    last_message: str
    last_latency_s: float | None
    last_probe_time: float | None  # wall clock
    on_hold: bool
