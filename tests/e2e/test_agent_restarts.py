"""Restarts lose nothing: kill -9 of the agent, containerd restarts, edited and deleted manifests."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, cstatus, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd]


def sleeper(name: str, *, grace: int = 30, extra: str = "") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'echo TERM; exit 0' TERM; echo {extra}; while :; do sleep 0.2; done"]
"""


def new_agent(containerd, tmp_path: Path) -> AgentProcess:  # type: ignore[no-untyped-def]
    return AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}", runtime=containerd)


def cleanup(agent: AgentProcess, containerd) -> None:  # type: ignore[no-untyped-def]
    for f in agent.manifests.iterdir():
        f.unlink()
    if agent.proc is None or agent.proc.poll() is not None:
        agent.start()
    wait_until(lambda: not runtime_pods(containerd.endpoint, agent.config["nodeName"]), timeout=60, what="teardown")
    agent.stop()


def test_kill9_adopts_running_pods_and_catches_up(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agent = new_agent(containerd, tmp_path).start()
    node = agent.config["nodeName"]
    try:
        agent.write("a.yaml", sleeper("a"))
        agent.write("crash.yaml", f"apiVersion: v1\nkind: Pod\nmetadata: {{name: crash}}\nspec:\n  containers:\n  - {{name: c, image: {BUSYBOX}, command: [sh, -c, 'exit 1']}}\n")
        agent.write("gone.yaml", sleeper("gone"))
        a = wait_until(lambda: (p := agent.pod(f"a-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
        crash = wait_until(lambda: (p := agent.pod(f"crash-{node}")) and cstatus(p, "c")["restartCount"] >= 2 and p, timeout=60)
        wait_until(lambda: (p := agent.pod(f"gone-{node}")) and p["status"]["phase"] == "Running", timeout=60)
        before = runtime_pods(containerd.endpoint, node)
        a_cid = cstatus(a, "c")["containerID"]
        restarts = cstatus(crash, "c")["restartCount"]

        agent.kill9()
        (agent.manifests / "gone.yaml").unlink()  # removed while the agent is down
        agent.write("new.yaml", sleeper("new"))  # added while the agent is down
        agent.start()

        wait_until(lambda: (p := agent.pod(f"new-{node}")) and p["status"]["phase"] == "Running", timeout=60, what="new pod started")
        wait_until(lambda: agent.pod(f"gone-{node}") is None and all(
            not any(s.labels["io.kubernetes.pod.name"] == f"gone-{node}" for s in v["sandboxes"]) for v in runtime_pods(containerd.endpoint, node).values()
        ), timeout=60, what="gone pod torn down")
        a2 = agent.pod(f"a-{node}")
        assert a2 is not None and cstatus(a2, "c")["containerID"] == a_cid and cstatus(a2, "c")["restartCount"] == 0
        after = runtime_pods(containerd.endpoint, node)
        a_uid = a["metadata"]["uid"]
        assert [s.id for s in after[a_uid]["sandboxes"]] == [s.id for s in before[a_uid]["sandboxes"]]  # not duplicated
        crash2 = agent.pod(f"crash-{node}")
        assert crash2 is not None and cstatus(crash2, "c")["restartCount"] >= restarts  # counts come back from CRI
        # Backoff survived too: the next restart is not immediate.
        assert cstatus(crash2, "c")["state"].get("waiting", {}).get("reason") in ("CrashLoopBackOff", None)
    finally:
        cleanup(agent, containerd)


def test_edit_replaces_without_overlap_and_delete_stops_with_grace(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agent = new_agent(containerd, tmp_path).start()
    node = agent.config["nodeName"]
    try:
        agent.write("p.yaml", sleeper("p", grace=5, extra="v1"))
        v1 = wait_until(lambda: (p := agent.pod(f"p-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
        agent.write("p.yaml", sleeper("p", grace=5, extra="v2"))
        v2 = wait_until(lambda: (p := agent.pod(f"p-{node}")) and p["metadata"]["uid"] != v1["metadata"]["uid"] and p["status"]["phase"] == "Running" and p, timeout=60)
        rt = runtime_pods(containerd.endpoint, node)
        assert v1["metadata"]["uid"] not in rt  # old pod removed entirely
        (new_c,) = rt[v2["metadata"]["uid"]]["containers"]
        old_log = Path(agent.config["podLogsDir"]) / f"default_p-{node}_{v1['metadata']['uid']}"
        assert not old_log.exists()
        # No window with both running: the new container started after the old one finished (TERM trap ran).
        events = [e for e in agent.events() if e["reason"] in ("Killing", "Started")]
        kill_old = [e for e in events if e["reason"] == "Killing" and e["involvedObject"]["uid"] == v1["metadata"]["uid"]]
        start_new = [e for e in events if e["reason"] == "Started" and e["involvedObject"]["uid"] == v2["metadata"]["uid"]]
        assert kill_old and start_new and kill_old[0]["firstTimestamp"] <= start_new[0]["firstTimestamp"]
        assert new_c.started_at > 0

        t0 = time.monotonic()
        (agent.manifests / "p.yaml").unlink()
        wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=30, what="deleted pod removed")
        assert time.monotonic() - t0 < 5  # the TERM trap exits at once: no need to wait the 5 s grace
        assert agent.pod(f"p-{node}") is None
    finally:
        cleanup(agent, containerd)


def test_containerd_restart_is_survived(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agent = new_agent(containerd, tmp_path).start()
    node = agent.config["nodeName"]
    try:
        agent.write("a.yaml", sleeper("a"))
        a = wait_until(lambda: (p := agent.pod(f"a-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
        containerd.restart()
        agent.write("b.yaml", sleeper("b"))
        wait_until(lambda: (p := agent.pod(f"b-{node}")) and p["status"]["phase"] == "Running", timeout=60, what="pod started after containerd restart")
        a2 = agent.pod(f"a-{node}")
        assert a2 is not None and cstatus(a2, "c")["containerID"] == cstatus(a, "c")["containerID"]
        assert agent.get("/healthz") == "ok"
    finally:
        cleanup(agent, containerd)
