from __future__ import annotations

from pathlib import Path

from kubelet.lifecycle.backoff import Backoff
from kubelet.clock import FakeClock


def test_first_restart_immediate_then_doubling_to_max() -> None:
    clock = FakeClock()
    b = Backoff(clock=clock)
    finished = clock.now()
    assert b.in_backoff_since("k", finished) == 0  # first restart: immediate
    delays = []
    for _ in range(8):
        b.next("k", finished)
        delays.append(b.delay("k"))
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    assert b.in_backoff_since("k", finished) == 300
    clock.advance(299)
    assert b.in_backoff_since("k", finished) == 1
    clock.advance(2)
    assert b.in_backoff_since("k", finished) == 0


def test_reset_after_ten_minutes_without_failure() -> None:
    clock = FakeClock()
    b = Backoff(clock=clock)
    b.next("k", clock.now())
    b.next("k", clock.now())
    assert b.delay("k") == 20
    clock.advance(601)
    assert b.in_backoff_since("k", clock.now()) == 0
    b.next("k", clock.now())
    assert b.delay("k") == 10


def test_state_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "state" / "backoff.json"
    b = Backoff(clock=clock, path=path)
    b.next("uid/a/h", clock.now())
    b.next("uid/a/h", clock.now())
    again = Backoff(clock=clock, path=path)
    assert again.delay("uid/a/h") == 20 and again.in_backoff_since("uid/a/h", clock.now()) == 20
    again.forget("uid/")
    assert Backoff(clock=clock, path=path).delay("uid/a/h") == 0


def test_corrupt_state_is_reported_not_fatal(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "backoff.json"
    path.write_text("{not json")
    b = Backoff(clock=FakeClock(), path=path)
    assert b.delay("x") == 0
    assert "backoff state unreadable" in caplog.text


def test_one_exit_counts_once_even_across_a_restart(tmp_path: Path) -> None:
    """Killed after backoff.json is saved but before the container is created: the next agent sees the same
    exit (same container id) and must not double the delay again."""
    clock = FakeClock()
    path = tmp_path / "backoff.json"
    b = Backoff(clock=clock, path=path)
    finished = clock.now()
    b.next("k", finished, event_id="c1")
    b.next("k", finished, event_id="c2")
    assert b.delay("k") == 20
    again = Backoff(clock=clock, path=path)  # the restarted agent, same exit of c2
    again.next("k", finished, event_id="c2")
    assert again.delay("k") == 20
    again.next("k", finished + 30, event_id="c3")  # a new exit still doubles
    assert again.delay("k") == 40
    assert Backoff(clock=clock, path=path).delay("k") == 40


def test_first_exit_counted_once_across_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "backoff.json"
    Backoff(clock=clock, path=path).next("k", clock.now(), event_id="c1")
    again = Backoff(clock=clock, path=path)
    again.next("k", clock.now(), event_id="c1")
    assert again.delay("k") == 10
