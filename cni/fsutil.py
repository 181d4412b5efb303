"""Atomic file writes: the one copy for every package (kubelet, proxy and cni import it).

It lives in `cni` because `cni` is the leaf with the hardest constraint — a short-lived program whose start-up time
matters, that imports nothing outside the standard library and itself — and its package `__init__` is free to
import, so `kubelet` and `proxy` can use this module at no cost. Standard library only; keep it that way.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]


def write_atomic(path: PathLike, data: bytes | str, *, mode: int | None = 0o644, fsync: bool = True,
                 sync_dir: bool = False, mkdir: bool = False, tmp_prefix: str | None = None) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, never a part: a temp file in the
    same directory (`.<name>.*.tmp`, hidden from directory watchers that skip dotfiles), flushed (and fsynced unless
    `fsync=False`), chmod `mode` (None: mkstemp's 0600), renamed over `path`; the temp file never outlives a failure.
    `sync_dir` also fsyncs the directory, so the rename itself survives a power loss; `tmp_prefix` names the temp
    file for owners that recognise their own leftovers."""
    target = Path(path)
    if mkdir:
        target.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=tmp_prefix or f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync_dir:
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_if_changed(path: PathLike, data: bytes | str, **kw: object) -> bool:
    """`write_atomic` unless the file already holds exactly `data`; whether it wrote."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if Path(path).read_bytes() == raw:
            return False
    except OSError:
        pass
    write_atomic(path, raw, **kw)  # type: ignore[arg-type]
    return True


__all__ = ["write_atomic", "write_if_changed"]
