"""One probe worker per (container, probe kind): the rules of upstream ``pkg/kubelet/prober/worker.go``.

The rules are two pure functions, tested in tables: :func:`compute_tick` (may this tick probe?) and
:func:`compute_record` (what does an attempt's result change?). :class:`ProbeWorker` is the thin asyncio loop around
them: a ticker at ``periodSeconds`` (missed ticks dropped, as Go's ticker does), an optional first-probe jitter, a
manual trigger, and one attempt in flight at most.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from probes.types import (
    Clock, ContainerId, PodKey, PodUID, ProbeKind, ProbeOutcome, ProbeResult, ProbeSpec, ProbeTarget,
)

__all__ = ["ContainerView", "WorkerState", "TickAction", "TickPlan", "compute_initial_result", "compute_tick",
           "compute_record", "ProbeWorker", "SystemClock", "ProbeRunner", "WorkerStats"]

log = logging.getLogger(__name__)


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ProbeRunner(Protocol):
    async def probe(self, spec: ProbeSpec, target: ProbeTarget) -> ProbeOutcome: ...


@dataclass(frozen=True, kw_only=True)
class ContainerView:
    """The newest the manager knows of a container (from the daemon's ``update_container``)."""

    container_id: ContainerId | None
    running: bool
    started_at: float | None  # wall clock, seconds since the epoch
    terminated: bool = False  # exited (as opposed to not started yet)
    restart_policy: str = "Always"
    target: ProbeTarget


@dataclass(frozen=True, kw_only=True)
class WorkerState:
    container_id: ContainerId | None = None
    result: ProbeResult | None = None  # the result in effect; None until a container is seen
    last_result: ProbeResult | None = None  # result of the current run of identical attempts
    result_run: int = 0
    on_hold: bool = False


class TickAction(enum.Enum):
    PROBE = "probe"
    WAIT = "wait"
    STOP = "stop"


@dataclass(frozen=True, kw_only=True)
class TickPlan:
    action: TickAction
    state: WorkerState
    reason: str = ""


def compute_initial_result(kind: ProbeKind) -> ProbeResult:
    """readiness Failure, liveness Success, startup Unknown (``newWorker``)."""
    return {ProbeKind.READINESS: ProbeResult.FAILURE, ProbeKind.LIVENESS: ProbeResult.SUCCESS,
            ProbeKind.STARTUP: ProbeResult.UNKNOWN}[kind]


def compute_tick(state: WorkerState, view: ContainerView | None, *, spec: ProbeSpec, started: bool,
                 now_wall: float) -> TickPlan:
    """What one tick does, before any probing (``doProbe`` up to the prober call)."""
    kind = spec.kind
    if view is None or not view.container_id:
        return TickPlan(action=TickAction.WAIT, state=state, reason="no container yet")
    if view.container_id != state.container_id:
        # a new container: its initial result, probing resumes (a hold ends here); nodelet also restarts the run
        state = WorkerState(container_id=view.container_id, result=compute_initial_result(kind))
    if state.on_hold:
        return TickPlan(action=TickAction.WAIT, state=state, reason="on hold until a new container")
    if not view.running:
        state = replace(state, result=ProbeResult.FAILURE)
        if view.terminated and view.restart_policy == "Never":
            return TickPlan(action=TickAction.STOP, state=state, reason="container terminated, never restarted")
        return TickPlan(action=TickAction.WAIT, state=state, reason="container not running")
    started_at = view.started_at if view.started_at is not None else now_wall
    if int(now_wall - started_at) < spec.initial_delay_seconds:
        return TickPlan(action=TickAction.WAIT, state=state, reason="initialDelaySeconds not over")
    if started and kind is ProbeKind.STARTUP:
        return TickPlan(action=TickAction.WAIT, state=state, reason="container started")
    if not started and kind is not ProbeKind.STARTUP:
        return TickPlan(action=TickAction.WAIT, state=state, reason="container not started")
    return TickPlan(action=TickAction.PROBE, state=state)


def compute_record(state: WorkerState, result: ProbeResult, *, spec: ProbeSpec
                   ) -> tuple[WorkerState, ProbeResult | None]:
    """Fold one attempt's result in. Returns the new state and the result that took effect (None below threshold).
    UNKNOWN (the prober's own error) is thrown away."""
    if result is ProbeResult.UNKNOWN:
        return state, None
    run = state.result_run + 1 if state.last_result is result else 1
    state = replace(state, last_result=result, result_run=run)
    if (result is ProbeResult.FAILURE and run < spec.failure_threshold) or (
            result is ProbeResult.SUCCESS and run < spec.success_threshold):
        return state, None
    state = replace(state, result=result)
    if spec.kind is not ProbeKind.READINESS and result is ProbeResult.FAILURE:
        # the container will be killed: no probing until a new container ID
        state = replace(state, on_hold=True, result_run=0)
    return state, result


@dataclass(kw_only=True)
class WorkerStats:
    """What the local API shows per probe (raw attempts, independent of thresholds)."""

    last_probe_result: ProbeResult | None = None
    consecutive_successes: int = 0
    consecutive_failures: int = 0
    last_message: str = ""
    last_latency_s: float | None = None
    last_probe_time: float | None = None

    def add(self, outcome: ProbeOutcome, *, latency_s: float, wall: float) -> None:
        self.last_probe_result = outcome.result
        self.last_message = outcome.message
        self.last_latency_s = latency_s
        self.last_probe_time = wall
        if outcome.result is ProbeResult.SUCCESS:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
        elif outcome.result is ProbeResult.FAILURE:
            self.consecutive_failures += 1
            self.consecutive_successes = 0


class WorkerHost(Protocol):
    """What a worker needs from its manager."""

    def container_view(self, pod_key: PodKey, container_name: str) -> ContainerView | None: ...

    def is_started(self, pod_key: PodKey, container_name: str) -> bool: ...

    def worker_changed(self, worker: ProbeWorker, outcome: ProbeOutcome | None, effect: ProbeResult | None) -> None:
        ...

    def worker_stopped(self, worker: ProbeWorker) -> None: ...


def _wake_up(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ProbeWorker:
    def __init__(self, *, pod_key: PodKey, pod_uid: PodUID, container_name: str, spec: ProbeSpec,
                 host: WorkerHost, prober: ProbeRunner, clock: Clock, jitter_fraction: float | None,
                 on_probe_started: Callable[[float], None] | None = None) -> None:
        self.pod_key = pod_key
        self.pod_uid = pod_uid
        self.container_name = container_name
        self.spec = spec
        self.kind = spec.kind
        self.state = WorkerState()
        self.stats = WorkerStats()
        self._host = host
        self._prober = prober
        self._clock = clock
        self._jitter = jitter_fraction
        self._on_probe_started = on_probe_started
        self._wake: asyncio.Future[None] | None = None
        self._trigger_pending = False
        self.task: asyncio.Task[None] | None = None
        self._ctx = f"pod={pod_key} uid={pod_uid} container={container_name} probe={self.kind.value}"

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"probe {self._ctx}")

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def trigger(self) -> None:
        """Probe now instead of at the next tick (upstream's manualTriggerCh, buffered: one pending at most)."""
        self._trigger_pending = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _run(self) -> None:
        period = float(self.spec.period_seconds)
        try:
            if self._jitter is not None:  # the agent just started: spread the first probes over a period
                await self._wait(self._jitter * period)
            next_tick = self._clock.monotonic()
            while True:
                if not await self._do_tick(intended=next_tick):
                    break
                now = self._clock.monotonic()
                next_tick += period
                if next_tick <= now:  # ticks missed while probing are dropped, the latest one fires at once (Go)
                    next_tick += period * math.floor((now - next_tick) / period)
                if not self._trigger_pending:
                    await self._wait(next_tick - now)
                if self._trigger_pending:
                    self._trigger_pending = False
                    next_tick = self._clock.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one worker's bug end probing silently
            log.exception("probe worker crashed %s", self._ctx)
            raise
        finally:
            self._host.worker_stopped(self)

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        sleeper: asyncio.Task[None] | asyncio.TimerHandle
        if type(self._clock) is SystemClock:  # the real clock: a timer handle, no task per tick
            sleeper = loop.call_later(seconds, _wake_up, wake)
        else:
            sleeper = loop.create_task(self._clock.sleep(seconds))
            sleeper.add_done_callback(lambda _t: _wake_up(wake))
        try:
            await wake
        finally:
            sleeper.cancel()
            self._wake = None

    async def _do_tick(self, *, intended: float) -> bool:
        view = self._host.container_view(self.pod_key, self.container_name)
        started = self._host.is_started(self.pod_key, self.container_name)
        before = self.state
        plan = compute_tick(self.state, view, spec=self.spec, started=started, now_wall=self._clock.time())
        self.state = plan.state
        if plan.action is not TickAction.PROBE:
            if self.state != before:
                self._host.worker_changed(self, None, None)
            if plan.action is TickAction.STOP:
                log.info("probe worker stops %s reason=%r", self._ctx, plan.reason)
                return False
            return True
        assert view is not None
        t0 = self._clock.monotonic()
        if self._on_probe_started is not None:
            self._on_probe_started(t0 - intended)
        try:
            outcome = await self._prober.probe(self.spec, view.target)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("probe errored %s", self._ctx)
            outcome = ProbeOutcome(result=ProbeResult.UNKNOWN, message=f"probe errored: {e}")
        latency = self._clock.monotonic() - t0
        self.stats.add(outcome, latency_s=latency, wall=self._clock.time())
        # the container may have changed while the probe ran: the next tick notices and resets
        self.state, effect = compute_record(self.state, outcome.result, spec=self.spec)
        if outcome.result is ProbeResult.FAILURE:
            log.info("probe failed %s attempt=%d/%d msg=%r", self._ctx, self.state.result_run or
                     self.spec.failure_threshold, self.spec.failure_threshold, outcome.message[:200])
        self._host.worker_changed(self, outcome, effect)
        return True
