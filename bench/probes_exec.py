"""Exec probes on containerd: ProbeManager + CRI ExecSync against raw ExecSync calls, same rate, same container.

    python bench/probes_exec.py [--rate 10] [--duration 30]

Both variants run `true` in one busybox container of the private test containerd at --rate per second for
--duration seconds: `raw` issues client.exec_sync on a fixed schedule; `probes` runs --rate exec liveness probes
(periodSeconds 1) through kubelet.lifecycle.probing.CRIExecRunner and probes.ProbeManager. Printed: median and p99 call
latency, and machine CPU seconds per exec (all processes: containerd, shims and runc dominate, as upstream).
Expected: probe overhead ≤ 1.1 × raw ExecSync.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cri  # noqa: E402
from cri import api  # noqa: E402
from kubelet.lifecycle.probing import CRIExecRunner  # noqa: E402
from kubelet.node.runtime.images import BUSYBOX_IMAGE  # noqa: E402
from kubelet.node.runtime.testing import start_test_runtime  # noqa: E402
from probes.manager import ProbeManager  # noqa: E402
from probes.spec import parse_probe  # noqa: E402
from probes.types import ContainerId, ContainerProbes, PodKey, PodUID, ProbeKind  # noqa: E402


def machine_cpu() -> float:
    t = psutil.cpu_times()
    return t.user + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def raw(client: cri.RuntimeClient, cid: str, rate: int, duration: float) -> tuple[list[float], float, int]:
    lat: list[float] = []
    cpu0 = machine_cpu()
    start = time.monotonic()
    n = int(rate * duration)

    async def one(at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        t0 = time.perf_counter()
        await client.exec_sync(cid, ["true"], timeout=1)
        lat.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(start + i / rate) for i in range(n)))
    return lat, machine_cpu() - cpu0, n


async def via_probes(client: cri.RuntimeClient, cid: str, rate: int, duration: float) -> tuple[list[float], float, int]:
    runner = CRIExecRunner(client)
    lat: list[float] = []

    class Timed:
        async def exec_sync(self, container_id, cmd, timeout_s):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return await runner.exec_sync(container_id, cmd, timeout_s)
            finally:
                lat.append(time.perf_counter() - t0)

    manager = ProbeManager(exec_runner=Timed(), on_result=lambda e: None)
    spec = parse_probe({"exec": {"command": ["true"]}, "periodSeconds": 1}, field="bench", kind=ProbeKind.LIVENESS, container_ports=())
    started = time.time()
    for i in range(rate):
        manager.update_container(
            pod_key=PodKey(f"bench/p{i}"), pod_uid=PodUID(f"u{i}"), container_name="c", container_id=ContainerId(cid),
            started_at=started, running=True, pod_ip="127.0.0.1", host_ip="127.0.0.1", host_network=False,
            probes=ContainerProbes(liveness=spec),
        )
    await asyncio.sleep(2)  # first probes are jittered over a period: let the schedule settle
    lat.clear()
    cpu0 = machine_cpu()
    await asyncio.sleep(duration)
    cpu = machine_cpu() - cpu0
    n = len(lat)
    await manager.aclose()
    return lat, cpu, n


async def main(rate: int, duration: float) -> None:
    instance = await asyncio.to_thread(start_test_runtime)
    client = cri.RuntimeClient(instance.endpoint)
    uid = uuid.uuid4().hex
    sconf = api.PodSandboxConfig(metadata=api.PodSandboxMetadata(name="bench-exec", uid=uid, namespace="bench"), log_directory=f"/tmp/bench-exec-{uid}")
    sid = await client.run_pod_sandbox(sconf)
    cid = await client.create_container(sid, api.ContainerConfig(name="c", image=BUSYBOX_IMAGE, command=("sleep", "3600")), sconf)
    await client.start_container(cid)
    try:
        for _ in range(5):
            await client.exec_sync(cid, ["true"], timeout=1)
        rows = {}
        for name, fn in (("raw ExecSync", raw), ("exec probes", via_probes)):
            rows[name] = await fn(client, cid, rate, duration)
        print(f"{'variant':<14} {'execs':>6} {'p50 ms':>8} {'p99 ms':>8} {'machine CPU ms/exec':>20}   ({rate}/s for {duration:.0f} s)")
        for name, (lat, cpu, n) in rows.items():
            print(f"{name:<14} {n:>6} {statistics.median(lat) * 1e3:>8.1f} {pct(lat, 0.99) * 1e3:>8.1f} {cpu / max(n, 1) * 1e3:>20.1f}")
        (rl, rc, rn), (pl, pc, pn) = rows["raw ExecSync"], rows["exec probes"]
        print(f"ratio probes/raw: latency {statistics.median(pl) / statistics.median(rl):.2f}, CPU per exec {(pc / pn) / (rc / rn):.2f}   (expected ≤ 1.10)")
    finally:
        await client.stop_pod_sandbox(sid)
        await client.remove_pod_sandbox(sid)
        await client.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=10)
    p.add_argument("--duration", type=float, default=30)
    a = p.parse_args()
    asyncio.run(main(a.rate, a.duration))
