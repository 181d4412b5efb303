"""compute_pod_actions: what SyncPod must do for one pod, from its spec and what the runtime reports. Pure.

Mirrors the kubelet's computePodActions (pkg/kubelet/kuberuntime/manager/kuberuntime_manager.go) and, for init and
sidecar containers (KEP-753), computeInitContainerActions (kuberuntime_container.go), with one difference of shape:
CrashLoopBackOff is decided here (the plan says "wait N s") rather than discovered while acting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from cri.api import ContainerId, ContainerState, SandboxId
from kubelet.kuberuntime.view import ContainerInfo, PodRuntimeStatus
from kubelet.types import ContainerSpec, Pod

BackoffFn = Callable[[ContainerSpec, ContainerInfo], float]
ProbeKillFn = Callable[[ContainerSpec, ContainerInfo], "ProbeKill | None"]
# Whether a running container with a startup probe has started (the probe succeeded for this container id).
StartedFn = Callable[[ContainerSpec, ContainerInfo], bool]


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
    # Init containers to start, in spec order: the next plain init container, or sidecars (restartPolicy Always)
    # that are started for the first time, restarted, or started together with the next init container.
    init_containers_to_start: tuple[str, ...] = ()
    containers_to_start: tuple[str, ...] = ()
    containers_to_kill: tuple[KillAction, ...] = ()
    # name → (reason, message) for containers held back (CrashLoopBackOff).
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    requeue_after: float | None = None
    # Why a new sandbox is needed (for events/logs).
    sandbox_reason: str = ""

    @property
    def init_container_to_start(self) -> str | None:
        """The first init container to start (the only one when the pod has no sidecars)."""
        return self.init_containers_to_start[0] if self.init_containers_to_start else None

    @property
    def noop(self) -> bool:
        return not (self.kill_pod or self.create_sandbox or self.init_containers_to_start or self.containers_to_start or self.containers_to_kill)


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
    started: StartedFn = lambda c, info: True,
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
            return PodActions(kill_pod=True, create_sandbox=True, attempt=attempt, sandbox_id=sandbox_id, init_containers_to_start=(spec.init_containers[0].name,), sandbox_reason=why)
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

    init_to_start: list[str] = []
    initialized, init_failed = _compute_init_actions(pod, rt, started=started, probe_kill=probe_kill,
                                                     restart_or_wait=restart_or_wait, to_kill=to_kill, to_start=init_to_start)
    if init_failed:
        return PodActions(kill_pod=True, sandbox_id=sandbox_id, attempt=attempt)
    if not initialized:
        return PodActions(
            sandbox_id=sandbox_id,
            attempt=attempt,
            init_containers_to_start=tuple(init_to_start),
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

    # No regular container runs or will run again: the pod is done. Sidecars never keep it alive (KEP-753): they
    # are stopped with it, not restarted.
    kill_pod = keep == 0 and not to_start and not any(r.name in waiting for r in spec.containers)
    if kill_pod:
        init_to_start.clear()
        for side in spec.sidecars:
            waiting.pop(side.name, None)
        if not (rt.running_containers or any(s.ready for s in rt.sandboxes)):
            kill_pod = False  # already down: nothing to do
    return PodActions(
        kill_pod=kill_pod,
        sandbox_id=sandbox_id,
        attempt=attempt,
        init_containers_to_start=tuple(init_to_start),
        containers_to_start=tuple(to_start),
        containers_to_kill=tuple(to_kill),
        waiting=waiting,
        requeue_after=min(requeue) if requeue else None,
    )


def _compute_init_actions(
    pod: Pod,
    rt: PodRuntimeStatus,
    *,
    started: StartedFn,
    probe_kill: ProbeKillFn,
    restart_or_wait: Callable[[ContainerSpec, ContainerInfo], bool],
    to_kill: list[KillAction],
    to_start: list[str],
) -> tuple[bool, bool]:
    """(initialized, failed under restartPolicy Never) — the kubelet's computeInitContainerActions.

    Walks the init containers backwards from the last one that has a status: a plain init container must have
    exited 0 before the next one starts; a sidecar must be *started* (running, and its startup probe succeeded)
    before the next one starts, and once started it is kept running (restarted with back-off whatever the pod's
    restartPolicy, killed and restarted on a failed liveness/startup probe or a changed definition). Appends to
    ``to_kill``/``to_start`` (the latter in spec order)."""
    inits = pod.spec.init_containers
    if not inits:
        return True, False
    # A regular container that is created or running means initialization happened (its init containers may
    # have been removed since). An exited one counts only in the current sandbox: one from an older sandbox (after a
    # reboot) says nothing about this one (the kubelet ignores exited ones altogether, for the same reason).
    newest = rt.newest_sandbox
    initialized = any(
        (info := rt.latest(c.name)) is not None
        and (info.state in (ContainerState.CREATED, ContainerState.RUNNING)
             or info.exited and newest is not None and info.sandbox_id == newest.id)
        for c in pod.spec.containers
    )
    previously_initialized = initialized
    restart_on_failure = pod.spec.restart_policy != "Never"
    backwards: list[str] = []
    for i in range(len(inits) - 1, -1, -1):
        c = inits[i]
        info = rt.latest(c.name)
        if info is not None and newest is not None and info.sandbox_id != newest.id:
            info = None  # it ran in an older sandbox: this one has to be initialized anew (upstream purges them)
        if info is None:
            if previously_initialized and c.is_sidecar:
                backwards.append(c.name)  # its status was lost after initialization: a sidecar must run again
            continue
        if previously_initialized and not c.is_sidecar:
            continue  # after initialization only sidecars are kept running
        if info.state == ContainerState.CREATED:
            to_kill.append(KillAction(container_id=info.id, name=c.name, message=f"Container {c.name} is not running, will be restarted"))
            backwards.append(c.name)
        elif info.running:
            if c.is_sidecar:
                _sidecar_running(c, i, info, inits, previously_initialized, started=started, probe_kill=probe_kill,
                                 to_kill=to_kill, start=backwards.append)
                if i == len(inits) - 1 and _is_started(c, info, started) and not any(k.container_id == info.id for k in to_kill):
                    initialized = True
            # a plain init container: wait for it to finish
        elif info.exited:
            if c.is_sidecar:
                if restart_or_wait(c, info):
                    backwards.append(c.name)
            elif info.exit_code != 0:
                if not restart_on_failure:
                    return False, True
                if restart_or_wait(c, info):
                    backwards.append(c.name)
            elif i == len(inits) - 1:
                initialized = True
            else:
                backwards.append(inits[i + 1].name)
        else:  # unknown
            if not c.is_sidecar and not restart_on_failure:
                return False, True
            to_kill.append(KillAction(container_id=info.id, name=c.name, message=f"Init container is in \"unknown\" state, try killing it before restart"))
            backwards.append(c.name)
        previously_initialized = True
    if not previously_initialized:
        backwards.append(inits[0].name)
    to_start.extend(reversed(backwards))
    return initialized, False


def _is_started(c: ContainerSpec, info: ContainerInfo, started: StartedFn) -> bool:
    return c.startup_probe is None or started(c, info)


def _sidecar_running(
    c: ContainerSpec,
    i: int,
    info: ContainerInfo,
    inits: tuple[ContainerSpec, ...],
    previously_initialized: bool,
    *,
    started: StartedFn,
    probe_kill: ProbeKillFn,
    to_kill: list[KillAction],
    start: Callable[[str], None],
) -> None:
    kill = probe_kill(c, info)
    if kill is not None and kill.reason == "Startup":
        to_kill.append(KillAction(container_id=info.id, name=c.name, message=f"Init container {c.name} failed startup probe, will be restarted", grace_seconds=kill.grace_seconds))
        start(c.name)
        return
    if not _is_started(c, info, started):
        return  # wait for its startup probe before the next init container
    if i < len(inits) - 1 and not previously_initialized:
        start(inits[i + 1].name)  # started for the first time: on to the next init container
    if info.hash and c.hash and info.hash != c.hash:
        to_kill.append(KillAction(container_id=info.id, name=c.name, message=f"Init container {c.name} definition changed, will be restarted"))
        start(c.name)
        return
    if kill is not None:
        to_kill.append(KillAction(container_id=info.id, name=c.name, message=f"Init container {c.name} failed {kill.reason.lower()} probe, will be restarted", grace_seconds=kill.grace_seconds))
        start(c.name)
