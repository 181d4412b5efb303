"""`nodelet run` as systemd runs it (Type=notify, WatchdogSec): READY=1 once the agent serves (manifests read, pods
handed to workers — never waiting on an image pull), STATUS= with pod counts and what it waits for, WATCHDOG=1 while
healthy — sent to a NOTIFY_SOCKET this test opens (systemd is not PID 1 here)."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.slow]

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: sleeper, namespace: notify}
spec:
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  containers:
  - {name: c, image: %s, command: ["sleep", "3600"]}
"""


class NotifyListener:
    """A datagram socket standing in for systemd's notify socket; keeps (monotonic time, fields) per message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def drain(self) -> list[tuple[float, dict[str, str]]]:
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def first(self, key: str, value: str | None = None) -> tuple[float, dict[str, str]] | None:
        return next((m for m in self.drain() if key in m[1] and (value is None or m[1][key] == value)), None)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    n = NotifyListener(Path("/tmp") / f"nlt-notify-{os.getpid()}-{uuid.uuid4().hex[:6]}.sock")
    yield n
    n.close()
    n.path.unlink(missing_ok=True)


def test_ready_status_and_watchdog(containerd, tmp_path: Path, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    node = f"notify-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # WatchdogSec=2s: pings every second
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    agent = AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=node)
    agent.write("sleeper.yaml", POD % BUSYBOX)
    agent.start()
    try:
        ready = wait_until(lambda: listener.first("READY", "1"), timeout=60, what="READY=1")
        # READY comes once the manifests are read: the STATUS line counts the pod
        assert ready[1]["STATUS"].startswith("1 pods"), ready
        assert all("READY" not in f for t, f in listener.messages if t < ready[0])
        pod = agent.pod(f"sleeper-{node}", "notify")
        assert pod is not None and pod["status"].get("phase") in ("Pending", "Running")
        wait_until(lambda: any(f.get("STATUS") == "1 pods (1 running)" for _, f in listener.drain()), timeout=60, what="STATUS with 1 running")
        # the watchdog is fed while the sync loop is healthy: several pings, about WatchdogSec/2 apart
        start = time.monotonic()

        def pings() -> list[float] | None:
            ts = [t for t, f in listener.drain() if f.get("WATCHDOG") == "1" and t >= start]
            return ts if len(ts) >= 3 else None

        times = wait_until(pings, timeout=10, what="3 WATCHDOG=1 pings")
        pings_ = times[:3]
        gaps = [b - a for a, b in zip(pings_, pings_[1:])]
        assert all(0.5 < g < 1.9 for g in gaps), gaps
    finally:
        for f in agent.manifests.iterdir():
            f.unlink()
        try:
            wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="pods torn down")
        finally:
            assert agent.stop() == 0, agent.log()


def test_no_watchdog_pings_without_watchdog_usec(containerd, tmp_path: Path, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    node = f"notify-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    agent = AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=node)
    agent.start()
    try:
        ready = wait_until(lambda: listener.first("READY", "1"), timeout=60, what="READY=1")
        assert ready[1]["STATUS"] == "0 pods"
        wait_until(lambda: len([f for _, f in listener.drain() if "STATUS" in f]) >= 2, timeout=15, what="a second STATUS")
        assert not any("WATCHDOG" in f for _, f in listener.drain())
    finally:
        assert agent.stop() == 0, agent.log()


class StalledRegistry:
    """A "registry" on loopback that accepts connections and never answers: a first image pull that takes as long as
    this test wants (a real slow path through the real containerd, not a fake)."""

    def __init__(self) -> None:
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.closed = True
        self.srv.close()
        for c in self.conns:
            c.close()


SLOW_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: slow, namespace: notify}
spec:
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  containers:
  - {name: c, image: "%s", imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}
"""


def test_ready_does_not_wait_for_a_slow_first_pull(containerd, tmp_path: Path, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Before: READY=1 waited for every pod's first sync, so a pull slower than TimeoutStartSec got nodelet killed
    and restarted in a loop. Now READY=1 comes while the pull still runs, and STATUS= names it."""
    node = f"notify-{uuid.uuid4().hex[:8]}"
    registry = StalledRegistry()
    image = f"127.0.0.1:{registry.port}/slow/app:1"
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    agent = AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=node)
    agent.write("slow.yaml", SLOW_POD % image)
    agent.start()
    try:
        ready = wait_until(lambda: listener.first("READY", "1"), timeout=30, what="READY=1 during the pull")
        wait_until(lambda: registry.conns, timeout=30, what="the pull to connect")
        waiting = wait_until(lambda: next((f["STATUS"] for _, f in listener.drain()
                                           if f"pulling {image} for notify/slow-{node}" in f.get("STATUS", "")), None),
                             timeout=15, what="STATUS naming the pull")
        assert waiting.startswith("1 pods"), waiting
        pod = agent.pod(f"slow-{node}", "notify")
        assert pod is not None and pod["status"]["phase"] == "Pending"
        assert ready[1]["STATUS"].startswith("1 pods")
    finally:
        registry.close()  # the pull fails now, so teardown is quick
        for f in agent.manifests.iterdir():
            f.unlink()
        try:
            wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="pods torn down")
        finally:
            assert agent.stop() == 0, agent.log()
