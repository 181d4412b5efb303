"""Helpers for the pod-spec e2e tests (volumes, security, resources, hooks): one agent per module, shell in a
container, wait for a container state. Test-only; nothing in the agent imports this."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Iterator

import psutil

from kubelet.testing import BUSYBOX, AgentProcess, cstatus, exec_in, runtime_pods, wait_until

__all__ = ["BUSYBOX", "module_agent", "pod_yaml", "sh", "wait_running", "wait_pod", "events_for", "container_id",
           "containerd_oom_score_adj", "teardown_pod"]


def module_agent(containerd: Any, base: Path, **extra: Any) -> Iterator[AgentProcess]:
    a = AgentProcess(base, endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}", runtime=containerd,
                     extra={"nodeIP": "127.0.0.1", **extra})
    a.start()
    try:
        yield a
    finally:
        for f in a.manifests.iterdir():
            f.unlink()
        try:
            wait_until(lambda: not runtime_pods(containerd.endpoint, a.config["nodeName"]), timeout=90,
                       what="teardown")
        finally:
            a.stop()


def pod_yaml(name: str, body: str, *, restart: str = "Always", grace: int = 2, extra_spec: str = "") -> str:
    """A pod manifest; ``body`` is the indented YAML under spec (containers:, volumes: …)."""
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: {grace}
{extra_spec}{body}"""


def full_name(agent: AgentProcess, name: str) -> str:
    return f"{name}-{agent.config['nodeName']}"


def wait_pod(agent: AgentProcess, name: str, pred: Any, *, timeout: float = 60, what: str = "") -> dict[str, Any]:
    full = full_name(agent, name)
    return wait_until(lambda: (p := agent.pod(full)) and pred(p) and p, timeout=timeout,
                      what=what or f"pod {name}")


def wait_running(agent: AgentProcess, name: str, *containers: str, timeout: float = 60) -> dict[str, Any]:
    def ok(p: dict[str, Any]) -> bool:
        names = containers or tuple(c["name"] for c in p["status"].get("containerStatuses", []))
        return bool(names) and all("running" in cstatus(p, n).get("state", {}) for n in names)

    return wait_pod(agent, name, ok, timeout=timeout, what=f"pod {name} running")


def container_id(pod: dict[str, Any], name: str) -> str:
    return str(cstatus(pod, name)["containerID"].split("://", 1)[1])


def sh(containerd: Any, pod: dict[str, Any], container: str, script: str) -> tuple[int, str]:
    """Run ``sh -c script`` in the container: (exit code, stdout+stderr)."""
    r = exec_in(containerd.endpoint, container_id(pod, container), ["sh", "-c", script])
    return r.exit_code, (r.stdout + r.stderr).decode()


def events_for(agent: AgentProcess, uid: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in agent.events() if e["involvedObject"].get("uid") == uid and e["reason"] == reason]


def containerd_oom_score_adj(containerd: Any) -> int:
    """The oom_score_adj of the test containerd process (with restrict_oom_score_adj, containers never go below)."""
    sock = str(containerd.layout.base)
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "containerd" and any(sock in a for a in p.info["cmdline"] or []):
            return int(Path(f"/proc/{p.pid}/oom_score_adj").read_text())
    raise AssertionError("test containerd process not found")


def teardown_pod(agent: AgentProcess, containerd: Any, file: str, uid: str) -> None:
    (agent.manifests / file).unlink(missing_ok=True)
    wait_until(lambda: uid not in runtime_pods(containerd.endpoint, agent.config["nodeName"]), timeout=60,
               what=f"pod {uid} removed")
