"""Container log rotation (upstream ``pkg/kubelet/logs/container_log_manager.go``).

Every 10 s, for each running container whose log is at least ``containerLogMaxSize``: remove leftover ``.tmp``
files, delete the oldest rotated files so that at most ``containerLogMaxFiles - 2`` remain, gzip them, rename the live log to ``<log>.<YYYYMMDD-hhmmss>`` and ask the runtime to reopen it
(``ReopenContainerLog``). The runtime keeps writing to the renamed file until it reopens, so no line is lost;
if the reopen fails the rename is undone.
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Iterable

import cri

log = logging.getLogger(__name__)

__all__ = ["LOG_MONITOR_PERIOD", "ContainerLogManager", "rotated_logs"]

LOG_MONITOR_PERIOD = 10.0
_TIMESTAMP = "%Y%m%d-%H%M%S"


def rotated_logs(log_path: str) -> list[str]:
    """The rotated files of ``log_path`` (``<log>.<timestamp>[.gz]``), oldest first."""
    d, base = os.path.split(log_path)
    try:
        names = os.listdir(d)
    except OSError:
        return []
    out = [os.path.join(d, n) for n in names if n.startswith(base + ".") and not n.endswith(".tmp")]
    return sorted(out)


class ContainerLogManager:
    def __init__(self, client: cri.RuntimeClient, *, max_size: int, max_files: int) -> None:
        self.client = client
        self.max_size = max_size
        self.max_files = max(2, max_files)
        self.rotations = 0

    async def rotate(self, containers: Iterable[tuple[str, str]]) -> int:
        """Rotate the logs of (container id, log path) pairs that reached the size limit; how many were."""
        done = 0
        for cid, path in containers:
            if not path:
                continue
            try:
                if os.stat(path).st_size < self.max_size:
                    continue
            except OSError:
                continue
            try:
                if await self.rotate_log(cid, path):
                    done += 1
            except (OSError, cri.CRIError) as err:
                log.warning("log rotation failed container=%s path=%s err=%s", cid[:13], path, err)
        return done

    async def rotate_log(self, cid: str, path: str) -> bool:
        await asyncio.to_thread(self._prepare, path)
        rotated = f"{path}.{time.strftime(_TIMESTAMP, time.gmtime())}"
        n = 1
        while os.path.exists(rotated) or os.path.exists(rotated + ".gz"):
            rotated = f"{path}.{time.strftime(_TIMESTAMP, time.gmtime())}-{n}"
            n += 1
        os.rename(path, rotated)
        try:
            await self.client.reopen_container_log(cid)
        except cri.CRIError:
            # the runtime still writes to the renamed file: put it back, so nothing is split or lost
            if not os.path.exists(path):
                os.rename(rotated, path)
            raise
        self.rotations += 1
        log.info("container log rotated container=%s path=%s rotated=%s", cid[:13], path, os.path.basename(rotated))
        return True

    def _prepare(self, path: str) -> None:
        d, base = os.path.split(path)
        for n in os.listdir(d):
            if n.startswith(base + ".") and n.endswith(".tmp"):
                Path(d, n).unlink(missing_ok=True)
        rotated = rotated_logs(path)
        keep = self.max_files - 2  # one for the live log, one for the file about to be rotated
        for old in rotated[:max(0, len(rotated) - keep)]:
            Path(old).unlink(missing_ok=True)
        rotated = rotated[max(0, len(rotated) - keep):]
        # the rotated files kept are compressed; the one about to be rotated stays plain until the next round
        for r in rotated:
            if not r.endswith(".gz"):
                self._compress(r)

    @staticmethod
    def _compress(path: str) -> None:
        tmp = path + ".gz.tmp"
        with open(path, "rb") as src, gzip.open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, path + ".gz")
        os.unlink(path)
