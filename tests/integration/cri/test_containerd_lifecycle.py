"""The CRI client against a real containerd: a whole pod lifecycle, logs, exec, grace periods, restarts."""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import pytest

import cri
from cri import api
from kubelet.node.runtime.images import BUSYBOX_IMAGE

pytestmark = [pytest.mark.root, pytest.mark.containerd]

LOG_LINE = re.compile(r"^(\S+) (stdout|stderr) ([PF]) (.*)$")


def sandbox_config(tmp_path: Path, name: str) -> api.PodSandboxConfig:
    uid = uuid.uuid4().hex
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace="cri-test", attempt=0),
        hostname=name,
        log_directory=str(tmp_path / f"cri-test_{name}_{uid}"),
        labels={"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "cri-test", "io.kubernetes.pod.uid": uid},
    )


async def wait_for(predicate, *, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


async def test_full_pod_lifecycle(containerd, tmp_path: Path) -> None:
    async with cri.RuntimeClient(containerd.endpoint) as client:
        version = await client.version()
        assert version.runtime_name == "containerd"
        assert version.runtime_api_version == "v1"
        status = await client.status()
        assert status.runtime_ready and status.network_ready, status

        sconf = sandbox_config(tmp_path, "lifecycle")
        Path(sconf.log_directory).mkdir(parents=True)
        sid = await client.run_pod_sandbox(sconf)
        sstatus = await client.pod_sandbox_status(sid)
        assert sstatus.state == api.SandboxState.READY
        assert sstatus.ip.startswith("10.244.250."), sstatus.ip
        assert sstatus.metadata.uid == sconf.metadata.uid

        # Images are local (no registry here): ImageStatus finds ours; PullImage of a missing one is a typed error.
        image = await client.image_status(BUSYBOX_IMAGE)
        assert image is not None and BUSYBOX_IMAGE in image.repo_tags
        assert await client.image_status("localhost/nodelet/absent:0") is None
        with pytest.raises(cri.CRIError) as pull_err:
            await client.pull_image("localhost/nodelet/absent:0")
        assert pull_err.value.rpc == "PullImage" and "localhost/nodelet/absent:0" in str(pull_err.value)
        assert BUSYBOX_IMAGE in [t for i in await client.list_images() for t in i.repo_tags]
        assert (await client.image_fs_info())[0].mountpoint

        cconf = api.ContainerConfig(
            name="main",
            image=BUSYBOX_IMAGE,
            command=("sh", "-c"),
            args=('echo hello from $WHO; trap "echo got TERM; exit 3" TERM; while :; do sleep 0.1; done',),
            envs=(("WHO", "nodelet"),),
            log_path="main/0.log",
            labels={"io.kubernetes.container.name": "main"},
        )
        cid = await client.create_container(sid, cconf, sconf)
        cstatus = await client.container_status(cid)
        assert cstatus.state == api.ContainerState.CREATED
        await client.start_container(cid)

        async def running():  # type: ignore[no-untyped-def]
            s = await client.container_status(cid)
            return s if s.state == api.ContainerState.RUNNING else None

        cstatus = await wait_for(running)
        assert cstatus.started_at > 0 and cstatus.name == "main"
        listed = await client.list_containers(sandbox_id=sid)
        assert [c.id for c in listed] == [cid]
        assert (await client.list_containers(labels={"io.kubernetes.container.name": "main"}, sandbox_id=sid))[0].id == cid

        log_file = Path(sconf.log_directory) / "main" / "0.log"

        async def logged():  # type: ignore[no-untyped-def]
            return log_file.exists() and "hello from nodelet" in log_file.read_text()

        await wait_for(logged)
        first = log_file.read_text().splitlines()[0]
        m = LOG_LINE.match(first)
        assert m, first
        assert m.group(2) == "stdout" and m.group(3) == "F" and m.group(4) == "hello from nodelet"

        result = await client.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=5)
        assert (result.exit_code, result.stdout, result.stderr) == (7, b"out\n", b"err\n")

        stats = await client.container_stats(cid)
        assert stats.id == cid

        # The grace period is honoured: the TERM trap runs and the container exits 3, well before the timeout.
        t0 = time.monotonic()
        await client.stop_container(cid, timeout=10)
        assert time.monotonic() - t0 < 8
        cstatus = await client.container_status(cid)
        assert cstatus.state == api.ContainerState.EXITED and cstatus.exit_code == 3
        assert "got TERM" in log_file.read_text()

        await client.remove_container(cid)
        with pytest.raises(cri.NotFound) as err:
            await client.container_status(cid)
        assert "ContainerStatus" in str(err.value) and containerd.endpoint in str(err.value)

        await client.stop_pod_sandbox(sid)
        await client.stop_pod_sandbox(sid)  # idempotent
        assert (await client.pod_sandbox_status(sid)).state == api.SandboxState.NOTREADY
        await client.remove_pod_sandbox(sid)
        assert [s for s in await client.list_pod_sandboxes() if s.id == sid] == []


async def test_stop_timeout_kills_a_container_that_ignores_term(containerd, tmp_path: Path) -> None:
    async with cri.RuntimeClient(containerd.endpoint) as client:
        sconf = sandbox_config(tmp_path, "stubborn")
        sid = await client.run_pod_sandbox(sconf)
        try:
            cconf = api.ContainerConfig(
                name="stubborn",
                image=BUSYBOX_IMAGE,
                command=("sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"),
                log_path="stubborn/0.log",
            )
            cid = await client.create_container(sid, cconf, sconf)
            await client.start_container(cid)
            t0 = time.monotonic()
            await client.stop_container(cid, timeout=2)
            took = time.monotonic() - t0
            assert 1.8 <= took < 6, took
            s = await client.container_status(cid)
            assert s.state == api.ContainerState.EXITED and s.exit_code == 137
        finally:
            await client.stop_pod_sandbox(sid)
            await client.remove_pod_sandbox(sid)


async def test_client_survives_a_containerd_restart(containerd, tmp_path: Path) -> None:
    async with cri.RuntimeClient(containerd.endpoint) as client:
        sconf = sandbox_config(tmp_path, "survivor")
        sid = await client.run_pod_sandbox(sconf)
        try:
            assert (await client.version()).runtime_name == "containerd"
            await asyncio.to_thread(containerd.restart)
            # Same client object, same channel: the next calls work and see the sandbox that outlived the restart.
            assert (await client.version()).runtime_name == "containerd"
            status = await client.pod_sandbox_status(sid)
            assert status.state == api.SandboxState.READY
        finally:
            await client.stop_pod_sandbox(sid)
            await client.remove_pod_sandbox(sid)


async def test_errors_name_the_endpoint_and_rpc(containerd, tmp_path: Path) -> None:
    async with cri.RuntimeClient(containerd.endpoint) as client:
        with pytest.raises(cri.NotFound) as nf:
            await client.pod_sandbox_status("0" * 64)
        assert nf.value.rpc == "PodSandboxStatus" and nf.value.endpoint == containerd.endpoint
        # containerd 1.6 does not implement RuntimeConfig: a typed Unimplemented, not a raw gRPC error.
        with pytest.raises(cri.Unimplemented) as un:
            await client.runtime_config()
        assert "RuntimeConfig" in str(un.value)

    missing = tmp_path / "nothing.sock"
    async with cri.RuntimeClient(f"unix://{missing}", timeout=0.5) as client:
        t0 = time.monotonic()
        with pytest.raises(cri.Unavailable) as ua:
            await client.version()
        assert time.monotonic() - t0 < 3
        assert ua.value.retryable and str(missing) in str(ua.value) and "Version" in str(ua.value)
