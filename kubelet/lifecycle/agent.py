"""The node agent: one sync loop that hands manifest updates, runtime events, resync ticks and probe results to
per-pod workers. It never calls the runtime itself; workers plan (compute_pod_actions) and act (KubeRuntime).

Restarts are normal: on start the agent relists the runtime (CRI labels/annotations) and the manifest dir, and
"add everything" is all it does. Pods from a file that currently fails to parse keep running (last good version).
"""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Callable, Protocol, Sequence

import cri
from kubelet.lifecycle import events as ev
from kubelet.lifecycle.actions import ProbeKill, compute_pod_actions
from kubelet.lifecycle.backoff import Backoff
from kubelet.clock import Clock, parse_rfc3339, rfc3339
from kubelet.config import NodeletConfig
from kubelet.kuberuntime.manager import KubeRuntime, SyncResult
from kubelet.manifest.defaults import compute_api_object
from kubelet.kuberuntime.imagegc import IMAGE_GC_PERIOD, ImageGCManager
from kubelet.kuberuntime.logrotate import LOG_MONITOR_PERIOD, ContainerLogManager
from kubelet.lifecycle.pod_workers import PodWorkers, SyncFn, TerminateFn
from kubelet.kuberuntime.view import PLEG, PodRuntimeStatus, RuntimeView
from kubelet.lifecycle.status import PodStatus, StatusInputs, compute_pod_status, render_pod_status
from kubelet.types import ANN_CONFIG_SEEN, ManifestSet, Pod, PodUID
from proxy.model import ContainerPort as ProxyContainerPort, PodInfo, Protocol as PortProtocol

log = logging.getLogger(__name__)

SyncDoneFn = Callable[[str, float, "BaseException | None"], None]


class Workers(Protocol):
    """What the agent uses of PodWorkers (a test may pass a recorder of calls)."""

    def sync(self, uid: str) -> None: ...
    def terminate(self, uid: str) -> None: ...
    def is_terminating(self, uid: str) -> bool: ...
    def uids(self) -> set[str]: ...
    async def stop(self) -> None: ...


class WorkersFactory(Protocol):
    def __call__(self, *, sync: SyncFn, terminate: TerminateFn, on_terminated: Callable[[str], None],
                 on_sync_done: SyncDoneFn) -> Workers: ...


class AgentProbesLike(Protocol):
    """kubelet.lifecycle.probing.AgentProbes as the agent sees it."""

    def sync_pod(self, pod: Pod, rt: PodRuntimeStatus, status: PodStatus) -> None: ...
    def remove_pod(self, uid: str) -> None: ...
    def is_ready(self, uid: str, name: str) -> bool: ...
    def is_started(self, uid: str, name: str) -> bool: ...
    def kill_request(self, uid: str, name: str, container_id: str) -> ProbeKill | None: ...

VERSION = "0.1.0"
GC_PERIOD = 60.0


