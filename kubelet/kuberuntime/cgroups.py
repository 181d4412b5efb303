"""Pod cgroups: the runtime creates ``<controller>/kubepods/<qos>/pod<uid>`` (cgroupfs driver) or
``kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice`` (systemd driver) when it starts the sandbox
(``cgroup_parent``); nodelet removes what is left once the pod is gone (runc only removes each container's own
cgroup). Only directories named for the pod under ``kubepods`` are ever touched."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from cri import api
from kubelet.kuberuntime.resources import compute_cgroup_parent

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
QOS_DIRS = ("", "burstable", "besteffort")

__all__ = ["remove_pod_cgroups", "pod_cgroup_dirs", "apply_pod_cgroup_limits"]


def pod_cgroup_dirs(uid: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Every existing ``pod<uid>`` directory under any controller (v1) or the unified hierarchy (v2)."""
    out: list[Path] = []
    bases = [root] if (root / "cgroup.controllers").exists() else [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()] if root.is_dir() else []
    for base in bases:
        for qos in QOS_DIRS:
            d = base / "kubepods" / qos / f"pod{uid}" if qos else base / "kubepods" / f"pod{uid}"
            if d.is_dir():
                out.append(d)
            d = base / compute_cgroup_parent(uid, qos.capitalize() if qos else "Guaranteed", "systemd").lstrip("/")
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


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as e:
        log.warning("cannot set pod cgroup limit path=%s value=%s err=%s", path, value, e.strerror)


def apply_pod_cgroup_limits(cgroup_parent: str, res: api.LinuxResources, root: Path = CGROUP_ROOT) -> None:
    """Write the pod-level limits into the pod cgroup the runtime created for the sandbox (cgroup v1 or v2).
    Containers inherit them as an upper bound, as under the kubelet's pod cgroups."""
    rel = cgroup_parent.strip("/")
    if not rel.startswith("kubepods"):
        return  # never touch a cgroup nodelet did not name
    if (root / "cgroup.controllers").exists():
        d = root / rel
        if d.is_dir():
            _write(d / "cpu.weight", str(1 + ((res.cpu_shares - 2) * 9999) // 262142))
            _write(d / "cpu.max", f"{res.cpu_quota} {res.cpu_period}" if res.cpu_quota else "max 100000")
            _write(d / "memory.max", str(res.memory_limit_in_bytes) if res.memory_limit_in_bytes else "max")
        return
    cpu, mem = root / "cpu" / rel, root / "memory" / rel
    if cpu.is_dir():
        _write(cpu / "cpu.shares", str(res.cpu_shares))
        if res.cpu_quota:
            _write(cpu / "cpu.cfs_period_us", str(res.cpu_period))
            _write(cpu / "cpu.cfs_quota_us", str(res.cpu_quota))
    if mem.is_dir() and res.memory_limit_in_bytes:
        _write(mem / "memory.limit_in_bytes", str(res.memory_limit_in_bytes))
