"""Disk store in host-local's format (atomic, O_EXCL-like reserve, corrupted files reported) and its twin."""
from __future__ import annotations

import ipaddress
import os

import pytest

from cni.config import Attachment, ContainerId
from cni.store import DiskStore, MemoryStore, parse_owner

ip = ipaddress.ip_address
A = Attachment(container_id=ContainerId("c1"), ifname="eth0")
B = Attachment(container_id=ContainerId("c2"), ifname="eth0")


@pytest.fixture(params=["disk", "memory"])
def store(request, tmp_path):  # type: ignore[no-untyped-def]
    return DiskStore(str(tmp_path / "net")) if request.param == "disk" else MemoryStore()


def test_reserve_is_exclusive_and_listed(store) -> None:  # type: ignore[no-untyped-def]
    with store.lock():
        assert store.reserve(ip("10.0.0.2"), A, 0)
        assert not store.reserve(ip("10.0.0.2"), B, 0)
        assert store.reserve(ip("10.0.0.3"), B, 0)
    assert store.list() == {ip("10.0.0.2"): A, ip("10.0.0.3"): B}
    assert store.reserved() == {ip("10.0.0.2"), ip("10.0.0.3")}
    assert store.last_reserved(0) == ip("10.0.0.3")
    store.release(ip("10.0.0.2"))
    store.release(ip("10.0.0.2"))  # idempotent
    assert store.reserved() == {ip("10.0.0.3")}


def test_disk_format_is_host_local_compatible(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = DiskStore(str(tmp_path / "net"))
    with s.lock():
        s.reserve(ip("10.0.0.2"), A, 0)
    assert (tmp_path / "net" / "10.0.0.2").read_bytes() == b"c1\r\neth0"
    assert (tmp_path / "net" / "last_reserved_ip.0").read_text() == "10.0.0.2"
    assert (tmp_path / "net" / "lock").exists()
    assert not [n for n in os.listdir(tmp_path / "net") if n.startswith(".tmp.")]
    # files written by host-local itself (older single-line format too) are understood
    (tmp_path / "net" / "10.0.0.9").write_bytes(b"legacyid")
    assert s.list()[ip("10.0.0.9")] == Attachment(container_id=ContainerId("legacyid"), ifname="")


def test_corrupted_file_is_reported_not_fatal(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    s = DiskStore(str(tmp_path / "net"))
    s.ensure_dir()
    (tmp_path / "net" / "10.0.0.5").write_bytes(b"\xff\xfe garbage\nmore\nlines")
    assert s.list() == {ip("10.0.0.5"): None}
    assert "corrupted allocation file" in caplog.text and "10.0.0.5" in caplog.text
    assert ip("10.0.0.5") in s.reserved()  # never handed out while corrupted


def test_temp_files_from_a_killed_writer_are_cleaned(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = DiskStore(str(tmp_path / "net"))
    s.ensure_dir()
    (tmp_path / "net" / ".tmp.10.0.0.2.123.456").write_bytes(b"c1\r\neth0")
    assert s.list() == {}
    with s.lock():
        assert s.cleanup_temp() == 1
    assert os.listdir(tmp_path / "net") == ["lock"]


def test_status_probe(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert DiskStore(str(tmp_path / "ok")).check_usable() is None
    (tmp_path / "file").write_text("x")
    why = DiskStore(str(tmp_path / "file" / "net")).check_usable()
    assert why is not None and "cannot create" in why


def test_parse_owner() -> None:
    assert parse_owner(b"abc\r\neth0") == Attachment(container_id=ContainerId("abc"), ifname="eth0")
    assert parse_owner(b"") is None and parse_owner(b"a b") is None


def test_lock_without_wait_reports_busy_and_a_thread_waits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import fcntl
    import threading

    from cni.store import LockBusy
    s = DiskStore(str(tmp_path / "net"))
    s.ensure_dir()
    holder = os.open(tmp_path / "net" / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another "process" (another open file description) holds it
    with pytest.raises(LockBusy):
        with s.lock(wait=False):
            pass
    got = threading.Event()

    def waiter() -> None:
        with s.lock():
            got.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not got.wait(0.05)  # still held
    os.close(holder)
    t.join(5)
    assert got.is_set()
