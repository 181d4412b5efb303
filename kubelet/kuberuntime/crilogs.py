"""The CRI container log format, read back: `<RFC3339Nano> <stdout|stderr> <P|F> <message>` per line (a `P`artial
entry continues in the next one until an `F`ull one ends the line), in `<dir>/<restartCount>.log` with the kubelet's
rotated files beside it: `0.log.20060102-150405` and, compressed, `0.log.20060102-150405.gz`.

Pure parsing (`parse_cri_line`, `compute_log_lines`, `parse_rfc3339_ns`, `compute_rotated_files`) and thin readers
(`read_log`, `follow_log`)."""
from __future__ import annotations

import collections
import gzip
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = [
    "LineJoiner", "LogEntry", "LogLine", "compute_log_lines", "compute_rotated_files", "follow_log", "list_container_logs",
    "compute_log_file", "parse_cri_line", "parse_rfc3339_ns", "read_log", "render_line",
]

_ROTATED_RE = re.compile(r"^(?P<base>.+\.log)\.(?P<stamp>\d{8}-\d{6})(?P<gz>\.gz)?$")
_TS_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    """One line of a CRI log file."""

    timestamp: str  # as written (RFC 3339 with nanoseconds)
    time_ns: int
    stream: str  # stdout | stderr
    partial: bool
    message: bytes


@dataclass(frozen=True, kw_only=True)
class LogLine:
    """One line the container wrote (its partial entries joined), with the first entry's timestamp."""

    timestamp: str
    time_ns: int
    stream: str
    message: bytes  # without the trailing newline


def parse_rfc3339_ns(text: str) -> int | None:
    """`2026-01-10T12:00:00.123456789Z` (or an offset) → Unix nanoseconds; None if malformed."""
    m = _TS_RE.match(text)
    if not m:
        return None
    try:
        base = datetime.fromisoformat(m[1] + ("+00:00" if m[3] == "Z" else m[3]))
    except ValueError:
        return None
    frac = (m[2] or ".")[1:]
    nanos = int((frac + "000000000")[:9]) if frac else 0
    return int(base.replace(tzinfo=base.tzinfo or timezone.utc).timestamp()) * 1_000_000_000 + nanos


def parse_cri_line(line: bytes) -> LogEntry | None:
    """One line of a CRI log file (without or with its newline) → LogEntry; None when it is not in the format."""
    line = line.rstrip(b"\n")
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0], parts[1], parts[2]
    if stream not in (b"stdout", b"stderr"):
        return None
    flags = tag.split(b":")
    if flags[0] not in (b"P", b"F"):
        return None
    try:
        ts_text = ts.decode("ascii")
    except UnicodeDecodeError:
        return None
    ns = parse_rfc3339_ns(ts_text)
    if ns is None:
        return None
    return LogEntry(timestamp=ts_text, time_ns=ns, stream=stream.decode(), partial=flags[0] == b"P",
                    message=parts[3] if len(parts) > 3 else b"")


class LineJoiner:
    """Joins the partial entries of each stream up to the next full one (state kept between feeds, for follow)."""

    def __init__(self) -> None:
        self.pending: dict[str, list[LogEntry]] = {}

    def feed(self, raw: bytes) -> LogLine | None:
        e = parse_cri_line(raw)
        if e is None:
            return None
        parts = self.pending.setdefault(e.stream, [])
        parts.append(e)
        if e.partial:
            return None
        del self.pending[e.stream]
        return _join(parts)

    def flush(self) -> list[LogLine]:
        out = [_join(parts) for parts in self.pending.values()]
        self.pending.clear()
        return sorted(out, key=lambda ln: ln.time_ns)


def _join(parts: list[LogEntry]) -> LogLine:
    first = parts[0]
    return LogLine(timestamp=first.timestamp, time_ns=first.time_ns, stream=first.stream,
                   message=b"".join(p.message for p in parts))


def compute_log_lines(raw_lines: Iterable[bytes]) -> Iterator[LogLine]:
    """Entries → the lines the container wrote: partial entries of a stream are joined up to the next full one; a
    partial line at the very end (still being written) comes last. Malformed lines are skipped, as the kubelet does."""
    joiner = LineJoiner()
    for raw in raw_lines:
        line = joiner.feed(raw)
        if line is not None:
            yield line
    yield from joiner.flush()


