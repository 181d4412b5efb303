"""nodelet's Kubernetes API, the three figures of issue 14, each next to its reference measured in the same run:

    python bench/api.py [--pods 110] [--rounds 5] [--idle 20]

1. `kubectl get pods` at --pods pods: the request kubectl sends (GET …/pods?limit=500, Table Accept) over a kept-alive
   HTTPS connection with the admin certificate — median round trip — against the same listing from nodelet's own
   local API (unix socket, JSON PodList). Also the whole `kubectl get pods` wall time, for scale. Target ≤ 20 ms.
2. Pod start (manifest written → container RUNNING, seen through CRI) with 100 open watches (`get pods -w`'s
   request, Table Accept) and a `kubectl logs -f` of a chatty container, against the same without them. ≤ 1.05×.
3. Agent CPU over --idle seconds with 100 idle watches, against the same idle agent without them. ≤ 1 % of a core.
   Then --many (1000) idle watches: the agent's CPU and RSS growth.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
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
from kubelet.server.apiclient import APIClient  # noqa: E402
from kubelet.testing import BUSYBOX, AgentProcess  # noqa: E402
from kubelet.types import LABEL_MANAGED_BY  # noqa: E402

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


def manifest(name: str, command: str = "sleep 3600") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 0\n"
            f"  containers:\n  - {{name: c, image: {BUSYBOX}, command: [sh, -c, '{command}']}}\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tls_context(agent: AgentProcess) -> ssl.SSLContext:
    pki = Path(agent.config["rootDir"]) / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


async def running(client: cri.RuntimeClient, node: str) -> set[str]:
    cs = await client.list_containers(labels={LABEL_MANAGED_BY: node}, state=api.ContainerState.RUNNING)
    return {c.labels.get("io.kubernetes.pod.name", "") for c in cs}


async def wait_running(client: cri.RuntimeClient, node: str, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while len(await running(client, node)) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(await running(client, node))}/{n} pods running after {timeout}s")
        await asyncio.sleep(0.2)


def median_ms(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs) * 1000


async def pod_start(agent: AgentProcess, client: cri.RuntimeClient, rounds: int, tag: str) -> float:
    node = agent.config["nodeName"]
    times = []
    for i in range(rounds):
        name = f"start-{tag}-{i}"
        t0 = time.perf_counter()
        agent.write(f"{name}.yaml", manifest(name))
        while f"{name}-{node}" not in await running(client, node):
            await asyncio.sleep(0.005)
        times.append(time.perf_counter() - t0)
        (agent.manifests / f"{name}.yaml").unlink()
        while f"{name}-{node}" in await running(client, node):
            await asyncio.sleep(0.05)
    return statistics.median(times)


def cpu_percent(pid: int, seconds: float) -> float:
    p = psutil.Process(pid)
    c0, t0 = p.cpu_times(), time.monotonic()
    time.sleep(seconds)
    c1, t1 = p.cpu_times(), time.monotonic()
    return 100 * ((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0)


_readers: list[asyncio.Task[None]] = []


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def open_watches(agent: AgentProcess, n: int) -> list[asyncio.StreamWriter]:
    """n raw HTTPS watches (what `kubectl get pods -w` sends after its list), each read (and discarded) as kubectl
    reads it."""
    ctx = tls_context(agent)
    conn = http.client.HTTPSConnection("127.0.0.1", agent.config["apiPort"], context=ctx)
    conn.request("GET", "/api/v1/namespaces/default/pods?limit=500")
    rv = json.loads(conn.getresponse().read())["metadata"]["resourceVersion"]  # kubectl get -w: list, then watch from it
    conn.close()
    out = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.config["apiPort"], ssl=ctx, server_hostname="localhost")
        writer.write((f"GET /api/v1/namespaces/default/pods?watch=true&resourceVersion={rv} HTTP/1.1\r\nHost: localhost\r\n"
                      f"Accept: {TABLE}\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        _readers.append(asyncio.ensure_future(_drain(reader)))
        out.append(writer)
    return out


async def main(n: int, rounds: int, idle: float, many: int) -> None:
    instance = await asyncio.to_thread(start_test_runtime)
    client = cri.RuntimeClient(instance.endpoint)
    base = Path(tempfile.mkdtemp(prefix="nodelet-bench-api-"))
    agent = AgentProcess(base, endpoint=instance.endpoint, node_name=f"bench-{uuid.uuid4().hex[:6]}", runtime=instance,
                         extra={"apiPort": free_port(), "maxPods": max(110, n + rounds)})
    await asyncio.to_thread(agent.start)
    node = agent.config["nodeName"]
    env = dict(os.environ, KUBECONFIG=agent.config["adminKubeconfig"])
    kubectl = ["kubectl", "--cache-dir", str(base / "kcache")]
    watches: list[asyncio.StreamWriter] = []
    follower = None
    try:
        agent.write("chatty.yaml", manifest("chatty", "while :; do echo chatty line $(date); usleep 20000; done"))
        for i in range(n - 1):
            agent.write(f"p{i}.yaml", manifest(f"p{i}"))
        t0 = time.monotonic()
        await wait_running(client, node, n)
        print(f"{n} pods running after {time.monotonic() - t0:.1f}s; the machine is shared with other work (figures are noisy)")

        # 1. get pods
        conn = http.client.HTTPSConnection("127.0.0.1", agent.config["apiPort"], context=tls_context(agent))

        def api_list() -> None:
            conn.request("GET", "/api/v1/namespaces/default/pods?limit=500", headers={"Accept": TABLE})
            r = conn.getresponse()
            assert r.status == 200 and r.read()

        local = APIClient(agent.socket, timeout=10)
        api_ms = median_ms(api_list, 30)
        local_ms = median_ms(lambda: local.get("/api/v1/namespaces/default/pods"), 30)
        kubectl_ms = median_ms(lambda: subprocess.run(kubectl + ["get", "pods"], env=env, capture_output=True, check=True), 5)
        print(f"{'figure':<58} {'nodelet':>10} {'reference':>10}  target")
        print(f"{'GET pods (Table) at %d pods, HTTPS, ms' % n:<58} {api_ms:>10.1f} {local_ms:>10.1f}  ≤ 20 ms   (reference: local unix-socket API, JSON)")
        print(f"{'  kubectl get pods wall time, ms (for scale)':<58} {kubectl_ms:>10.1f}")

        # 3. CPU with idle watches (no logs -f yet)
        pid = agent.proc.pid  # type: ignore[union-attr]
        base_cpu = await asyncio.to_thread(cpu_percent, pid, idle)
        watches = await open_watches(agent, 100)
        await asyncio.sleep(2)
        watch_cpu = await asyncio.to_thread(cpu_percent, pid, idle)
        print(f"{'agent CPU %% of a core, 100 idle watches (%.0fs)' % idle:<58} {watch_cpu:>10.2f} {base_cpu:>10.2f}  ≤ 1 %     (reference: same agent, no watches)")
        for w in watches:
            w.close()
        watches = []
        await asyncio.sleep(1)
        if many:  # robustness: many idle watches stay cheap (memory and CPU of the agent)
            rss0 = psutil.Process(pid).memory_info().rss
            watches = await open_watches(agent, many)
            await asyncio.sleep(2)
            many_cpu = await asyncio.to_thread(cpu_percent, pid, idle)
            rss1 = psutil.Process(pid).memory_info().rss
            print(f"{'agent CPU %%, %d idle watches; RSS growth MiB' % many:<58} {many_cpu:>10.2f} {(rss1 - rss0) / 2**20:>10.1f}  (CPU reference: the no-watch figure above)")
            for w in watches:
                w.close()
            watches = []
            await asyncio.sleep(2)

        # 2. pod start with and without 100 watches + logs -f
        plain = await pod_start(agent, client, rounds, "plain")
        watches = await open_watches(agent, 100)
        follower = subprocess.Popen(kubectl + ["logs", "-f", f"chatty-{node}"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        await asyncio.sleep(1)
        loaded = await pod_start(agent, client, rounds, "watched")
        print(f"{'pod start s, 100 watches + logs -f (median of %d)' % rounds:<58} {loaded:>10.3f} {plain:>10.3f}  ratio {loaded / plain:.2f} ≤ 1.05   (reference: no watches)")
    finally:
        if follower is not None:
            follower.kill()
            follower.wait()
        for w in watches:
            w.close()
        for f in agent.manifests.iterdir():
            f.unlink()
        while await client.list_pod_sandboxes(labels={LABEL_MANAGED_BY: node}):
            await asyncio.sleep(0.2)
        await asyncio.to_thread(agent.stop)
        await client.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=110)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--idle", type=float, default=20)
    p.add_argument("--many", type=int, default=1000, help="then this many idle watches (0: skip)")
    a = p.parse_args()
    asyncio.run(main(a.pods, a.rounds, a.idle, a.many))
