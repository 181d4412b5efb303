"""Async CRI v1 client (RuntimeService + ImageService) over grpc.aio.

Every call has a deadline; gRPC errors become `cri.errors` types naming the endpoint and RPC; read-only and
idempotent calls ride out a runtime restart by retrying UNAVAILABLE until their deadline (the channel itself
reconnects with a short backoff). Results are `cri.api` dataclasses, never raw protobuf.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Mapping, Sequence

import grpc
import grpc.aio

from cri import api, convert
from cri._gen import api_pb2 as pb
from cri._gen import api_pb2_grpc as pb_grpc
from cri.errors import CRIError, Unavailable, translate

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "unix:///run/containerd/containerd.sock"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # kubelet's limit
CRI_VERSION = "v1"

_CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # A restarted runtime must be picked up within a fraction of a second, not gRPC's default 1 s → 120 s backoff.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_http_proxy", 0),
    ("grpc.enable_retries", 0),
)


def _restarting(err: grpc.aio.AioRpcError) -> bool:
    """The runtime is down or still starting: containerd's CRI answers "server is not initialized yet" for a moment
    after its socket is back."""
    if err.code() == grpc.StatusCode.UNAVAILABLE:
        return True
    return err.code() == grpc.StatusCode.UNKNOWN and "not initialized yet" in (err.details() or "")


def normalize_endpoint(endpoint: str) -> str:
    """`/run/x.sock` and `unix:/run/x.sock` → `unix:///run/x.sock`; tcp endpoints are left as host:port."""
    if endpoint.startswith("unix://"):
        return endpoint
    if endpoint.startswith("unix:"):
        return "unix://" + endpoint[len("unix:") :]
    if endpoint.startswith("/"):
        return "unix://" + endpoint
    if endpoint.startswith("tcp://"):
        return endpoint[len("tcp://") :]
    return endpoint


class RuntimeClient:
    """One connection to a CRI runtime, serving both RuntimeService and ImageService calls."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout: float = 10.0,
        mutate_timeout: float = 120.0,
        pull_timeout: float = 300.0,
        observer: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        self.endpoint = normalize_endpoint(endpoint)
        self.timeout = timeout
        self.mutate_timeout = mutate_timeout
        self.pull_timeout = pull_timeout
        self._channel: grpc.aio.Channel | None = None
        self._runtime: pb_grpc.RuntimeServiceStub | None = None
        self._images: pb_grpc.ImageServiceStub | None = None
        self.errors_total: dict[str, int] = {}
        # Called after every RPC with (rpc, seconds, failed): the agent's runtime-operation metrics.
        self.observer = observer

    # ---- plumbing ----

    def _stubs(self) -> tuple[pb_grpc.RuntimeServiceStub, pb_grpc.ImageServiceStub]:
        if self._runtime is None or self._images is None:
            self._channel = grpc.aio.insecure_channel(self.endpoint, options=_CHANNEL_OPTIONS)
            self._runtime = pb_grpc.RuntimeServiceStub(self._channel)
            self._images = pb_grpc.ImageServiceStub(self._channel)
        return self._runtime, self._images

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel = self._runtime = self._images = None

    async def __aenter__(self) -> "RuntimeClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, rpc: str, request: Any, *, image: bool = False, timeout: float, retry: bool) -> Any:
        observer = self.observer
        if observer is None:
            return await self._call_inner(rpc, request, image=image, timeout=timeout, retry=retry)
        t0 = time.perf_counter()
        try:
            result = await self._call_inner(rpc, request, image=image, timeout=timeout, retry=retry)
        except CRIError:
            observer(rpc, time.perf_counter() - t0, True)
            raise
        observer(rpc, time.perf_counter() - t0, False)
        return result

    async def _call_inner(self, rpc: str, request: Any, *, image: bool, timeout: float, retry: bool) -> Any:
        runtime, images = self._runtime, self._images
        if runtime is None or images is None:
            runtime, images = self._stubs()
        method = getattr(images if image else runtime, rpc)
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            if not (retry and _restarting(err)):
                raise self._error(err, rpc) from None
            first = err
        # The runtime is restarting (or not up yet): retry an idempotent call until its deadline.
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._error(first, rpc) from None
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.5)
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._error(first, rpc) from None
            try:
                return await method(request, timeout=left)
            except grpc.aio.AioRpcError as err:
                if not _restarting(err):
                    raise self._error(err, rpc) from None

    def _error(self, err: grpc.aio.AioRpcError, rpc: str) -> CRIError:
        self.errors_total[rpc] = self.errors_total.get(rpc, 0) + 1
        return translate(err, endpoint=self.endpoint, rpc=rpc)

    # ---- runtime ----

    async def version(self) -> api.Version:
        r = await self._call("Version", pb.VersionRequest(version=CRI_VERSION), timeout=self.timeout, retry=True)
        return api.Version(
            version=r.version,
            runtime_name=r.runtime_name,
            runtime_version=r.runtime_version,
            runtime_api_version=r.runtime_api_version,
        )

    async def status(self, *, verbose: bool = False) -> api.RuntimeStatus:
        r = await self._call("Status", pb.StatusRequest(verbose=verbose), timeout=self.timeout, retry=True)
        return api.RuntimeStatus(
            conditions=tuple(
                api.RuntimeCondition(type=c.type, status=c.status, reason=c.reason, message=c.message)
                for c in r.status.conditions
            ),
            info=dict(r.info),
        )

    async def runtime_config(self) -> str:
        """The runtime's cgroup driver ("systemd" or "cgroupfs"); raises Unimplemented on containerd 1.6."""
        r = await self._call("RuntimeConfig", pb.RuntimeConfigRequest(), timeout=self.timeout, retry=True)
        return "systemd" if r.linux.cgroup_driver == pb.SYSTEMD else "cgroupfs"

    async def update_runtime_config(self, *, pod_cidr: str) -> None:
        req = pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=pod_cidr)))
        await self._call("UpdateRuntimeConfig", req, timeout=self.timeout, retry=True)

    # ---- sandboxes ----

    async def run_pod_sandbox(self, config: api.PodSandboxConfig, *, runtime_handler: str = "") -> api.SandboxId:
        req = pb.RunPodSandboxRequest(config=convert.to_sandbox_config(config), runtime_handler=runtime_handler)
        r = await self._call("RunPodSandbox", req, timeout=self.mutate_timeout, retry=False)
        return api.SandboxId(r.pod_sandbox_id)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        req = pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)
        await self._call("StopPodSandbox", req, timeout=self.mutate_timeout, retry=True)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        req = pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)
        await self._call("RemovePodSandbox", req, timeout=self.mutate_timeout, retry=True)

    async def pod_sandbox_status(self, sandbox_id: str, *, verbose: bool = False) -> api.PodSandboxStatus:
        req = pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose)
        r = await self._call("PodSandboxStatus", req, timeout=self.timeout, retry=True)
        return convert.from_sandbox_status(r.status, r.info)

    async def list_pod_sandboxes(
        self,
        *,
        id: str = "",
        state: api.SandboxState | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[api.PodSandbox]:
        f = pb.PodSandboxFilter(id=id, label_selector=dict(labels or {}))
        if state is not None:
            f.state.state = int(state)
        r = await self._call("ListPodSandbox", pb.ListPodSandboxRequest(filter=f), timeout=self.timeout, retry=True)
        return [convert.from_sandbox(s) for s in r.items]

    # ---- containers ----

    async def create_container(
        self, sandbox_id: str, config: api.ContainerConfig, sandbox_config: api.PodSandboxConfig
    ) -> api.ContainerId:
        req = pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id,
            config=convert.to_container_config(config),
            sandbox_config=convert.to_sandbox_config(sandbox_config),
        )
        r = await self._call("CreateContainer", req, timeout=self.mutate_timeout, retry=False)
        return api.ContainerId(r.container_id)

    async def start_container(self, container_id: str) -> None:
        req = pb.StartContainerRequest(container_id=container_id)
        await self._call("StartContainer", req, timeout=self.mutate_timeout, retry=False)

    async def stop_container(self, container_id: str, *, timeout: int) -> None:
        """Stop with a grace period in seconds (SIGTERM, then SIGKILL after `timeout`; 0 = kill now)."""
        req = pb.StopContainerRequest(container_id=container_id, timeout=timeout)
        await self._call("StopContainer", req, timeout=self.mutate_timeout + timeout, retry=True)

    async def remove_container(self, container_id: str) -> None:
        req = pb.RemoveContainerRequest(container_id=container_id)
        await self._call("RemoveContainer", req, timeout=self.mutate_timeout, retry=True)

    async def list_containers(
        self,
        *,
        id: str = "",
        sandbox_id: str = "",
        state: api.ContainerState | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[api.Container]:
        f = pb.ContainerFilter(id=id, pod_sandbox_id=sandbox_id, label_selector=dict(labels or {}))
        if state is not None:
            f.state.state = int(state)
        r = await self._call("ListContainers", pb.ListContainersRequest(filter=f), timeout=self.timeout, retry=True)
        return [convert.from_container(c) for c in r.containers]

    async def container_status(self, container_id: str, *, verbose: bool = False) -> api.ContainerStatus:
        req = pb.ContainerStatusRequest(container_id=container_id, verbose=verbose)
        r = await self._call("ContainerStatus", req, timeout=self.timeout, retry=True)
        return convert.from_container_status(r.status, r.info)

    async def update_container_resources(self, container_id: str, resources: api.LinuxResources) -> None:
        req = pb.UpdateContainerResourcesRequest(container_id=container_id, linux=convert.to_resources(resources))
        await self._call("UpdateContainerResources", req, timeout=self.mutate_timeout, retry=True)

    async def reopen_container_log(self, container_id: str) -> None:
        req = pb.ReopenContainerLogRequest(container_id=container_id)
        await self._call("ReopenContainerLog", req, timeout=self.timeout, retry=True)

    async def exec_sync(self, container_id: str, cmd: Sequence[str], *, timeout: float = 0) -> api.ExecResult:
        """Run cmd in the container; timeout in seconds is enforced by the runtime (0 = none) and by our deadline."""
        secs = int(timeout) if timeout and timeout == int(timeout) else (int(timeout) + 1 if timeout else 0)
        req = pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=secs)
        deadline = (timeout + 2.0) if timeout else self.mutate_timeout
        r = await self._call("ExecSync", req, timeout=deadline, retry=False)
        return api.ExecResult(exit_code=r.exit_code, stdout=r.stdout, stderr=r.stderr)

    async def exec_url(
        self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True
    ) -> str:
        """The streaming URL for an interactive Exec (the runtime serves it)."""
        req = pb.ExecRequest(container_id=container_id, cmd=list(cmd), tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty)
        r = await self._call("Exec", req, timeout=self.timeout, retry=False)
        return str(r.url)

    async def attach_url(self, container_id: str, *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True) -> str:
        """The streaming URL for attaching to the container's main process."""
        req = pb.AttachRequest(container_id=container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty)
        r = await self._call("Attach", req, timeout=self.timeout, retry=False)
        return str(r.url)

    async def port_forward_url(self, sandbox_id: str, ports: Sequence[int] = ()) -> str:
        """The streaming URL for forwarding TCP ports into the sandbox's network namespace."""
        req = pb.PortForwardRequest(pod_sandbox_id=sandbox_id, port=list(ports))
        r = await self._call("PortForward", req, timeout=self.timeout, retry=False)
        return str(r.url)

    # ---- stats ----

    async def container_stats(self, container_id: str) -> api.ContainerStats:
        r = await self._call(
            "ContainerStats", pb.ContainerStatsRequest(container_id=container_id), timeout=self.timeout, retry=True
        )
        return convert.from_container_stats(r.stats)

    async def list_container_stats(
        self, *, sandbox_id: str = "", labels: Mapping[str, str] | None = None
    ) -> list[api.ContainerStats]:
        f = pb.ContainerStatsFilter(pod_sandbox_id=sandbox_id, label_selector=dict(labels or {}))
        r = await self._call(
            "ListContainerStats", pb.ListContainerStatsRequest(filter=f), timeout=self.timeout, retry=True
        )
        return [convert.from_container_stats(s) for s in r.stats]

    # ---- images ----

    async def list_images(self) -> list[api.Image]:
        r = await self._call("ListImages", pb.ListImagesRequest(), image=True, timeout=self.timeout, retry=True)
        return [convert.from_image(i) for i in r.images]

    async def image_status(self, image: str) -> api.Image | None:
        """The image if present locally, else None."""
        req = pb.ImageStatusRequest(image=pb.ImageSpec(image=image))
        r = await self._call("ImageStatus", req, image=True, timeout=self.timeout, retry=True)
        return convert.from_image(r.image) if r.HasField("image") and r.image.id else None

    async def pull_image(self, image: str, *, sandbox_config: api.PodSandboxConfig | None = None) -> str:
        req = pb.PullImageRequest(
            image=pb.ImageSpec(image=image),
            sandbox_config=convert.to_sandbox_config(sandbox_config) if sandbox_config else None,
        )
        r = await self._call("PullImage", req, image=True, timeout=self.pull_timeout, retry=False)
        return str(r.image_ref)

    async def remove_image(self, image: str) -> None:
        req = pb.RemoveImageRequest(image=pb.ImageSpec(image=image))
        await self._call("RemoveImage", req, image=True, timeout=self.mutate_timeout, retry=True)

    async def image_fs_info(self) -> list[api.FilesystemUsage]:
        r = await self._call("ImageFsInfo", pb.ImageFsInfoRequest(), image=True, timeout=self.timeout, retry=True)
        return [convert.from_fs_usage(f) for f in r.image_filesystems]


async def wait_until_ready(client: RuntimeClient, *, timeout: float = 30.0) -> api.Version:
    """Poll Version until the runtime answers or `timeout` passes (then the last Unavailable is raised)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.version()
        except Unavailable:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.1)
