"""The real /usr/bin/kubectl (1.32) driving nodelet's streaming verbs against real pods on the test containerd:
exec (exit codes, stdin and its EOF, -it on a pty with resize), attach, cp both ways, port-forward (HTTP to busybox
httpd through a forwarded port, two connections at once, the pod's side closing) — over the WebSocket protocols
kubectl tries first and over its plain SPDY fall-back — through nodelet's own Kubernetes API (`nodelet run`)."""
from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd]

KUBECTL = "/usr/bin/kubectl"

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: streams
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: shell
    image: {image}
    command: ["sh", "-c", "mkdir -p /data && echo from-the-pod > /data/in-pod.txt && exec sleep 3600"]
  - name: web
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo hello-through-port-forward > /www/index.html && exec httpd -f -p 8080 -h /www"]
  - name: echoer
    image: {image}
    stdin: true
    command: ["sh", "-c", "echo echoer started; while read l; do echo \\"attached: $l\\"; done"]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    agent: AgentProcess
    pod: str  # as kubectl users name it: the manifest's name (the API also answers to <name>-<node>)
    kenv: dict[str, str]


@pytest.fixture(scope="module")
def env(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One agent serving the Kubernetes API (kubelet/server/apiserver) with the streaming routes, one pod."""
    assert os.access(KUBECTL, os.X_OK), "kubectl 1.32 must be installed at /usr/bin/kubectl"
    node = f"e2e-{uuid.uuid4().hex[:8]}"
    base = Path(tmp_path_factory.mktemp("streams"))
    agent = AgentProcess(base, endpoint=containerd.endpoint, node_name=node, runtime=containerd,
                         extra={"nodeIP": "127.0.0.1", "apiPort": _free_port()})
    agent.write("streams.yaml", POD.format(image=BUSYBOX))
    agent.start()
    try:
        def running() -> bool:
            p = agent.pod(f"streams-{node}")
            cs = (p or {}).get("status", {}).get("containerStatuses", [])
            return len(cs) == 3 and all("running" in (c.get("state") or {}) for c in cs)

        wait_until(running, timeout=60, what="the streams pod running")
        wait_until(lambda: Path(agent.config["adminKubeconfig"]).exists(), timeout=20, what="admin kubeconfig")
        home = base / "home"
        home.mkdir()
        kenv = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": agent.config["adminKubeconfig"]}
        yield Env(agent=agent, pod="streams", kenv=kenv)
    finally:
        for f in agent.manifests.iterdir():
            f.unlink()
        try:
            wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="pods torn down")
        finally:
            code = agent.stop()
            assert code == 0, agent.log()


def kubectl(kenv: dict[str, str], *args: str, input: bytes | None = None, timeout: float = 30,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([KUBECTL, *args], input=input, capture_output=True, timeout=timeout, env={**kenv, **(extra_env or {})})


SPDY_ONLY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_exec_output_exit_codes_and_stdin(env: Env, transport: str) -> None:
    pod, kenv = env.pod, env.kenv
    extra = SPDY_ONLY if transport == "spdy" else {}
    p = kubectl(kenv, "exec", pod, "-c", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3", extra_env=extra)
    assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\ncommand terminated with exit code 3\n"), p
    p = kubectl(kenv, "exec", pod, "-c", "shell", "--", "true", extra_env=extra)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b""), p
    # stdin, and its end reaching the command (cat and wc exit only at EOF)
    blob = os.urandom(200_000)
    p = kubectl(kenv, "exec", "-i", pod, "-c", "shell", "--", "sh", "-c", "cat > /tmp/blob; wc -c < /tmp/blob; md5sum /tmp/blob",
                input=blob, extra_env=extra)
    import hashlib
    assert p.returncode == 0, p
    assert p.stdout.split() == [b"200000", hashlib.md5(blob).hexdigest().encode(), b"/tmp/blob"]
    p = kubectl(kenv, "exec", pod, "-c", "nope", "--", "true", extra_env=extra)
    assert p.returncode == 1 and b"container nope is not valid" in p.stderr, p
    assert f"verb=exec stream opened protocol={transport}" in env.agent.log_path.read_text()


def _read_until(fd: int, needle: bytes, timeout: float, seen: bytearray) -> None:
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} not shown within {timeout}s; screen so far: {bytes(seen)!r}")
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                raise AssertionError(f"terminal closed before {needle!r}; screen: {bytes(seen)!r}") from None
            if not chunk:
                raise AssertionError(f"terminal closed before {needle!r}; screen: {bytes(seen)!r}")
            seen += chunk


def test_exec_it_on_a_pty_with_resize_and_exit_code(env: Env) -> None:
    import fcntl
    import pty
    import struct
    import termios

    pod, kenv = env.pod, env.kenv
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    # the terminal's size reaches the runtime asynchronously (as with the kubelet): wait for the first one
    script = ("tty >/dev/null && echo on-a-tty; until s=$(stty size 2>/dev/null) && [ -n \"$s\" ]; do sleep 0.1; done; "
              "echo size $s; while [ \"$(stty size 2>/dev/null)\" = \"$s\" ]; do sleep 0.1; done; "
              "echo resized to $(stty size); read x; echo got $x; exit 7")
    def controlling_tty() -> None:  # so that resizing the terminal sends kubectl SIGWINCH, as a real one does
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([KUBECTL, "exec", "-it", pod, "-c", "shell", "--", "sh", "-c", script],
                         stdin=slave, stdout=slave, stderr=slave, env=kenv, preexec_fn=controlling_tty)
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"size 30 100", 30, seen)
        assert b"on-a-tty" in seen
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # kubectl gets SIGWINCH
        _read_until(master, b"resized to 40 120", 30, seen)
        os.write(master, b"typed\r")
        _read_until(master, b"got typed", 30, seen)
        assert p.wait(30) == 7
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        os.close(master)


def test_attach_sees_output_and_takes_stdin(env: Env) -> None:
    pod, kenv = env.pod, env.kenv
    p = subprocess.Popen([KUBECTL, "attach", "-i", pod, "-c", "echoer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=kenv)
    assert p.stdin is not None and p.stdout is not None
    seen = bytearray()
    try:
        for word in (b"one", b"two"):
            p.stdin.write(word + b"\n")
            p.stdin.flush()
            _read_until(p.stdout.fileno(), b"attached: " + word, 20, seen)
    finally:
        p.kill()
        p.wait(10)
    # the container's process is still there after the client left: attach again
    p2 = subprocess.Popen([KUBECTL, "attach", "-i", pod, "-c", "echoer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=kenv)
    assert p2.stdin is not None and p2.stdout is not None
    try:
        p2.stdin.write(b"three\n")
        p2.stdin.flush()
        _read_until(p2.stdout.fileno(), b"attached: three", 20, bytearray())
    finally:
        p2.kill()
        p2.wait(10)


def test_cp_both_ways(env: Env, tmp_path: Path) -> None:
    pod, kenv = env.pod, env.kenv
    src = tmp_path / "up"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "sub").mkdir()
    (src / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    p = kubectl(kenv, "cp", str(src), f"{pod}:/tmp/up", "-c", "shell")
    assert p.returncode == 0, p
    p = kubectl(kenv, "exec", pod, "-c", "shell", "--", "sh", "-c", "cat /tmp/up/a.txt; wc -c < /tmp/up/sub/b.bin")
    assert p.stdout.split() == [b"alpha", b"70000"], p
    down = tmp_path / "down"
    p = kubectl(kenv, "cp", f"{pod}:/tmp/up", str(down), "-c", "shell")
    assert p.returncode == 0, p
    assert (down / "a.txt").read_text() == "alpha\n"
    assert (down / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    p = kubectl(kenv, "cp", f"{pod}:/data/in-pod.txt", str(tmp_path / "one.txt"), "-c", "shell")
    assert p.returncode == 0 and (tmp_path / "one.txt").read_text() == "from-the-pod\n", p
    shutil.rmtree(down)


def _http_get(port: int) -> bytes:
    """HTTP/1.0: busybox httpd answers and closes, so reading to EOF also proves the pod side's close reaches us."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_port_forward(env: Env, transport: str) -> None:
    pod, kenv = env.pod, env.kenv
    local = _free_port()
    extra = SPDY_ONLY if transport == "spdy" else {}
    p = subprocess.Popen([KUBECTL, "port-forward", f"pod/{pod}", f"{local}:8080"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env={**kenv, **extra})
    assert p.stdout is not None
    try:
        _read_until(p.stdout.fileno(), b"Forwarding from 127.0.0.1:", 20, bytearray())
        reply = _http_get(local)
        assert reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n")[0], reply
        assert reply.endswith(b"hello-through-port-forward\n")
        # two connections at once: both open before either is answered
        a = socket.create_connection(("127.0.0.1", local), timeout=20)
        b = socket.create_connection(("127.0.0.1", local), timeout=20)
        try:
            b.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            a.sendall(b"GET /missing HTTP/1.0\r\n\r\n")
            outs = []
            for s in (a, b):
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
                outs.append(out)
        finally:
            a.close()
            b.close()
        assert b" 404 " in outs[0].split(b"\r\n")[0] and outs[1].endswith(b"hello-through-port-forward\n"), outs
        # a port nobody listens on: the connection fails, kubectl reports it, the forward keeps working
        assert _http_get(local).endswith(b"hello-through-port-forward\n")
        assert p.poll() is None
    finally:
        p.terminate()
        p.wait(10)
    assert f"port-forward opened pod=default/{pod}-{env.agent.config['nodeName']} transport={transport}" in env.agent.log_path.read_text()


def test_port_forward_to_a_closed_port_is_an_error_not_a_hang(env: Env) -> None:
    pod, kenv = env.pod, env.kenv
    local = _free_port()
    p = subprocess.Popen([KUBECTL, "port-forward", f"pod/{pod}", f"{local}:9999"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=kenv)
    assert p.stdout is not None and p.stderr is not None
    try:
        _read_until(p.stdout.fileno(), b"Forwarding from 127.0.0.1:", 20, bytearray())
        with socket.create_connection(("127.0.0.1", local), timeout=20) as s:
            s.sendall(b"x")
            s.settimeout(20)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        _read_until(p.stderr.fileno(), b"9999", 20, bytearray())
    finally:
        p.terminate()
        p.wait(10)


def test_a_viewer_may_not_exec_or_port_forward(env: Env) -> None:
    viewer = env.agent.base / "viewer.conf"
    viewer.write_text(subprocess.run(
        ["python3", "-m", "kubelet.cli.main", "kubeconfig", "--config", str(env.agent.config_path), "--user", "viewer"],
        capture_output=True, text=True, check=True, timeout=30).stdout)
    venv = {**env.kenv, "KUBECONFIG": str(viewer)}
    for extra in ({}, SPDY_ONLY):  # the WebSocket GET is checked by the handler, the SPDY POST by the middleware
        p = kubectl(venv, "exec", env.pod, "-c", "shell", "--", "touch", "/tmp/viewer-was-here", extra_env=extra)
        assert p.returncode == 1 and b'User "nodelet-viewer" cannot create resource "pods/exec"' in p.stderr, p
    p = kubectl(env.kenv, "exec", env.pod, "-c", "shell", "--", "ls", "/tmp/viewer-was-here")
    assert p.returncode != 0 and b"No such file" in p.stderr, p
    p = kubectl(venv, "port-forward", f"pod/{env.pod}", f"{_free_port()}:8080", timeout=30)
    assert p.returncode == 1 and b'cannot create resource "pods/portforward"' in p.stderr, p


def test_a_client_that_vanishes_is_cleaned_up(env: Env) -> None:
    """kubectl killed mid-exec and mid-port-forward: the API ends both streams (and its runtime sessions) itself."""
    log_path = env.agent.log_path

    def closed(what: str) -> int:
        return log_path.read_text().count(what)

    exec_closed, pf_closed = closed("verb=exec stream closed"), closed("port-forward closed pod=")

    def cat_gone() -> bool:  # the runtime session was closed, so the command's stdin ended and `cat` exited
        ps = kubectl(env.kenv, "exec", env.pod, "-c", "shell", "--", "ps", "-o", "args")
        return ps.returncode == 0 and b"\ncat" not in ps.stdout and b" cat\n" not in ps.stdout

    p = subprocess.Popen([KUBECTL, "exec", "-i", env.pod, "-c", "shell", "--", "sh", "-c", "echo ready; exec cat"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.kenv)
    assert p.stdout is not None
    _read_until(p.stdout.fileno(), b"ready", 20, bytearray())
    assert not cat_gone()
    p.kill()
    p.wait(10)
    wait_until(lambda: closed("verb=exec stream closed") > exec_closed, timeout=20, what="the exec stream closed")
    wait_until(cat_gone, timeout=20, interval=0.3, what="the abandoned exec's process gone")
    assert b"sleep 3600" in kubectl(env.kenv, "exec", env.pod, "-c", "shell", "--", "ps", "-o", "args").stdout  # ps sees the container
    local = _free_port()
    p = subprocess.Popen([KUBECTL, "port-forward", f"pod/{env.pod}", f"{local}:8080"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env.kenv)
    assert p.stdout is not None
    _read_until(p.stdout.fileno(), b"Forwarding from 127.0.0.1:", 20, bytearray())
    with socket.create_connection(("127.0.0.1", local), timeout=20) as s:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: pod\r\n\r\n")  # keep-alive: the connection stays open
        assert s.recv(12).startswith(b"HTTP/1.")
        p.kill()
        p.wait(10)
    wait_until(lambda: closed("port-forward closed pod=") > pf_closed, timeout=20, what="the port-forward closed")
