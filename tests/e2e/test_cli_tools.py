"""The diagnostics CLI (`nodelet version|validate|logs|describe|exec|get`) as a user runs it — the real entry point in
a subprocess — against a running agent on the real private containerd, and with the agent stopped (CRI fallback)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, cstatus, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd]

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: tools
  labels: {app: tools}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: talker
    image: %(image)s
    command: ["sh", "-c", "for i in 1 2 3; do echo line $i; done; echo to-stderr >&2; touch /tmp/ready; while :; do sleep 1; done"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
  - name: crasher
    image: %(image)s
    command: ["sh", "-c", "echo run at $(cat /proc/uptime); exit 3"]
""" % {"image": BUSYBOX}


@pytest.fixture
def agent(containerd, tmp_path_factory):  # type: ignore[no-untyped-def]
    node = f"e2e-{uuid.uuid4().hex[:8]}"
    a = AgentProcess(Path(tmp_path_factory.mktemp("cli8")), endpoint=containerd.endpoint, node_name=node, runtime=containerd)
    a.start()
    yield a
    if a.proc is not None and a.proc.poll() is not None:
        a.start()
    for f in a.manifests.iterdir():
        f.unlink()
    try:
        wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="pods torn down")
    finally:
        code = a.stop()
        assert code == 0, a.log()


