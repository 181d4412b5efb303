"""Progress of `nodelet install` / `nodelet runtime setup`: steps and a bar redrawn in place on a terminal, plain
lines (no control characters) otherwise — the renderer, and the real command on a pty and on a pipe."""
from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from kubelet.node.progress import Progress, render_bar


def test_bar() -> None:
    assert render_bar(0, 2, width=10) == "[----------]"
    assert render_bar(1, 2, width=10) == "[#####-----]"
    assert render_bar(2, 2, width=10) == "[##########]"
    assert render_bar(0, 0, width=4) == "[----]"


def run(tty: bool) -> str:
    out = io.StringIO()
    p = Progress(2, stream=out, tty=tty)
    p.step("containerd")
    p.step("images")
    p.count(0, 2, "building a:1")
    p.count(1, 2, "a:1 imported")
    p.count(2, 2, "b:1 present")
    p.finish("done")
    return out.getvalue()


def test_terminal_redraws_one_line_per_step() -> None:
    assert run(True) == (
        "\r\x1b[K[1/2] containerd…\n"
        "\r\x1b[K[2/2] images…"
        "\r\x1b[K[2/2] images [--------------------] 0/2 building a:1"
        "\r\x1b[K[2/2] images [##########----------] 1/2 a:1 imported"
        "\r\x1b[K[2/2] images [####################] 2/2 b:1 present\n"
        "done\n")


def test_plain_lines_otherwise() -> None:
    assert run(False) == (
        "[1/2] containerd\n"
        "[2/2] images\n"
        "[2/2] images: 0/2 building a:1\n"
        "[2/2] images: 1/2 a:1 imported\n"
        "[2/2] images: 2/2 b:1 present\n"
        "done\n")


def install_cmd(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "kubelet.cli.main", "install", "--root", str(tmp_path / "root"), "--dry-run",
            "--no-apt", "--no-activate"]


def test_install_on_a_pipe_prints_plain_lines(tmp_path: Path) -> None:
    p = subprocess.run(install_cmd(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:3] == ["[1/3] virtual environment /opt/nodelet/venv (pip install of the source)", "[2/3] files",
                         "[2/3] files: 1/9 /etc/systemd/system/nodelet.service"]
    assert "[2/3] files: 9/9 /etc/nodelet/config.yaml" in lines and "[3/3] CNI plugin and the nodelet command" in lines
    assert "\r" not in p.stdout and "\x1b" not in p.stdout
    assert lines[-1].startswith("nodelet install: ") and "(would change)" in lines[-1]


def test_install_on_a_terminal_shows_a_bar(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    p = subprocess.Popen(install_cmd(tmp_path), stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.wait(timeout=60) == 0
    out = b"".join(chunks).decode()
    assert "\r\x1b[K[2/3] files [####################] 9/9 /etc/nodelet/config.yaml\r\n" in out, out
    assert "\r\x1b[K[2/3] files [##------------------] 1/9 /etc/systemd/system/nodelet.service" in out
    assert "[2/3] files: " not in out  # the plain form is for pipes
