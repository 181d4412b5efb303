"""Pod cgroups under cgroupfs: the runtime creates ``<controller>/kubepods/<qos>/pod<uid>`` when it starts the
sandbox (``cgroup_parent``); nodelet removes what is left once the pod is gone (runc only removes each
container's own cgroup). Only directories named ``pod<uid>`` under ``kubepods`` are ever touched."""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
QOS_DIRS = ("", "burstable", "besteffort")

__all__ = ["remove_pod_cgroups", "pod_cgroup_dirs"]


def pod_cgroup_dirs(uid: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Every existing ``pod<uid>`` directory under any controller (v1) or the unified hierarchy (v2)."""
    out: list[Path] = []
    bases = [root] if (root / "cgroup.controllers").exists() else [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()] if root.is_dir() else []
    for base in bases:
        for qos in QOS_DIRS:
            d = base / "kubepods" / qos / f"pod{uid}" if qos else base / "kubepods" / f"pod{uid}"
            if d.is_dir():
                out.append(d)
    return out


def remove_pod_cgroups(uid: str, root: Path = CGROUP_ROOT) -> int:
    """rmdir the pod's cgroups (children first); busy ones (a process still inside) are left and logged."""
    removed = 0
    for d in pod_cgroup_dirs(uid, root):
        for sub, dirs, _ in sorted(os.walk(d), key=lambda w: len(w[0]), reverse=True):
            try:
                os.rmdir(sub)
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("cannot remove pod cgroup uid=%s path=%s err=%s", uid, sub, e.strerror)
    return removed
