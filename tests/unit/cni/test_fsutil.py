"""cni/fsutil.py: the one atomic write every package uses."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cni.fsutil import write_atomic, write_if_changed


def test_write_atomic_replaces_with_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "f.conf"
    p.write_text("old")
    write_atomic(p, "new", mode=0o640)
    assert p.read_text() == "new" and stat.S_IMODE(p.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f.conf"]


def test_write_atomic_mkdir_prefix_and_default_mode(tmp_path: Path) -> None:
    p = tmp_path / "a" / "b" / "state.json"
    write_atomic(p, b"{}", mkdir=True, fsync=False, sync_dir=True, tmp_prefix=".tmp.state.")
    assert p.read_bytes() == b"{}" and stat.S_IMODE(p.stat().st_mode) == 0o644


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(p, 42)  # type: ignore[arg-type]
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["f"]


def test_write_if_changed(tmp_path: Path) -> None:
    p = tmp_path / "f"
    assert write_if_changed(p, "x") is True
    mtime = p.stat().st_mtime_ns
    assert write_if_changed(p, "x") is False and p.stat().st_mtime_ns == mtime
    assert write_if_changed(p, "y") is True and p.read_text() == "y"


def test_cni_fsutil_is_stdlib_only() -> None:
    import subprocess
    import sys

    code = "import sys; import cni.fsutil; print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubelet', 'proxy', 'probes', 'cri', 'yaml', 'grpc', 'pyroute2')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout == "[]\n", out.stderr
