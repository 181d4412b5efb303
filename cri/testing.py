"""A stateful fake CRI runtime: real gRPC on a temporary unix socket, for unit tests of everything above the client.

    async with FakeRuntime() as fake:
        client = RuntimeClient(fake.endpoint)
        fake.inject_error("RunPodSandbox", grpc.StatusCode.UNAVAILABLE)
        ...
        fake.exit_container(cid, exit_code=1)
        assert fake.calls_to("StartContainer") == 1

It keeps sandboxes, containers and images like a runtime would, logs every call, and lets a test inject an error
for the next N calls of a method. Behaviour that matters upstream (RUNNING only after Start, NotFound for unknown
ids, idempotent StopPodSandbox, name conflicts) is kept; everything real-backed is tested against containerd.
"""
from __future__ import annotations

import itertools
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import grpc
import grpc.aio

from cri._gen import api_pb2 as pb
from cri._gen import api_pb2_grpc as pb_grpc


def _now() -> int:
    return time.time_ns()


@dataclass
class FakeSandbox:
    id: str
    config: pb.PodSandboxConfig
    state: int = pb.SANDBOX_READY
    created_at: int = field(default_factory=_now)
    ip: str = ""


@dataclass
class FakeContainer:
    id: str
    sandbox_id: str
    config: pb.ContainerConfig
    state: int = pb.CONTAINER_CREATED
    created_at: int = field(default_factory=_now)
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""


ExecHandler = Callable[[str, list[str], int], tuple[int, bytes, bytes]]


