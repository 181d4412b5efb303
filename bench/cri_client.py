"""Per-RPC overhead of nodelet's CRI client against a bare generated-stub call to the same containerd.

    python bench/cri_client.py [--n 200] [--runtime-dir DIR]

Starts (or adopts) the private test containerd, creates one sandbox with one running container, then times
N calls each of Version, ListContainers and ContainerStatus, alternating client and bare stub per round so
both see the same runtime state. Prints medians (µs) and the ratio. Expected: ratio ≤ 1.10.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import grpc.aio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cri  # noqa: E402
from cri import api  # noqa: E402
from cri._gen import api_pb2 as pb  # noqa: E402
from cri._gen import api_pb2_grpc as pb_grpc  # noqa: E402
from kubelet.node.runtime.images import BUSYBOX_IMAGE  # noqa: E402
from kubelet.node.runtime.testing import start_test_runtime  # noqa: E402


async def main(n: int, runtime_dir: str | None) -> None:
    instance = await asyncio.to_thread(start_test_runtime, runtime_dir)
    client = cri.RuntimeClient(instance.endpoint)
    uid = uuid.uuid4().hex
    sconf = api.PodSandboxConfig(metadata=api.PodSandboxMetadata(name="bench", uid=uid, namespace="bench"), log_directory=f"/tmp/bench-{uid}")
    sid = await client.run_pod_sandbox(sconf)
    cid = await client.create_container(sid, api.ContainerConfig(name="c", image=BUSYBOX_IMAGE, command=("sleep", "3600")), sconf)
    await client.start_container(cid)
    channel = grpc.aio.insecure_channel(instance.endpoint)
    stub = pb_grpc.RuntimeServiceStub(channel)
    cases = {
        "Version": (lambda: client.version(), lambda: stub.Version(pb.VersionRequest(version="v1"), timeout=10)),
        "ListContainers": (lambda: client.list_containers(), lambda: stub.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter()), timeout=10)),
        "ContainerStatus": (lambda: client.container_status(cid), lambda: stub.ContainerStatus(pb.ContainerStatusRequest(container_id=cid), timeout=10)),
    }
    try:
        print(f"{'RPC':<16} {'nodelet µs':>11} {'bare stub µs':>13} {'ratio':>7}   (median of {n}, same containerd, alternating)")
        for name, (ours, bare) in cases.items():
            for _ in range(20):  # warm both paths
                await ours()
                await bare()
            t_ours, t_bare = [], []
            for _ in range(n):
                t0 = time.perf_counter()
                await ours()
                t1 = time.perf_counter()
                await bare()
                t2 = time.perf_counter()
                t_ours.append(t1 - t0)
                t_bare.append(t2 - t1)
            mo, mb = statistics.median(t_ours) * 1e6, statistics.median(t_bare) * 1e6
            print(f"{name:<16} {mo:>11.0f} {mb:>13.0f} {mo / mb:>7.2f}")
        print("expected: ratio ≤ 1.10")
    finally:
        await channel.close()
        await client.stop_pod_sandbox(sid)
        await client.remove_pod_sandbox(sid)
        await client.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--runtime-dir", default=None)
    a = p.parse_args()
    asyncio.run(main(a.n, a.runtime_dir))
