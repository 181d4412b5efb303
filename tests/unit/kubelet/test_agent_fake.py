"""Agent unit tests on cri.testing.FakeRuntime: the real sync loop, workers, planner, KubeRuntime and probes against
a stateful fake runtime (real gRPC on a unix socket), with error injection."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import grpc
import pytest

import cri
from cri.testing import FakeRuntime
from kubelet.app import build_agent
from kubelet.config import NodeletConfig
from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.types import ManifestSet

NODE = "node1"


def pod_manifest(*, liveness: bool = False, restart: str = "Always") -> bytes:
    probe = """
      livenessProbe:
        exec: {command: [/bin/false]}
        periodSeconds: 1
        failureThreshold: 1""" if liveness else ""
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: default}}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  containers:
    - name: app
      image: localhost/nodelet/busybox:1.35
      command: [sleep, "3600"]{probe}
""".encode()


def manifest_set(data: bytes) -> ManifestSet:
    pods, others, errors = parse_manifest_bytes(data, file="/manifests/web.yaml", node_name=NODE)
    assert not errors, errors
    return ManifestSet(pods=tuple(pods), others=tuple(others))


async def until(pred: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = pred()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeRuntime]:
    async with FakeRuntime() as f:
        yield f


@pytest.fixture
async def app(fake: FakeRuntime, tmp_path: Path) -> AsyncIterator[Any]:
    config = NodeletConfig(node_name=NODE, root_dir=str(tmp_path / "root"), pod_logs_dir=str(tmp_path / "logs"),
                           container_runtime_endpoint=fake.endpoint, node_ip="127.0.0.1", sync_frequency=3600)
    client = cri.RuntimeClient(fake.endpoint)
    wired = build_agent(config, client=client, pleg_period=0.1)
    await wired.agent.start_runtime(timeout=5)
    tasks = [asyncio.create_task(fn()) for fn in (wired.agent.pleg.run,)]
    try:
        yield wired
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await wired.agent.stop()
        await wired.probes.aclose()
        await client.close()


def running(fake: FakeRuntime, name: str = "app") -> list[Any]:
    return [c for c in fake.running() if c.config.metadata.name == name]


async def test_starts_pod_and_reports_running(app: Any, fake: FakeRuntime) -> None:
    app.agent.on_manifests(manifest_set(pod_manifest()))
    await until(lambda: running(fake), what="container running")
    uid = next(iter(app.agent.desired))
    await until(lambda: uid in app.agent.statuses and app.agent.statuses[uid].phase == "Running", what="phase Running")
    assert fake.calls_to("RunPodSandbox") == 1 and fake.calls_to("StartContainer") == 1
    # the proxy's view comes from the typed pods and statuses, equal to what the API's pod objects say
    from kubelet.node.cluster import compute_pod_infos

    infos = app.agent.pod_infos()
    assert [(i.name, i.ip, i.ready) for i in infos] == [("web-node1", "127.0.0.1", True)]
    assert infos == compute_pod_infos(app.agent.pod_objects(), node_name=NODE)


async def test_start_container_error_is_retried(app: Any, fake: FakeRuntime) -> None:
    fake.inject_error("StartContainer", grpc.StatusCode.INTERNAL, "runtime busy")
    app.agent.on_manifests(manifest_set(pod_manifest()))
    await until(lambda: running(fake), timeout=20, what="container running after a failed StartContainer")
    assert fake.calls_to("StartContainer") == 2
    assert any(e["reason"] == "Failed" for e in app.agent.recorder.list())


async def test_liveness_kill_is_retried_when_stop_fails(app: Any, fake: FakeRuntime) -> None:
    """A liveness failure whose StopContainer fails must be tried again on the next sync, not forgotten."""
    fake.exec_handler = lambda cid, cmd, timeout: (1, b"", b"unhealthy")
    fake.inject_error("StopContainer", grpc.StatusCode.INTERNAL, "stop failed")
    app.agent.on_manifests(manifest_set(pod_manifest(liveness=True)))
    first = (await until(lambda: running(fake), what="container running"))[0].id
    await until(lambda: fake.calls_to("StopContainer") >= 1, timeout=15, what="the liveness kill")
    # The first stop failed; the kill must stay planned and the container be replaced.
    await until(lambda: any(c.id != first for c in running(fake)), timeout=30,  # the worker retries in 5-15 s
                what="a new container after the retried liveness kill")
    assert fake.calls_to("StopContainer") >= 2
    assert fake.containers[first].state != 1  # CONTAINER_RUNNING: the failed-probe container is gone
