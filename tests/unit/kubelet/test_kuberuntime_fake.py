"""KubeRuntime (the executor of PodActions) on cri.testing.FakeRuntime: what it calls, what it records when the
runtime fails (error injection), and that a failed container never stops the others."""
from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import grpc
import pytest

import cri
from cri.testing import FakeRuntime
from kubelet.app import build_agent
from kubelet.config import NodeletConfig
from kubelet.lifecycle.actions import KillAction, compute_pod_actions
from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.types import Pod

NODE = "node1"
MANIFEST = b"""apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  containers:
    - {name: a, image: localhost/nodelet/busybox:1.35, command: [sleep, "3600"]}
    - {name: b, image: localhost/nodelet/busybox:1.35, command: [sleep, "3600"]}
"""


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[FakeRuntime, Any, Pod]]:
    async with FakeRuntime() as fake:
        config = NodeletConfig(node_name=NODE, root_dir=str(tmp_path / "root"), pod_logs_dir=str(tmp_path / "logs"),
                               container_runtime_endpoint=fake.endpoint, node_ip="127.0.0.1")
        client = cri.RuntimeClient(fake.endpoint)
        graph = build_agent(config, client=client)
        pods, _, errors = parse_manifest_bytes(MANIFEST, file="/manifests/web.yaml", node_name=NODE)
        assert not errors
        try:
            yield fake, graph, pods[0]
        finally:
            await client.close()


async def plan_and_act(graph: Any, pod: Pod) -> Any:
    rt = await graph.agent.view.pod(pod.uid)
    actions = compute_pod_actions(pod, rt)
    return actions, await graph.runtime.sync_pod(pod, actions, rt)


def reasons(graph: Any) -> list[str]:
    return [e["reason"] for e in graph.recorder.list()]


async def test_sync_creates_sandbox_and_both_containers(env: Any) -> None:
    fake, graph, pod = env
    _, result = await plan_and_act(graph, pod)
    assert result.waiting == {} and result.sandbox_error is None
    assert sorted(c.config.metadata.name for c in fake.running()) == ["a", "b"]
    assert fake.calls_to("RunPodSandbox") == 1 and fake.calls_to("StartContainer") == 2
    actions, _ = await plan_and_act(graph, pod)
    assert actions.noop  # adopted from the runtime's labels: nothing more to do


async def test_sandbox_failure_is_a_sandbox_error_with_retry(env: Any) -> None:
    fake, graph, pod = env
    fake.inject_error("RunPodSandbox", grpc.StatusCode.INTERNAL, "no network")
    _, result = await plan_and_act(graph, pod)
    assert result.sandbox_error is not None and result.sandbox_error[0] == "CreatePodSandboxError"
    assert "no network" in result.sandbox_error[1] and result.retry_after == 10.0
    assert fake.calls_to("CreateContainer") == 0 and "FailedCreatePodSandBox" in reasons(graph)


async def test_create_container_failure_waits_one_container_and_starts_the_other(env: Any) -> None:
    fake, graph, pod = env
    fake.inject_error("CreateContainer", grpc.StatusCode.INTERNAL, "disk full")
    _, result = await plan_and_act(graph, pod)
    assert result.waiting == {"a": ("CreateContainerError", "disk full")} and result.retry_after == 10.0
    assert [c.config.metadata.name for c in fake.running()] == ["b"]
    assert "Failed" in reasons(graph)
    _, result = await plan_and_act(graph, pod)  # the next sync starts it
    assert result.waiting == {} and sorted(c.config.metadata.name for c in fake.running()) == ["a", "b"]


async def test_start_container_failure_is_run_container_error(env: Any) -> None:
    fake, graph, pod = env
    fake.inject_error("StartContainer", grpc.StatusCode.INTERNAL, "exec format error")
    _, result = await plan_and_act(graph, pod)
    assert result.waiting["a"] == ("RunContainerError", "exec format error")


async def test_stop_container_error_propagates_for_the_worker_to_retry(env: Any) -> None:
    fake, graph, pod = env
    await plan_and_act(graph, pod)
    a = next(c for c in fake.running() if c.config.metadata.name == "a")
    fake.inject_error("StopContainer", grpc.StatusCode.INTERNAL, "stuck")
    with pytest.raises(cri.CRIError):
        await graph.runtime.kill_container(pod, KillAction(container_id=a.id, name="a", message="test"))
    await graph.runtime.kill_container(pod, KillAction(container_id=a.id, name="a", message="test"))
    assert a.id not in {c.id for c in fake.running()}


async def test_kill_of_a_container_already_gone_is_success(env: Any) -> None:
    fake, graph, pod = env
    await graph.runtime.kill_container(pod, KillAction(container_id="does-not-exist", name="a", message="gone"))
    assert fake.calls_to("StopContainer") == 1
