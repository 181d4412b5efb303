"""maxPods admission in the agent's manifest handling (no runtime: workers are never started here)."""
from __future__ import annotations

from dataclasses import replace

import cri
from kubelet.app import build_agent
from kubelet.config import load_config
from kubelet.testing import pod
from kubelet.types import ManifestSet


class NoWorkers:
    def __init__(self) -> None:
        self.synced: list[str] = []
        self.terminated: list[str] = []

    def sync(self, uid: str) -> None:
        self.synced.append(uid)

    def terminate(self, uid: str) -> None:
        self.terminated.append(uid)

    def is_terminating(self, uid: str) -> bool:
        return False

    def uids(self) -> set[str]:
        return set()

    async def stop(self) -> None:
        pass


def test_pods_over_max_pods_are_rejected_as_out_of_pods(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(None, {"maxPods": 2, "nodeName": "node1", "rootDir": str(tmp_path)})
    agent = build_agent(config, client=cri.RuntimeClient(config.container_runtime_endpoint), host_ip="192.0.2.10",
                        workers=lambda **callbacks: NoWorkers()).agent
    pods = [replace(pod("c", uid=f"u{i}", name=f"p{i}-node1"), annotations={"kubernetes.io/config.seen": f"2026-01-0{i + 1}T00:00:00Z"}) for i in range(3)]
    agent.on_manifests(ManifestSet(pods=tuple(pods)))
    assert set(agent.desired) == {"u0", "u1"}
    assert agent.workers.synced == ["u0", "u1"]  # type: ignore[attr-defined]
    objs = {o["metadata"]["name"]: o for o in agent.pod_objects()}
    assert objs["p2-node1"]["status"] == {
        "phase": "Failed",
        "reason": "OutOfpods",
        "message": "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2",
    }
    assert [e["reason"] for e in agent.recorder.list()] == ["OutOfpods"]
    # room again: the rejected pod is admitted
    agent.on_manifests(ManifestSet(pods=tuple(pods[1:])))
    assert set(agent.desired) == {"u1", "u2"} and agent.rejected == {}
