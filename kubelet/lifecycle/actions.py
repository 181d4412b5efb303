"""compute_pod_actions: what SyncPod must do for one pod, from its spec and what the runtime reports. Pure.

Mirrors the kubelet's computePodActions (pkg/kubelet/kuberuntime/manager/kuberuntime_manager.go), with one difference
of shape: CrashLoopBackOff is decided here (the plan says "wait N s") rather than discovered while acting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from cri.api import ContainerId, ContainerState, SandboxId
from kubelet.kuberuntime.view import ContainerInfo, PodRuntimeStatus
from kubelet.types import ContainerSpec, Pod

BackoffFn = Callable[[ContainerSpec, ContainerInfo], float]
ProbeKillFn = Callable[[ContainerSpec, ContainerInfo], "ProbeKill | None"]


@dataclass(frozen=True, kw_only=True)
class ProbeKill:
    """A liveness/startup failure that took effect: kill with this message (and grace, if the probe sets one)."""

    reason: str  # "Liveness" | "Startup"
    message: str
    grace_seconds: int | None = None


@dataclass(frozen=True, kw_only=True)
class KillAction:
    container_id: ContainerId
    name: str
    message: str
    grace_seconds: int | None = None  # None: the pod's terminationGracePeriodSeconds


@dataclass(frozen=True, kw_only=True)
class PodActions:
    kill_pod: bool = False
    create_sandbox: bool = False
    sandbox_id: SandboxId = SandboxId("")
    attempt: int = 0
    init_container_to_start: str | None = None
    containers_to_start: tuple[str, ...] = ()
    containers_to_kill: tuple[KillAction, ...] = ()
    # name → (reason, message) for containers held back (CrashLoopBackOff).
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    requeue_after: float | None = None
    # Why a new sandbox is needed (for events/logs).
    sandbox_reason: str = ""

    @property
    def noop(self) -> bool:
        return not (self.kill_pod or self.create_sandbox or self.init_container_to_start or self.containers_to_start or self.containers_to_kill)


def should_restart(policy: str, exit_code: int) -> bool:
    """Whether an exited container is restarted under the pod's restartPolicy."""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def compute_sandbox_changed(pod: Pod, rt: PodRuntimeStatus) -> tuple[bool, int, SandboxId, str]:
    """(changed, attempt, existing sandbox id, reason) per the kubelet's podSandboxChanged."""
    newest = rt.newest_sandbox
    if newest is None:
        return True, 0, SandboxId(""), "no sandbox"
    ready = sum(1 for s in rt.sandboxes if s.ready)
    if ready > 1:
        return True, newest.attempt + 1, newest.id, f"{ready} ready sandboxes"
    if not newest.ready:
        return True, newest.attempt + 1, newest.id, "sandbox not ready"
    if newest.host_network != pod.spec.host_network:
        return True, newest.attempt + 1, newest.id, "network namespace mode changed"
    if not pod.spec.host_network and not newest.ip:
        return True, newest.attempt + 1, newest.id, "sandbox has no IP"
    return False, newest.attempt, newest.id, ""


def _succeeded(info: ContainerInfo | None) -> bool:
    return info is not None and info.exited and info.exit_code == 0


def compute_next_init(pod: Pod, rt: PodRuntimeStatus) -> tuple[bool, ContainerSpec | None, bool]:
    """(all init done, next init container to act on, that container failed) — findNextInitContainerToRun."""
    inits = pod.spec.init_containers
    if not inits:
        return True, None, False
    # Regular containers have already run: initialization is over.
    if any(rt.latest(c.name) is not None for c in pod.spec.containers):
        return True, None, False
    for i in range(len(inits) - 1, -1, -1):
        info = rt.latest(inits[i].name)
        if info is None:
            continue
        if info.exited and info.exit_code != 0:
            return False, inits[i], True
        if not info.exited:  # running, created or unknown: wait for it
            return False, inits[i], False
        return (True, None, False) if i == len(inits) - 1 else (False, inits[i + 1], False)
    return False, inits[0], False


def _backoff_message(c: ContainerSpec, pod: Pod, delay: float) -> str:
    d = f"{int(delay // 60)}m{int(delay % 60)}s" if delay >= 60 else f"{int(delay)}s"
    return f"back-off {d} restarting failed container={c.name} pod={pod.full_name}({pod.uid})"


