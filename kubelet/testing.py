"""Builders for unit tests of the agent: pods and runtime states without manifests or a runtime."""
from __future__ import annotations

from typing import Any

from cri.api import ContainerId, ContainerState, SandboxId
from kubelet.kuberuntime.view import ContainerInfo, PodRuntimeStatus, SandboxInfo
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
    return SandboxInfo(id=SandboxId(id), attempt=attempt, ready=ready, created_at=attempt + 1, ip=ip, host_network=host_network)


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
        id=ContainerId(id or f"{name}-{restarts}"),
        name=name,
        sandbox_id=SandboxId(sandbox_id),
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
    return PodRuntimeStatus(uid=PodUID(uid), name="web-node1", namespace="default", sandboxes=sandboxes if sandboxes is not None else (sandbox(),), containers=ordered)


# ---- the whole daemon as a subprocess, for end-to-end tests ----

import json as _json  # noqa: E402
import os as _os  # noqa: E402
import signal as _signal  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import sys as _sys  # noqa: E402
import time as _time  # noqa: E402
from pathlib import Path as _Path  # noqa: E402


def wait_until(predicate: Any, *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll predicate() until it returns something truthy; AssertionError with the last value after timeout."""
    deadline = _time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except Exception as err:  # noqa: BLE001 - a transient failure is "not yet"
            last = err
        if last and not isinstance(last, Exception):
            return last
        if _time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s; last: {last!r}")
        _time.sleep(interval)


class AgentProcess:
    """`nodelet run` in a subprocess with its own manifest dir, state dirs and API socket under `base`."""

    def __init__(self, base: _Path, *, endpoint: str, node_name: str = "node1", extra: dict[str, Any] | None = None, runtime: Any = None,
                 netns: str | None = None) -> None:
        """With `runtime` (a PrivateContainerd), the agent configures pod networking in that runtime's CNI dirs.
        With `netns`, the agent runs inside that named network namespace (nsenter --net: unlike `ip netns exec`
        no private mount namespace, so it sees the pod netns mounts its runtime makes)."""
        self.netns = netns
        self.base = base
        self.manifests = base / "manifests"
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.socket = str(base / "nodelet.sock")
        self.log_path = base / "agent.log"
        self.config_path = base / "config.yaml"
        config: dict[str, Any] = {
            "staticPodPath": str(self.manifests),
            "containerRuntimeEndpoint": endpoint,
            "nodeName": node_name,
            "podLogsDir": str(base / "log" / "pods"),
            "rootDir": str(base / "root"),
            "apiSocket": self.socket,
            "healthzPort": 0,
            "metricsBindAddress": "",  # off: several agents run at once in some tests (a test turns it on)
            "apiPort": 0,  # the Kubernetes API only where a test asks for it (a free port)
            "adminKubeconfig": str(base / "admin.conf"),
            "fileCheckFrequency": "20s",
            "proxyMode": "none",
        }
        if runtime is not None:
            from kubelet.node.runtime.testing import TEST_BRIDGE, TEST_POD_SUBNET

            config |= {"podCIDR": TEST_POD_SUBNET, "cniBridge": TEST_BRIDGE, "cniConfDir": str(runtime.layout.cni_conf_dir), "cniBinDir": str(runtime.cni_bin_dir)}
        config |= extra or {}
        self.config = config
        self.config_path.write_text(_json.dumps(config))
        self.proc: _subprocess.Popen[bytes] | None = None

    def start(self) -> "AgentProcess":
        logf = open(self.log_path, "ab")
        self.proc = _subprocess.Popen(
            [*(["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []), _sys.executable, "-m", "kubelet.cli.main", "run", "--config", str(self.config_path)],
            stdout=logf,
            stderr=_subprocess.STDOUT,
            start_new_session=True,
        )
        logf.close()
        wait_until(lambda: self._api_up(), timeout=30, what="agent API socket")
        return self

    def _api_up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log()}")
        try:
            self.get("/healthz")
            return True
        except Exception:  # noqa: BLE001
            return False

    def get(self, path: str) -> Any:
        from kubelet.server.apiclient import APIClient

        return APIClient(self.socket, timeout=10).get(path)

    def pods(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/pods")["items"]

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return next((p for p in self.pods() if p["metadata"]["name"] == name and p["metadata"]["namespace"] == namespace), None)

    def events(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/events")["items"]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def kill9(self) -> None:
        assert self.proc is not None
        _os.killpg(self.proc.pid, _signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(_signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except _subprocess.TimeoutExpired:
            _os.killpg(self.proc.pid, _signal.SIGKILL)
            return self.proc.wait(timeout=10)

    def write(self, name: str, text: str) -> _Path:
        """Write a manifest atomically (as editors and config management do: temp file + rename)."""
        from cni.fsutil import write_atomic

        path = self.manifests / name
        write_atomic(path, text, fsync=False)
        return path


BUSYBOX = "localhost/nodelet/busybox:1.35"


def runtime_pods(endpoint: str, node: str) -> dict[str, Any]:
    """{uid: {"sandboxes": [...], "containers": [ContainerStatus...]}} of one node's pods, straight from CRI."""
    import asyncio

    import cri
    from kubelet.types import LABEL_MANAGED_BY, LABEL_POD_UID

    async def go() -> dict[str, Any]:
        async with cri.RuntimeClient(endpoint) as c:
            sel = {LABEL_MANAGED_BY: node}
            out: dict[str, Any] = {}
            for s in await c.list_pod_sandboxes(labels=sel):
                out.setdefault(s.labels[LABEL_POD_UID], {"sandboxes": [], "containers": []})["sandboxes"].append(s)
            for ct in await c.list_containers(labels=sel):
                try:
                    st = await c.container_status(ct.id)
                except cri.NotFound:
                    continue
                out.setdefault(ct.labels[LABEL_POD_UID], {"sandboxes": [], "containers": []})["containers"].append(st)
            return out

    return asyncio.run(go())


def exec_in(endpoint: str, cid: str, cmd: list[str], timeout: float = 10) -> Any:
    import asyncio

    import cri

    async def go() -> Any:
        async with cri.RuntimeClient(endpoint) as c:
            return await c.exec_sync(cid, cmd, timeout=timeout)

    return asyncio.run(go())


def cstatus(pod: dict[str, Any], name: str) -> dict[str, Any]:
    """A container's status (regular or init) from a v1 Pod object."""
    return next(c for c in pod["status"].get("containerStatuses", []) + pod["status"].get("initContainerStatuses", []) if c["name"] == name)
