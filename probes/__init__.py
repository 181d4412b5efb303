"""nodelet probes: liveness, readiness and startup probes (exec, httpGet, tcpSocket, grpc) on asyncio.

The daemon validates probe objects with :func:`parse_probe` / :func:`parse_container_probes` while validating a
manifest, and drives a :class:`ProbeManager`. This package imports neither ``kubelet`` nor ``cri``: exec probes go
through an injected :class:`ExecRunner`.
"""
from probes.errors import ExecTimeoutError, ProbeError, ProbeRunError, ProbeSpecError
from probes.manager import ProbeManager
from probes.runners import Prober
from probes.spec import parse_container_ports, parse_container_probes, parse_probe
from probes.types import (
    KUBE_PROBE_VERSION, Clock, ContainerId, ContainerPortRef, ContainerProbes, ExecAction, ExecResult, ExecRunner,
    GRPCAction, HTTPGetAction, PodKey, PodUID, ProbeEventType, ProbeKind, ProbeOutcome, ProbeResult,
    ProbeResultEvent, ProbeSpec, ProbeState, ProbeTarget, TCPSocketAction,
)
from probes.worker import SystemClock

__all__ = [
    "ExecTimeoutError", "ProbeError", "ProbeRunError", "ProbeSpecError", "ProbeManager", "Prober",
    "parse_container_ports", "parse_container_probes", "parse_probe", "KUBE_PROBE_VERSION", "Clock", "ContainerId",
    "ContainerPortRef", "ContainerProbes", "ExecAction", "ExecResult", "ExecRunner", "GRPCAction", "HTTPGetAction",
    "PodKey", "PodUID", "ProbeEventType", "ProbeKind", "ProbeOutcome", "ProbeResult", "ProbeResultEvent",
    "ProbeSpec", "ProbeState", "ProbeTarget", "TCPSocketAction", "SystemClock",
]