def compute_pod_actions(
    pod: Pod,
    rt: PodRuntimeStatus,
    *,
    backoff_left: BackoffFn = lambda c, info: 0.0,
    backoff_delay: Callable[[ContainerSpec], float] = lambda c: 10.0,
    probe_kill: ProbeKillFn = lambda c, info: None,
) -> PodActions:
    spec = pod.spec
    changed, attempt, sandbox_id, why = compute_sandbox_changed(pod, rt)

    if changed:
        if spec.restart_policy != "Always" and attempt != 0 and rt.containers:
            # Never/OnFailure pods whose containers already ran get no new sandbox ("everything done" or failed).
            starts = () if spec.restart_policy == "Never" else tuple(
                c.name for c in spec.containers if not _succeeded(rt.latest(c.name))
            )
            if not starts or spec.init_containers and not compute_next_init(pod, rt)[0]:
                return PodActions(kill_pod=bool(rt.running_containers or any(s.ready for s in rt.sandboxes)), sandbox_id=sandbox_id)
        if spec.init_containers:
            return PodActions(kill_pod=True, create_sandbox=True, attempt=attempt, sandbox_id=sandbox_id, init_container_to_start=spec.init_containers[0].name, sandbox_reason=why)
        starts = tuple(c.name for c in spec.containers if not (spec.restart_policy == "OnFailure" and _succeeded(rt.latest(c.name))))
        if not starts:
            return PodActions(kill_pod=bool(rt.running_containers), sandbox_id=sandbox_id)
        return PodActions(kill_pod=True, create_sandbox=True, attempt=attempt, sandbox_id=sandbox_id, containers_to_start=starts, sandbox_reason=why)

    to_kill: list[KillAction] = []
    waiting: dict[str, tuple[str, str]] = {}
    requeue: list[float] = []
    known = {c.name for c in spec.init_containers + spec.containers}
    for running in rt.running_containers:
        if running.name not in known:
            to_kill.append(KillAction(container_id=running.id, name=running.name, message=f"Container {running.name} is not in the pod's spec, will be killed"))

    def restart_or_wait(c: ContainerSpec, info: ContainerInfo) -> bool:
        left = backoff_left(c, info)
        if left > 0:
            waiting[c.name] = ("CrashLoopBackOff", _backoff_message(c, pod, backoff_delay(c)))
            requeue.append(left)
            return False
        return True

    init_done, next_init, init_failed = compute_next_init(pod, rt)
    if not init_done:
        assert next_init is not None
        info = rt.latest(next_init.name)
        if init_failed and spec.restart_policy == "Never":
            return PodActions(kill_pod=True, sandbox_id=sandbox_id, attempt=attempt)
        start_init = None
        if info is None:
            start_init = next_init.name
        elif info.exited:
            if restart_or_wait(next_init, info):
                start_init = next_init.name
        elif info.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
            to_kill.append(KillAction(container_id=info.id, name=info.name, message=f"Container {info.name} is not running, will be restarted"))
            start_init = next_init.name
        return PodActions(
            sandbox_id=sandbox_id,
            attempt=attempt,
            init_container_to_start=start_init,
            containers_to_kill=tuple(to_kill),
            waiting=waiting,
            requeue_after=min(requeue) if requeue else None,
        )

    to_start: list[str] = []
    keep = 0
    for c in spec.containers:
        info = rt.latest(c.name)
        if info is None:
            to_start.append(c.name)
            continue
        if info.running:
            message, restart, grace = "", should_restart(spec.restart_policy, 1), None
            kill = probe_kill(c, info)
            if info.hash and c.hash and info.hash != c.hash:
                message, restart = f"Container {c.name} definition changed", True
            elif kill is not None:
                message, grace = kill.message, kill.grace_seconds
            else:
                keep += 1
                continue
            if restart:
                message += ", will be restarted"
                to_start.append(c.name)
            to_kill.append(KillAction(container_id=info.id, name=c.name, message=message, grace_seconds=grace))
            continue
        if info.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
            # Created but never started (the agent died in between) or lost: replace it.
            to_kill.append(KillAction(container_id=info.id, name=c.name, message=f"Container {c.name} is not running, will be restarted"))
            to_start.append(c.name)
            continue
        if should_restart(spec.restart_policy, info.exit_code) and restart_or_wait(c, info):
            to_start.append(c.name)

    kill_pod = keep == 0 and not to_start and not waiting
    if kill_pod and not (rt.running_containers or any(s.ready for s in rt.sandboxes)):
        kill_pod = False  # already down: nothing to do
    return PodActions(
        kill_pod=kill_pod,
        sandbox_id=sandbox_id,
        attempt=attempt,
        containers_to_start=tuple(to_start),
        containers_to_kill=tuple(to_kill),
        waiting=waiting,
        requeue_after=min(requeue) if requeue else None,
    )
