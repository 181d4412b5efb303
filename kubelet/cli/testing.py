"""Test helpers for the CLI: a LocalAPI on its own loop in a thread (the CLI is synchronous), CRI log files."""
from __future__ import annotations

import asyncio
import gzip
import os
import threading
from typing import Any

__all__ = ["ServerThread", "write_cri_log"]


class ServerThread:
    """A LocalAPI over `view` on its own event loop in a thread, so a synchronous CLI can call it."""

    def __init__(self, view: Any, path: str) -> None:
        from kubelet.server.api import LocalAPI

        self.loop = asyncio.new_event_loop()
        self.api = LocalAPI(view, socket_path=path, healthz_port=None)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.api.start(), self.loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def write_cri_log(path: str, entries: list[tuple[str, str, str, str]], *, gz: bool = False, append: bool = False) -> None:
    """Write (timestamp, stream, P|F, message) entries in the CRI format."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = "".join(f"{ts} {stream} {tag} {msg}\n" for ts, stream, tag, msg in entries).encode()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "ab" if append else "wb") as f:
            f.write(data)
