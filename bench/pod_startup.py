"""Pod start-up through nodelet against the same pods created by direct CRI calls, in one run.

    python bench/pod_startup.py [--pods 110] [--idle 60] [--repeat 3]

(a) 1 pod and (b) N pods (110: the default maxPods) written to the manifest directory at once: time until every
container is RUNNING (seen through CRI), against RunPodSandbox + CreateContainer + StartContainer issued directly
with the same concurrency and the same CNI config (the private test containerd's); then (c) all N torn down at once
(manifests removed → no sandbox left) against StopPodSandbox + RemovePodSandbox issued directly. Medians over
--repeat rounds, then the agent idles with N pods (an exec readiness probe on half of them) for --idle seconds:
its RSS and CPU %.
Expected (issue 17): nodelet ≤ 1.05 × direct for N pods up and down, ≤ direct + 0.02 s for one pod; idle ≤ 60 MiB
RSS, ≤ 1 % of a core.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cri  # noqa: E402
from cri import api  # noqa: E402
from kubelet.node.runtime.testing import start_test_runtime  # noqa: E402
from kubelet.testing import BUSYBOX, AgentProcess, runtime_pods, wait_until  # noqa: E402
from kubelet.types import LABEL_MANAGED_BY  # noqa: E402


def manifest(name: str, *, probe: bool = False) -> str:
    text = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n"
    if probe:
        text += "    readinessProbe: {exec: {command: ['true']}, periodSeconds: 10}\n"
    return text


async def count_running(client: cri.RuntimeClient, node: str) -> int:
    cs = await client.list_containers(labels={LABEL_MANAGED_BY: node}, state=api.ContainerState.RUNNING)
    return len(cs)


async def via_agent(agent: AgentProcess, client: cri.RuntimeClient, n: int, round_: int, *, probes: bool = False) -> float:
    node = agent.config["nodeName"]
    files = {f"p{round_}-{i}.yaml": manifest(f"p{round_}-{i}", probe=probes and i % 2 == 0) for i in range(n)}
    t0 = time.perf_counter()
    for name, text in files.items():
        agent.write(name, text)
    while await count_running(client, node) < n:
        await asyncio.sleep(0.005)
    return time.perf_counter() - t0


async def agent_teardown(agent: AgentProcess, client: cri.RuntimeClient) -> float:
    node = agent.config["nodeName"]
    t0 = time.perf_counter()
    for f in agent.manifests.iterdir():
        f.unlink()
    while await client.list_pod_sandboxes(labels={LABEL_MANAGED_BY: node}):
        await asyncio.sleep(0.01)
    return time.perf_counter() - t0


async def direct(client: cri.RuntimeClient, n: int, logs: Path) -> tuple[float, list[str]]:
    async def one(i: int) -> str:
        uid = uuid.uuid4().hex
        sconf = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=f"direct-{i}", uid=uid, namespace="bench"),
            hostname=f"direct-{i}",
            log_directory=str(logs / uid),
            labels={"bench": "direct"},
        )
        (logs / uid).mkdir(parents=True, exist_ok=True)
        sid = await client.run_pod_sandbox(sconf)
        cid = await client.create_container(sid, api.ContainerConfig(name="c", image=BUSYBOX, command=("sleep", "3600"), log_path="c/0.log"), sconf)
        await client.start_container(cid)
        return sid

    t0 = time.perf_counter()
    sids = await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0, list(sids)


async def direct_teardown(client: cri.RuntimeClient, sids: list[str]) -> float:
    async def one(sid: str) -> None:
        for attempt in range(3):  # 110 concurrent stops: containerd now and then resets a stream (RST_STREAM)
            try:
                await client.stop_pod_sandbox(sid)
                await client.remove_pod_sandbox(sid)
                return
            except cri.CRIError:
                if attempt == 2:
                    raise

    t0 = time.perf_counter()
    await asyncio.gather(*(one(s) for s in sids))
    return time.perf_counter() - t0


async def main(n: int, idle: float, repeat: int) -> None:
    instance = await asyncio.to_thread(start_test_runtime)
    client = cri.RuntimeClient(instance.endpoint)
    for s in await client.list_pod_sandboxes(labels={"bench": "direct"}):  # an interrupted earlier run's
        await client.stop_pod_sandbox(s.id)
        await client.remove_pod_sandbox(s.id)
    base = Path(tempfile.mkdtemp(prefix="nodelet-bench-"))
    agent = AgentProcess(base, endpoint=instance.endpoint, node_name=f"bench-{uuid.uuid4().hex[:6]}", runtime=instance)
    await asyncio.to_thread(agent.start)
    results: dict[str, list[float]] = {k: [] for k in ("agent1", "direct1", "agentN", "directN", "agentD", "directD")}
    try:
        for r in range(repeat):
            for size, key in ((1, "1"), (n, "N")):
                t, sids = await direct(client, size, base / "direct-logs")
                results["direct" + key].append(t)
                td = await direct_teardown(client, sids)
                results["agent" + key].append(await via_agent(agent, client, size, r * 1000 + size))
                ta = await agent_teardown(agent, client)
                if key == "N":
                    results["directD"].append(td)
                    results["agentD"].append(ta)
        print(f"{'case':<28} {'nodelet s':>10} {'direct CRI s':>13} {'ratio':>7} {'diff s':>8}   (median of {repeat})")
        for key, label in (("1", "1 pod"), ("N", f"{n} pods at once"), ("D", f"{n} pods torn down at once")):
            a, d = statistics.median(results["agent" + key]), statistics.median(results["direct" + key])
            print(f"{label:<28} {a:>10.3f} {d:>13.3f} {a / d:>7.2f} {a - d:>8.3f}")
        print("expected: N pods up and down ratio ≤ 1.05; 1 pod diff ≤ 0.020 s")
        await via_agent(agent, client, n, 99999, probes=True)  # the idle set: probes on half
        # Idle with N pods.
        proc = psutil.Process(agent.proc.pid)  # type: ignore[union-attr]
        await asyncio.sleep(2)
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        await asyncio.sleep(idle)
        cpu1, t1 = proc.cpu_times(), time.monotonic()
        cpu_pct = 100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t1 - t0)
        rss = proc.memory_info().rss / 2**20
        print(f"idle {idle:.0f}s with {n} pods: RSS {rss:.1f} MiB, CPU {cpu_pct:.2f} % of one core   (expected ≤ 60 MiB, ≤ 1 %)")
    finally:
        await agent_teardown(agent, client)
        await asyncio.to_thread(agent.stop)
        await client.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=110)
    p.add_argument("--idle", type=float, default=60)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.pods, a.idle, a.repeat))
