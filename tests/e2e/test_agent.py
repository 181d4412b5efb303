"""The whole agent (`nodelet run` as a process) against the real private containerd: manifests in, pods out."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, cstatus, exec_in, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd]

def phase(agent: AgentProcess, name: str) -> str | None:
    p = agent.pod(name)
    return p["status"]["phase"] if p else None


@pytest.fixture
def agent(containerd, tmp_path_factory):  # type: ignore[no-untyped-def]
    node = f"e2e-{uuid.uuid4().hex[:8]}"
    base = Path(tmp_path_factory.mktemp("agent"))
    a = AgentProcess(base, endpoint=containerd.endpoint, node_name=node, runtime=containerd)
    a.start()
    yield a
    # Remove every manifest and let the agent tear its pods down, then stop it.
    for f in a.manifests.iterdir():
        f.unlink()
    try:
        wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="pods torn down")
    finally:
        code = a.stop()
        assert code == 0, a.log()


WEB = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: e2e
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 5
  initContainers:
  - name: init
    image: %(image)s
    command: ["sh", "-c", "echo init ran"]
  containers:
  - name: httpd
    image: %(image)s
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    ports: [{name: http, containerPort: 8080}]
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: GREETING, value: "hello $(POD_NAME) on $(NODE)"}
  - name: talker
    image: %(image)s
    command: ["sh", "-c"]
    args: ["echo $(GREETING); while :; do sleep 1; done"]
    env:
    - {name: GREETING, value: "talker ready"}
""" % {"image": BUSYBOX}


def test_pod_runs_with_init_env_logs_and_kubelet_labels(agent: AgentProcess, containerd) -> None:  # type: ignore[no-untyped-def]
    agent.write("web.yaml", WEB)
    name = f"web-{agent.config['nodeName']}"
    pod = wait_until(lambda: (p := agent.pod(name, "e2e")) and p["status"]["phase"] == "Running" and all(c["ready"] for c in p["status"]["containerStatuses"]) and p, timeout=60, what="web running")
    uid = pod["metadata"]["uid"]
    assert pod["metadata"]["annotations"]["kubernetes.io/config.hash"] == uid
    assert pod["metadata"]["annotations"]["kubernetes.io/config.source"] == "file"
    assert pod["spec"]["nodeName"] == agent.config["nodeName"]
    ip = pod["status"]["podIP"]
    assert ip.startswith("10.244.250."), ip
    conds = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conds == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True", "ContainersReady": "True", "PodScheduled": "True"}
    assert cstatus(pod, "init")["state"]["terminated"]["reason"] == "Completed"

    rt = runtime_pods(containerd.endpoint, agent.config["nodeName"])[uid]
    (sandbox,) = rt["sandboxes"]
    assert sandbox.labels["io.kubernetes.pod.name"] == name and sandbox.labels["io.kubernetes.pod.namespace"] == "e2e"
    assert sandbox.labels["app"] == "web" and sandbox.annotations["kubernetes.io/config.source"] == "file"
    httpd = next(c for c in rt["containers"] if c.name == "httpd")
    assert httpd.labels["io.kubernetes.container.name"] == "httpd"
    assert httpd.annotations["io.kubernetes.container.restartCount"] == "0"
    assert httpd.annotations["io.kubernetes.container.hash"]
    assert '"containerPort":8080' in httpd.annotations["io.kubernetes.container.ports"]

    env = exec_in(containerd.endpoint, httpd.id, ["env"]).stdout.decode()
    assert f"GREETING=hello {name} on {agent.config['nodeName']}" in env
    assert f"POD_IP={ip}" in env
    # The web server answers on the pod IP (the bridge route is on this host).
    page = exec_in(containerd.endpoint, httpd.id, ["wget", "-qO-", f"http://{ip}:8080/"]).stdout
    assert page == b"nodelet busybox\n"

    log_dir = Path(agent.config["podLogsDir"]) / f"e2e_{name}_{uid}"
    talker_log = log_dir / "talker" / "0.log"
    wait_until(lambda: talker_log.exists() and "stdout F talker ready" in talker_log.read_text(), what="talker log")
    links = list((Path(agent.config["podLogsDir"]).parent / "containers").glob(f"{name}_e2e_talker-*.log"))
    assert len(links) == 1 and links[0].resolve() == talker_log.resolve()
    reasons = [e["reason"] for e in agent.events() if e["involvedObject"].get("uid") == uid]
    assert reasons.count("Started") == 3 and "Created" in reasons


def test_crashloop_backoff_and_restart_policies(agent: AgentProcess) -> None:
    agent.write(
        "crash.yaml",
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  containers:
  - {{name: c, image: {BUSYBOX}, command: ["sh", "-c", "echo boom; exit 3"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: job}}
spec:
  restartPolicy: Never
  containers:
  - {{name: j, image: {BUSYBOX}, command: ["sh", "-c", "echo done"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: flaky}}
spec:
  restartPolicy: OnFailure
  containers:
  - {{name: f, image: {BUSYBOX}, command: ["sh", "-c", "exit 1"]}}
""",
    )
    node = agent.config["nodeName"]
    crash = wait_until(
        lambda: (p := agent.pod(f"crash-{node}")) and cstatus(p, "c").get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" and p,
        timeout=60,
        what="CrashLoopBackOff",
    )
    c = cstatus(crash, "c")
    assert c["restartCount"] >= 1 and c["lastState"]["terminated"]["exitCode"] == 3
    assert c["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=c pod=crash-")
    job = wait_until(lambda: (p := agent.pod(f"job-{node}")) and p["status"]["phase"] == "Succeeded" and p, timeout=60, what="job Succeeded")
    assert cstatus(job, "j")["state"]["terminated"]["reason"] == "Completed" and cstatus(job, "j")["restartCount"] == 0
    assert next(x for x in job["status"]["conditions"] if x["type"] == "Ready")["reason"] == "PodCompleted"
    flaky = wait_until(lambda: (p := agent.pod(f"flaky-{node}")) and cstatus(p, "f")["restartCount"] >= 1 and p, timeout=60, what="OnFailure restart")
    assert flaky["status"]["phase"] == "Running"
    assert any(e["reason"] == "BackOff" for e in agent.events())


def test_manifest_errors_are_precise_and_disturb_nothing(agent: AgentProcess) -> None:
    node = agent.config["nodeName"]
    agent.write("good.yaml", f"apiVersion: v1\nkind: Pod\nmetadata: {{name: good}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: {BUSYBOX}, command: [sleep, '3600']}}\n")
    good = wait_until(lambda: (p := agent.pod(f"good-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
    cid = cstatus(good, "c")["containerID"]
    agent.write("bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: c\n")
    ev = wait_until(lambda: [e for e in agent.events() if e["reason"] == "FailedManifest"], what="FailedManifest event")
    assert "bad.yaml:6" in ev[0]["message"] and "spec.containers[0].image" in ev[0]["message"], ev[0]["message"]
    assert ev[0]["type"] == "Warning" and ev[0]["involvedObject"]["kind"] == "Node"
    # The good pod's file turns invalid: its last good version keeps running, untouched.
    agent.write("good.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: good\nspec: [")
    wait_until(lambda: any("good.yaml" in e["message"] for e in agent.events() if e["reason"] == "FailedManifest"), what="good.yaml error")
    still = agent.pod(f"good-{node}")
    assert still is not None and cstatus(still, "c")["containerID"] == cid and still["status"]["phase"] == "Running"
    node_info = agent.get("/api/v1/node")
    assert any("good.yaml" in e for e in node_info["manifestErrors"])
