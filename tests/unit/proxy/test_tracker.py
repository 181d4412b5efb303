"""The change tracker merges updates between syncs into (previous, current) pairs; equal pairs drop out."""
from __future__ import annotations

from proxy.tracker import Change, ChangeTracker, compute_changes


def test_compute_changes() -> None:
    assert compute_changes({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 20, "d": 4}) == {
        "b": Change(previous=2, current=20),
        "d": Change(previous=None, current=4),
        "c": Change(previous=3, current=None),
    }


def test_merge_keeps_oldest_previous_and_newest_current() -> None:
    t: ChangeTracker[str, int] = ChangeTracker()
    t.record({"a": 1}, {"a": 2})
    t.record({"a": 2}, {"a": 3})
    assert t.pending() == {"a": Change(previous=1, current=3)}


def test_change_undone_before_sync_drops_out() -> None:
    t: ChangeTracker[str, int] = ChangeTracker()
    t.record({"a": 1}, {"a": 2})
    t.record({"a": 2}, {"a": 1})
    t.record({}, {"b": 1})
    t.record({"b": 1}, {})
    assert t.pending() == {} and len(t) == 0


def test_take_clears_and_restore_merges_with_newer() -> None:
    t: ChangeTracker[str, int] = ChangeTracker()
    t.record({"a": 1, "b": 1}, {"a": 2, "b": 2})
    taken = t.take()
    assert len(t) == 0 and set(taken) == {"a", "b"}
    t.record({"a": 2}, {"a": 3})  # arrived while the failed sync ran
    t.restore(taken)
    assert t.pending() == {"a": Change(previous=1, current=3), "b": Change(previous=1, current=2)}
    t2: ChangeTracker[str, int] = ChangeTracker()
    t2.record({"a": 2}, {"a": 1})
    t2.restore({"a": Change(previous=1, current=2)})  # net effect: nothing
    assert t2.pending() == {}
