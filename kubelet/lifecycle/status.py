"""Pod status as the kubelet reports it: phase, conditions, container states. compute_* functions are pure.

Upstream: pkg/kubelet/kubelet_pods.go (getPhase, convertToAPIContainerStatuses), pkg/kubelet/lifecycle/status/generate.go.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from cri.api import ContainerState
from kubelet.lifecycle.actions import compute_next_init
from kubelet.clock import rfc3339
from kubelet.lifecycle.statusfmt import render_running, render_terminated
from kubelet.kuberuntime.view import ContainerInfo, PodRuntimeStatus
from kubelet.types import ContainerSpec, Pod

TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True, kw_only=True)
class StatusInputs:
    """What the status needs besides spec and runtime: probe results, waiting reasons, addresses, clock."""

    host_ip: str = ""
    runtime_name: str = "containerd"
    # name → (reason, message): CrashLoopBackOff, ErrImagePull, CreateContainerError … from the last sync.
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # (container name, container id) → readiness result; None = no readiness probe.
    readiness: Callable[[str, str], bool | None] = lambda name, cid: None
    # (container name, container id) → started; None = no startup probe.
    started: Callable[[str, str], bool | None] = lambda name, cid: None
    sandbox_error: tuple[str, str] | None = None  # (reason, message), e.g. CreatePodSandboxError
    start_time: float = 0.0
    now: float = 0.0
    terminating: bool = False
    # (pod, container spec, exited instance) → its termination message (file, or log tail with
    # FallbackToLogsOnError); "" when there is none. KubeRuntime.termination_message reads it.
    termination_message: Callable[[Pod, ContainerSpec, ContainerInfo], str] = lambda pod, c, info: ""


def compute_container_status(
    pod: Pod, c: ContainerSpec, rt: PodRuntimeStatus, inputs: StatusInputs, *, init: bool, default_waiting: str
) -> dict[str, Any]:
    instances = rt.instances(c.name)
    latest = instances[0] if instances else None
    previous = instances[1] if len(instances) > 1 else None
    st: dict[str, Any] = {"name": c.name, "image": c.image, "imageID": "", "restartCount": 0, "ready": False, "started": False}
    if latest is None:
        reason, message = inputs.waiting.get(c.name, (default_waiting, ""))
        st["state"] = {"waiting": {"reason": reason} | ({"message": message} if message else {})}
        return st
    st["containerID"] = f"{inputs.runtime_name}://{latest.id}"
    st["imageID"] = latest.image_ref
    st["restartCount"] = latest.restart_count
    if previous is not None and previous.exited:
        st["lastState"] = {"terminated": render_terminated(previous, inputs.runtime_name, inputs.termination_message(pod, c, previous))}
    else:
        st["lastState"] = {}
    if latest.running:
        started = inputs.started(c.name, latest.id)
        st["started"] = True if started is None else started
        ready = inputs.readiness(c.name, latest.id)
        # a plain init container is never ready while it runs; a sidecar is, like a regular container
        st["ready"] = bool(st["started"]) and (True if ready is None else ready) and (not init or c.is_sidecar)
        st["state"] = render_running(latest)
    elif latest.exited:
        term = render_terminated(latest, inputs.runtime_name, inputs.termination_message(pod, c, latest))
        if c.name in inputs.waiting:
            # Exited and held back (CrashLoopBackOff): waiting now, the exit shown as lastState, as kubectl shows it.
            reason, message = inputs.waiting[c.name]
            st["state"] = {"waiting": {"reason": reason, "message": message}}
            st["lastState"] = {"terminated": term}
        else:
            st["state"] = {"terminated": term}
            # the prober manager's rule: a plain init container that completed is ready
            st["ready"] = init and not c.is_sidecar and latest.exit_code == 0
    else:
        reason, message = inputs.waiting.get(c.name, (default_waiting, ""))
        st["state"] = {"waiting": {"reason": reason} | ({"message": message} if message else {})}
    return st


def _last_terminated_nonzero(st: Mapping[str, Any]) -> bool:
    t = st.get("lastState", {}).get("terminated")
    return bool(t and t.get("exitCode", 0) != 0)


def _regular_started(pod: Pod, statuses: list[dict[str, Any]]) -> bool:
    """HasAnyRegularContainerStarted: a regular container is running or has terminated (initialization is over)."""
    names = {c.name for c in pod.spec.containers}
    return any(st["name"] in names and ("running" in st["state"] or "terminated" in st["state"]) for st in statuses)


def compute_phase(pod: Pod, init_statuses: list[dict[str, Any]], statuses: list[dict[str, Any]]) -> str:
    """getPhase over API-shaped container statuses (with sidecars: pkg/kubelet/kubelet_pods.go)."""
    sidecars = {c.name for c in pod.spec.sidecars}
    pending_init = failed_init = pending_sidecars = 0
    running = waiting = stopped = succeeded = unknown = 0
    for st in init_statuses:
        s = st["state"]
        if st["name"] in sidecars:
            # a sidecar counts as running while it runs; its exits never decide the phase
            if "running" in s:
                if not st.get("started"):
                    pending_sidecars += 1
                running += 1
            elif "waiting" in s and not st.get("lastState", {}).get("terminated"):
                pending_sidecars += 1
                waiting += 1
            elif "terminated" not in s and "waiting" not in s:
                pending_sidecars += 1
                unknown += 1
            continue
        if "running" in s:
            pending_init += 1
        elif "terminated" in s:
            if s["terminated"]["exitCode"] != 0:
                failed_init += 1
        elif "waiting" in s:
            if _last_terminated_nonzero(st):
                failed_init += 1
            else:
                pending_init += 1
    # Init containers that finished but are not listed as terminated (no status) count as pending.
    for st in statuses:
        s = st["state"]
        if "running" in s:
            running += 1
        elif "terminated" in s:
            stopped += 1
            if s["terminated"]["exitCode"] == 0:
                succeeded += 1
        elif "waiting" in s:
            if st.get("lastState", {}).get("terminated"):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    policy = pod.spec.restart_policy
    if failed_init > 0 and policy == "Never":
        return "Failed"
    if pending_init > 0 or (failed_init > 0) or waiting > 0 or (pending_sidecars > 0 and not _regular_started(pod, statuses)):
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def compute_qos_class(pod: Pod) -> str:
    """The pod's QoS class, by quantity (requests `cpu: "1"` equals limits `"1000m"`), as its cgroups are set up."""
    from kubelet.kuberuntime.resources import compute_qos_class as qos

    return qos([c.resources for c in pod.spec.containers + pod.spec.init_containers])