def render_line(line: LogLine, *, timestamps: bool) -> bytes:
    """What `kubectl logs` prints for one line (both streams go to stdout)."""
    return (line.timestamp.encode() + b" " if timestamps else b"") + line.message + b"\n"


def compute_rotated_files(current: str, names: Iterable[str]) -> list[str]:
    """Of the file names in the current log's directory, its rotated ones (oldest first) then the current file."""
    base = os.path.basename(current)
    rotated = []
    for n in names:
        m = _ROTATED_RE.match(n)
        if m and m["base"] == base:
            rotated.append((m["stamp"], n.endswith(".gz") is False, n))
    rotated.sort()
    d = os.path.dirname(current)
    return [os.path.join(d, n) for _, _, n in rotated] + [current]


def compute_log_file(files: dict[int, str], *, restart_count: int, previous: bool) -> str | None:
    """Of a container's `<n>.log` files, the current instance's (its restartCount, else the newest) or the previous
    instance's (the newest before the current one)."""
    if not files:
        return None
    current = restart_count if restart_count in files else max(files)
    if not previous:
        return files[current]
    older = [n for n in files if n < current]
    return files[max(older)] if older else None


def list_container_logs(container_dir: str) -> dict[int, str]:
    """`<restartCount>.log` files of one container's log dir (rotated files excluded), by restart count."""
    out: dict[int, str] = {}
    try:
        names = os.listdir(container_dir)
    except OSError:
        return out
    for n in names:
        stem, dot, ext = n.partition(".")
        if stem.isdigit() and ext == "log":
            out[int(stem)] = os.path.join(container_dir, n)
    return out


def _raw_lines(path: str, limit: int | None = None) -> Iterator[bytes]:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as gz:
                yield from gz
        elif limit is not None:
            with open(path, "rb") as f:
                yield from f.read(limit).splitlines(keepends=True)
        else:
            with open(path, "rb") as f:
                yield from f
    except FileNotFoundError:
        return


def read_log(current: str, *, tail: int | None = None, since_ns: int | None = None,
             include_rotated: bool = True, limit: int | None = None) -> list[LogLine]:
    """The lines of a container's log (rotated files first), from `since_ns`, the last `tail` of them. `limit`: read
    the current file only up to that many bytes (where a follow will go on from)."""
    try:
        names = os.listdir(os.path.dirname(current) or ".")
    except OSError:
        names = []
    files = compute_rotated_files(current, names) if include_rotated else [current]
    lines: Iterable[LogLine] = compute_log_lines(
        raw for f in files for raw in _raw_lines(f, limit if f == current else None))
    if since_ns is not None:
        lines = (ln for ln in lines if ln.time_ns >= since_ns)
    if tail is not None:
        if tail <= 0:
            return []
        return list(collections.deque(lines, maxlen=tail))
    return list(lines)


def follow_log(current: str, *, start_offset: int, still_running: Callable[[], bool], poll: float = 0.2,
               idle_check: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> Iterator[LogLine]:
    """New lines appended to `current` after `start_offset`, until the container stops (`still_running()` is asked
    after `idle_check` seconds without new data). A rotation (the path names a new file) is followed to the new file."""
    f = None
    ino = None
    buf = b""
    joiner = LineJoiner()
    offset = start_offset
    idle = 0.0
    try:
        while True:
            if f is None:
                try:
                    f = open(current, "rb")
                except FileNotFoundError:
                    f = None
                if f is not None:
                    ino = os.fstat(f.fileno()).st_ino
                    f.seek(offset)
            chunk = f.read(1 << 16) if f is not None else b""
            if chunk:
                idle = 0.0
                buf += chunk
                *complete, buf = buf.split(b"\n")
                for c in complete:
                    ln = joiner.feed(c)
                    if ln is not None:
                        yield ln
                continue
            try:
                st = os.stat(current)
                rotated = st.st_ino != ino
            except FileNotFoundError:
                rotated = False
            if rotated and f is not None:
                f.close()
                f, offset, buf = None, 0, b""
                continue
            if idle >= idle_check:
                idle = 0.0
                if not still_running():
                    return
            sleep(poll)
            idle += poll
    finally:
        if f is not None:
            f.close()
