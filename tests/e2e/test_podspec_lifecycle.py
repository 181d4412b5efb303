"""Lifecycle hooks and termination messages on real containerd: postStart/preStop with exec, httpGet, tcpSocket and
sleep; a failed postStart kills the container; preStop runs within the grace period; terminated.message from the
file or the log tail."""
from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.testing import AgentProcess, cstatus, runtime_pods, wait_until
from kubelet.testing_podspec import BUSYBOX, events_for, module_agent, pod_yaml, sh, teardown_pod, wait_pod, wait_running

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("life"))


@pytest.fixture
def http_server() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_post_start_exec_and_failure_kills_the_container(agent: AgentProcess, containerd: Any) -> None:
    agent.write("ps.yaml", pod_yaml("ps", f"""  containers:
  - name: ok
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    lifecycle: {{postStart: {{exec: {{command: ["sh", "-c", "echo hooked > /tmp/post-start"]}}}}}}
  - name: bad
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    lifecycle: {{postStart: {{exec: {{command: ["sh", "-c", "echo no way; exit 7"]}}}}}}
"""))
    pod = wait_pod(agent, "ps", lambda p: "running" in cstatus(p, "ok")["state"] and cstatus(p, "bad")["restartCount"] >= 1,
                   what="ok running, bad restarted")
    uid = pod["metadata"]["uid"]
    assert sh(containerd, pod, "ok", "cat /tmp/post-start") == (0, "hooked\n")
    failed = events_for(agent, uid, "FailedPostStartHook")
    assert failed and all(e["involvedObject"]["fieldPath"] == "spec.containers{bad}" for e in failed)
    assert "exited with 7" in failed[0]["message"] and "no way" in failed[0]["message"]
    assert not [e for e in failed if "{ok}" in e["involvedObject"]["fieldPath"]]
    teardown_pod(agent, containerd, "ps.yaml", uid)


def test_hooks_http_and_tcp_on_a_host_network_pod(agent: AgentProcess, containerd: Any, http_server: tuple[int, list[str]]) -> None:
    port, seen = http_server
    closed = free_port()
    agent.write("net.yaml", pod_yaml("net", f"""  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    lifecycle:
      postStart: {{tcpSocket: {{host: 127.0.0.1, port: {port}}}}}
      preStop: {{httpGet: {{host: 127.0.0.1, port: {port}, path: /pre-stop}}}}
  - name: closed
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    lifecycle:
      postStart: {{tcpSocket: {{host: 127.0.0.1, port: {closed}}}}}
""", extra_spec="  hostNetwork: true\n"))
    pod = wait_pod(agent, "net", lambda p: "running" in cstatus(p, "c")["state"] and cstatus(p, "closed")["restartCount"] >= 1)
    uid = pod["metadata"]["uid"]
    failed = events_for(agent, uid, "FailedPostStartHook")
    assert failed and all("{closed}" in e["involvedObject"]["fieldPath"] for e in failed)
    assert f"127.0.0.1:{closed}" in failed[0]["message"]
    assert seen == []
    teardown_pod(agent, containerd, "net.yaml", uid)
    assert seen == ["/pre-stop"]  # preStop ran before the container was stopped (once: `closed` has none)


def test_pre_stop_exec_and_sleep_run_within_the_grace_period(agent: AgentProcess, containerd: Any, tmp_path: Path) -> None:
    agent.write("stop.yaml", pod_yaml("stop", f"""  volumes: [{{name: out, hostPath: {{path: {tmp_path}}}}}]
  containers:
  - name: exec
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'echo term >> /out/exec; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
    lifecycle: {{preStop: {{exec: {{command: ["sh", "-c", "echo pre-stop >> /out/exec"]}}}}}}
  - name: sleeper
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    lifecycle: {{preStop: {{sleep: {{seconds: 2}}}}}}
  - name: slow
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    lifecycle: {{preStop: {{exec: {{command: ["sleep", "60"]}}}}}}
""", grace=3))
    pod = wait_running(agent, "stop")
    uid = pod["metadata"]["uid"]
    t0 = time.monotonic()
    (agent.manifests / "stop.yaml").unlink()
    wait_until(lambda: all(not c.state == 1 for c in runtime_pods(containerd.endpoint, agent.config["nodeName"]).get(uid, {}).get("containers", [])),
               timeout=30, what="containers stopped")
    took = time.monotonic() - t0
    # preStop then SIGTERM, in order; the sleep hook delays the stop by its 2 s; the slow hook is cut at the 3 s
    # grace and the container still gets ≥ 2 s more (MIN_GRACE) — all in parallel, so well under 3 + 2 + slack
    assert (tmp_path / "exec").read_text() == "pre-stop\nterm\n"
    assert 2 <= took < 12, took
    wait_until(lambda: uid not in runtime_pods(containerd.endpoint, agent.config["nodeName"]), timeout=30)
    failed = events_for(agent, uid, "FailedPreStopHook")
    assert failed and "{slow}" in failed[0]["involvedObject"]["fieldPath"] and "grace period of 3s" in failed[0]["message"]


def test_termination_messages(agent: AgentProcess, containerd: Any) -> None:
    agent.write("tm.yaml", pod_yaml("tm", f"""  containers:
  - name: file
    image: {BUSYBOX}
    command: ["sh", "-c", "printf 'bye bye' > /dev/termination-log; exit 3"]
  - name: custom
    image: {BUSYBOX}
    command: ["sh", "-c", "echo -n custom path > /tmp/why; exit 0"]
    terminationMessagePath: /tmp/why
    securityContext: {{runAsUser: 1000}}
  - name: logs
    image: {BUSYBOX}
    command: ["sh", "-c", "echo line1; echo line2; exit 2"]
    terminationMessagePolicy: FallbackToLogsOnError
  - name: logs-ok
    image: {BUSYBOX}
    command: ["sh", "-c", "echo fine; exit 0"]
    terminationMessagePolicy: FallbackToLogsOnError
""", restart="Never"))
    pod = wait_pod(agent, "tm", lambda p: p["status"]["phase"] == "Failed", what="all terminated")
    term = {c: cstatus(pod, c)["state"]["terminated"] for c in ("file", "custom", "logs", "logs-ok")}
    assert term["file"]["message"] == "bye bye" and term["file"]["exitCode"] == 3
    assert term["custom"]["message"] == "custom path"
    assert term["logs"]["message"] == "line1\nline2\n"
    assert "message" not in term["logs-ok"]  # the log tail is only for failures
    teardown_pod(agent, containerd, "tm.yaml", pod["metadata"]["uid"])
