"""What the runtime says about nodelet's pods, grouped by pod UID, and the relisting event generator (PLEG).

Everything is read from CRI labels and annotations (the kubelet's keys), so a restarted agent rebuilds the
same view from the runtime alone: restart counts, container hashes, attempts.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

import cri
from cri import api
from cri.api import ContainerId, SandboxId
from kubelet import types as t
from kubelet.types import PodUID
log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SandboxInfo:
    id: SandboxId
    attempt: int
    ready: bool
    created_at: int
    ip: str = ""
    host_network: bool = False


@dataclass(frozen=True, kw_only=True)
class ContainerInfo:
    id: ContainerId
    name: str
    sandbox_id: SandboxId
    state: api.ContainerState
    restart_count: int
    hash: str
    init: bool
    created_at: int
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    image: str = ""
    image_ref: str = ""
    log_path: str = ""
    grace_seconds: int | None = None  # io.kubernetes.pod.terminationGracePeriod, for pods the agent no longer has specs of

    @property
    def running(self) -> bool:
        return self.state == api.ContainerState.RUNNING

    @property
    def exited(self) -> bool:
        return self.state == api.ContainerState.EXITED


@dataclass(frozen=True, kw_only=True)
class PodRuntimeStatus:
    uid: PodUID
    name: str = ""
    namespace: str = ""
    sandboxes: tuple[SandboxInfo, ...] = ()  # newest first
    containers: tuple[ContainerInfo, ...] = ()  # newest first
    config_file: str = ""  # the manifest the pod came from (sandbox annotation io.nodelet.config.file)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def grace_seconds(self) -> int | None:
        return next((c.grace_seconds for c in self.containers if c.grace_seconds is not None), None)

    @property
    def newest_sandbox(self) -> SandboxInfo | None:
        return self.sandboxes[0] if self.sandboxes else None

    def latest(self, name: str) -> ContainerInfo | None:
        """The newest instance of container `name` (highest restart count, then newest)."""
        return next((c for c in self.containers if c.name == name), None)

    def instances(self, name: str) -> list[ContainerInfo]:
        return [c for c in self.containers if c.name == name]

    @property
    def running_containers(self) -> list[ContainerInfo]:
        return [c for c in self.containers if c.running]

    def fingerprint(self) -> tuple[Any, ...]:
        return (tuple((s.id, s.ready) for s in self.sandboxes), tuple((c.id, int(c.state)) for c in self.containers))




def _int_or_none(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _restart_count(c: api.Container | api.ContainerStatus) -> int:
    try:
        return int(c.annotations.get(t.ANN_RESTART_COUNT, c.attempt))
    except ValueError:
        return c.attempt


class RuntimeView:
    """Reads pods from the runtime. ContainerStatus answers are cached per (container id, state)."""

    def __init__(self, client: cri.RuntimeClient, *, node_name: str) -> None:
        self.client = client
        # Only what this agent created: sandboxes/containers labelled with its node name.
        self.selector = {t.LABEL_MANAGED_BY: node_name}
        self._status_cache: dict[tuple[str, int], api.ContainerStatus] = {}
        # A sandbox's IP and network mode never change while it is READY: one PodSandboxStatus per sandbox.
        self._sandbox_cache: dict[tuple[str, int], tuple[str, bool]] = {}

    async def _container_info(self, c: api.Container) -> ContainerInfo | None:
        key = (c.id, int(c.state))
        st = self._status_cache.get(key)
        if st is None:
            try:
                st = await self.client.container_status(c.id)
            except cri.NotFound:
                return None
            if st.state != c.state:
                key = (c.id, int(st.state))
            self._status_cache[key] = st
        return ContainerInfo(
            id=c.id,
            name=c.labels.get(t.LABEL_CONTAINER_NAME, c.name),
            sandbox_id=c.sandbox_id,
            state=st.state,
            restart_count=_restart_count(c),
            hash=c.annotations.get(t.ANN_CONTAINER_HASH, ""),
            init=c.annotations.get(t.ANN_CONTAINER_TYPE) == "init",
            created_at=st.created_at,
            started_at=st.started_at,
            finished_at=st.finished_at,
            exit_code=st.exit_code,
            reason=st.reason,
            message=st.message,
            image=c.image,
            image_ref=c.image_ref,
            log_path=st.log_path,
            grace_seconds=_int_or_none(c.annotations.get(t.ANN_GRACE_PERIOD)),
        )

    async def _sandbox_info(self, s: api.PodSandbox) -> SandboxInfo:
        ip, host = "", False
        if s.state == api.SandboxState.READY:
            cached = self._sandbox_cache.get((s.id, int(s.state)))
            if cached is not None:
                ip, host = cached
            else:
                try:
                    st = await self.client.pod_sandbox_status(s.id)
                    ip, host = st.ip, st.network_mode == api.NamespaceMode.NODE
                    self._sandbox_cache[(s.id, int(s.state))] = (ip, host)
                except cri.NotFound:
                    pass
        return SandboxInfo(id=s.id, attempt=s.metadata.attempt, ready=s.state == api.SandboxState.READY, created_at=s.created_at, ip=ip, host_network=host)

    async def _group(self, sandboxes: Iterable[api.PodSandbox], containers: Iterable[api.Container]) -> dict[str, PodRuntimeStatus]:
        by_uid: dict[str, tuple[list[api.PodSandbox], list[api.Container]]] = {}
        for s in sandboxes:
            by_uid.setdefault(s.labels.get(t.LABEL_POD_UID, s.metadata.uid), ([], []))[0].append(s)
        for c in containers:
            uid = c.labels.get(t.LABEL_POD_UID, "")
            if uid:
                by_uid.setdefault(uid, ([], []))[1].append(c)
        out = {}
        for uid, (ss, cs) in by_uid.items():
            ss.sort(key=lambda s: (s.metadata.attempt, s.created_at), reverse=True)
            sinfos = await asyncio.gather(*(self._sandbox_info(s) for s in ss))
            cinfos = [ci for ci in await asyncio.gather(*(self._container_info(c) for c in cs)) if ci is not None]
            cinfos.sort(key=lambda c: (c.restart_count, c.created_at), reverse=True)
            meta = ss[0].metadata if ss else None
            name = meta.name if meta else (cs[0].labels.get(t.LABEL_POD_NAME, "") if cs else "")
            ns = meta.namespace if meta else (cs[0].labels.get(t.LABEL_POD_NAMESPACE, "") if cs else "")
            cfile = ss[0].annotations.get(t.ANN_CONFIG_FILE, "") if ss else ""
            out[uid] = PodRuntimeStatus(uid=PodUID(uid), name=name, namespace=ns, sandboxes=tuple(sinfos), containers=tuple(cinfos), config_file=cfile)
        return out

    async def pod(self, uid: str) -> PodRuntimeStatus:
        sel = {t.LABEL_POD_UID: uid, **self.selector}
        sandboxes, containers = await asyncio.gather(
            self.client.list_pod_sandboxes(labels=sel), self.client.list_containers(labels=sel)
        )
        return (await self._group(sandboxes, containers)).get(uid, PodRuntimeStatus(uid=PodUID(uid)))

    async def all_pods(self) -> dict[str, PodRuntimeStatus]:
        sandboxes, containers = await asyncio.gather(
            self.client.list_pod_sandboxes(labels=self.selector), self.client.list_containers(labels=self.selector)
        )
        live = {c.id for c in containers}
        for key in [k for k in self._status_cache if k[0] not in live]:
            del self._status_cache[key]
        live_sandboxes = {(s.id, int(s.state)) for s in sandboxes}
        for skey in [k for k in self._sandbox_cache if k not in live_sandboxes]:
            del self._sandbox_cache[skey]
        return await self._group(sandboxes, containers)


@dataclass
class PLEG:
    """Relists every `period` and reports the UIDs whose sandboxes/containers changed (events say "look again")."""

    view: RuntimeView
    on_change: Callable[[set[str], dict[str, PodRuntimeStatus]], Awaitable[None] | None]
    period: float = 1.0
    last_relist: float = 0.0
    relist_seconds: float = 0.0
    healthy: bool = False
    error: str = ""
    _seen: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _snapshot: dict[str, PodRuntimeStatus] = field(default_factory=dict)

    @property
    def snapshot(self) -> dict[str, PodRuntimeStatus]:
        return self._snapshot

    async def relist(self) -> set[str]:
        t0 = time.monotonic()
        pods = await self.view.all_pods()
        self.relist_seconds = time.monotonic() - t0
        self.last_relist = time.monotonic()
        changed = {uid for uid, p in pods.items() if self._seen.get(uid) != p.fingerprint()}
        changed |= set(self._seen) - set(pods)
        self._seen = {uid: p.fingerprint() for uid, p in pods.items()}
        self._snapshot = pods
        return changed

    async def run(self) -> None:
        while True:
            try:
                changed = await self.relist()
                self.healthy, self.error = True, ""
                if changed:
                    r = self.on_change(changed, self._snapshot)
                    if r is not None:
                        await r
            except cri.CRIError as err:
                self.healthy, self.error = False, str(err)
                log.warning("pleg relist failed err=%s", err)
            await asyncio.sleep(self.period)
