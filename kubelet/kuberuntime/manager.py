"""The thin executor: carries out PodActions over the CRI client (the kubelet's SyncPod / KillPod).

Every error that concerns one container is recorded as that container's waiting reason and an event, and the
sync goes on with the rest; a sandbox failure stops the sync (there is nothing to start containers in).
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cri
from cri import api
from kubelet.lifecycle import events as ev
from kubelet.lifecycle.actions import KillAction, PodActions
from kubelet.lifecycle.backoff import Backoff
from kubelet.clock import Clock
from kubelet.kuberuntime.cgroups import apply_pod_cgroup_limits, remove_pod_cgroups
from kubelet.kuberuntime.etchosts import ensure_hosts_file, hosts_file_path, render_hosts_file
from kubelet.kuberuntime.hooks import HookError, describe_hook, run_hook
from kubelet.kuberuntime.podconfig import NodeInfo, compute_container_config, compute_env, compute_sandbox_config, parse_resolv_conf
from kubelet.kuberuntime.view import ContainerInfo, PodRuntimeStatus, RuntimeView
from kubelet.kuberuntime.security import effective_security_context, verify_run_as_non_root
from kubelet.lifecycle.termination import TerminationMessages, termination_message_file
from kubelet.kuberuntime.ordering import TerminationOrdering, compute_termination_order
from kubelet.types import ContainerSpec, LifecycleHandler, Pod
from kubelet.manifest.validation_spec import compute_unimplemented_fields
from kubelet.kuberuntime.volumes import VolumeError, compute_read_only_volumes, ensure_container_mounts, ensure_pod_volumes, refresh_projected_volumes, subpaths_dir, teardown_pod_volumes
from kubelet.errors import RetryableError, from_os_error
from kubelet.node.resolvconf import split_loopback

log = logging.getLogger(__name__)

MIN_GRACE = 2  # the kubelet floors the remaining grace after preStop at 2 s


class SandboxError(RetryableError):
    """The pod sandbox could not be created: the sync stops, the status shows `reason`, the next sync retries."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class SyncResult:
    """What a sync learnt that the status needs: waiting reasons of containers that could not start."""

    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    sandbox_error: tuple[str, str] | None = None
    retry_after: float | None = None


def backoff_key(pod: Pod, c: ContainerSpec) -> str:
    return f"{pod.uid}/{c.name}/{c.hash}"


