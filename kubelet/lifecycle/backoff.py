"""Per-key exponential backoff as the kubelet's flowcontrol.Backoff: 10 s doubling to 300 s, reset after 600 s.

The first restart is immediate (no entry yet); each later one waits the current delay measured from the
container's last FinishedAt. State is saved (atomically) so a restarted agent keeps its backoff.

`next(..., event_id=...)` counts one event once: the entry remembers the id of the event (the exited container's
id) that last moved it, so an agent killed after saving but before acting, which sees the same exit again on
restart, does not double the delay a second time.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from cni.fsutil import write_atomic
from kubelet.clock import Clock, RealClock

log = logging.getLogger(__name__)

INITIAL = 10.0
MAX = 300.0


@dataclass
class _Entry:
    delay: float
    last_update: float  # wall-clock seconds of the event that set `delay`
    event: str = ""  # id of that event ("" when the caller gave none)


class Backoff:
    def __init__(self, *, initial: float = INITIAL, maximum: float = MAX, clock: Clock | None = None, path: Path | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock or RealClock()
        self.path = path
        self._entries: dict[str, _Entry] = {}
        if path is not None:
            self._load()

    def delay(self, key: str) -> float:
        e = self._entries.get(key)
        return e.delay if e else 0.0

    def in_backoff_since(self, key: str, event_time: float) -> float:
        """Seconds left to wait if `key` is backing off from an event at `event_time`, else 0."""
        e = self._entries.get(key)
        if e is None or self._expired(e, event_time):
            return 0.0
        left = e.delay - (self.clock.now() - event_time)
        return max(0.0, left)

    def next(self, key: str, event_time: float, *, event_id: str = "") -> None:
        """Record a restart caused by an event at event_time: start at `initial`, else double up to `maximum`.
        With `event_id`, an event already counted (same id as the one that last moved the entry) is a no-op."""
        e = self._entries.get(key)
        if e is not None and event_id and e.event == event_id and not self._expired(e, event_time):
            return
        if e is None or self._expired(e, event_time):
            self._entries[key] = _Entry(delay=self.initial, last_update=event_time, event=event_id)
        else:
            e.delay = min(e.delay * 2, self.maximum)
            e.last_update = event_time
            e.event = event_id
        self._save()

    def _expired(self, e: _Entry, event_time: float) -> bool:
        # As upstream: an entry idle for more than 2 × max (600 s) starts over.
        return event_time - e.last_update > 2 * self.maximum

    def forget(self, prefix: str) -> None:
        """Drop every key starting with prefix (a removed pod's containers)."""
        gone = [k for k in self._entries if k.startswith(prefix)]
        for k in gone:
            del self._entries[k]
        if gone:
            self._save()

    def gc(self) -> None:
        now = self.clock.now()
        for k in [k for k, e in self._entries.items() if now - e.last_update > 2 * self.maximum]:
            del self._entries[k]

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
            self._entries = {k: _Entry(delay=float(v["delay"]), last_update=float(v["lastUpdate"]),
                                       event=str(v.get("event", ""))) for k, v in data.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("backoff state unreadable, starting fresh path=%s err=%s", self.path, err)

    def _save(self) -> None:
        if self.path is None:
            return
        data = json.dumps({k: {"delay": e.delay, "lastUpdate": e.last_update, "event": e.event} for k, e in self._entries.items()})
        write_atomic(self.path, data, fsync=False, mkdir=True)
