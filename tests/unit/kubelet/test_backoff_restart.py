"""The runtime manager counts one exit once: an agent killed after backoff.json is saved but before the new
container exists sees the same exited container on restart and must not double the delay (issue 17)."""
from __future__ import annotations

from pathlib import Path

import cri
from cri import api
from cri.testing import FakeRuntime
from kubelet.clock import FakeClock
from kubelet.kuberuntime.manager import KubeRuntime, SyncResult
from kubelet.kuberuntime.podconfig import NodeInfo
from kubelet.kuberuntime.view import RuntimeView
from kubelet.lifecycle import events as ev
from kubelet.lifecycle.backoff import Backoff
from kubelet.testing import cinfo, container, pod, rt
from cri.api import ContainerState


def _runtime(client: cri.RuntimeClient, tmp_path: Path, clock: FakeClock) -> KubeRuntime:
    return KubeRuntime(client=client, view=RuntimeView(client, node_name="node1"),
                       node=NodeInfo(node_name="node1", host_ip="192.0.2.1", pod_logs_dir=str(tmp_path / "pods")),
                       recorder=ev.EventRecorder(host="node1", clock=clock),
                       backoff=Backoff(clock=clock, path=tmp_path / "state" / "backoff.json"),
                       image_backoff=Backoff(clock=clock), clock=clock, root_dir=tmp_path)


async def test_the_same_exit_seen_by_a_restarted_agent_is_not_counted_again(tmp_path: Path) -> None:
    clock = FakeClock()
    # the image cannot be had: _start_container records the restart, then stops before creating anything —
    # exactly the state an agent killed at that point leaves behind
    p = pod(containers=(container("c", image="localhost/nodelet/absent:1"),))
    exited = cinfo("c", ContainerState.EXITED, id="c-exit-1", restarts=1, exit_code=1)
    status = rt(exited)
    async with FakeRuntime() as fake:
        async with cri.RuntimeClient(fake.endpoint) as client:
            for _ in range(2):  # the first agent, then its successor after a kill -9
                kr = _runtime(client, tmp_path, clock)
                await kr._start_container(p, p.spec.containers[0], status, "s1", api.PodSandboxConfig(
                    metadata=api.PodSandboxMetadata(name="web-node1", uid="uid1", namespace="default")),
                    "10.244.0.2", init=False, result=SyncResult())
            assert Backoff(clock=clock, path=tmp_path / "state" / "backoff.json").delay("uid1/c/h1") == 10