def detect_host_ip() -> str:
    """The node's primary IPv4 address: the source address of the default route (no packet is sent)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1; connect() on UDP only picks a route
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


class Agent:
    """The sync loop. Every collaborator is passed in (kubelet/app.py builds the graph); the agent builds only what
    is bound to its own callbacks: the pod workers (through `workers`, a factory) and the PLEG over `view`."""

    def __init__(
        self,
        config: NodeletConfig,
        *,
        client: cri.RuntimeClient,
        runtime: KubeRuntime,
        view: RuntimeView,
        recorder: ev.EventRecorder,
        backoff: Backoff,
        clock: Clock,
        host_ip: str,
        log_manager: ContainerLogManager,
        image_gc: ImageGCManager,
        probes: AgentProbesLike | None = None,
        workers: WorkersFactory = PodWorkers,
        on_sync_done: Sequence[SyncDoneFn] = (),
        on_pods_changed: Sequence[Callable[[], None]] = (),
        pleg_period: float = 1.0,
        gc_period: float = GC_PERIOD,
    ) -> None:
        self.config = config
        self.clock = clock
        self.client = client
        self.host_ip = host_ip
        self.recorder = recorder
        self.view = view
        self.pleg = PLEG(view=self.view, on_change=self._on_pleg, period=pleg_period)
        self.backoff = backoff
        self.runtime = runtime
        self.log_manager = log_manager
        self.image_gc = image_gc
        self._sync_done_listeners = tuple(on_sync_done)
        self.workers: Workers = workers(sync=self._sync_pod, terminate=self._terminate_pod, on_terminated=self._on_terminated, on_sync_done=self._on_sync_done)
        self.gc_period = gc_period
        self.desired: dict[str, Pod] = {}
        self.manifests = ManifestSet()
        self.statuses: dict[str, PodStatus] = {}
        self.results: dict[str, SyncResult] = {}
        self.runtime_pods: dict[str, PodRuntimeStatus] = {}
        self.blocked: dict[str, str] = {}  # new uid → old uid it replaces (same namespace/name)
        self.known: dict[str, Pod] = {}  # every pod ever desired this run (for grace periods on termination)
        self._api_objects: dict[str, dict[str, Any]] = {}  # uid -> manifest + API server defaults (a uid's is fixed)
        self._deletion_stamps: dict[str, str] = {}  # uid -> deletionTimestamp, set once when termination starts
        self.rejected: dict[str, Pod] = {}  # over maxPods: shown as Failed/OutOfpods, not run
        self.sources_ready = asyncio.Event()
        self.first_sync_done = asyncio.Event()
        self.runtime_version = ""
        self.runtime_name = "containerd"
        self.loop_heartbeat = self.clock.monotonic()
        self.sync_seconds: list[float] = []
        self.sync_errors = 0
        self._reported_errors: set[str] = set()
        self.probes = probes
        self.on_pods_changed: list[Callable[[], None]] = list(on_pods_changed)  # e.g. the service proxy's endpoint update

    # ---- inputs ----

    def on_manifests(self, mset: ManifestSet) -> None:
        """A full snapshot of the manifest dir: compute the desired pods and dispatch workers."""
        self.manifests = mset
        desired: dict[str, Pod] = {p.uid: p for p in mset.pods}
        # Kinder than upstream: a file that turned invalid keeps its last good pods running.
        for uid, pod in self.desired.items():
            if pod.source in mset.broken_files and uid not in desired and all(p.key != pod.key for p in desired.values()):
                desired[uid] = pod
        desired = self._admit(desired)
        for err in mset.errors:
            text = str(err)
            if text not in self._reported_errors:
                self.recorder.node(reason="FailedManifest", message=text, type=ev.WARNING)
        self._reported_errors = {str(e) for e in mset.errors}
        old = self.desired
        self.desired = desired
        self.known.update(desired)
        # An edited file gives the pod a new UID: the old one stops first, the new one starts after (no overlap).
        live_keys = {rt.key: uid for uid, rt in self.runtime_pods.items() if uid not in desired and (rt.running_containers or any(s.ready for s in rt.sandboxes))}
        live_keys.update({p.key: uid for uid, p in old.items() if uid not in desired})
        for uid, pod in desired.items():
            if uid not in old and pod.key in live_keys and live_keys[pod.key] != uid:
                self.blocked[uid] = live_keys[pod.key]
        for uid in desired:
            self.workers.sync(uid)
        for uid in set(old) - set(desired):
            self._terminate(uid)
        self.sources_ready.set()
        self._orphans()
        self._notify_pods_changed()

    def _admit(self, desired: dict[str, Pod]) -> dict[str, Pod]:
        """maxPods, as the kubelet's admission: pods already running first, then the oldest seen; the rest are
        rejected (phase Failed, reason OutOfpods) until there is room."""
        limit = self.config.max_pods
        if len(desired) <= limit:
            self.rejected = {}
            return desired
        running = set(self.desired) | set(self.runtime_pods)
        order = sorted(desired.values(), key=lambda p: (p.uid not in running, p.annotations.get(ANN_CONFIG_SEEN, ""), p.key))
        admitted: dict[str, Pod] = {p.uid: p for p in order[:limit]}
        rejected: dict[str, Pod] = {p.uid: p for p in order[limit:]}
        for uid, pod in rejected.items():
            if uid not in self.rejected:
                msg = f"Node didn't have enough resource: pods, requested: 1, used: {limit}, capacity: {limit}"
                self.recorder.pod(pod, reason="OutOfpods", message=msg, type=ev.WARNING)
        self.rejected = rejected
        return admitted

    def _terminate(self, uid: str) -> None:
        if self.probes is not None:
            self.probes.remove_pod(uid)
        self.workers.terminate(uid)

    def _orphans(self) -> None:
        """Runtime pods nodelet created but no manifest wants any more (e.g. removed while the agent was down)."""
        if not self.sources_ready.is_set():
            return
        broken = self.manifests.broken_files
        for uid, rt in self.runtime_pods.items():
            if uid in self.desired or self.workers.is_terminating(uid):
                continue
            if rt.config_file and rt.config_file in broken:
                continue  # its file is broken right now: keep it running, it may be fixed
            if not (rt.containers or rt.sandboxes):
                continue
            self._terminate(uid)

    async def _on_pleg(self, changed: set[str], snapshot: dict[str, PodRuntimeStatus]) -> None:
        self.runtime_pods = snapshot
        for uid in changed:
            if uid in self.desired:
                self.workers.sync(uid)
        self._orphans()

    def on_probe_kill(self, uid: str) -> None:
        """A liveness/startup failure took effect (the next sync kills and restarts per policy the container), or a
        sidecar started (the next sync starts the next init container)."""
        if uid in self.desired:
            self.workers.sync(uid)

    def on_probe_status(self, uid: str) -> None:
        """Readiness or started changed: recompute the status from what the runtime last said (no CRI call)."""
        pod = self.desired.get(uid)
        rt = self.runtime_pods.get(uid)
        if pod is not None and rt is not None:
            self._update_status(pod, rt, self.results.get(uid, SyncResult()))

    # ---- pod worker callbacks ----

    def _probe_kill(self, pod: Pod) -> Callable[[Any, Any], ProbeKill | None]:
        def fn(c: Any, info: Any) -> ProbeKill | None:
            if self.probes is None:
                return None
            return self.probes.kill_request(pod.uid, c.name, info.id)

        return fn

    def _started_probe(self, pod: Pod) -> Callable[[Any, Any], bool]:
        """For the planner: has this running container's startup probe succeeded (sidecar start gating)."""
        def fn(c: Any, info: Any) -> bool:
            return self.probes is None or bool(self.probes.is_started(pod.uid, c.name))

        return fn

    async def _sync_pod(self, uid: str) -> float | None:
        pod = self.desired.get(uid)
        if pod is None:
            return None
        old = self.blocked.get(uid)
        if old is not None:
            if old in self.workers.uids() or old in self.runtime_pods and self.runtime_pods[old].running_containers:
                self._update_status(pod, PodRuntimeStatus(uid=PodUID(uid)), SyncResult())
                return None  # started by _on_terminated(old)
            self.blocked.pop(uid, None)
        rt = await self.view.pod(uid)
        actions = compute_pod_actions(
            pod,
            rt,
            backoff_left=lambda c, info: self.runtime.backoff_left(pod, c, info),
            backoff_delay=lambda c: self.runtime.backoff_delay(pod, c),
            probe_kill=self._probe_kill(pod),
            started=self._started_probe(pod),
        )
        result = SyncResult(waiting=dict(actions.waiting))
        await self.runtime.refresh_volumes(pod)  # configMap/secret volume contents follow their documents
        if not actions.noop:
            log.debug("sync pod=%s uid=%s actions=%s", pod.key, uid, actions)
            result = await self.runtime.sync_pod(pod, actions, rt)
            rt = await self.view.pod(uid)
        for name, (reason, message) in actions.waiting.items():
            if reason == "CrashLoopBackOff" and self.results.get(uid, SyncResult()).waiting.get(name, ("",))[0] != reason:
                self.recorder.pod(pod, reason="BackOff", message="Back-off restarting failed container", type=ev.WARNING, container=name)
        self.results[uid] = result
        self.runtime_pods[uid] = rt
        self._update_status(pod, rt, result)
        if sum(1 for c in rt.containers if not c.running) > len(pod.spec.containers) + len(pod.spec.init_containers):
            await self.runtime.gc_pod(pod, rt)
        waits = [x for x in (actions.requeue_after, result.retry_after) if x]
        return min(waits) + 0.05 if waits else None

    def _update_status(self, pod: Pod, rt: PodRuntimeStatus, result: SyncResult) -> None:
        inputs = StatusInputs(
            host_ip=self.host_ip,
            runtime_name=self.runtime_name,
            waiting=result.waiting,
            sandbox_error=result.sandbox_error,
            readiness=self._readiness(pod),
            started=self._started(pod),
            start_time=self._seen_time(pod),
            now=self.clock.now(),
            termination_message=self.runtime.termination_message,  # terminationMessagePath / FallbackToLogsOnError
        )
        prev = self.statuses.get(pod.uid)
        status = compute_pod_status(pod, rt, inputs, previous=prev)
        self.statuses[pod.uid] = status
        if self.probes is not None:
            self.probes.sync_pod(pod, rt, status)
        if prev is None or prev.ready != status.ready or prev.pod_ip != status.pod_ip:
            self._notify_pods_changed()

    def _readiness(self, pod: Pod) -> Callable[[str, str], bool | None]:
        def fn(name: str, cid: str) -> bool | None:
            c = pod.container(name)
            if self.probes is None or c is None or c.readiness_probe is None:
                return None
            return bool(self.probes.is_ready(pod.uid, name))

        return fn

    def _started(self, pod: Pod) -> Callable[[str, str], bool | None]:
        def fn(name: str, cid: str) -> bool | None:
            c = pod.container(name)
            if self.probes is None or c is None or c.startup_probe is None:
                return None
            return bool(self.probes.is_started(pod.uid, name))

        return fn

    def _seen_time(self, pod: Pod) -> float:
        seen = parse_rfc3339(pod.annotations.get(ANN_CONFIG_SEEN, ""))
        return seen if seen is not None else self.clock.now()

    async def _terminate_pod(self, uid: str) -> None:
        rt = await self.view.pod(uid)
        pod = self.known.get(uid)
        grace = None if pod is not None else rt.grace_seconds
        if pod is not None and rt.running_containers:
            log.info("terminating pod=%s uid=%s", pod.key, uid)
        await self.runtime.remove_pod(uid, rt, pod=pod, grace=grace)
        self.statuses.pop(uid, None)
        self.results.pop(uid, None)
        self.runtime_pods.pop(uid, None)

    def _on_terminated(self, uid: str) -> None:
        for new, old in list(self.blocked.items()):
            if old == uid:
                del self.blocked[new]
                self.workers.sync(new)
        self._notify_pods_changed()

    def _on_sync_done(self, uid: str, seconds: float, err: BaseException | None) -> None:
        self.sync_seconds.append(seconds)
        if len(self.sync_seconds) > 1000:
            del self.sync_seconds[:500]
        if err is not None:
            self.sync_errors += 1
        for listener in self._sync_done_listeners:
            listener(uid, seconds, err)
        if self.sources_ready.is_set() and not self.first_sync_done.is_set() and all(u in self.statuses for u in self.desired):
            self.first_sync_done.set()

    def _notify_pods_changed(self) -> None:
        for cb in self.on_pods_changed:
            try:
                cb()
            except Exception:  # a consumer's bug must not stop pod syncing
                log.exception("pods-changed callback failed")

    # ---- loops ----

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sync_frequency)
            for uid in self.desired:
                self.workers.sync(uid)

    async def _gc_loop(self) -> None:
        while True:
            await asyncio.sleep(self.gc_period)
            try:
                for uid, pod in list(self.desired.items()):
                    rt = self.runtime_pods.get(uid)
                    if rt is not None:
                        await self.runtime.gc_pod(pod, rt)
                self.runtime.gc_log_dirs(set(self.desired) | self.workers.uids())
                self.backoff.gc()
            except cri.CRIError as err:
                log.warning("garbage collection failed err=%s", err)

    async def _log_rotation_loop(self) -> None:
        while True:
            await asyncio.sleep(LOG_MONITOR_PERIOD)
            running = [(c.id, c.log_path) for rt in list(self.runtime_pods.values()) for c in rt.running_containers]
            try:
                await self.log_manager.rotate(running)
            except Exception:  # rotation must never take the agent down
                log.exception("log rotation failed")

    async def _image_gc_loop(self) -> None:
        while True:
            await asyncio.sleep(IMAGE_GC_PERIOD)
            try:
                await self.image_gc.garbage_collect()
            except Exception:  # image GC must never take the agent down
                log.exception("image garbage collection failed")

    async def _heartbeat_loop(self) -> None:
        while True:
            self.loop_heartbeat = self.clock.monotonic()
            if not self.first_sync_done.is_set() and self.sources_ready.is_set() and all(u in self.statuses for u in self.desired):
                self.first_sync_done.set()
            await asyncio.sleep(1.0)

    async def start_runtime(self, *, timeout: float = 60.0) -> None:
        version = await cri.wait_until_ready(self.client, timeout=timeout)
        self.runtime_version = f"{version.runtime_name}://{version.runtime_version}"
        self.runtime_name = version.runtime_name
        await self.pleg.relist()
        self.runtime_pods = self.pleg.snapshot
        log.info("runtime ready endpoint=%s runtime=%s pods_found=%d", self.client.endpoint, self.runtime_version, len(self.runtime_pods))

    def tasks(self) -> list[Callable[[], Any]]:
        return [self.pleg.run, self._resync_loop, self._gc_loop, self._heartbeat_loop, self._log_rotation_loop, self._image_gc_loop]

    async def stop(self) -> None:
        await self.workers.stop()

    # ---- views for the API ----

    def health(self) -> tuple[bool, str]:
        if self.clock.monotonic() - self.loop_heartbeat > 10:
            return False, "sync loop is not running"
        if not self.pleg.healthy:
            return False, f"container runtime is unreachable: {self.pleg.error or 'no successful relist yet'}"
        if self.clock.monotonic() - self.pleg.last_relist > max(10.0, 10 * self.pleg.period):
            return False, "PLEG is not healthy: the last relist was too long ago"
        return True, "ok"

    def pod_infos(self) -> list[PodInfo]:
        """Pods with an IP as the service proxy and the cluster's endpoint slices see them, from the typed pods and
        statuses (terminating pods are not ready), in the order of pod_objects()."""
        terminating = {uid for uid, p in self.known.items() if uid not in self.desired and self.workers.is_terminating(uid)}
        pods = {**self.desired, **{uid: self.known[uid] for uid in terminating}}
        out = []
        for uid, pod in sorted(pods.items(), key=lambda kv: (kv[1].namespace, kv[1].name, kv[0])):
            st = self.statuses.get(uid)
            if st is None or not st.pod_ip:
                continue
            ports = tuple(ProxyContainerPort(name=p.name, port=p.container_port, protocol=PortProtocol(p.protocol))
                          for c in pod.spec.containers for p in c.ports)
            out.append(PodInfo(namespace=pod.namespace, name=pod.name, labels=dict(pod.labels), ip=st.pod_ip,
                               ready=uid not in terminating and st.ready, ports=ports, node_name=self.config.node_name))
        return out

    def _api_object(self, pod: Pod) -> dict[str, Any]:
        """The pod as a cluster would show it (API server defaults); computed once per uid (callers copy the top)."""
        obj = self._api_objects.get(pod.uid)
        if obj is None:
            obj = self._api_objects[pod.uid] = compute_api_object(pod.manifest)
        return obj

    def pod_objects(self) -> list[dict[str, Any]]:
        """Desired pods plus pods still terminating (shown with deletionTimestamp, as kubectl's "Terminating")."""
        terminating = {uid: p for uid, p in self.known.items() if uid not in self.desired and self.workers.is_terminating(uid)}
        out = []
        shown = {**self.desired, **terminating}
        self._api_objects = {uid: o for uid, o in self._api_objects.items() if uid in shown or uid in self.rejected}
        self._deletion_stamps = {uid: t for uid, t in self._deletion_stamps.items() if uid in terminating}
        for uid, pod in sorted(shown.items(), key=lambda kv: (kv[1].namespace, kv[1].name, kv[0])):
            obj = dict(self._api_object(pod))
            meta = dict(obj.get("metadata", {}))
            meta.setdefault("creationTimestamp", rfc3339(self._seen_time(pod)))
            if uid in terminating:  # stamped once: `get -w` must not see a new deletionTimestamp on every request
                meta["deletionTimestamp"] = self._deletion_stamps.setdefault(uid, rfc3339(self.clock.now()))
                meta["deletionGracePeriodSeconds"] = pod.spec.termination_grace_period_seconds
            obj["metadata"] = meta
            st = self.statuses.get(uid)
            obj["status"] = render_pod_status(st) if st is not None else {"phase": "Pending", "conditions": [], "qosClass": "BestEffort"}
            out.append(obj)
        limit = self.config.max_pods
        for uid, pod in sorted(self.rejected.items(), key=lambda kv: kv[1].key):
            obj = dict(self._api_object(pod))
            obj["metadata"] = dict(obj.get("metadata", {})) | {"creationTimestamp": rfc3339(self._seen_time(pod))}
            obj["status"] = {
                "phase": "Failed",
                "reason": "OutOfpods",
                "message": f"Node didn't have enough resource: pods, requested: 1, used: {limit}, capacity: {limit}",
            }
            out.append(obj)
        return out

__all__ = ["Agent", "VERSION", "detect_host_ip"]
