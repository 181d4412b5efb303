"""CRI log files: parsing, partial lines, rotated (and gzipped) files, tail/since, follow across a rotation."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from kubelet.kuberuntime import crilogs
from kubelet.cli.testing import write_cri_log
from kubelet.kuberuntime.crilogs import LogLine, compute_log_lines, compute_rotated_files, parse_cri_line, parse_rfc3339_ns

T0 = "2026-01-10T12:00:00.000000001Z"
T1 = "2026-01-10T12:00:01.5Z"
T2 = "2026-01-10T12:00:02.123456789Z"


def test_parse_line() -> None:
    e = parse_cri_line(b"2026-01-10T12:00:00.000000001Z stdout F hello world\n")
    assert e is not None and (e.stream, e.partial, e.message, e.timestamp) == ("stdout", False, b"hello world", T0)
    assert e.time_ns == 1768046400_000000001
    assert parse_cri_line(b"2026-01-10T12:00:00Z stderr P:x part").partial is True  # type: ignore[union-attr]
    assert parse_cri_line(b"2026-01-10T12:00:00Z stdout F ").message == b""  # type: ignore[union-attr]
    for bad in (b"", b"garbage", b"2026-01-10T12:00:00Z stdin F x", b"2026-01-10T12:00:00Z stdout X x", b"yesterday stdout F x"):
        assert parse_cri_line(bad) is None, bad


def test_rfc3339() -> None:
    assert parse_rfc3339_ns("2026-01-10T12:00:01.5Z") == 1768046401_500000000
    assert parse_rfc3339_ns("2026-01-10T13:00:01+01:00") == 1768046401_000000000
    assert parse_rfc3339_ns("not a time") is None


def test_partial_lines_joined_per_stream() -> None:
    raw = [
        f"{T0} stdout P hel".encode(), f"{T0} stderr F err line".encode(), f"{T1} stdout P lo ".encode(),
        f"{T2} stdout F world".encode(), b"malformed", f"{T2} stdout P tail".encode(),
    ]
    lines = list(compute_log_lines(raw))
    assert [(ln.stream, ln.message, ln.timestamp) for ln in lines] == [
        ("stderr", b"err line", T0), ("stdout", b"hello world", T0), ("stdout", b"tail", T2)]


def test_rotated_files_order() -> None:
    names = ["0.log", "0.log.20260110-120500", "0.log.20260110-120000.gz", "1.log", "1.log.20260101-000000", "x"]
    assert compute_rotated_files("/d/0.log", names) == ["/d/0.log.20260110-120000.gz", "/d/0.log.20260110-120500", "/d/0.log"]


def test_read_log_with_rotation_tail_since(tmp_path: Path) -> None:
    d = tmp_path / "c"
    write_cri_log(str(d / "0.log.20260110-120000.gz"), [(T0, "stdout", "F", "one")], gz=True)
    write_cri_log(str(d / "0.log.20260110-120001"), [(T1, "stdout", "P", "tw"), (T1, "stdout", "F", "o")])
    write_cri_log(str(d / "0.log"), [(T2, "stderr", "F", "three")])
    write_cri_log(str(d / "1.log"), [(T2, "stdout", "F", "other instance")])
    cur = str(d / "0.log")
    assert [ln.message for ln in crilogs.read_log(cur)] == [b"one", b"two", b"three"]
    assert [ln.message for ln in crilogs.read_log(cur, tail=2)] == [b"two", b"three"]
    assert crilogs.read_log(cur, tail=0) == []
    assert [ln.message for ln in crilogs.read_log(cur, since_ns=parse_rfc3339_ns(T1))] == [b"two", b"three"]
    assert [ln.message for ln in crilogs.read_log(cur, include_rotated=False)] == [b"three"]
    assert crilogs.list_container_logs(str(d)) == {0: cur, 1: str(d / "1.log")}
    ln = crilogs.read_log(cur)[1]
    assert crilogs.render_line(ln, timestamps=True) == f"{T1} two\n".encode()
    assert crilogs.render_line(ln, timestamps=False) == b"two\n"


def test_follow_sees_appends_and_rotation_then_stops(tmp_path: Path) -> None:
    cur = str(tmp_path / "0.log")
    write_cri_log(cur, [(T0, "stdout", "F", "old")])
    start = os.path.getsize(cur)
    running = threading.Event()
    running.set()
    steps = iter([
        lambda: write_cri_log(cur, [(T1, "stdout", "P", "a"), (T1, "stdout", "F", "b")], append=True),
        lambda: (os.rename(cur, cur + ".20260110-120001"), write_cri_log(cur, [(T2, "stdout", "F", "after rotation")])),
        lambda: running.clear(),
    ])

    def sleep(_: float) -> None:  # each idle poll performs the next step: deterministic, no wall-clock waits
        step = next(steps, None)
        if step:
            step()

    got = list(crilogs.follow_log(cur, start_offset=start, still_running=running.is_set, poll=0.5, idle_check=0.5, sleep=sleep))
    assert [ln.message for ln in got] == [b"ab", b"after rotation"]
    assert isinstance(got[0], LogLine)
