"""Which host resolver file pods' DNS starts from, as kubeadm chooses it, and the loopback nameservers a pod must
never get.

kubeadm (``cmd/kubeadm/app/componentconfigs/kubelet_unix.go`` ``mutateResolverConfig``) writes
``resolvConf: /run/systemd/resolve/resolv.conf`` when the ``systemd-resolved`` service is active, because
``/etc/resolv.conf`` then names the stub ``127.0.0.53``, which is the host's loopback and unreachable from a pod's
network namespace. nodelet applies the same rule at start when ``resolvConf`` is not set: :func:`compute_resolv_conf`.
Whatever file is used, loopback nameservers are left out of pods' DNS (:func:`split_loopback`), with a Warning event,
and ``nodelet doctor`` FAILs with the fix.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Callable

__all__ = ["DEFAULT_RESOLV_CONF", "SYSTEMD_RESOLVED_RESOLV_CONF", "compute_resolv_conf", "is_loopback",
           "is_systemd_resolved_active", "parse_nameservers", "split_loopback"]

DEFAULT_RESOLV_CONF = "/etc/resolv.conf"
SYSTEMD_RESOLVED_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"  # kubeadm's kubeletSystemdResolverConfig


def is_loopback(server: str) -> bool:
    try:
        return ipaddress.ip_address(server.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def parse_nameservers(text: str) -> tuple[str, ...]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[0] == "nameserver":
            out.append(parts[1])
    return tuple(out)


def split_loopback(servers: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(usable, loopback) nameservers."""
    return tuple(s for s in servers if not is_loopback(s)), tuple(s for s in servers if is_loopback(s))


def _systemctl_is_active(unit: str) -> bool | None:
    """kubeadm's check (initsystem.ServiceIsActive); None when systemd is not running as init here."""
    exe = shutil.which("systemctl")
    if exe is None or not os.path.isdir("/run/systemd/system"):
        return None
    try:
        return subprocess.run([exe, "is-active", "--quiet", unit], timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return None


def is_systemd_resolved_active(root: str = "/", *,
                               systemctl: Callable[[str], bool | None] = _systemctl_is_active) -> bool:
    """systemd-resolved runs: asked of systemd as kubeadm does; without systemd as init (containers, a test root),
    from its files: its own resolv.conf exists and /etc/resolv.conf points at its stub (a loopback nameserver only)."""
    if root == "/":
        active = systemctl("systemd-resolved")
        if active is not None:
            return active
    upstream = os.path.join(root, SYSTEMD_RESOLVED_RESOLV_CONF.lstrip("/"))
    if not os.path.isfile(upstream):
        return False
    try:
        with open(os.path.join(root, DEFAULT_RESOLV_CONF.lstrip("/"))) as f:
            servers = parse_nameservers(f.read())
    except OSError:
        return False
    return bool(servers) and all(is_loopback(s) for s in servers)


def compute_resolv_conf(configured: str | None, *, root: str = "/",
                        resolved_active: Callable[[str], bool] = is_systemd_resolved_active) -> str:
    """The resolver file to use: ``resolvConf`` when set ("" = none), else kubeadm's choice."""
    if configured is not None:
        return configured
    return SYSTEMD_RESOLVED_RESOLV_CONF if resolved_active(root) else DEFAULT_RESOLV_CONF