class KubeRuntime:
    def __init__(
        self,
        *,
        client: cri.RuntimeClient,
        view: RuntimeView,
        node: NodeInfo,
        recorder: ev.EventRecorder,
        backoff: Backoff,
        image_backoff: Backoff,
        clock: Clock,
        root_dir: Path,
        objects: Callable[[], Sequence[Any]] = lambda: (),
    ) -> None:
        self.client = client
        self.view = view
        self.node = node
        self.recorder = recorder
        self.backoff = backoff
        self.image_backoff = image_backoff
        self.clock = clock
        self.root_dir = root_dir
        self.containers_log_dir = Path(node.pod_logs_dir).parent / "containers"
        self._pull_locks: dict[str, asyncio.Lock] = {}
        self.pulling: dict[str, str] = {}  # image -> pod key, while its pull runs (systemd STATUS= says so)
        self._warned_unimplemented: set[str] = set()
        self._messages = TerminationMessages(root_dir)
        # The manifest dir's other documents (ConfigMap/Secret for those volumes): the current snapshot's.
        self.objects = objects
        if node.seccomp_root == NodeInfo.__dataclass_fields__["seccomp_root"].default:
            # Localhost seccomp profiles live under <rootDir>/seccomp, as the kubelet's
            self.node = node = dataclasses.replace(node, seccomp_root=str(root_dir / "seccomp"))

    # ---- backoff helpers used by compute_pod_actions ----

    def backoff_left(self, pod: Pod, c: ContainerSpec, info: ContainerInfo) -> float:
        finished = info.finished_at / 1e9 if info.finished_at else self.clock.now()
        return self.backoff.in_backoff_since(backoff_key(pod, c), finished)

    def backoff_delay(self, pod: Pod, c: ContainerSpec) -> float:
        return self.backoff.delay(backoff_key(pod, c))

    # ---- sync ----

    async def sync_pod(self, pod: Pod, actions: PodActions, rt: PodRuntimeStatus) -> SyncResult:
        result = SyncResult(waiting=dict(actions.waiting))
        self._warn_unimplemented(pod)
        if actions.kill_pod:
            await self.kill_pod(pod, rt, stop_sandboxes=True)
            if not actions.create_sandbox:
                return result
        elif actions.containers_to_kill:
            await asyncio.gather(*(self.kill_container(pod, k, rt) for k in actions.containers_to_kill))

        sandbox_id, pod_ip = actions.sandbox_id, ""
        newest = rt.newest_sandbox
        if newest is not None and newest.id == sandbox_id:
            pod_ip = newest.ip
        host_resolv, loopback = self._host_resolv()
        sconf = compute_sandbox_config(pod, self.node, attempt=actions.attempt, host_resolv=host_resolv)
        if actions.create_sandbox:
            self._warn_loopback_dns(pod, loopback, actions.attempt)
            try:
                sandbox_id, pod_ip = await self._create_sandbox(pod, sconf, actions)
            except SandboxError as err:
                result.sandbox_error = (err.reason, err.message)
                result.retry_after = 10.0
                return result
        if pod.spec.host_network:
            pod_ip = self.node.host_ip

        for name in actions.init_containers_to_start:
            c = pod.container(name)
            assert c is not None
            await self._start_container(pod, c, rt, sandbox_id, sconf, pod_ip, init=True, result=result)
            if c.name in result.waiting and not c.is_sidecar:
                break  # a plain init container that could not start: the next one waits (a sidecar's failure does not stop the rest)
        for name in actions.containers_to_start:
            c = pod.container(name)
            assert c is not None
            await self._start_container(pod, c, rt, sandbox_id, sconf, pod_ip, init=False, result=result)
        return result

    async def refresh_volumes(self, pod: Pod) -> None:
        """Bring the pod's configMap/secret/downwardAPI/projected volumes up to date with their documents and the
        pod's values (every sync, as the kubelet remounts them; cheap when equal)."""
        if any(v.kind in ("configMap", "secret", "downwardAPI", "projected") for v in pod.spec.volumes):
            await asyncio.to_thread(functools.partial(
                refresh_projected_volumes, pod.spec.volumes, self.root_dir, pod.uid, tuple(self.objects()),
                fs_group=pod.spec.security_context.fs_group, namespace=pod.namespace, pod=pod,
                memory_capacity=self.node.memory_capacity))

    def termination_message(self, pod: Pod, c: ContainerSpec, info: ContainerInfo) -> str:
        """The terminated state's message of an exited container (StatusInputs.termination_message)."""
        if not info.exited:
            return ""
        return self._messages.get(uid=pod.uid, name=c.name, container_id=info.id, restart_count=info.restart_count,
                                  policy=c.termination_message_policy, exit_code=info.exit_code, log_path=info.log_path)

    def _warn_unimplemented(self, pod: Pod) -> None:
        """Fields nodelet accepts but does not act on: one Warning event per pod, never silence."""
        if pod.uid in self._warned_unimplemented:
            return
        self._warned_unimplemented.add(pod.uid)
        fields = compute_unimplemented_fields(pod.manifest)
        if fields:
            self.recorder.pod(pod, reason="UnsupportedFields", type=ev.WARNING,
                              message="nodelet ignores these fields of the pod spec: " + ", ".join(fields))

    def _host_resolv(self) -> tuple[api.DNSConfig, tuple[str, ...]]:
        """The host resolver config pods start from, without loopback nameservers (a pod cannot reach the host's
        127.0.0.53), and the loopback ones left out. resolvConf "" means none, as upstream."""
        if not self.node.host_resolv_conf:
            return api.DNSConfig(), ()
        try:
            conf = parse_resolv_conf(Path(self.node.host_resolv_conf).read_text())
        except OSError:
            return api.DNSConfig(), ()
        usable, loopback = split_loopback(conf.servers)
        return dataclasses.replace(conf, servers=usable), loopback

    def _warn_loopback_dns(self, pod: Pod, loopback: tuple[str, ...], attempt: int) -> None:
        """One Warning per new sandbox whose DNS would have named a loopback nameserver of the host file."""
        if not loopback:
            return
        full = dataclasses.replace(self._host_resolv()[0], servers=loopback)
        wanted = compute_sandbox_config(pod, self.node, attempt=attempt, host_resolv=full).dns
        if wanted is None or not set(loopback) & set(wanted.servers):
            return  # the pod's DNS does not come from the host file (ClusterFirst with clusterDNS, dnsPolicy None)
        from kubelet.node.resolvconf import SYSTEMD_RESOLVED_RESOLV_CONF

        self.recorder.pod(pod, reason="DNSConfigForming", type=ev.WARNING, message=(
            f"Nameserver {', '.join(loopback)} of {self.node.host_resolv_conf} is a loopback address the pod cannot "
            f"reach: left out of the pod's resolv.conf. On a systemd-resolved host set resolvConf: "
            f"{SYSTEMD_RESOLVED_RESOLV_CONF} (nodelet doctor checks this)"))

    async def _create_sandbox(self, pod: Pod, sconf: api.PodSandboxConfig, actions: PodActions) -> tuple[api.SandboxId, str]:
        if actions.attempt > 0 or actions.sandbox_reason not in ("", "no sandbox"):
            self.recorder.pod(pod, reason="SandboxChanged", message="Pod sandbox changed, it will be killed and re-created.")
        Path(sconf.log_directory).mkdir(parents=True, exist_ok=True)
        (self.root_dir / "pods" / pod.uid).mkdir(parents=True, exist_ok=True)
        try:
            sid = await self.client.run_pod_sandbox(sconf)
        except cri.CRIError as err:
            msg = f"Failed to create pod sandbox: {err.message}"
            self.recorder.pod(pod, reason="FailedCreatePodSandBox", message=msg, type=ev.WARNING)
            raise SandboxError("CreatePodSandboxError", msg) from err
        try:
            st = await self.client.pod_sandbox_status(sid)
        except cri.CRIError as err:
            raise SandboxError("CreatePodSandboxError", f"Failed to get pod sandbox status: {err.message}") from err
        if sconf.linux.resources is not None:
            await asyncio.to_thread(apply_pod_cgroup_limits, sconf.linux.cgroup_parent, sconf.linux.resources)
        log.info("sandbox created pod=%s uid=%s sandbox=%s attempt=%d ip=%s", pod.key, pod.uid, sid[:13], actions.attempt, st.ip)
        return sid, st.ip

    async def _ensure_image(self, pod: Pod, c: ContainerSpec, result: SyncResult) -> str | None:
        """The image ref to create with, or None (waiting reason recorded)."""
        policy = c.image_pull_policy
        image = c.image
        present = None
        try:
            present = await self.client.image_status(image)
        except cri.CRIError as err:
            result.waiting[c.name] = ("ErrImagePull", f"failed to inspect image {image!r}: {err.message}")
            return None
        if present is not None and policy != "Always":
            return image
        if policy == "Never":
            msg = f'Container image "{image}" is not present with pull policy of Never'
            result.waiting[c.name] = ("ErrImageNeverPull", msg)
            self.recorder.pod(pod, reason="ErrImageNeverPull", message=msg, type=ev.WARNING, container=c.name)
            return None
        key = f"{pod.uid}/{image}"
        left = self.image_backoff.in_backoff_since(key, self.image_backoff.clock.now()) if self.image_backoff.delay(key) else 0
        if left > 0:
            msg = f'Back-off pulling image "{image}"'
            result.waiting[c.name] = ("ImagePullBackOff", msg)
            self.recorder.pod(pod, reason="BackOff", message=msg, type=ev.NORMAL, container=c.name)
            result.retry_after = min(result.retry_after or left, left)
            return None
        lock = self._pull_locks.setdefault(image, asyncio.Lock())
        async with lock:
            self.recorder.pod(pod, reason="Pulling", message=f'Pulling image "{image}"', container=c.name)
            t0 = self.clock.monotonic()
            self.pulling[image] = pod.key
            try:
                await self.client.pull_image(image)
            except cri.CRIError as err:
                if present is not None:
                    # Always policy but the registry is unreachable and the image is local: use it, say so.
                    self.recorder.pod(pod, reason="Pulled", message=f'Pull of "{image}" failed ({err.message}); using the image already present on the node', container=c.name, type=ev.WARNING)
                    return image
                self.image_backoff.next(key, self.image_backoff.clock.now())
                msg = f'Failed to pull image "{image}": {err.message}'
                result.waiting[c.name] = ("ErrImagePull", msg)
                result.retry_after = min(result.retry_after or 10.0, self.image_backoff.delay(key) or 10.0)
                self.recorder.pod(pod, reason="Failed", message=msg, type=ev.WARNING, container=c.name)
                return None
            finally:
                self.pulling.pop(image, None)
            self.recorder.pod(pod, reason="Pulled", message=f'Successfully pulled image "{image}" in {self.clock.monotonic() - t0:.3f}s', container=c.name)
        return image

    def _next_restart_count(self, c: ContainerSpec, rt: PodRuntimeStatus, sconf: api.PodSandboxConfig) -> int:
        latest = rt.latest(c.name)
        if latest is not None:
            return latest.restart_count + 1
        # No instance left (GC'd, or a new sandbox): continue from the highest <n>.log, as the kubelet does.
        d = Path(sconf.log_directory) / c.name
        best = -1
        try:
            for f in d.iterdir():
                stem = f.name.split(".")[0]
                if stem.isdigit():
                    best = max(best, int(stem))
        except OSError:
            pass
        return best + 1

    async def _start_container(
        self,
        pod: Pod,
        c: ContainerSpec,
        rt: PodRuntimeStatus,
        sandbox_id: str,
        sconf: api.PodSandboxConfig,
        pod_ip: str,
        *,
        init: bool,
        result: SyncResult,
    ) -> None:
        latest = rt.latest(c.name)
        if latest is not None and latest.exited:
            # A restart of a container that ran: count it for CrashLoopBackOff, from its FinishedAt.
            finished = latest.finished_at / 1e9 if latest.finished_at else self.clock.now()
            # keyed by the exited container: an agent killed after saving this sees the same exit again on
            # restart and must not count it twice
            self.backoff.next(backoff_key(pod, c), finished, event_id=latest.id)
        image = await self._ensure_image(pod, c, result)
        if image is None:
            return
        restart_count = self._next_restart_count(c, rt, sconf)
        try:
            mounts = await self._prepare_container(pod, c, image, restart_count=restart_count, pod_ip=pod_ip)
        except VolumeError as err:
            # CreateContainerConfigError: nothing was created in the runtime (no partial container).
            self._container_failed(pod, c, result, "CreateContainerConfigError", err.message)
            return
        config = compute_container_config(pod, c, restart_count=restart_count, init=init, pod_ip=pod_ip, host_ip=self.node.host_ip, image=image, node=self.node, mounts=mounts)
        (Path(sconf.log_directory) / c.name).mkdir(parents=True, exist_ok=True)
        try:
            cid = await self.client.create_container(sandbox_id, config, sconf)
        except cri.CRIError as err:
            self._container_failed(pod, c, result, "CreateContainerError", err.message)
            return
        self.recorder.pod(pod, reason="Created", message=f"Created container {c.name}", container=c.name)
        try:
            await self.client.start_container(cid)
        except cri.CRIError as err:
            self._container_failed(pod, c, result, "RunContainerError", err.message)
            return
        self.recorder.pod(pod, reason="Started", message=f"Started container {c.name}", container=c.name)
        result.waiting.pop(c.name, None)
        self._link_log(pod, c.name, cid, Path(sconf.log_directory) / config.log_path)
        log.info("container started pod=%s container=%s id=%s restartCount=%d", pod.key, c.name, cid[:13], restart_count)
        post_start = c.lifecycle.post_start
        if post_start is not None:
            await self._post_start(pod, c, cid, post_start, pod_ip, result)

    def _container_failed(self, pod: Pod, c: ContainerSpec, result: SyncResult, reason: str, message: str) -> None:
        """One container could not start: its waiting reason, a Failed event, and a retry within 10 s."""
        result.waiting[c.name] = (reason, message)
        self.recorder.pod(pod, reason="Failed", message=f"Error: {message}", type=ev.WARNING, container=c.name)
        result.retry_after = min(result.retry_after or 10.0, 10.0)

    async def _prepare_container(self, pod: Pod, c: ContainerSpec, image: str, *, restart_count: int, pod_ip: str) -> tuple[api.Mount, ...]:
        """Everything a container needs on the node before CreateContainer: the runAsNonRoot check, the pod's
        volumes, the termination-message file; the mounts. VolumeError (→ CreateContainerConfigError) otherwise."""
        if effective_security_context(pod, c).run_as_non_root is True:
            try:
                img = await self.client.image_status(image)
            except cri.CRIError as err:
                raise VolumeError(f"cannot verify runAsNonRoot: image status of {image}: {err.message}") from None
            msg = verify_run_as_non_root(pod, c, img)
            if msg:
                raise VolumeError(msg)
        try:
            paths = await asyncio.to_thread(functools.partial(
                ensure_pod_volumes, pod.spec.volumes, self.root_dir, pod.uid, tuple(self.objects()),
                fs_group=pod.spec.security_context.fs_group, namespace=pod.namespace, pod=pod,
                memory_capacity=self.node.memory_capacity))
        except OSError as err:
            raise from_os_error(err, what="cannot set up volumes", cls=VolumeError) from None
        env = dict(compute_env(c, pod, pod_ip=pod_ip, host_ip=self.node.host_ip, memory_capacity=self.node.memory_capacity))
        mounts = list(await asyncio.to_thread(functools.partial(ensure_container_mounts, c.volume_mounts, paths, env, container=c.name, subpath_dir=subpaths_dir(self.root_dir, pod.uid),
            read_only=compute_read_only_volumes(pod.spec.volumes))))
        if pod_ip and not any(m.container_path == "/etc/hosts" for m in mounts):
            mounts.append(api.Mount(container_path="/etc/hosts", host_path=str(await asyncio.to_thread(self._hosts_file, pod, pod_ip))))
        if c.termination_message_path and not any(m.container_path == c.termination_message_path for m in mounts):
            try:
                host = termination_message_file(self.root_dir, pod.uid, c.name, restart_count, create=True)
            except OSError as err:
                raise from_os_error(err, what="cannot create the termination message file", cls=VolumeError) from None
            mounts.append(api.Mount(container_path=c.termination_message_path, host_path=str(host)))
        return tuple(mounts)

    def _hosts_file(self, pod: Pod, pod_ip: str) -> Path:
        node_hosts = ""
        if pod.spec.host_network:
            try:
                node_hosts = Path("/etc/hosts").read_text()
            except OSError:
                pass
        path = hosts_file_path(self.root_dir, pod.uid)
        try:
            ensure_hosts_file(path, render_hosts_file(pod.spec, pod_name=pod.name, namespace=pod.namespace, pod_ips=[pod_ip],
                                                      cluster_domain=self.node.cluster_domain, host_network=pod.spec.host_network,
                                                      node_hosts=node_hosts))
        except OSError as err:
            raise from_os_error(err, what="cannot write the pod's /etc/hosts", cls=VolumeError) from None
        return path

    async def _post_start(self, pod: Pod, c: ContainerSpec, cid: str, handler: LifecycleHandler, pod_ip: str, result: SyncResult) -> None:
        """Run postStart synchronously; a failure kills the container (FailedPostStartHook, PostStartHookError)."""
        try:
            await run_hook(handler, client=self.client, container_id=cid, pod_ip=pod_ip,
                           timeout=pod.spec.termination_grace_period_seconds or 30)
            return
        except HookError as err:
            msg = err.message
        except Exception as err:  # a hook must never take the sync down
            msg = f"{describe_hook(handler)} hook failed: {err}"
        log.info("postStart hook failed pod=%s container=%s err=%s", pod.key, c.name, msg)
        self.recorder.pod(pod, reason="FailedPostStartHook", message=msg, type=ev.WARNING, container=c.name)
        self.recorder.pod(pod, reason="Killing", message="FailedPostStartHook", container=c.name)
        try:
            await self.client.stop_container(cid, timeout=pod.spec.termination_grace_period_seconds)
        except cri.NotFound:
            pass
        result.waiting[c.name] = ("PostStartHookError", msg)

    def _link_log(self, pod: Pod, name: str, cid: str, target: Path) -> None:
        try:
            self.containers_log_dir.mkdir(parents=True, exist_ok=True)
            link = self.containers_log_dir / f"{pod.name}_{pod.namespace}_{name}-{cid}.log"
            tmp = link.with_suffix(".tmp")
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(target, tmp)
            os.replace(tmp, link)
        except OSError as err:
            log.warning("cannot link container log pod=%s container=%s err=%s", pod.key, name, err)

    # ---- kill ----

    def _grace(self, pod: Pod | None, k: KillAction | None, override: int | None = None) -> int:
        if override is not None:
            return override
        if k is not None and k.grace_seconds is not None:
            return k.grace_seconds
        return pod.spec.termination_grace_period_seconds if pod is not None else 30

    async def kill_container(self, pod: Pod | None, k: KillAction, rt: PodRuntimeStatus | None = None, *, grace: int | None = None,
                             ordering: TerminationOrdering | None = None) -> None:
        g = self._grace(pod, k, grace)
        try:
            if pod is not None:
                self.recorder.pod(pod, reason="Killing", message=f"Stopping container {k.name}" if not k.message else k.message, container=k.name)
                g = await self._pre_stop(pod, k, g, rt)
            if ordering is not None and g > 0:
                # preStop hooks of all containers run at once; a sidecar then waits for its turn within its grace
                g -= int(await ordering.wait_for_turn(k.name, g))
                g = max(MIN_GRACE, g)
            try:
                await self.client.stop_container(k.container_id, timeout=g)
            except cri.NotFound:
                pass
        finally:
            if ordering is not None:
                ordering.terminated(k.name)

    async def _pre_stop(self, pod: Pod, k: KillAction, grace: int, rt: PodRuntimeStatus | None) -> int:
        """Run the container's preStop hook within the grace period; the grace left for StopContainer (≥ 2 s)."""
        c = pod.container(k.name)
        handler = c.lifecycle.pre_stop if c is not None else None
        if c is None or handler is None or grace <= 0:
            return grace
        if rt is not None and not any(i.id == k.container_id and i.running for i in rt.containers):
            return grace
        pod_ip = ""
        if rt is not None and rt.newest_sandbox is not None:
            pod_ip = rt.newest_sandbox.ip
        if pod.spec.host_network:
            pod_ip = self.node.host_ip
        t0 = self.clock.monotonic()
        try:
            await asyncio.wait_for(run_hook(handler, client=self.client, container_id=k.container_id, pod_ip=pod_ip, timeout=grace), grace)
        except (asyncio.TimeoutError, TimeoutError):
            msg = f"PreStopHook failed: {describe_hook(handler)} hook did not complete within the grace period of {grace}s"
            self.recorder.pod(pod, reason="FailedPreStopHook", message=msg, type=ev.WARNING, container=k.name)
        except HookError as err:
            self.recorder.pod(pod, reason="FailedPreStopHook", message=err.message, type=ev.WARNING, container=k.name)
        except Exception as err:  # a hook must never stop the kill
            self.recorder.pod(pod, reason="FailedPreStopHook", message=str(err), type=ev.WARNING, container=k.name)
        spent = int(self.clock.monotonic() - t0)
        return max(MIN_GRACE, grace - spent)

    async def kill_pod(self, pod: Pod | None, rt: PodRuntimeStatus, *, stop_sandboxes: bool, grace: int | None = None) -> None:
        """Stop all running containers in parallel (each with the grace period), then the sandboxes. Sidecars are
        stopped after the regular containers, last declared first (the kubelet's terminationOrdering)."""
        kills = [KillAction(container_id=c.id, name=c.name, message="") for c in rt.running_containers]
        ordering = None
        if pod is not None and pod.spec.sidecars:
            ordering = TerminationOrdering(compute_termination_order(pod, [k.name for k in kills]), clock=self.clock)
        await asyncio.gather(*(self.kill_container(pod, k, rt, grace=grace, ordering=ordering) for k in kills))
        if stop_sandboxes:
            for s in rt.sandboxes:
                if s.ready:
                    try:
                        await self.client.stop_pod_sandbox(s.id)
                    except cri.NotFound:
                        pass

    async def remove_pod(self, uid: str, rt: PodRuntimeStatus, *, pod: Pod | None, grace: int | None = None) -> None:
        """Terminate and remove everything of a pod nodelet no longer wants: containers, sandboxes, log dir, pod dir."""
        await self.kill_pod(pod, rt, stop_sandboxes=True, grace=grace)
        for c in rt.containers:
            try:
                await self.client.remove_container(c.id)
            except cri.NotFound:
                pass
            self._unlink_logs(c.id)
        for s in rt.sandboxes:
            try:
                await self.client.remove_pod_sandbox(s.id)
            except cri.NotFound:
                pass
        self.backoff.forget(f"{uid}/")
        self._warned_unimplemented.discard(uid)
        await asyncio.to_thread(self._teardown_node_state, uid)
        if rt.name:
            log_dir = Path(self.node.pod_logs_dir) / f"{rt.namespace}_{rt.name}_{uid}"
            shutil.rmtree(log_dir, ignore_errors=True)
        shutil.rmtree(self.root_dir / "pods" / uid, ignore_errors=True)
        log.info("pod removed uid=%s pod=%s/%s", uid, rt.namespace, rt.name)

    def _teardown_node_state(self, uid: str) -> None:
        """Volumes (tmpfs unmounted before anything is deleted; hostPaths never touched) and the pod cgroups."""
        try:
            teardown_pod_volumes(self.root_dir, uid)
        except OSError as err:
            log.warning("cannot tear down volumes uid=%s err=%s", uid, err)
        remove_pod_cgroups(uid)

    def _unlink_logs(self, cid: str) -> None:
        try:
            for link in self.containers_log_dir.glob(f"*-{cid}.log"):
                link.unlink(missing_ok=True)
        except OSError:
            pass

    # ---- garbage collection ----

    async def gc_pod(self, pod: Pod, rt: PodRuntimeStatus) -> int:
        """Keep one dead instance per container name; remove not-ready sandboxes that are not the newest."""
        removed = 0
        seen: set[str] = set()
        for c in rt.containers:  # newest first
            if c.running or c.state == api.ContainerState.CREATED:
                seen.add(c.name)
                continue
            if c.name in seen:
                try:
                    await self.client.remove_container(c.id)
                    removed += 1
                except cri.NotFound:
                    pass
                self._unlink_logs(c.id)
            else:
                seen.add(c.name)
        live_sandboxes = {c.sandbox_id for c in rt.containers}
        for s in rt.sandboxes[1:]:
            if not s.ready and s.id not in live_sandboxes:
                try:
                    await self.client.remove_pod_sandbox(s.id)
                    removed += 1
                except cri.NotFound:
                    pass
        return removed

    def gc_log_dirs(self, keep_uids: set[str]) -> int:
        """Delete log dirs of pods nodelet created (root_dir/pods/<uid> marker) that are gone."""
        removed = 0
        pods_dir = self.root_dir / "pods"
        if not pods_dir.is_dir():
            return 0
        for marker in pods_dir.iterdir():
            uid = marker.name
            if uid in keep_uids:
                continue
            for d in Path(self.node.pod_logs_dir).glob(f"*_*_{uid}"):
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
            self._teardown_node_state(uid)
            shutil.rmtree(marker, ignore_errors=True)
        return removed


