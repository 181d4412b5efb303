"""systemd's sd_notify protocol (READY=1, STATUS=…, WATCHDOG=1) without libsystemd: one datagram per message."""
from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, socket_path: str | None = None) -> None:
        path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET", "")
        if path.startswith("@"):
            path = "\0" + path[1:]  # abstract namespace
        self.path = path
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        self.watchdog_seconds = int(usec) / 1e6 if usec.isdigit() and (not pid or pid == str(os.getpid())) else 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.path)

    def notify(self, **fields: str) -> bool:
        """Send e.g. notify(READY="1", STATUS="…"). False when there is no NOTIFY_SOCKET or the send failed."""
        if not self.path:
            return False
        msg = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.sendto(msg, self.path)
            except OSError:
                return False
        return True
