"""A containerd restart is ridden out quickly: an exec probe (the probes' CRI exec path, on the client that lived
through the outage) succeeds within 0.2 s of the runtime answering a fresh connection again."""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

import cri
from cri import api
from kubelet.lifecycle.probing import CRIExecRunner
from kubelet.node.runtime.images import BUSYBOX_IMAGE

pytestmark = [pytest.mark.root, pytest.mark.containerd]
PERIOD = 0.05  # many probes on a node: some attempt is always close


def _sandbox_config(tmp_path: Path) -> api.PodSandboxConfig:
    uid = uuid.uuid4().hex
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name="reconnect", uid=uid, namespace="cri-test", attempt=0),
        log_directory=str(tmp_path / f"cri-test_reconnect_{uid}"),
        labels={"io.kubernetes.pod.name": "reconnect", "io.kubernetes.pod.namespace": "cri-test", "io.kubernetes.pod.uid": uid},
        linux=api.LinuxSandboxConfig(security=api.SandboxSecurity(
            namespaces=api.NamespaceOptions(network=api.NamespaceMode.NODE))),
    )


async def _answers(endpoint: str) -> bool:
    try:
        async with cri.RuntimeClient(endpoint, timeout=0.5) as fresh:
            await fresh.status()
        return True
    except cri.CRIError:
        return False


async def test_exec_probe_works_within_200ms_of_the_runtime_answering(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sconf = _sandbox_config(tmp_path)
    Path(sconf.log_directory).mkdir(parents=True)
    async with cri.RuntimeClient(containerd.endpoint) as client:
        sid = await client.run_pod_sandbox(sconf)
        try:
            cid = await client.create_container(sid, api.ContainerConfig(
                name="c", image=BUSYBOX_IMAGE, command=("sleep", "3600")), sconf)
            await client.start_container(cid)
            runner = CRIExecRunner(client)
            assert (await runner.exec_sync(cid, ["true"], 5)).exit_code == 0
            containerd.stop(kill=True)
            # probes keep running through the outage (every 50 ms here, as many probes on a node would), so the
            # channel's reconnect backoff grows as it would on a node
            successes: list[float] = []
            attempts: list[tuple[float, bool]] = []
            failures = 0
            stop = asyncio.Event()
            back = 0.0

            async def prober() -> None:
                nonlocal failures
                while not stop.is_set():
                    t = time.monotonic()
                    try:
                        ok = (await runner.exec_sync(cid, ["true"], 2)).exit_code == 0
                    except cri.CRIError:
                        ok = False
                        failures += 1
                    attempts.append((t, ok))
                    if ok:
                        successes.append(time.monotonic())
                    await asyncio.sleep(PERIOD)

            task = asyncio.create_task(prober())
            try:
                outage_end = time.monotonic() + 2.0
                while time.monotonic() < outage_end:
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(containerd.start)
                deadline = time.monotonic() + 30
                while not await _answers(containerd.endpoint):
                    assert time.monotonic() < deadline, "containerd did not come back"
                    await asyncio.sleep(0.02)
                back = time.monotonic()
                deadline = back + 1.0  # keep probing a while after recovery: every late attempt must succeed
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await task
            assert failures >= 10  # the outage was seen
            first = min(t for t in successes if t >= back)
            assert first - back <= 0.2, f"first exec probe success {first - back:.3f}s after the runtime answered"
            late = [(round(t - back, 3), ok) for t, ok in attempts if t >= back + 0.2]
            assert late and all(ok for _, ok in late), late
        finally:
            await client.stop_pod_sandbox(sid)
            await client.remove_pod_sandbox(sid)