def nodelet(agent: AgentProcess | None, endpoint: str, *args: str) -> tuple[int, str, str]:
    where = ["--config", str(agent.config_path)] if agent else []  # the daemon's own file: socket, runtime, node name
    cut = args.index("--") if "--" in args else len(args)
    p = subprocess.run([sys.executable, "-m", "kubelet.cli.main", *args[:cut], *where, *args[cut:]],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """One line of the process's stdout within `timeout` seconds."""
    import select
    import time

    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            raise AssertionError(f"no line within {timeout}s (so far {buf!r})")
        ch = os.read(proc.stdout.fileno(), 1)
        if not ch:
            err = proc.stderr.read() if proc.stderr is not None else b""
            raise AssertionError(f"stdout closed (so far {buf!r}); stderr: {err!r}")
        buf += ch
    return buf[:-1].decode()


def exec_on_a_pty(agent: AgentProcess, name: str, typed: bytes) -> tuple[int, str]:
    """`nodelet exec -it` with a real terminal as stdin/stdout: type `typed`, return (exit code, last line shown)."""
    import pty
    import select
    import time

    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    p = subprocess.Popen([sys.executable, "-m", "kubelet.cli.main", "exec", "-it", name, "-c", "talker", "--config", str(agent.config_path),
                          "--", "sh", "-c", "read x; tty >/dev/null && echo on a tty: got $x"],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        os.write(master, typed)  # the terminal buffers it until the remote shell reads
        deadline = time.monotonic() + 30
        while p.poll() is None or select.select([master], [], [], 0)[0]:
            if time.monotonic() > deadline:
                raise AssertionError(f"exec -it did not finish: {out!r}")
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:  # EIO: the other side is closed (the CLI is exiting)
                    break
        p.wait(20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        os.close(master)
    lines = [ln for ln in out.decode(errors="replace").replace("\r", "").split("\n") if ln.strip()]
    return p.returncode, lines[-1] if lines else ""


def running_pod(agent: AgentProcess) -> dict[str, Any]:
    name = f"tools-{agent.config['nodeName']}"

    def ready() -> Any:
        p = agent.pod(name)
        if not p or p["status"]["phase"] != "Running":
            return None
        talker, crasher = cstatus(p, "talker"), cstatus(p, "crasher")
        return p if talker["ready"] and crasher["restartCount"] >= 1 else None

    return wait_until(ready, timeout=90, what="tools pod running, crasher restarted")


def test_cli_against_a_live_agent_then_the_runtime_alone(agent: AgentProcess, containerd) -> None:  # type: ignore[no-untyped-def]
    ep = containerd.endpoint
    agent.write("tools.yaml", POD)
    pod = running_pod(agent)
    name = pod["metadata"]["name"]

    # validate: the agent's own manifest dir is clean; a broken copy is reported with file:line
    code, out, err = nodelet(None, ep, "validate", str(agent.manifests))
    assert (code, out, err) == (0, f"{agent.manifests}: 1 file, 1 pod valid\n", "")

    # version: all three, from where each lives
    code, out, err = nodelet(agent, ep, "version")
    assert code == 0, err
    assert re.fullmatch(r"Client Version: nodelet \S+\nDaemon Version: nodelet \S+ \(node e2e-\w+, .+\)\n"
                        r"Runtime Version: containerd \S+ \(CRI v1, .+\)\n", out), out

    # logs: the pod's CRI log files, both streams, tail and timestamps; previous instance of a restarted container
    # (containerd copies stdout and stderr concurrently: their relative order in the file is not fixed)
    code, out, err = nodelet(agent, ep, "logs", name, "-c", "talker")
    assert (code, err) == (0, "") and out.endswith("\n")
    assert [ln for ln in out.splitlines() if ln != "to-stderr"] == ["line 1", "line 2", "line 3"] and "to-stderr" in out
    code, out, _ = nodelet(agent, ep, "logs", name, "-c", "talker", "--tail", "1", "--timestamps")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (line 3|to-stderr)\n", out), out
    code, out, err = nodelet(agent, ep, "logs", name)
    assert code == 0 and err.startswith('Defaulted container "talker"')
    def two_runs() -> bool:  # (a restart between the two reads would shift them: then read again)
        cur, prev = nodelet(agent, ep, "logs", name, "-c", "crasher")[1], nodelet(agent, ep, "logs", name, "-c", "crasher", "--previous")[1]
        return cur.startswith("run at ") and prev.startswith("run at ") and cur != prev

    wait_until(two_runs, timeout=30, interval=0.5, what="current and previous crasher logs")

    # describe: kubectl's layout with the live readiness probe and the pod's events
    code, out, err = nodelet(agent, ep, "describe", "pod", name)
    assert code == 0, err
    assert f"Name:             {name}\n" in out and "Containers:\n  talker:\n" in out
    assert re.search(r"\n    Readiness: +exec \[cat /tmp/ready\] delay=0s timeout=1s period=1s #success=1 #failure=3\n", out), out
    assert re.search(r"\n      Now: +success \(last probe: success, \d+ in a row", out), (out, agent.get("/api/v1/extra/probes"))
    assert re.search(r"  crasher:\n(.*\n)*?    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    3\n", out), out
    assert re.search(r"Events:\n  Type +Reason +Age +From +Message\n(.*\n)*  Normal +Started .* Started container talker\n", out), out

    # exec: output passed through, exit code propagated
    code, out, err = nodelet(agent, ep, "exec", name, "-c", "talker", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (code, out, err) == (7, "out\n", "err\n"), err

    # exec -i / -t: the runtime's streaming server (WebSocket); stdin in, exit code out
    p = subprocess.run([sys.executable, "-m", "kubelet.cli.main", "exec", "-i", name, "-c", "talker", "--config", str(agent.config_path),
                        "--", "sh", "-c", "read x; echo got $x; echo err >&2; exit 4"], input=b"hello\n", capture_output=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (4, b"got hello\n", b"err\n")
    p = subprocess.run([sys.executable, "-m", "kubelet.cli.main", "exec", "-it", name, "-c", "talker", "--config", str(agent.config_path),
                        "--", "sh", "-c", "read x; echo got $x"], input=b"piped\n", capture_output=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"got piped\n", b"Unable to use a TTY - input is not a terminal or the right kind of file\n")
    assert exec_on_a_pty(agent, name, b"hello\r") == (0, "on a tty: got hello")

    # logs -f: what the container writes later shows up
    follow = subprocess.Popen([sys.executable, "-m", "kubelet.cli.main", "logs", name, "-c", "talker", "-f", "--config", str(agent.config_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = [read_line(follow, 20) for _ in range(4)]
        assert sorted(seen) == ["line 1", "line 2", "line 3", "to-stderr"]
        code, _, err = nodelet(agent, ep, "exec", name, "-c", "talker", "--", "sh", "-c", "echo followed > /proc/1/fd/1")
        assert code == 0, err
        assert read_line(follow, 20) == "followed"
    finally:
        follow.kill()
        follow.wait(10)
        assert follow.stdout and follow.stderr
        follow.stdout.close()
        follow.stderr.close()

    # top: the pod's running containers from CRI stats
    code, out, err = nodelet(agent, ep, "top", "pods", "--containers")
    assert code == 0, err
    assert re.fullmatch(rf"POD +NAME +CPU\(cores\) +MEMORY\(bytes\)\n(?:{name} +crasher .*\n)?{name} +talker +\d+m +\d+Mi\n", out), out
    code, out, err = nodelet(agent, ep, "top", "node")
    assert code == 0 and re.fullmatch(rf"NAME +CPU\(cores\) +CPU\(%\) +MEMORY\(bytes\) +MEMORY\(%\)\n{agent.config['nodeName']} +\d+m +\d+% +\d+Mi +\d+%\n", out), out

    # net: the pod's veth and IP on the test bridge (other tests' pods may share it; only ours is asserted)
    code, out, err = nodelet(agent, ep, "net")
    assert err == "" and code in (0, 1), err
    ip = pod["status"]["podIP"]
    assert re.search(rf"\ndefault +{name} +{re.escape(ip)} +veth[0-9a-f]{{8}} +[0-9a-f]{{13}}\n", out), out
    assert out.startswith("bridge nlt-br0: up, 10.244.250.1/24") and "podCIDR 10.244.250.0/24 routed via the bridge" in out, out

    logs_before = nodelet(agent, ep, "logs", name, "-c", "talker")[1]
    # the daemon stops (pods keep running): read-only commands go to the runtime and say so
    assert agent.stop() == 0
    code, out, err = nodelet(agent, ep, "get", "pods")
    assert code == 0 and err == "nodelet: daemon not reachable; pods read from the container runtime directly\n"
    assert re.match(rf"NAME +READY +STATUS +RESTARTS +AGE\n{name} +2/2 +Running +\d+", out) or \
        re.match(rf"NAME +READY +STATUS +RESTARTS +AGE\n{name} +1/2 ", out), out
    code, out2, err = nodelet(agent, ep, "logs", name, "-c", "talker")
    assert (code, out2) == (0, logs_before)
    assert err == "nodelet: daemon not reachable; pod and logs read from the container runtime directly\n"
    code, out, err = nodelet(agent, ep, "exec", name, "-c", "talker", "--", "cat", "/tmp/ready")
    assert code == 0, err
    code, out, err = nodelet(agent, ep, "describe", "pod", name)
    assert code == 0 and "  talker:\n" in out and "Events:" not in out


def test_get_pods_watch_follows_a_pod_to_running(agent: AgentProcess) -> None:
    w = subprocess.Popen([sys.executable, "-m", "kubelet.cli.main", "get", "pods", "-w", "--config", str(agent.config_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        agent.write("tools.yaml", POD.replace("name: tools\n", "name: watched\n", 1))
        name = f"watched-{agent.config['nodeName']}"
        lines = []
        while not any(ln.startswith(name) and " Running " in ln for ln in lines):
            lines.append(read_line(w, 60))
        assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], lines
        assert all(ln.startswith(name) for ln in lines[1:]), lines
    finally:
        w.kill()
        w.wait(10)
        assert w.stdout and w.stderr
        w.stdout.close()
        w.stderr.close()
