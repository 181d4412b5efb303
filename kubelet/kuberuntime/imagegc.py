"""Image garbage collection by disk thresholds (upstream ``pkg/kubelet/images/image_gc_manager.go``).

Every 5 minutes: the usage of the filesystem holding the images (ImageFsInfo's mountpoint, ``statvfs``) is
``100 - available*100/capacity``. At or above ``imageGCHighThresholdPercent`` (85) images are removed until
``capacity*(100-low)/100 - available`` bytes are freed (``imageGCLowThresholdPercent``, 80): least recently
used first (then oldest detected), never an image used by any container the runtime has (running or not), never
the sandbox (pause) image, never a pinned image, never one detected less than ``min_age`` ago (2 min upstream).
``compute_images_to_remove`` is the pure choice; ``ImageGCManager`` observes and acts.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import cri

log = logging.getLogger(__name__)

__all__ = ["IMAGE_GC_PERIOD", "ImageRecord", "compute_amount_to_free", "compute_images_to_remove", "ImageGCManager"]

IMAGE_GC_PERIOD = 300.0
DEFAULT_MIN_AGE = 120.0


@dataclass(frozen=True, kw_only=True)
class ImageRecord:
    id: str
    size: int
    first_detected: float
    last_used: float
    in_use: bool = False
    pinned: bool = False


def compute_amount_to_free(*, capacity: int, available: int, high: int, low: int) -> int:
    """Bytes to free: 0 below the high threshold, else down to the low one."""
    if capacity <= 0:
        return 0
    usage = 100 - available * 100 // capacity
    if usage < high:
        return 0
    return max(0, capacity * (100 - low) // 100 - available)


def compute_images_to_remove(records: Iterable[ImageRecord], *, amount: int, now: float, min_age: float) -> list[ImageRecord]:
    """Unused, unpinned images old enough, least recently used first, until ``amount`` bytes are covered."""
    candidates = sorted((r for r in records if not r.in_use and not r.pinned and now - r.first_detected >= min_age),
                        key=lambda r: (r.last_used, r.first_detected))
    out, freed = [], 0
    for r in candidates:
        if freed >= amount:
            break
        out.append(r)
        freed += r.size
    return out


class ImageGCManager:
    def __init__(self, client: cri.RuntimeClient, *, high: int, low: int, min_age: float = DEFAULT_MIN_AGE,
                 clock: Callable[[], float] = time.time,
                 statvfs: Callable[[str], os.statvfs_result] = os.statvfs) -> None:
        self.client = client
        self.high, self.low, self.min_age = high, low, min_age
        self.clock = clock
        self.statvfs = statvfs
        self.first_detected: dict[str, float] = {}
        self.last_used: dict[str, float] = {}
        self.removed: list[str] = []

    async def _sandbox_image(self) -> str:
        try:
            info = (await self.client.status(verbose=True)).info
            return str(json.loads(info.get("config", "{}")).get("sandboxImage", ""))
        except (cri.CRIError, ValueError):
            return ""

    async def observe(self) -> list[ImageRecord]:
        """The runtime's images with their usage (refreshing first-detected and last-used times)."""
        now = self.clock()
        images = await self.client.list_images()
        used: set[str] = set()
        for c in await self.client.list_containers():
            used.update(x for x in (c.image_ref, c.image) if x)
        sandbox = await self._sandbox_image()
        records = []
        for img in images:
            names = {img.id, *img.repo_tags, *img.repo_digests}
            in_use = bool(names & used) or (sandbox in names if sandbox else False)
            self.first_detected.setdefault(img.id, now)
            if in_use:
                self.last_used[img.id] = now
            records.append(ImageRecord(id=img.id, size=img.size, first_detected=self.first_detected[img.id],
                                       last_used=self.last_used.get(img.id, 0.0), in_use=in_use, pinned=img.pinned))
        present = {img.id for img in images}
        for gone in set(self.first_detected) - present:
            self.first_detected.pop(gone, None)
            self.last_used.pop(gone, None)
        return records

    async def _usage(self) -> tuple[int, int] | None:
        fs = await self.client.image_fs_info()
        if not fs or not fs[0].mountpoint:
            return None
        st = self.statvfs(fs[0].mountpoint)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    async def garbage_collect(self) -> int:
        """One GC round; the bytes freed. Runtime errors are logged and the round ends."""
        try:
            records = await self.observe()
            usage = await self._usage()
        except (cri.CRIError, OSError) as err:
            log.warning("image GC: cannot observe images err=%s", err)
            return 0
        if usage is None:
            return 0
        capacity, available = usage
        amount = compute_amount_to_free(capacity=capacity, available=available, high=self.high, low=self.low)
        if amount == 0:
            return 0
        log.info("image GC: disk usage over %d%% capacity=%d available=%d to_free=%d", self.high, capacity,
                 available, amount)
        freed = 0
        for r in compute_images_to_remove(records, amount=amount, now=self.clock(), min_age=self.min_age):
            try:
                await self.client.remove_image(r.id)
            except cri.NotFound:
                continue
            except cri.CRIError as err:
                log.warning("image GC: cannot remove image=%s err=%s", r.id, err)
                continue
            freed += r.size
            self.removed.append(r.id)
            log.info("image GC: removed image=%s size=%d", r.id, r.size)
        if freed < amount:
            log.warning("image GC: freed %d of the %d bytes wanted (the rest is in use)", freed, amount)
        return freed

