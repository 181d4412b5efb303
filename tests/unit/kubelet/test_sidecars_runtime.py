"""The executor's side of sidecars against the stateful FakeRuntime: several init containers started in one sync
(a sidecar that cannot start does not hold back the next one), the stop order of KubeRuntime.kill_pod, and a
manifest's restartPolicy parsed once into the typed spec."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import cri
from cri.testing import FakeRuntime
from kubelet.clock import RealClock
from kubelet.kuberuntime.manager import KubeRuntime
from kubelet.kuberuntime.podconfig import NodeInfo
from kubelet.kuberuntime.view import RuntimeView
from kubelet.lifecycle import events as ev
from kubelet.lifecycle.actions import PodActions, compute_pod_actions
from kubelet.lifecycle.backoff import Backoff
from kubelet.lifecycle.status import StatusInputs, compute_pod_status
from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.types import Pod

MANIFEST = """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 5
  initContainers:
  - {name: s1, image: IMAGE, restartPolicy: Always}
  - {name: i, image: localhost/nodelet/busybox:1.35}
  - {name: s2, image: localhost/nodelet/busybox:1.35, restartPolicy: Always}
  containers:
  - {name: a, image: localhost/nodelet/busybox:1.35}
  - {name: b, image: localhost/nodelet/busybox:1.35}