def _succeeded_latest(rt: PodRuntimeStatus, name: str) -> bool:
    info = rt.latest(name)
    return info is not None and info.exited and info.exit_code == 0


def compute_incomplete_init(pod: Pod, init_statuses: list[dict[str, Any]]) -> list[str]:
    """GeneratePodInitializedCondition: init containers not completed (plain) or not started (sidecars)."""
    sidecars = {c.name for c in pod.spec.sidecars}
    out = []
    for st in init_statuses:
        if st["name"] in sidecars:
            if not st.get("started"):
                out.append(st["name"])
        else:
            t = st["state"].get("terminated")
            if t is None or t.get("exitCode") != 0:
                out.append(st["name"])
    return out


@dataclass(frozen=True, kw_only=True)
class PodCondition:
    type: str
    status: bool
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


@dataclass(frozen=True, kw_only=True)
class PodStatus:
    """A pod's status inside the agent. Container statuses are kept API-shaped (they go out as they are);
    render_pod_status makes the v1 PodStatus dict where it leaves the process (API, printers)."""

    phase: str
    conditions: tuple[PodCondition, ...]
    host_ip: str
    pod_ip: str  # "" until the sandbox has one
    start_time: str | None
    init_container_statuses: tuple[dict[str, Any], ...] | None  # None: the pod has no init containers
    container_statuses: tuple[dict[str, Any], ...]
    qos_class: str

    @property
    def ready(self) -> bool:
        return any(c.type == "Ready" and c.status for c in self.conditions)

    def condition(self, type_: str) -> PodCondition | None:
        return next((c for c in self.conditions if c.type == type_), None)


def _condition(type_: str, ok: bool, reason: str = "", message: str = "") -> PodCondition:
    return PodCondition(type=type_, status=ok, reason=reason, message=message)


def render_pod_status(st: PodStatus) -> dict[str, Any]:
    """The v1 PodStatus object (what the API serves and the printers read)."""
    conditions = []
    for c in st.conditions:
        d: dict[str, Any] = {"type": c.type, "status": "True" if c.status else "False"}
        if c.reason:
            d["reason"] = c.reason
        if c.message:
            d["message"] = c.message
        d["lastProbeTime"] = None
        d["lastTransitionTime"] = c.last_transition_time
        conditions.append(d)
    out: dict[str, Any] = {
        "phase": st.phase,
        "conditions": conditions,
        "hostIP": st.host_ip,
        "hostIPs": [{"ip": st.host_ip}] if st.host_ip else [],
        "startTime": st.start_time,
        "initContainerStatuses": list(st.init_container_statuses or ()),
        "containerStatuses": list(st.container_statuses),
        "qosClass": st.qos_class,
    }
    if st.pod_ip:
        out["podIP"] = st.pod_ip
        out["podIPs"] = [{"ip": st.pod_ip}]
    if st.init_container_statuses is None:
        del out["initContainerStatuses"]
    return out


