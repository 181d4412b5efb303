"""kubelet.node.sdnotify.Notifier against a real datagram socket: message format, abstract names, WATCHDOG_USEC/PID."""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from kubelet.node.sdnotify import Notifier


def _bound(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    return s, path


def test_one_datagram_per_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s, path = _bound(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    n = Notifier()
    assert n.enabled
    assert n.notify(READY="1", STATUS="2 pods (2 running)")
    assert s.recv(4096) == b"READY=1\nSTATUS=2 pods (2 running)"
    assert n.notify(WATCHDOG="1")
    assert s.recv(4096) == b"WATCHDOG=1"
    s.close()


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"nlt-notify-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    assert Notifier().notify(READY="1")
    assert s.recv(4096) == b"READY=1"
    s.close()


def test_without_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled and n.notify(READY="1") is False


def test_vanished_socket_is_not_an_error(tmp_path: Path) -> None:
    assert Notifier(str(tmp_path / "gone.sock")).notify(READY="1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [("30000000", None, 30.0), ("30000000", "self", 30.0), ("30000000", "1", 0.0), ("", None, 0.0), ("x", None, 0.0)],
)
def test_watchdog_usec_and_pid(monkeypatch: pytest.MonkeyPatch, usec: str, pid: str | None, expected: float) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is None:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)
    assert Notifier("").watchdog_seconds == expected


def test_status_line_says_what_the_agent_waits_for() -> None:
    from kubelet.app import compute_status_line

    assert compute_status_line(desired=0, phases={}, unsynced=0, pulling={}) == "0 pods"
    assert compute_status_line(desired=2, phases={"Running": 1, "Pending": 1}, unsynced=0, pulling={}) == (
        "2 pods (1 pending, 1 running)")
    assert compute_status_line(desired=3, phases={"Pending": 1}, unsynced=2,
                               pulling={"registry.example/app:1": "default/web-node1"}) == (
        "3 pods (1 pending); waiting for: pulling registry.example/app:1 for default/web-node1, first sync of 2 pods")
