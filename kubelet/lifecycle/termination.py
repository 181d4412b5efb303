"""Termination messages: the file mounted at ``terminationMessagePath`` and the ``FallbackToLogsOnError`` tail.

Upstream: ``kuberuntime_container.go`` (``getTerminationMessage``, ``readLastStringFromContainerLogs``): the file's
content up to 4096 bytes; with FallbackToLogsOnError and an empty file, a failed container's last 80 log lines
up to 2048 bytes. The host side of the mount is ``<rootDir>/pods/<uid>/containers/<name>/<restartCount>`` (upstream
uses a random name; a restart count lets the status find it again after an agent restart without a CRI
round trip).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

__all__ = ["MAX_MESSAGE_BYTES", "MAX_LOG_BYTES", "MAX_LOG_LINES", "termination_message_file",
           "read_termination_message", "parse_cri_log_tail", "TerminationMessages"]

MAX_MESSAGE_BYTES = 4096
MAX_LOG_BYTES = 2048
MAX_LOG_LINES = 80


def termination_message_file(root_dir: Path, uid: str, name: str, restart_count: int, *, create: bool = False) -> Path:
    path = root_dir / "pods" / uid / "containers" / name / str(restart_count)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o666)
        os.fchmod(fd, 0o666)  # any user the container runs as may write its message
        os.close(fd)
    return path


def parse_cri_log_tail(data: bytes, *, max_lines: int, max_bytes: int) -> str:
    """The last ``max_lines`` lines of CRI-format log text (partial P pieces joined), at most ``max_bytes``."""
    lines: list[bytes] = []
    partial = b""
    for raw in data.split(b"\n"):
        parts = raw.split(b" ", 3)
        if len(parts) < 3:
            continue
        tag = parts[2]
        msg = parts[3] if len(parts) > 3 else b""
        if tag == b"P":
            partial += msg
            continue
        lines.append(partial + msg)
        partial = b""
    if partial:
        lines.append(partial)
    text = b"\n".join(lines[-max_lines:])
    if lines:
        text += b"\n"
    return text[-max_bytes:].decode(errors="replace")


def read_termination_message(path: Path, *, policy: str, exit_code: int, log_path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MESSAGE_BYTES)
    except OSError:
        data = b""
    if data or policy != "FallbackToLogsOnError" or exit_code == 0 or not log_path:
        return data.decode(errors="replace")
    try:
        size = os.path.getsize(log_path)
        with open(log_path, "rb") as f:
            # enough for 80 lines of 2 KiB messages plus CRI prefixes, without reading a huge log whole
            f.seek(max(0, size - 256 * 1024))
            tail = f.read()
    except OSError:
        return ""
    return parse_cri_log_tail(tail, max_lines=MAX_LOG_LINES, max_bytes=MAX_LOG_BYTES)


class TerminationMessages:
    """Messages of exited containers, read once per container id (an exited container's message is final)."""

    def __init__(self, root_dir: Path, *, capacity: int = 4096) -> None:
        self.root_dir = root_dir
        self.capacity = capacity
        self._cache: OrderedDict[str, str] = OrderedDict()

    def get(self, *, uid: str, name: str, container_id: str, restart_count: int, policy: str, exit_code: int,
            log_path: str) -> str:
        if container_id in self._cache:
            return self._cache[container_id]
        msg = read_termination_message(termination_message_file(self.root_dir, uid, name, restart_count),
                                       policy=policy, exit_code=exit_code, log_path=log_path)
        self._cache[container_id] = msg
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return msg