def compute_pod_status(pod: Pod, rt: PodRuntimeStatus, inputs: StatusInputs, *, previous: PodStatus | None = None) -> PodStatus:
    """The v1 PodStatus for `pod`. `previous` keeps terminal phases and condition transition times stable."""
    sandbox = rt.newest_sandbox
    sandbox_ok = sandbox is not None and sandbox.ready and (bool(sandbox.ip) or pod.spec.host_network)
    init_statuses = [
        compute_container_status(pod, c, rt, inputs, init=True, default_waiting="PodInitializing" if sandbox_ok else "ContainerCreating")
        for c in pod.spec.init_containers
    ]
    if pod.spec.sidecars:
        incomplete = compute_incomplete_init(pod, init_statuses)
        init_done = not incomplete or any(rt.latest(c.name) is not None for c in pod.spec.containers)
    else:
        init_done, _, _ = compute_next_init(pod, rt)
        incomplete = [] if init_done else [c.name for c in pod.spec.init_containers if not _succeeded_latest(rt, c.name)]
    regular_waiting = "ContainerCreating" if sandbox_ok and init_done else ("PodInitializing" if pod.spec.init_containers else "ContainerCreating")
    statuses = [compute_container_status(pod, c, rt, inputs, init=False, default_waiting=regular_waiting) for c in pod.spec.containers]
    if inputs.sandbox_error and not sandbox_ok:
        reason, message = inputs.sandbox_error
        for st in statuses:
            if "waiting" in st["state"] and st["state"]["waiting"]["reason"] == "ContainerCreating":
                st["state"]["waiting"] = {"reason": "ContainerCreating", "message": f"{reason}: {message}"}
    phase = compute_phase(pod, init_statuses, statuses)
    prev_phase = previous.phase if previous is not None else None
    if prev_phase in TERMINAL:
        phase = prev_phase
    sidecars = {c.name for c in pod.spec.sidecars}
    # sidecars count in readiness, listed first (the kubelet passes init then regular statuses)
    unready = [st["name"] for st in init_statuses if st["name"] in sidecars and not st["ready"]]
    unready += [st["name"] for st in statuses if not st["ready"]]
    if init_done:
        incomplete = []
    terminal = phase in TERMINAL
    if terminal:
        ready_cond = _condition("Ready", False, "PodCompleted")
        cready_cond = _condition("ContainersReady", False, "PodCompleted")
    elif unready:
        msg = f"containers with unready status: [{' '.join(unready)}]"
        ready_cond = _condition("Ready", False, "ContainersNotReady", msg)
        cready_cond = _condition("ContainersReady", False, "ContainersNotReady", msg)
    else:
        ready_cond = _condition("Ready", True)
        cready_cond = _condition("ContainersReady", True)
    conditions = [
        _condition("PodReadyToStartContainers", sandbox_ok and not terminal),
        _condition("Initialized", not incomplete, *(("ContainersNotInitialized", f"containers with incomplete status: [{' '.join(incomplete)}]") if incomplete else ())),
        ready_cond,
        cready_cond,
        _condition("PodScheduled", True),
    ]
    prev_conds = {c.type: c for c in previous.conditions} if previous is not None else {}
    now = rfc3339(inputs.now)
    stamped = []
    for c in conditions:
        p = prev_conds.get(c.type)
        stamped.append(dataclasses.replace(c, last_transition_time=p.last_transition_time if p and p.status == c.status else now))
    pod_ip = inputs.host_ip if pod.spec.host_network else (sandbox.ip if sandbox is not None and sandbox.ready else "")
    return PodStatus(
        phase=phase,
        conditions=tuple(stamped),
        host_ip=inputs.host_ip,
        pod_ip=pod_ip,
        start_time=rfc3339(inputs.start_time) if inputs.start_time else None,
        init_container_statuses=tuple(init_statuses) if pod.spec.init_containers else None,
        container_statuses=tuple(statuses),
        qos_class=compute_qos_class(pod),
    )


def is_ready(status: Mapping[str, Any]) -> bool:
    """Ready, for a rendered v1 PodStatus (PodStatus.ready inside the agent)."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


__all__ = ["PodCondition", "PodStatus", "StatusInputs", "compute_pod_status", "render_pod_status", "compute_phase", "compute_container_status", "compute_qos_class", "is_ready", "ContainerState"]
