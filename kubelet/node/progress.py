"""Progress of long commands (`nodelet runtime setup`, `nodelet install`): numbered steps and, for steps that go
through items (images to build and import, files to write), a bar with counts.

On a terminal the current step is one line redrawn in place (``\\r`` + erase), e.g.
``[3/4] images [##########----------] 1/2 importing localhost/nodelet/busybox:1.35``, ended with a newline when the
step finishes; otherwise (a pipe, a log file, CI) plain lines: one when a step starts and one per finished item, no
control characters. The pieces of nodelet that do the work take any object with ``step``/``count`` (``ProgressSink``)
and default to :data:`SILENT`.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Protocol, TextIO

__all__ = ["Progress", "ProgressSink", "SILENT", "render_bar"]


class ProgressSink(Protocol):
    def set_total(self, steps: int) -> None: ...

    def step(self, title: str) -> None: ...

    def count(self, done: int, total: int, item: str = "") -> None: ...


class _Silent:
    def set_total(self, steps: int) -> None:
        pass

    def step(self, title: str) -> None:
        pass

    def count(self, done: int, total: int, item: str = "") -> None:
        pass


SILENT: ProgressSink = _Silent()


def render_bar(done: int, total: int, width: int = 20) -> str:
    filled = 0 if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class Progress:
    def __init__(self, total_steps: int, *, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.tty = tty if tty is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.total = total_steps
        self.n = 0
        self.title = ""
        self._open = False  # a redrawn line is on screen (tty)
        self._clock = clock
        self._t0 = clock()

    def set_total(self, steps: int) -> None:
        self.total = steps

    def _prefix(self) -> str:
        return f"[{self.n}/{self.total}] {self.title}"

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _close_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def step(self, title: str) -> None:
        self._close_line()
        self.n += 1
        self.title = title
        self._t0 = self._clock()
        self._line(self._prefix() + ("…" if self.tty else ""))

    def count(self, done: int, total: int, item: str = "") -> None:
        if self.tty:
            self._line(f"{self._prefix()} {render_bar(done, total)} {done}/{total}" + (f" {item}" if item else ""))
        else:
            self._line(f"{self._prefix()}: {done}/{total}" + (f" {item}" if item else ""))

    def finish(self, message: str = "") -> None:
        """End the last step (and print ``message`` on its own line)."""
        self._close_line()
        if message:
            self.stream.write(message + "\n")
            self.stream.flush()
