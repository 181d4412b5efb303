"""Builders for unit tests of the agent: pods and runtime states without manifests or a runtime."""
from __future__ import annotations

from typing import Any

from cri.api import ContainerState
from kubelet.runtime_view import ContainerInfo, PodRuntimeStatus, SandboxInfo
from kubelet.types import ContainerSpec, Pod, PodSpec, PodUID

RUNNING, EXITED, CREATED, UNKNOWN = ContainerState.RUNNING, ContainerState.EXITED, ContainerState.CREATED, ContainerState.UNKNOWN


def container(name: str, *, image: str = "localhost/nodelet/busybox:1.35", hash: str = "h1", **kw: Any) -> ContainerSpec:
    return ContainerSpec(name=name, image=image, image_pull_policy=kw.pop("image_pull_policy", "IfNotPresent"), hash=hash, **kw)


def pod(
    *names: str,
    init: tuple[str, ...] = (),
    restart_policy: str = "Always",
    host_network: bool = False,
    uid: str = "uid1",
    name: str = "web-node1",
    namespace: str = "default",
    containers: tuple[ContainerSpec, ...] | None = None,
    manifest: dict[str, Any] | None = None,
) -> Pod:
    cs = containers if containers is not None else tuple(container(n) for n in names)
    return Pod(
        uid=PodUID(uid),
        name=name,
        namespace=namespace,
        labels={},
        annotations={},
        spec=PodSpec(containers=cs, init_containers=tuple(container(n) for n in init), restart_policy=restart_policy, host_network=host_network, node_name="node1"),
        source="/etc/kubernetes/manifests/web.yaml",
        manifest=manifest or {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "uid": uid}, "spec": {}},
    )


def sandbox(id: str = "s1", *, attempt: int = 0, ready: bool = True, ip: str = "10.244.0.2", host_network: bool = False) -> SandboxInfo:
    return SandboxInfo(id=id, attempt=attempt, ready=ready, created_at=attempt + 1, ip=ip, host_network=host_network)


def cinfo(
    name: str,
    state: ContainerState = RUNNING,
    *,
    id: str | None = None,
    restarts: int = 0,
    exit_code: int = 0,
    hash: str = "h1",
    init: bool = False,
    sandbox_id: str = "s1",
    finished_at: int = 0,
) -> ContainerInfo:
    return ContainerInfo(
        id=id or f"{name}-{restarts}",
        name=name,
        sandbox_id=sandbox_id,
        state=state,
        restart_count=restarts,
        hash=hash,
        init=init,
        created_at=restarts + 1,
        started_at=1_700_000_000_000_000_000 if state != CREATED else 0,
        finished_at=finished_at or (1_700_000_100_000_000_000 if state == EXITED else 0),
        exit_code=exit_code,
        reason=("Completed" if exit_code == 0 else "Error") if state == EXITED else "",
    )


def rt(*containers: ContainerInfo, sandboxes: tuple[SandboxInfo, ...] | None = None, uid: str = "uid1") -> PodRuntimeStatus:
    ordered = tuple(sorted(containers, key=lambda c: (c.restart_count, c.created_at), reverse=True))
    return PodRuntimeStatus(uid=uid, name="web-node1", namespace="default", sandboxes=sandboxes if sandboxes is not None else (sandbox(),), containers=ordered)
