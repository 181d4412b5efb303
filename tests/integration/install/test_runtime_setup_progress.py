"""`nodelet runtime setup` shows its progress: on a terminal (a pty) numbered steps and a bar with image counts
while it builds and imports the images into a fresh private containerd; on a pipe plain lines. Real containerd
under a temp dir, stopped at the end."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.slow]


def setup_cmd(base: Path) -> list[str]:
    return [sys.executable, "-m", "kubelet.cli.main", "runtime", "setup", "--no-install", "--dir", str(base)]


def on_pty(cmd: list[str]) -> tuple[int, str]:
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return p.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_runtime_setup_progress_on_a_terminal_and_on_a_pipe() -> None:
    base = Path(tempfile.mkdtemp(prefix="nlt-rt-", dir="/tmp"))  # short: containerd's socket path is limited
    try:
        code, out = on_pty(setup_cmd(base))
        assert code == 0, out
        assert f"\r\x1b[K[1/2] containerd under {base}…\r\n" in out, out
        assert "\r\x1b[K[2/2] images [--------------------] 0/2 building localhost/nodelet/pause:3.9" in out
        assert "importing localhost/nodelet/busybox:1.35" in out
        assert "\r\x1b[K[2/2] images [####################] 2/2 localhost/nodelet/busybox:1.35 imported\r\n" in out
        assert "containerd running: " in out
        # again on a pipe: plain lines, the images are there now
        p = subprocess.run(setup_cmd(base), capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[:4] == [f"[1/2] containerd under {base}", "[2/2] images",
                             "[2/2] images: 1/2 localhost/nodelet/pause:3.9 present",
                             "[2/2] images: 2/2 localhost/nodelet/busybox:1.35 present"], p.stdout
        assert "\r" not in p.stdout and "\x1b" not in p.stdout
    finally:
        subprocess.run([sys.executable, "-m", "kubelet.cli.main", "runtime", "stop", "--dir", str(base)],
                       capture_output=True, timeout=60)
        subprocess.run(["rm", "-rf", str(base)], check=False)
