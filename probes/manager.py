"""ProbeManager: owns the probe workers of every container the daemon tells it about, keeps their results, and
tells the daemon what to act on through ``on_result`` (kill for liveness/startup, readiness and started changes).

The daemon calls :meth:`ProbeManager.update_container` whenever it learns something new about a container (the
full current picture every time; the newest call wins) and :meth:`ProbeManager.remove_pod` when a pod goes (or
starts terminating). Everything runs on the caller's event loop; nothing here blocks.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from probes.runners import Prober
from probes.types import (
    Clock, ContainerId, ContainerProbes, ExecAction, ExecRunner, GRPCAction, HTTPGetAction, PodKey, PodUID,
    ProbeEventType, ProbeKind, ProbeOutcome, ProbeResult, ProbeResultEvent, ProbeSpec, ProbeState, ProbeTarget,
)
from probes.worker import ContainerView, ProbeRunner, ProbeWorker, SystemClock, compute_initial_result

__all__ = ["ProbeManager"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class _Container:
    pod_key: PodKey
    pod_uid: PodUID
    name: str
    view: ContainerView
    probes: ContainerProbes
    workers: dict[ProbeKind, ProbeWorker] = field(default_factory=dict)
    started: bool | None = None  # last value reported through on_result
    ready: bool | None = None


def _handler_name(spec: ProbeSpec) -> str:
    h = spec.handler
    if isinstance(h, ExecAction):
        return "exec"
    if isinstance(h, HTTPGetAction):
        return "httpGet"
    if isinstance(h, GRPCAction):
        return "grpc"
    return "tcpSocket"


@dataclass(frozen=True, kw_only=True)
class ProbeAttempt:
    """One finished probe attempt, for metrics."""

    pod_key: PodKey
    pod_uid: PodUID
    container_name: str
    kind: ProbeKind
    result: ProbeResult
    seconds: float


class ProbeManager:
    def __init__(self, *, exec_runner: ExecRunner | None, on_result: Callable[[ProbeResultEvent], None],
                 clock: Clock | None = None, prober: ProbeRunner | None = None,
                 rng: Callable[[], float] = random.random,
                 on_probe_started: Callable[[float], None] | None = None,
                 on_attempt: Callable[[ProbeAttempt], None] | None = None) -> None:
        """``prober`` replaces the real handlers (unit tests); ``on_probe_started`` receives each attempt's
        lateness in seconds (actual minus intended start; the benchmark uses it); ``on_attempt`` each finished
        attempt (the kubelet's prober_probe_total / prober_probe_duration_seconds)."""
        self._clock: Clock = clock or SystemClock()
        self._prober: ProbeRunner = prober or Prober(exec_runner=exec_runner)
        self._on_result = on_result
        self._rng = rng
        self._on_probe_started = on_probe_started
        self._on_attempt = on_attempt
        self._start = self._clock.monotonic()
        self._containers: dict[tuple[PodKey, str], _Container] = {}

    # --- the daemon's side -------------------------------------------------------------------------------------
    def update_container(self, *, pod_key: PodKey, pod_uid: PodUID, container_name: str,
                         container_id: ContainerId | None, started_at: float | None, running: bool,
                         pod_ip: str | None, host_ip: str | None, host_network: bool, probes: ContainerProbes,
                         terminated: bool = False, restart_policy: str = "Always") -> None:
        """The current state of one container. ``started_at`` is the wall-clock StartedAt (seconds since the epoch);
        ``terminated`` means it exited (not merely not started yet). Idempotent; workers start on first sight, are
        replaced when the probe spec or pod UID changes, and pick up a new container ID by themselves."""
        key = (pod_key, container_name)
        view = ContainerView(container_id=container_id, running=running, started_at=started_at,
                             terminated=terminated, restart_policy=restart_policy,
                             target=ProbeTarget(container_id=container_id or ContainerId(""), pod_ip=pod_ip,
                                                host_ip=host_ip, host_network=host_network))
        c = self._containers.get(key)
        if c is not None and c.pod_uid != pod_uid:
            self._stop_container(c)
            del self._containers[key]
            c = None
        if c is None:
            c = _Container(pod_key=pod_key, pod_uid=pod_uid, name=container_name, view=view, probes=probes)
            self._containers[key] = c
        c.view = view
        if c.probes != probes:
            for kind in ProbeKind:
                if probes.get(kind) != c.probes.get(kind) and kind in c.workers:
                    c.workers.pop(kind).stop()
            c.probes = probes
        for kind in ProbeKind:
            spec = probes.get(kind)
            if spec is not None and kind not in c.workers:
                self._start_worker(c, spec)
        self._refresh(c)

    def remove_container(self, pod_key: PodKey, container_name: str) -> None:
        c = self._containers.pop((pod_key, container_name), None)
        if c is not None:
            self._stop_container(c)

    def remove_pod(self, pod_key: PodKey) -> None:
        """Stop every worker of the pod (call it when the pod is removed or starts terminating)."""
        for key in [k for k in self._containers if k[0] == pod_key]:
            self._stop_container(self._containers.pop(key))

    def is_started(self, pod_key: PodKey, container_name: str) -> bool:
        """Started: the startup probe succeeded, or there is none and the container is running."""
        c = self._containers.get((pod_key, container_name))
        return c is not None and self._compute_started(c)

    def is_ready(self, pod_key: PodKey, container_name: str) -> bool:
        """Ready: started, running, and the readiness probe succeeded (or there is none)."""
        c = self._containers.get((pod_key, container_name))
        return c is not None and self._compute_ready(c)

    def result(self, pod_key: PodKey, container_name: str, kind: ProbeKind) -> ProbeResult | None:
        c = self._containers.get((pod_key, container_name))
        w = c.workers.get(kind) if c is not None else None
        return w.state.result if w is not None else None

    def snapshot(self) -> list[ProbeState]:
        out = []
        for c in self._containers.values():
            for kind in ProbeKind:
                w = c.workers.get(kind)
                if w is None:
                    continue
                s = w.stats
                out.append(ProbeState(
                    pod_key=c.pod_key, pod_uid=c.pod_uid, container_name=c.name, container_id=w.state.container_id,
                    kind=kind, handler=_handler_name(w.spec),
                    result=w.state.result if w.state.result is not None else compute_initial_result(kind),
                    last_probe_result=s.last_probe_result, consecutive_successes=s.consecutive_successes,
                    consecutive_failures=s.consecutive_failures, last_message=s.last_message,
                    last_latency_s=s.last_latency_s, last_probe_time=s.last_probe_time, on_hold=w.state.on_hold))
        return out

    async def aclose(self) -> None:
        tasks = []
        for c in list(self._containers.values()):
            tasks += [w.task for w in c.workers.values() if w.task is not None]
            self._stop_container(c)
        self._containers.clear()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- the workers' side (WorkerHost) --------------------------------------------------------------------------
    def container_view(self, pod_key: PodKey, container_name: str) -> ContainerView | None:
        c = self._containers.get((pod_key, container_name))
        return c.view if c is not None else None

    def worker_changed(self, worker: ProbeWorker, outcome: ProbeOutcome | None, effect: ProbeResult | None) -> None:
        c = self._containers.get((worker.pod_key, worker.container_name))
        if c is None or c.workers.get(worker.kind) is not worker:
            return  # a stopped worker finishing its last attempt
        cid = worker.state.container_id or ContainerId("")
        title = worker.kind.title
        if outcome is not None and self._on_attempt is not None:
            try:
                self._on_attempt(ProbeAttempt(pod_key=c.pod_key, pod_uid=c.pod_uid, container_name=c.name,
                                              kind=worker.kind, result=outcome.result,
                                              seconds=worker.stats.last_latency_s or 0.0))
            except Exception:
                log.exception("on_attempt callback failed pod=%s container=%s", c.pod_key, c.name)
        if outcome is not None and outcome.result is ProbeResult.FAILURE:
            self._emit(ProbeResultEvent(type=ProbeEventType.UNHEALTHY, pod_key=c.pod_key, pod_uid=c.pod_uid,
                                        container_name=c.name, container_id=cid, kind=worker.kind,
                                        message=f"{title} probe failed: {outcome.message}"))
        elif outcome is not None and outcome.warning:
            self._emit(ProbeResultEvent(type=ProbeEventType.PROBE_WARNING, pod_key=c.pod_key, pod_uid=c.pod_uid,
                                        container_name=c.name, container_id=cid, kind=worker.kind,
                                        message=f"{title} probe warning: {outcome.message}"))
        if effect is ProbeResult.FAILURE and worker.kind is not ProbeKind.READINESS:
            log.info("container failed %s probe, will be restarted pod=%s container=%s id=%s", worker.kind.value,
                     c.pod_key, c.name, cid)
            self._emit(ProbeResultEvent(
                type=ProbeEventType.KILL_CONTAINER, pod_key=c.pod_key, pod_uid=c.pod_uid, container_name=c.name,
                container_id=cid, kind=worker.kind,
                message=f"Container {c.name} failed {worker.kind.value} probe, will be restarted",
                probe_message=f"{title} probe failed: {outcome.message if outcome else ''}",
                grace_period_seconds=worker.spec.termination_grace_period_seconds))
        self._refresh(c)

    def worker_stopped(self, worker: ProbeWorker) -> None:
        c = self._containers.get((worker.pod_key, worker.container_name))
        if c is not None and c.workers.get(worker.kind) is worker:
            del c.workers[worker.kind]

    # --- internals -----------------------------------------------------------------------------------------------
    def _start_worker(self, c: _Container, spec: ProbeSpec) -> None:
        just_started = self._clock.monotonic() - self._start < spec.period_seconds
        w = ProbeWorker(pod_key=c.pod_key, pod_uid=c.pod_uid, container_name=c.name, spec=spec, host=self,
                        prober=self._prober, clock=self._clock,
                        jitter_fraction=self._rng() if just_started else None,
                        on_probe_started=self._on_probe_started)
        c.workers[spec.kind] = w
        w.start()
        log.debug("probe worker started pod=%s container=%s probe=%s", c.pod_key, c.name, spec.kind.value)

    def _stop_container(self, c: _Container) -> None:
        for w in c.workers.values():
            w.stop()
        c.workers.clear()

    def _worker_result(self, c: _Container, kind: ProbeKind) -> ProbeResult | None:
        w = c.workers.get(kind)
        if w is None or w.state.container_id != c.view.container_id:
            return None if w is None else compute_initial_result(kind)
        return w.state.result

    def _compute_started(self, c: _Container) -> bool:
        if not c.view.running or not c.view.container_id:
            return False
        if c.probes.startup is None:
            return True
        return self._worker_result(c, ProbeKind.STARTUP) is ProbeResult.SUCCESS

    def _compute_ready(self, c: _Container) -> bool:
        if not self._compute_started(c):
            return False
        if c.probes.readiness is None:
            return True
        return self._worker_result(c, ProbeKind.READINESS) is ProbeResult.SUCCESS

    def _refresh(self, c: _Container) -> None:
        started, ready = self._compute_started(c), self._compute_ready(c)
        cid = c.view.container_id or ContainerId("")
        if started != c.started:
            was = c.started
            c.started = started
            self._emit(ProbeResultEvent(type=ProbeEventType.STARTED_CHANGED, pod_key=c.pod_key, pod_uid=c.pod_uid,
                                        container_name=c.name, container_id=cid, kind=None, value=started))
            readiness = c.workers.get(ProbeKind.READINESS)
            if started and was is False and readiness is not None:
                readiness.trigger()  # as upstream: probe readiness at once after startup, not a period later
        if ready != c.ready:
            c.ready = ready
            self._emit(ProbeResultEvent(type=ProbeEventType.READY_CHANGED, pod_key=c.pod_key, pod_uid=c.pod_uid,
                                        container_name=c.name, container_id=cid, kind=None, value=ready))

    def _emit(self, event: ProbeResultEvent) -> None:
        try:
            self._on_result(event)
        except Exception:
            log.exception("on_result callback failed event=%s pod=%s container=%s", event.type.value, event.pod_key,
                          event.container_name)
