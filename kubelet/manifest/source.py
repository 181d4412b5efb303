"""The manifest source: watches the static pod path and hands the agent full snapshots (upstream ``config/file.go``).

Events say "look again", never carry state: an inotify event (coalesced until the directory has been quiet for
~50 ms) or the ``fileCheckFrequency`` tick triggers a full relist (:func:`kubelet.manifest.parse.compute_manifest_set`), and
``on_change`` receives the whole :class:`ManifestSet` whenever it differs from the last one sent (and always after the
first list, even if empty). Editors' write patterns (in place, temp file + rename, delete + create) therefore all end
in exactly the final state. A missing directory (or a watch that cannot be set up) is logged and retried with a
1 s → 20 s backoff; the periodic relist keeps working meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubelet.manifest.inotify import (
    DIR_EVENTS, IN_DELETE_SELF, IN_IGNORED, IN_MOVE_SELF, IN_Q_OVERFLOW, Inotify, InotifyEvent,
)
from kubelet.manifest.parse import compute_manifest_set, is_manifest_name
from kubelet.types import ManifestError, ManifestSet, PodUID

__all__ = ["ManifestSource"]

log = logging.getLogger(__name__)

COALESCE_S = 0.05  # quiet time after an event before relisting
COALESCE_MAX_S = 1.0  # relist at the latest this long after the first event of a burst
RETRY_MIN_S = 1.0
RETRY_MAX_S = 20.0
FIRST_SEEN_TTL_S = 600.0  # forget a UID's first-seen time after it has been absent this long


class ManifestSource:
    def __init__(self, *, path: str, node_name: str, check_frequency: float,
                 on_change: Callable[[ManifestSet], None], clock_ns: Callable[[], int] = time.time_ns,
                 first_seen: Mapping[PodUID, str] | None = None) -> None:
        """``first_seen`` may seed UID → ``kubernetes.io/config.seen`` (e.g. read back from adopted sandboxes'
        annotations after a restart), so a pod that kept running keeps the seen time it was created with."""
        self.path = os.path.abspath(path)
        self.node_name = node_name
        self.check_frequency = check_frequency
        self._on_change = on_change
        self._clock_ns = clock_ns
        self._current = ManifestSet()
        self._sent = False
        self._missing = False
        self._first_seen: dict[PodUID, str] = dict(first_seen or {})
        self._cache: dict[str, tuple[Any, Any]] = {}  # per-file parse results, see compute_manifest_set
        self._last_present: dict[PodUID, float] = {}
        self._logged_errors: frozenset[ManifestError] = frozenset()
        self._inotify: Inotify | None = None
        self._wd: int | None = None
        self._wake = asyncio.Event()
        self._retry_delay = RETRY_MIN_S
        self._next_retry = 0.0
        self.relists = 0  # for tests and metrics

    def current(self) -> ManifestSet:
        """The last snapshot sent to ``on_change`` (empty before the first list)."""
        return self._current

    @property
    def watching(self) -> bool:
        return self._wd is not None

    async def run(self) -> None:
        """Watch and relist until cancelled."""
        loop = asyncio.get_running_loop()
        try:
            self._inotify = Inotify()
            loop.add_reader(self._inotify.fileno(), self._on_readable)
        except OSError as e:
            log.warning("inotify unavailable, relisting every %ss only err=%s", self.check_frequency, e)
            self._inotify = None
        try:
            self._ensure_watch(loop.time())
            await self._relist()
            next_relist = loop.time() + self.check_frequency
            while True:
                deadline = next_relist
                if self._inotify is not None and self._wd is None:
                    deadline = min(deadline, self._next_retry)
                woke = await self._wait(deadline - loop.time())
                if woke:
                    await self._coalesce(loop)
                now = loop.time()
                newly_watched = False
                if self._inotify is not None and self._wd is None and now >= self._next_retry:
                    self._ensure_watch(now)
                    newly_watched = self._wd is not None  # files may have appeared before the watch: look now
                if woke or newly_watched or now >= next_relist:
                    await self._relist()
                    next_relist = loop.time() + self.check_frequency
        finally:
            if self._inotify is not None:
                loop.remove_reader(self._inotify.fileno())
                self._inotify.close()
                self._inotify = None
                self._wd = None

    async def _wait(self, timeout: float) -> bool:
        """True when an event arrived within ``timeout`` seconds (and clears it)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, timeout))
        except asyncio.TimeoutError:
            return False
        self._wake.clear()
        return True

    async def _coalesce(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until no event arrived for COALESCE_S (at most COALESCE_MAX_S), so one burst is one relist.
        Events arriving during the relist itself stay pending and cause one more relist."""
        give_up = loop.time() + COALESCE_MAX_S
        while loop.time() < give_up:
            if not await self._wait(min(COALESCE_S, give_up - loop.time())):
                return

    def _watch_target(self) -> str:
        """The directory to watch: the path itself, or its parent when the path is (or will be) a file."""
        if os.path.isdir(self.path):
            return self.path
        if os.path.lexists(self.path) or os.path.splitext(self.path)[1] in (".yaml", ".yml", ".json"):
            return os.path.dirname(self.path)
        return self.path

    def _ensure_watch(self, now: float) -> None:
        if self._inotify is None or self._wd is not None:
            return
        target = self._watch_target()
        try:
            self._wd = self._inotify.add_watch(target, DIR_EVENTS)
            self._watched = target
            self._retry_delay = RETRY_MIN_S
            log.info("watching manifests path=%s dir=%s", self.path, target)
        except OSError as e:
            self._next_retry = now + self._retry_delay
            # the first failure is a warning; the retries (every 20 s at most, forever) only debug lines
            (log.warning if self._retry_delay == RETRY_MIN_S else log.debug)(
                "cannot watch manifest path, retrying in %.0fs path=%s err=%s", self._retry_delay, target,
                e.strerror or e)
            self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_S)

    _watched = ""

    def _on_readable(self) -> None:
        assert self._inotify is not None
        try:
            events = self._inotify.read_events()
        except OSError as e:
            log.warning("reading inotify events failed err=%s", e)
            self._wake.set()
            return
        relevant = [self._relevant(ev) for ev in events]  # every event: a lost watch must be noticed
        if any(relevant):
            self._wake.set()

    def _relevant(self, ev: InotifyEvent) -> bool:
        if ev.mask & IN_Q_OVERFLOW:
            return True
        if ev.wd != self._wd:
            return False
        if ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED):
            # the watched directory went away (or moved): watch again (now, then with backoff) and relist
            if self._inotify is not None and self._wd is not None and not ev.mask & IN_IGNORED:
                self._inotify.rm_watch(self._wd)
            self._wd = None
            self._next_retry = 0.0
            return True
        if self._watched != self.path:  # watching the parent of a single manifest file
            return ev.name == os.path.basename(self.path)
        return is_manifest_name(ev.name)

    async def _relist(self) -> None:
        self.relists += 1
        try:
            manifests = await asyncio.to_thread(compute_manifest_set, self.path, node_name=self.node_name,
                                                first_seen=self._first_seen, clock_ns=self._clock_ns,
                                                cache=self._cache)
        except OSError as e:
            # an unreadable directory is not an empty one: send nothing (the agent keeps what runs), retry later
            log.warning("cannot list manifests, keeping the last set path=%s err=%s", self.path, e.strerror or e)
            return
        self._forget_absent(manifests)
        self._log_errors(manifests)
        missing = not os.path.exists(self.path)
        if missing and not self._missing:
            log.warning("manifest path does not exist, no static pods path=%s", self.path)
        self._missing = missing
        if self._sent and manifests == self._current:
            return
        self._current = manifests
        self._sent = True
        log.info("manifests changed path=%s pods=%d others=%d errors=%d broken_files=%d", self.path,
                 len(manifests.pods), len(manifests.others), len(manifests.errors), len(manifests.broken_files))
        try:
            self._on_change(manifests)
        except Exception:  # the source must outlive a faulty consumer
            log.exception("on_change failed path=%s", self.path)

    def _forget_absent(self, manifests: ManifestSet) -> None:
        now = time.monotonic()
        for pod in manifests.pods:
            self._last_present[pod.uid] = now
        for uid in list(self._first_seen):
            last = self._last_present.setdefault(uid, now)  # seen in a broken or conflicting file: start its clock
            if now - last > FIRST_SEEN_TTL_S:
                del self._first_seen[uid]
                del self._last_present[uid]

    def _log_errors(self, manifests: ManifestSet) -> None:
        errors = frozenset(manifests.errors)
        for err in sorted(errors - self._logged_errors, key=str):
            log.warning("invalid manifest file=%s line=%d field=%s: %s", err.file, err.line, err.field or "-",
                        err.reason)
        self._logged_errors = errors