class FakeRuntime(pb_grpc.RuntimeServiceServicer, pb_grpc.ImageServiceServicer):
    """Servicer for both CRI services plus the test-facing controls."""

    def __init__(self, *, images: tuple[str, ...] = ("localhost/nodelet/busybox:1.35", "localhost/nodelet/pause:3.9")) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="nodelet-fakecri-")
        self.socket = Path(self._tmp.name) / "cri.sock"
        self.endpoint = f"unix://{self.socket}"
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.images: dict[str, pb.Image] = {}
        self.calls: list[tuple[str, object]] = []
        self.pullable: set[str] = set()
        self.exec_handler: ExecHandler = lambda cid, cmd, timeout: (0, b"", b"")
        self.runtime_ready = True
        self.network_ready = True
        self._errors: dict[str, list[tuple[grpc.StatusCode, str]]] = {}
        self._ids = itertools.count(1)
        self._ips = itertools.count(2)
        self._server: grpc.aio.Server | None = None
        for name in images:
            self.add_image(name)

    # ---- controls ----

    async def start(self) -> "FakeRuntime":
        self._server = grpc.aio.server()
        pb_grpc.add_RuntimeServiceServicer_to_server(self, self._server)
        pb_grpc.add_ImageServiceServicer_to_server(self, self._server)
        self._server.add_insecure_port(self.endpoint)
        await self._server.start()
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
            self._server = None

    async def __aenter__(self) -> "FakeRuntime":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self._tmp.cleanup()

    def inject_error(self, method: str, code: grpc.StatusCode, message: str = "injected", *, times: int = 1) -> None:
        """The next `times` calls of `method` fail with `code`."""
        self._errors.setdefault(method, []).extend([(code, message)] * times)

    def calls_to(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    def add_image(self, name: str) -> None:
        digest = "sha256:" + format(abs(hash(name)), "064x")[:64]
        self.images[name] = pb.Image(id=digest, repo_tags=[name], size=1024)

    def exit_container(self, container_id: str, *, exit_code: int, reason: str = "") -> None:
        c = self.containers[container_id]
        c.state = pb.CONTAINER_EXITED
        c.exit_code = exit_code
        c.reason = reason or ("Completed" if exit_code == 0 else "Error")
        c.finished_at = _now()

    def running(self) -> list[FakeContainer]:
        return [c for c in self.containers.values() if c.state == pb.CONTAINER_RUNNING]

    # ---- plumbing ----

    async def _enter(self, method: str, request: object, context: grpc.aio.ServicerContext) -> None:
        self.calls.append((method, request))
        queue = self._errors.get(method)
        if queue:
            code, message = queue.pop(0)
            await context.abort(code, message)

    def _sandbox(self, sid: str) -> FakeSandbox:
        s = self.sandboxes.get(sid)
        if s is None:
            raise LookupError(f"an error occurred when try to find sandbox: not found: {sid}")
        return s

    def _container(self, cid: str) -> FakeContainer:
        c = self.containers.get(cid)
        if c is None:
            raise LookupError(f"an error occurred when try to find container {cid!r}: not found")
        return c

    async def _lookup(self, context: grpc.aio.ServicerContext, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except LookupError as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e.args[0]))
            raise  # abort() raises; never reached

    def _new_id(self) -> str:
        return format(next(self._ids), "064x")

    # ---- RuntimeService ----

    async def Version(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("Version", request, context)
        return pb.VersionResponse(version="0.1.0", runtime_name="fake", runtime_version="0.0.1", runtime_api_version="v1")

    async def Status(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("Status", request, context)
        conds = [
            pb.RuntimeCondition(type="RuntimeReady", status=self.runtime_ready),
            pb.RuntimeCondition(type="NetworkReady", status=self.network_ready, reason="" if self.network_ready else "NetworkPluginNotReady"),
        ]
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conds))

    async def RunPodSandbox(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("RunPodSandbox", request, context)
        m = request.config.metadata
        for s in self.sandboxes.values():
            sm = s.config.metadata
            if (sm.name, sm.namespace, sm.uid, sm.attempt) == (m.name, m.namespace, m.uid, m.attempt):
                await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"sandbox name {m.name}_{m.namespace}_{m.uid}_{m.attempt} is reserved")
        sid = self._new_id()
        host = request.config.linux.security_context.namespace_options.network == pb.NODE
        self.sandboxes[sid] = FakeSandbox(id=sid, config=request.config, ip="" if host else f"10.244.0.{next(self._ips)}")
        return pb.RunPodSandboxResponse(pod_sandbox_id=sid)

    async def StopPodSandbox(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("StopPodSandbox", request, context)
        s = await self._lookup(context, lambda: self._sandbox(request.pod_sandbox_id))
        s.state = pb.SANDBOX_NOTREADY  # type: ignore[attr-defined]
        for c in self.containers.values():
            if c.sandbox_id == request.pod_sandbox_id and c.state == pb.CONTAINER_RUNNING:
                self.exit_container(c.id, exit_code=137, reason="Error")
        return pb.StopPodSandboxResponse()

    async def RemovePodSandbox(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("RemovePodSandbox", request, context)
        self.sandboxes.pop(request.pod_sandbox_id, None)
        for cid in [c.id for c in self.containers.values() if c.sandbox_id == request.pod_sandbox_id]:
            del self.containers[cid]
        return pb.RemovePodSandboxResponse()

    def _sandbox_status(self, s: FakeSandbox) -> pb.PodSandboxStatus:
        ns = s.config.linux.security_context.namespace_options
        return pb.PodSandboxStatus(
            id=s.id,
            metadata=s.config.metadata,
            state=s.state,
            created_at=s.created_at,
            network=pb.PodSandboxNetworkStatus(ip=s.ip),
            linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=ns)),
            labels=s.config.labels,
            annotations=s.config.annotations,
        )

    async def PodSandboxStatus(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("PodSandboxStatus", request, context)
        s = await self._lookup(context, lambda: self._sandbox(request.pod_sandbox_id))
        return pb.PodSandboxStatusResponse(status=self._sandbox_status(s))

    async def ListPodSandbox(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ListPodSandbox", request, context)
        f = request.filter
        items = []
        for s in self.sandboxes.values():
            if f.id and s.id != f.id:
                continue
            if f.HasField("state") and s.state != f.state.state:
                continue
            if any(s.config.labels.get(k) != v for k, v in f.label_selector.items()):
                continue
            items.append(pb.PodSandbox(id=s.id, metadata=s.config.metadata, state=s.state, created_at=s.created_at, labels=s.config.labels, annotations=s.config.annotations))
        return pb.ListPodSandboxResponse(items=items)

    async def CreateContainer(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("CreateContainer", request, context)
        await self._lookup(context, lambda: self._sandbox(request.pod_sandbox_id))
        if request.config.image.image not in self.images:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"failed to get image {request.config.image.image!r}: not found")
        cid = self._new_id()
        self.containers[cid] = FakeContainer(id=cid, sandbox_id=request.pod_sandbox_id, config=request.config)
        return pb.CreateContainerResponse(container_id=cid)

    async def StartContainer(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("StartContainer", request, context)
        c = await self._lookup(context, lambda: self._container(request.container_id))
        if c.state != pb.CONTAINER_CREATED:  # type: ignore[attr-defined]
            await context.abort(grpc.StatusCode.UNKNOWN, "container is not in created state")
        c.state, c.started_at = pb.CONTAINER_RUNNING, _now()  # type: ignore[attr-defined]
        return pb.StartContainerResponse()

    async def StopContainer(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("StopContainer", request, context)
        c = await self._lookup(context, lambda: self._container(request.container_id))
        if c.state == pb.CONTAINER_RUNNING:  # type: ignore[attr-defined]
            self.exit_container(c.id, exit_code=137 if request.timeout == 0 else 143, reason="Error")  # type: ignore[attr-defined]
        return pb.StopContainerResponse()

    async def RemoveContainer(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("RemoveContainer", request, context)
        self.containers.pop(request.container_id, None)
        return pb.RemoveContainerResponse()

    def _container_msg(self, c: FakeContainer) -> pb.Container:
        return pb.Container(
            id=c.id,
            pod_sandbox_id=c.sandbox_id,
            metadata=c.config.metadata,
            image=c.config.image,
            image_ref=self.images.get(c.config.image.image, pb.Image()).id,
            state=c.state,
            created_at=c.created_at,
            labels=c.config.labels,
            annotations=c.config.annotations,
        )

    async def ListContainers(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ListContainers", request, context)
        f = request.filter
        out = []
        for c in self.containers.values():
            if f.id and c.id != f.id or f.pod_sandbox_id and c.sandbox_id != f.pod_sandbox_id:
                continue
            if f.HasField("state") and c.state != f.state.state:
                continue
            if any(c.config.labels.get(k) != v for k, v in f.label_selector.items()):
                continue
            out.append(self._container_msg(c))
        return pb.ListContainersResponse(containers=out)

    async def ContainerStatus(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ContainerStatus", request, context)
        c = await self._lookup(context, lambda: self._container(request.container_id))
        assert isinstance(c, FakeContainer)
        sandbox = self.sandboxes.get(c.sandbox_id)
        log_dir = sandbox.config.log_directory if sandbox else ""
        return pb.ContainerStatusResponse(
            status=pb.ContainerStatus(
                id=c.id,
                metadata=c.config.metadata,
                state=c.state,
                created_at=c.created_at,
                started_at=c.started_at,
                finished_at=c.finished_at,
                exit_code=c.exit_code,
                image=c.config.image,
                image_ref=self.images.get(c.config.image.image, pb.Image()).id,
                reason=c.reason,
                message=c.message,
                labels=c.config.labels,
                annotations=c.config.annotations,
                log_path=f"{log_dir}/{c.config.log_path}" if log_dir else c.config.log_path,
            )
        )

    async def ExecSync(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ExecSync", request, context)
        c = await self._lookup(context, lambda: self._container(request.container_id))
        if c.state != pb.CONTAINER_RUNNING:  # type: ignore[attr-defined]
            await context.abort(grpc.StatusCode.UNKNOWN, "container is not running")
        code, out, err = self.exec_handler(request.container_id, list(request.cmd), request.timeout)
        return pb.ExecSyncResponse(exit_code=code, stdout=out, stderr=err)

    async def ReopenContainerLog(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ReopenContainerLog", request, context)
        await self._lookup(context, lambda: self._container(request.container_id))
        return pb.ReopenContainerLogResponse()

    async def ContainerStats(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ContainerStats", request, context)
        c = await self._lookup(context, lambda: self._container(request.container_id))
        return pb.ContainerStatsResponse(stats=self._stats(c))

    def _stats(self, c: FakeContainer) -> pb.ContainerStats:
        ts = _now()
        return pb.ContainerStats(
            attributes=pb.ContainerAttributes(id=c.id, metadata=c.config.metadata, labels=c.config.labels),
            cpu=pb.CpuUsage(timestamp=ts, usage_core_nano_seconds=pb.UInt64Value(value=1_000_000)),
            memory=pb.MemoryUsage(timestamp=ts, working_set_bytes=pb.UInt64Value(value=4 << 20)),
        )

    async def ListContainerStats(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ListContainerStats", request, context)
        f = request.filter
        stats = [self._stats(c) for c in self.containers.values() if not f.pod_sandbox_id or c.sandbox_id == f.pod_sandbox_id]
        return pb.ListContainerStatsResponse(stats=stats)

    # ---- ImageService ----

    async def ListImages(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ListImages", request, context)
        return pb.ListImagesResponse(images=list(self.images.values()))

    async def ImageStatus(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ImageStatus", request, context)
        img = self.images.get(request.image.image)
        return pb.ImageStatusResponse(image=img) if img else pb.ImageStatusResponse()

    async def PullImage(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("PullImage", request, context)
        name = request.image.image
        if name not in self.pullable and name not in self.images:
            await context.abort(grpc.StatusCode.UNKNOWN, f'failed to pull and unpack image "{name}": failed to resolve reference: not found')
        self.add_image(name)
        return pb.PullImageResponse(image_ref=self.images[name].id)

    async def RemoveImage(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("RemoveImage", request, context)
        self.images.pop(request.image.image, None)
        return pb.RemoveImageResponse()

    async def ImageFsInfo(self, request, context):  # type: ignore[no-untyped-def]
        await self._enter("ImageFsInfo", request, context)
        fs = pb.FilesystemUsage(timestamp=_now(), fs_id=pb.FilesystemIdentifier(mountpoint="/fake"), used_bytes=pb.UInt64Value(value=1 << 20))
        return pb.ImageFsInfoResponse(image_filesystems=[fs])
