"""Change tracking as kube-proxy's ServiceChangeTracker: pending ``(previous, current)`` pairs per service port.

Several updates between two syncs merge: the pair keeps the oldest ``previous`` (what the kernel has) and the newest
``current``; a pair whose two sides are equal drops out (a change undone before the sync costs nothing).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, kw_only=True)
class Change(Generic[V]):
    previous: V | None
    current: V | None


def compute_changes(previous: Mapping[K, V], current: Mapping[K, V]) -> dict[K, Change[V]]:
    """The pairs that differ between two snapshots (added: previous None; removed: current None)."""
    out: dict[K, Change[V]] = {}
    for k, cur in current.items():
        prev = previous.get(k)
        if prev != cur:
            out[k] = Change(previous=prev, current=cur)
    for k, prev in previous.items():
        if k not in current:
            out[k] = Change(previous=prev, current=None)
    return out


class ChangeTracker(Generic[K, V]):
    """Accumulates changes between syncs."""

    def __init__(self) -> None:
        self._pending: dict[K, Change[V]] = {}

    def record(self, previous: Mapping[K, V], current: Mapping[K, V]) -> None:
        """Merge the difference between two consecutive snapshots into the pending set."""
        for k, ch in compute_changes(previous, current).items():
            old = self._pending.get(k)
            merged = Change(previous=old.previous if old else ch.previous, current=ch.current)
            if merged.previous == merged.current:
                self._pending.pop(k, None)
            else:
                self._pending[k] = merged

    def pending(self) -> Mapping[K, Change[V]]:
        return dict(self._pending)

    def take(self) -> dict[K, Change[V]]:
        """Return and clear the pending changes (the sync owns them now)."""
        out, self._pending = self._pending, {}
        return out

    def restore(self, changes: Mapping[K, Change[V]]) -> None:
        """Put back changes a failed sync did not apply (older pairs first, newer pending ones win on `current`)."""
        for k, ch in changes.items():
            newer = self._pending.get(k)
            merged = Change(previous=ch.previous, current=newer.current if newer else ch.current)
            if merged.previous == merged.current:
                self._pending.pop(k, None)
            else:
                self._pending[k] = merged

    def __len__(self) -> int:
        return len(self._pending)
