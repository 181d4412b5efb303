"""The CRI client against the fake runtime: error mapping, retries, typed results (real gRPC, fake state)."""
from __future__ import annotations

import grpc
import pytest

import cri
from cri import api
from cri.testing import FakeRuntime


def sandbox(name: str = "p") -> api.PodSandboxConfig:
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=name, uid="u1", namespace="default"),
        labels={"io.kubernetes.pod.uid": "u1"},
        linux=api.LinuxSandboxConfig(security=api.SandboxSecurity(namespaces=api.NamespaceOptions(network=api.NamespaceMode.POD))),
    )


@pytest.fixture
async def fake():  # type: ignore[no-untyped-def]
    async with FakeRuntime() as f:
        yield f


async def test_typed_results_and_filters(fake: FakeRuntime) -> None:
    async with cri.RuntimeClient(fake.endpoint) as c:
        status = await c.status()
        assert status.runtime_ready and status.network_ready
        sid = await c.run_pod_sandbox(sandbox())
        st = await c.pod_sandbox_status(sid)
        assert isinstance(st, api.PodSandboxStatus) and st.state is api.SandboxState.READY and st.ip.startswith("10.244.0.")
        cid = await c.create_container(sid, api.ContainerConfig(name="a", image="localhost/nodelet/busybox:1.35", labels={"k": "v"}), sandbox())
        await c.start_container(cid)
        assert [x.id for x in await c.list_containers(labels={"k": "v"})] == [cid]
        assert await c.list_containers(labels={"k": "other"}) == []
        assert [x.id for x in await c.list_containers(state=api.ContainerState.RUNNING)] == [cid]
        assert [s.id for s in await c.list_pod_sandboxes(labels={"io.kubernetes.pod.uid": "u1"})] == [sid]
        fake.exit_container(cid, exit_code=2)
        cs = await c.container_status(cid)
        assert (cs.state, cs.exit_code, cs.reason) == (api.ContainerState.EXITED, 2, "Error")


@pytest.mark.parametrize(
    "code,exc",
    [
        (grpc.StatusCode.NOT_FOUND, cri.NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, cri.AlreadyExists),
        (grpc.StatusCode.UNIMPLEMENTED, cri.Unimplemented),
        (grpc.StatusCode.DEADLINE_EXCEEDED, cri.DeadlineExceeded),
        (grpc.StatusCode.INVALID_ARGUMENT, cri.InvalidArgument),
        (grpc.StatusCode.INTERNAL, cri.RuntimeFailure),
        (grpc.StatusCode.UNAVAILABLE, cri.Unavailable),
    ],
)
async def test_status_codes_map_to_one_error_tree(fake: FakeRuntime, code: grpc.StatusCode, exc: type[cri.CRIError]) -> None:
    # RunPodSandbox is not idempotent: it is never retried, so even UNAVAILABLE surfaces at once.
    fake.inject_error("RunPodSandbox", code, "boom")
    async with cri.RuntimeClient(fake.endpoint) as c:
        with pytest.raises(exc) as err:
            await c.run_pod_sandbox(sandbox())
    assert isinstance(err.value, cri.CRIError)
    assert err.value.rpc == "RunPodSandbox" and err.value.endpoint == fake.endpoint and err.value.code == code.name
    assert "boom" in str(err.value) and fake.endpoint in str(err.value)
    assert err.value.retryable == (code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED))
    assert fake.calls_to("RunPodSandbox") == 1


async def test_idempotent_calls_ride_out_unavailable(fake: FakeRuntime) -> None:
    fake.inject_error("ListPodSandbox", grpc.StatusCode.UNAVAILABLE, times=3)
    async with cri.RuntimeClient(fake.endpoint) as c:
        assert await c.list_pod_sandboxes() == []
        assert c.errors_total == {}
    assert fake.calls_to("ListPodSandbox") == 4


async def test_idempotent_retry_gives_up_at_the_deadline(fake: FakeRuntime) -> None:
    fake.inject_error("Version", grpc.StatusCode.UNAVAILABLE, times=1000)
    async with cri.RuntimeClient(fake.endpoint, timeout=0.3) as c:
        with pytest.raises(cri.Unavailable):
            await c.version()
        assert c.errors_total == {"Version": 1}


async def test_missing_image_and_pull(fake: FakeRuntime) -> None:
    async with cri.RuntimeClient(fake.endpoint) as c:
        assert await c.image_status("example.com/none:1") is None
        with pytest.raises(cri.RuntimeFailure) as err:
            await c.pull_image("example.com/none:1")
        assert "PullImage" in str(err.value) and "example.com/none:1" in str(err.value)
        fake.pullable.add("example.com/some:1")
        ref = await c.pull_image("example.com/some:1")
        assert ref.startswith("sha256:") and (await c.image_status("example.com/some:1")) is not None


def test_endpoint_normalisation() -> None:
    assert cri.normalize_endpoint("/run/x.sock") == "unix:///run/x.sock"
    assert cri.normalize_endpoint("unix:/run/x.sock") == "unix:///run/x.sock"
    assert cri.normalize_endpoint("unix:///run/x.sock") == "unix:///run/x.sock"
    assert cri.normalize_endpoint("tcp://127.0.0.1:1234") == "127.0.0.1:1234"


async def test_server_not_initialized_after_a_restart_is_ridden_out(fake: FakeRuntime) -> None:
    # containerd's CRI plugin answers UNKNOWN "server is not initialized yet" right after it comes back.
    fake.inject_error("ListContainers", grpc.StatusCode.UNKNOWN, "server is not initialized yet", times=2)
    async with cri.RuntimeClient(fake.endpoint) as c:
        assert await c.list_containers() == []
    fake.inject_error("ListContainers", grpc.StatusCode.UNKNOWN, "something else broke")
    async with cri.RuntimeClient(fake.endpoint) as c:
        with pytest.raises(cri.RuntimeFailure):
            await c.list_containers()
