"""Allocation storage behind one small interface: a disk store (host-local's format) and an in-memory twin.

Disk layout (compatible with host-local): `<dataDir>/<network>/<ip>` holding `<containerID>\\r\\n<ifname>`,
`last_reserved_ip.<n>` per range set and a `lock` file taken with flock around every allocate/release.
Writes are atomic: a complete temp file is hard-linked to its final name (fails if taken), so a crash leaves
either no allocation or a complete one, plus at most a `.tmp.*` file that GC removes.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from typing import Protocol

from .config import Attachment, ContainerId, IPAddress
from .errors import IOFailure, TryAgainLater
from .fsutil import write_atomic

log = logging.getLogger(__name__)
LOCK_TIMEOUT = 10.0
TMP_PREFIX = ".tmp."


class LockBusy(Exception):
    """lock(wait=False) found the lock taken: the caller waits somewhere harmless (a thread, not the loop)."""


class Store(Protocol):
    def lock(self, wait: bool = True) -> contextlib.AbstractContextManager[None]: ...
    def list(self) -> dict[IPAddress, Attachment | None]: ...  # None: the file is corrupted
    def reserved(self) -> set[IPAddress]: ...  # cheaper than list(): names only
    def reserve(self, ip: IPAddress, owner: Attachment, range_set: int) -> bool: ...
    def release(self, ip: IPAddress) -> None: ...
    def last_reserved(self, range_set: int) -> IPAddress | None: ...
    def cleanup_temp(self) -> int: ...


def release_owner(store: Store, owner: Attachment, *, wait: bool = True) -> list[IPAddress]:
    """Release every address owned by `owner` (DEL), under the store lock."""
    with store.lock(wait):
        gone = [ip for ip, o in store.list().items() if o == owner]
        for ip in gone:
            store.release(ip)
    return gone


def parse_owner(data: bytes) -> Attachment | None:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    cid = lines[0].strip()
    if not cid or len(lines) > 2 or any(c.isspace() for c in cid):
        return None
    return Attachment(container_id=ContainerId(cid), ifname=lines[1].strip() if len(lines) > 1 else "")


def render_owner(owner: Attachment) -> bytes:
    return f"{owner.container_id}\r\n{owner.ifname}".encode()


def _parse_ip(name: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class DiskStore:
    def __init__(self, directory: str) -> None:
        self.dir = directory

    def ensure_dir(self) -> None:
        try:
            os.makedirs(self.dir, mode=0o755, exist_ok=True)
        except OSError as e:
            raise IOFailure(f"data dir {self.dir}: cannot create: {e.strerror}") from None

    @contextlib.contextmanager
    def lock(self, wait: bool = True) -> Iterator[None]:
        self.ensure_dir()
        path = os.path.join(self.dir, "lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise IOFailure(f"data dir {self.dir}: cannot open lock file: {e.strerror}") from None
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        raise LockBusy(path) from None
                    if time.monotonic() > deadline:
                        raise TryAgainLater(f"data dir {self.dir}: lock busy for {LOCK_TIMEOUT:.0f}s") from None
                    time.sleep(0.0005)
            yield
        finally:
            os.close(fd)  # releases the flock

    def list(self) -> dict[IPAddress, Attachment | None]:
        out: dict[IPAddress, Attachment | None] = {}
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return out
        for name in names:
            ip = _parse_ip(name)
            if ip is None:
                continue
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    owner = parse_owner(f.read(4096))
            except FileNotFoundError:
                continue
            if owner is None:
                log.warning("corrupted allocation file path=%s (kept reserved until GC)", os.path.join(self.dir, name))
            out[ip] = owner
        return out

    def reserved(self) -> set[IPAddress]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return set()
        return {ip for ip in map(_parse_ip, names) if ip is not None}

    def reserve(self, ip: IPAddress, owner: Attachment, range_set: int) -> bool:
        final = os.path.join(self.dir, str(ip))
        tmp = os.path.join(self.dir, f"{TMP_PREFIX}{ip}.{os.getpid()}.{time.monotonic_ns()}")
        try:
            with open(tmp, "xb") as f:
                f.write(render_owner(owner))
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
            self._write_atomic(f"last_reserved_ip.{range_set}", str(ip).encode())
        except OSError as e:
            raise IOFailure(f"data dir {self.dir}: cannot reserve {ip}: {e.strerror}") from None
        return True

    def _write_atomic(self, name: str, data: bytes) -> None:
        write_atomic(os.path.join(self.dir, name), data, fsync=False, tmp_prefix=f"{TMP_PREFIX}{name}.")

    def release(self, ip: IPAddress) -> None:
        try:
            os.unlink(os.path.join(self.dir, str(ip)))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise IOFailure(f"data dir {self.dir}: cannot release {ip}: {e.strerror}") from None

    def last_reserved(self, range_set: int) -> IPAddress | None:
        try:
            with open(os.path.join(self.dir, f"last_reserved_ip.{range_set}"), "rb") as f:
                return _parse_ip(f.read(64).decode(errors="replace").strip())
        except FileNotFoundError:
            return None

    def cleanup_temp(self) -> int:
        """Remove temp files left by a killed process (call with the lock held)."""
        n = 0
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.dir):
                if name.startswith(TMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.dir, name))
                        n += 1
        return n

    def check_usable(self) -> str | None:
        """Why this store cannot be used (STATUS), or None."""
        try:
            self.ensure_dir()
            with self.lock():
                probe = os.path.join(self.dir, f"{TMP_PREFIX}status.{os.getpid()}")
                with open(probe, "wb"):
                    pass
                os.unlink(probe)
        except (IOFailure, TryAgainLater) as e:
            return e.msg
        except OSError as e:
            return f"data dir {self.dir}: {e.strerror or errno.errorcode.get(e.errno or 0, str(e))}"
        return None


class MemoryStore:
    """In-memory twin of DiskStore for unit tests (same semantics, no files)."""

    def __init__(self) -> None:
        self.allocs: dict[IPAddress, Attachment | None] = {}
        self.last: dict[int, IPAddress] = {}
        self.temp = 0

    @contextlib.contextmanager
    def lock(self, wait: bool = True) -> Iterator[None]:
        yield

    def list(self) -> dict[IPAddress, Attachment | None]:
        return dict(self.allocs)

    def reserved(self) -> set[IPAddress]:
        return set(self.allocs)

    def reserve(self, ip: IPAddress, owner: Attachment, range_set: int) -> bool:
        if ip in self.allocs:
            return False
        self.allocs[ip] = owner
        self.last[range_set] = ip
        return True

    def release(self, ip: IPAddress) -> None:
        self.allocs.pop(ip, None)

    def last_reserved(self, range_set: int) -> IPAddress | None:
        return self.last.get(range_set)

    def cleanup_temp(self) -> int:
        n, self.temp = self.temp, 0
        return n
