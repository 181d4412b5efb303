"""Injected time: wall clock (for timestamps users see and CRI nanoseconds) and monotonic (for timers)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch."""

    def monotonic(self) -> float:
        ...


class RealClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def rfc3339(ts: float) -> str:
    """Kubernetes' metav1.Time format (seconds precision, UTC, Z)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch from an RFC 3339 timestamp (nanoseconds allowed); None if unparsable."""
    if not text:
        return None
    s = text.strip().replace("Z", "+00:00")
    frac = ""
    if "." in s:
        head, rest = s.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits):]
        frac = digits[:6]
        s = head + (f".{frac}" if frac else "") + tz
    try:
        return datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None