"""


def make_pod(s1_image: str = "localhost/nodelet/busybox:1.35") -> Pod:
    pods, _, errors = parse_manifest_bytes(textwrap.dedent(MANIFEST.replace("IMAGE", s1_image)).encode(),
                                           file="/m/web.yaml", node_name="node1")
    assert not errors, errors
    return pods[0]


def runtime(fake: FakeRuntime, client: cri.RuntimeClient, tmp: Path) -> KubeRuntime:
    clock = RealClock()
    return KubeRuntime(client=client, view=RuntimeView(client, node_name="node1"),
                       node=NodeInfo(node_name="node1", host_ip="192.0.2.10", pod_logs_dir=str(tmp / "pods-logs"),
                                     memory_capacity=1 << 30),
                       recorder=ev.EventRecorder(host="node1"), backoff=Backoff(clock=clock),
                       image_backoff=Backoff(clock=clock), clock=clock, root_dir=tmp / "root")


def test_restart_policy_is_a_typed_field() -> None:
    p = make_pod()
    assert [c.name for c in p.spec.sidecars] == ["s1", "s2"] and not p.spec.init_containers[1].is_sidecar


async def sync(kr: KubeRuntime, pod: Pod) -> Any:
    rt = await kr.view.pod(pod.uid)
    actions = compute_pod_actions(pod, rt)
    return actions, await kr.sync_pod(pod, actions, rt)


def names_started(fake: FakeRuntime) -> list[str]:
    return [req.config.metadata.name for m, req in fake.calls if m == "CreateContainer"]  # type: ignore[attr-defined]


async def test_sidecars_start_in_order_and_a_failed_sidecar_does_not_hold_back_the_next(tmp_path: Path) -> None:
    async with FakeRuntime() as fake, cri.RuntimeClient(fake.endpoint) as client:
        kr = runtime(fake, client, tmp_path)
        pod = make_pod()
        actions, _ = await sync(kr, pod)
        assert actions.create_sandbox and actions.init_containers_to_start == ("s1",)
        actions, _ = await sync(kr, pod)
        assert actions.init_containers_to_start == ("i",)  # s1 runs (no startup probe: started)
        i = next(c for c in fake.containers.values() if c.config.metadata.name == "i")  # type: ignore[attr-defined]
        fake.exit_container(i.id, exit_code=0)
        await sync(kr, pod)
        await sync(kr, pod)
        assert names_started(fake) == ["s1", "i", "s2", "a", "b"]

    async with FakeRuntime() as fake, cri.RuntimeClient(fake.endpoint) as client:
        kr = runtime(fake, client, tmp_path / "2")
        pod = make_pod(s1_image="localhost/nodelet/missing:1")  # not present, not pullable
        await sync(kr, pod)  # the sandbox; s1 fails to pull
        rt = await kr.view.pod(pod.uid)
        assert rt.newest_sandbox is not None
        result = await kr.sync_pod(pod, PodActions(sandbox_id=rt.newest_sandbox.id, init_containers_to_start=("s1", "i")), rt)
        assert result.waiting["s1"][0] == "ImagePullBackOff" and "i" not in result.waiting
        assert names_started(fake) == ["i"]


async def test_kill_pod_stops_regular_containers_first_then_sidecars_last_declared_first(tmp_path: Path) -> None:
    async with FakeRuntime() as fake, cri.RuntimeClient(fake.endpoint) as client:
        kr = runtime(fake, client, tmp_path)
        pod = make_pod()
        for _ in range(3):
            await sync(kr, pod)
            for c in list(fake.containers.values()):
                if c.config.metadata.name == "i":  # type: ignore[attr-defined]
                    fake.exit_container(c.id, exit_code=0)
        await sync(kr, pod)
        rt = await kr.view.pod(pod.uid)
        assert sorted(c.name for c in rt.running_containers) == ["a", "b", "s1", "s2"]
        fake.calls.clear()
        await kr.kill_pod(pod, rt, stop_sandboxes=True)
        by_id = {c.id: c.name for c in rt.containers}
        stops = [by_id[req.container_id] for m, req in fake.calls if m == "StopContainer"]  # type: ignore[attr-defined]
        assert sorted(stops[:2]) == ["a", "b"] and stops[2:] == ["s2", "s1"]
        assert fake.calls_to("StopPodSandbox") == 1


async def test_events_of_init_and_sidecar_containers_reference_spec_init_containers(tmp_path: Path) -> None:
    async with FakeRuntime() as fake, cri.RuntimeClient(fake.endpoint) as client:
        kr = runtime(fake, client, tmp_path)
        pod = make_pod()
        await sync(kr, pod)
        started = {e["involvedObject"]["fieldPath"] for e in kr.recorder.list(uid=pod.uid) if e["reason"] == "Started"}
        assert started == {"spec.initContainers{s1}"}


async def test_a_sidecar_passing_its_startup_probe_asks_for_a_sync_and_gets_probe_workers(tmp_path: Path) -> None:
    import asyncio

    from kubelet.lifecycle.probing import AgentProbes

    text = MANIFEST.replace("IMAGE", "localhost/nodelet/busybox:1.35").replace(
        "restartPolicy: Always}\n  - {name: i",
        "restartPolicy: Always, startupProbe: {exec: {command: [probe]}, periodSeconds: 1}}\n  - {name: i", 1)
    pods, _, errors = parse_manifest_bytes(textwrap.dedent(text).encode(), file="/m/web.yaml", node_name="node1")
    assert not errors, errors
    pod = pods[0]
    async with FakeRuntime() as fake, cri.RuntimeClient(fake.endpoint) as client:
        kr = runtime(fake, client, tmp_path)
        actions, _ = await sync(kr, pod)
        assert actions.init_containers_to_start == ("s1",)
        synced: list[str] = []
        probes = AgentProbes(client=client, recorder=kr.recorder, on_kill=synced.append, on_status=lambda uid: None)
        try:
            rt = await kr.view.pod(pod.uid)
            probes.sync_pod(pod, rt, compute_pod_status(pod, rt, StatusInputs(host_ip="192.0.2.10")))
            # not started yet: the planner holds the next init container back
            started = lambda c, info: probes.is_started(pod.uid, c.name)  # noqa: E731
            assert compute_pod_actions(pod, rt, started=started).init_containers_to_start == ()
            deadline = asyncio.get_running_loop().time() + 10
            while not synced and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)  # polling the probe worker, with a deadline
            assert synced == [pod.uid]
            assert compute_pod_actions(pod, rt, started=started).init_containers_to_start == ("i",)
            assert [m for m, req in fake.calls if m == "ExecSync"]  # the probe ran through CRI ExecSync
        finally:
            await probes.aclose()
