"""A minimal inotify binding over ctypes (Linux): a non-blocking fd for ``loop.add_reader`` and parsed events."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from dataclasses import dataclass

__all__ = [
    "Inotify", "InotifyEvent", "IN_ATTRIB", "IN_CLOSE_WRITE", "IN_CREATE", "IN_DELETE", "IN_DELETE_SELF",
    "IN_IGNORED", "IN_ISDIR", "IN_MODIFY", "IN_MOVED_FROM", "IN_MOVED_TO", "IN_MOVE_SELF", "IN_ONLYDIR",
    "IN_Q_OVERFLOW", "DIR_EVENTS",
]

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC

#: what a manifest directory watch listens for: every way a file can appear, change, vanish; and the dir itself going
DIR_EVENTS = (IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE
              | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

_HEADER = struct.Struct("iIII")
_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_init1.restype = ctypes.c_int
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        lib.inotify_add_watch.restype = ctypes.c_int
        lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.inotify_rm_watch.restype = ctypes.c_int
        _libc = lib
    return _libc


@dataclass(frozen=True, kw_only=True)
class InotifyEvent:
    wd: int
    mask: int
    cookie: int
    name: str  # "" for events about the watched object itself


class Inotify:
    """One inotify instance. ``fileno()`` is non-blocking; call :meth:`read_events` when it is readable."""

    def __init__(self) -> None:
        fd = _lib().inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def add_watch(self, path: str, mask: int) -> int:
        wd = _lib().inotify_add_watch(self._fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        return wd

    def rm_watch(self, wd: int) -> None:
        """Remove a watch; already gone (EINVAL: the kernel dropped it with IN_IGNORED) is fine."""
        if _lib().inotify_rm_watch(self._fd, wd) < 0:
            err = ctypes.get_errno()
            if err != errno.EINVAL:
                raise OSError(err, os.strerror(err))

    def read_events(self) -> list[InotifyEvent]:
        """Every event queued now (possibly none)."""
        events: list[InotifyEvent] = []
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return events
            if not data:
                return events
            pos = 0
            while pos + _HEADER.size <= len(data):
                wd, mask, cookie, length = _HEADER.unpack_from(data, pos)
                raw = data[pos + _HEADER.size:pos + _HEADER.size + length]
                pos += _HEADER.size + length
                events.append(InotifyEvent(wd=wd, mask=mask, cookie=cookie,
                                           name=os.fsdecode(raw.split(b"\0", 1)[0])))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
