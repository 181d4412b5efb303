"""Wiring between the agent and probes.ProbeManager: CRI ExecSync for exec probes, container updates from each
sync, probe results back into kills (liveness/startup), Ready conditions and events."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Sequence

import cri
from kubelet.lifecycle import events as ev
from kubelet.lifecycle.actions import ProbeKill
from kubelet.kuberuntime.view import PodRuntimeStatus
from kubelet.lifecycle.status import PodStatus
from kubelet.types import Pod
from probes.errors import ExecTimeoutError
from probes.manager import ProbeManager
from probes.results import render_probe_states
from probes.types import ContainerId, ContainerProbes, ExecResult, PodKey, PodUID, ProbeEventType, ProbeKind, ProbeResultEvent

log = logging.getLogger(__name__)


class CRIExecRunner:
    """probes.ExecRunner over CRI ExecSync; the runtime enforces the timeout, our deadline backs it up."""

    def __init__(self, client: cri.RuntimeClient) -> None:
        self.client = client

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout_s: float) -> ExecResult:
        try:
            r = await asyncio.wait_for(self.client.exec_sync(container_id, cmd, timeout=timeout_s), timeout_s + 1.0)
        except (asyncio.TimeoutError, cri.DeadlineExceeded) as err:
            raise ExecTimeoutError(f"command timed out after {timeout_s:g}s") from err
        if r.exit_code != 0 and b"timeout" in r.stderr.lower() and not r.stdout:
            # containerd reports an exec past its timeout as a failed exec with a timeout message
            raise ExecTimeoutError(f"command timed out after {timeout_s:g}s: {r.stderr.decode(errors='replace').strip()}")
        return ExecResult(exit_code=r.exit_code, stdout=r.stdout, stderr=r.stderr)


def container_probes(c: Any) -> ContainerProbes:
    return ContainerProbes(liveness=c.liveness_probe, readiness=c.readiness_probe, startup=c.startup_probe)


class AgentProbes:
    """Keyed by pod UID on the agent's side; the manager keys workers by namespace/name and UID."""

    def __init__(
        self,
        *,
        client: cri.RuntimeClient,
        recorder: ev.EventRecorder,
        on_kill: Callable[[str], None],
        on_status: Callable[[str], None],
        manager: ProbeManager | None = None,
        on_attempt: Callable[[Any], None] | None = None,
    ) -> None:
        self.recorder = recorder
        self.on_kill = on_kill
        self.on_status = on_status
        self.manager = manager or ProbeManager(exec_runner=CRIExecRunner(client), on_result=self._on_result,
                                               on_attempt=on_attempt)
        self._keys: dict[str, PodKey] = {}
        self._pods: dict[str, Pod] = {}
        self._kills: dict[tuple[str, str, str], ProbeKill] = {}

    def sync_pod(self, pod: Pod, rt: PodRuntimeStatus, status: PodStatus) -> None:
        key = PodKey(pod.key)
        self._keys[pod.uid] = key
        self._pods[pod.uid] = pod
        pod_ip = status.pod_ip or None
        for c in pod.spec.sidecars + pod.spec.containers:  # plain init containers have no probes
            probes = container_probes(c)
            if probes.liveness is None and probes.readiness is None and probes.startup is None:
                continue
            info = rt.latest(c.name)
            self._forget_kills(pod.uid, c.name, info.id if info is not None and info.running else None)
            self.manager.update_container(
                pod_key=key,
                pod_uid=PodUID(pod.uid),
                container_name=c.name,
                container_id=ContainerId(info.id) if info else None,
                started_at=info.started_at / 1e9 if info and info.started_at else None,
                running=bool(info and info.running),
                pod_ip=pod_ip,
                host_ip=status.host_ip,
                host_network=pod.spec.host_network,
                probes=probes,
                terminated=bool(info and info.exited),
                restart_policy="Always" if c.is_sidecar else pod.spec.restart_policy,
            )

    def _forget_kills(self, uid: str, name: str, running_id: str | None) -> None:
        """A kill request lives while its container runs: drop those of containers that exited or were replaced."""
        for k in [k for k in self._kills if k[0] == uid and k[1] == name and k[2] != running_id]:
            del self._kills[k]

    def remove_pod(self, uid: str) -> None:
        key = self._keys.pop(uid, None)
        self._pods.pop(uid, None)
        if key is not None:
            self.manager.remove_pod(key)
        for k in [k for k in self._kills if k[0] == uid]:
            del self._kills[k]

    def is_ready(self, uid: str, name: str) -> bool:
        key = self._keys.get(uid)
        return key is not None and self.manager.is_ready(key, name)

    def is_started(self, uid: str, name: str) -> bool:
        key = self._keys.get(uid)
        return key is not None and self.manager.is_started(key, name)

    def kill_request(self, uid: str, name: str, container_id: str) -> ProbeKill | None:
        """The liveness/startup kill in effect for this container, if any. Read, never consumed: if the kill fails
        (StopContainer error) the next sync plans it again; it is dropped once the container is no longer running."""
        return self._kills.get((uid, name, container_id))

    def snapshot(self) -> list[dict[str, Any]]:
        """Per probe: result in effect, last attempt, consecutive counts, last message and latency (the API's view)."""
        return render_probe_states(self.manager.snapshot())

    def _on_result(self, e: ProbeResultEvent) -> None:
        uid = str(e.pod_uid)
        pod = self._pods.get(uid)
        if pod is None:
            return
        if e.type == ProbeEventType.UNHEALTHY:
            self.recorder.pod(pod, reason="Unhealthy", message=e.message, type=ev.WARNING, container=e.container_name)
        elif e.type == ProbeEventType.PROBE_WARNING:
            self.recorder.pod(pod, reason="ProbeWarning", message=e.message, type=ev.WARNING, container=e.container_name)
        elif e.type == ProbeEventType.KILL_CONTAINER:
            kind = "Liveness" if e.kind == ProbeKind.LIVENESS else "Startup"
            msg = f"Container {e.container_name} failed {kind.lower()} probe"
            self._kills[(uid, e.container_name, str(e.container_id))] = ProbeKill(reason=kind, message=msg, grace_seconds=e.grace_period_seconds)
            self.on_kill(uid)
        else:
            self.on_status(uid)
            c = pod.container(e.container_name)
            if e.type == ProbeEventType.STARTED_CHANGED and e.value and c is not None and c.is_sidecar:
                self.on_kill(uid)  # "sync now": a sidecar that started lets the next init container start

    async def aclose(self) -> None:
        await self.manager.aclose()
