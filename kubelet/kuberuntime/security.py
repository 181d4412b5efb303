"""Pod and container security contexts → CRI security configs (pure).

Upstream: ``pkg/kubelet/kuberuntime/manager/security_context.go`` (``determineEffectiveSecurityContext``: the container's
fields win over the pod's), ``pkg/securitycontext/util.go`` (``AddNoNewPrivileges``, default masked/readonly
paths), ``kuberuntime_sandbox.go`` (sandbox: pod-level user/groups, privileged when any container is),
``security_context_others.go`` (``verifyRunAsNonRoot``).
"""
from __future__ import annotations

from typing import Any, Mapping

from cri import api
from kubelet.types import ContainerSpec, Pod

__all__ = [
    "CAPABILITIES", "SAFE_SYSCTLS", "DEFAULT_MASKED_PATHS", "DEFAULT_READONLY_PATHS", "effective_security_context",
    "compute_container_security", "compute_sandbox_security", "compute_sysctls", "verify_run_as_non_root",
    "compute_seccomp", "is_namespaced_sysctl",
]

#: Linux capabilities (without the CAP_ prefix) as of Linux 6.x; "ALL" is accepted by containerd as well.
CAPABILITIES = frozenset({
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE", "ALL",
})

#: ``pkg/kubelet/sysctl/safe_sysctls.go``
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
})

DEFAULT_MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_INHERITED = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "seLinuxOptions", "windowsOptions",
              "appArmorProfile")


def is_namespaced_sysctl(name: str) -> str | None:
    """The namespace a sysctl belongs to ("net", "ipc") or None when it is node-wide (never allowed in a pod)."""
    name = name.replace("/", ".")
    if name.startswith("net."):
        return "net"
    if name in ("kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
                "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni") or name.startswith("fs.mqueue."):
        return "ipc"
    return None


def _pod_sc(pod: Pod) -> Mapping[str, Any]:
    return pod.manifest.get("spec", {}).get("securityContext") or {}


def effective_security_context(pod: Pod, c: ContainerSpec) -> dict[str, Any]:
    """The container's security context with the pod's inherited fields filled in (the container wins)."""
    psc = _pod_sc(pod)
    out = {k: psc[k] for k in _INHERITED if psc.get(k) is not None}
    out.update({k: v for k, v in (c.raw.get("securityContext") or {}).items() if v is not None})
    return out


def compute_seccomp(profile: Mapping[str, Any] | None, *, privileged: bool) -> api.SecurityProfile | None:
    """None (unconfined, the kubelet's default without SeccompDefault) unless a profile is set; privileged
    containers always run unconfined. Localhost profiles are paths relative to the kubelet's seccomp root."""
    if privileged or not profile:
        return None
    kind = profile.get("type")
    if kind == "RuntimeDefault":
        return api.SecurityProfile(type="RuntimeDefault")
    if kind == "Localhost":
        return api.SecurityProfile(type="Localhost", localhost_ref=str(profile.get("localhostProfile") or ""))
    return api.SecurityProfile(type="Unconfined")


def _localhost_root(sec: api.SecurityProfile | None, seccomp_root: str) -> api.SecurityProfile | None:
    if sec is not None and sec.type == "Localhost":
        return api.SecurityProfile(type="Localhost", localhost_ref=f"{seccomp_root.rstrip('/')}/{sec.localhost_ref}")
    return sec


def _groups(pod: Pod) -> tuple[int, ...]:
    psc = _pod_sc(pod)
    groups = list(psc.get("supplementalGroups") or [])
    if psc.get("fsGroup") is not None and psc["fsGroup"] not in groups:
        groups.append(psc["fsGroup"])
    return tuple(groups)


def compute_namespaces(pod: Pod) -> api.NamespaceOptions:
    spec = pod.spec
    return api.NamespaceOptions(
        network=api.NamespaceMode.NODE if spec.host_network else api.NamespaceMode.POD,
        pid=api.NamespaceMode.NODE if spec.host_pid else (
            api.NamespaceMode.POD if spec.share_process_namespace else api.NamespaceMode.CONTAINER),
        ipc=api.NamespaceMode.NODE if spec.host_ipc else api.NamespaceMode.POD,
    )


def compute_container_security(pod: Pod, c: ContainerSpec, *, seccomp_root: str) -> api.ContainerSecurity:
    sc = effective_security_context(pod, c)
    privileged = sc.get("privileged") is True
    caps = sc.get("capabilities") or {}
    ape = sc.get("allowPrivilegeEscalation")
    return api.ContainerSecurity(
        capabilities=api.Capabilities(add=tuple(str(x).upper() for x in caps.get("add") or ()),
                                      drop=tuple(str(x).upper() for x in caps.get("drop") or ())),
        privileged=privileged,
        namespaces=compute_namespaces(pod),
        run_as_user=sc.get("runAsUser"),
        run_as_group=sc.get("runAsGroup"),
        readonly_rootfs=sc.get("readOnlyRootFilesystem") is True,
        supplemental_groups=_groups(pod),
        no_new_privs=ape is False,  # AddNoNewPrivileges: only an explicit false sets no_new_privs
        masked_paths=() if privileged or sc.get("procMount") == "Unmasked" else DEFAULT_MASKED_PATHS,
        readonly_paths=() if privileged or sc.get("procMount") == "Unmasked" else DEFAULT_READONLY_PATHS,
        seccomp=_localhost_root(compute_seccomp(sc.get("seccompProfile"), privileged=privileged), seccomp_root),
    )


def compute_sandbox_security(pod: Pod, *, seccomp_root: str) -> api.SandboxSecurity:
    psc = _pod_sc(pod)
    privileged = any(((c.raw.get("securityContext") or {}).get("privileged") is True)
                     for c in pod.spec.init_containers + pod.spec.containers)
    return api.SandboxSecurity(
        namespaces=compute_namespaces(pod),
        run_as_user=psc.get("runAsUser"),
        run_as_group=psc.get("runAsGroup"),
        supplemental_groups=_groups(pod),
        privileged=privileged,
        seccomp=_localhost_root(compute_seccomp(psc.get("seccompProfile"), privileged=False), seccomp_root),
    )


def compute_sysctls(pod: Pod) -> dict[str, str]:
    return {str(s["name"]).replace("/", "."): str(s.get("value", "")) for s in _pod_sc(pod).get("sysctls") or []}


def verify_run_as_non_root(pod: Pod, c: ContainerSpec, image: api.Image | None) -> str | None:
    """``verifyRunAsNonRoot``: the error message when runAsNonRoot cannot be honoured, else None."""
    sc = effective_security_context(pod, c)
    if sc.get("runAsNonRoot") is not True:
        return None
    who = f'(pod: "{pod.full_name}({pod.uid})", container: {c.name})'
    uid = sc.get("runAsUser")
    if uid is not None:
        return f"container's runAsUser breaks non-root policy {who}" if uid == 0 else None
    if image is None:
        return None
    if image.uid is not None:
        if image.uid == 0:
            return f"container has runAsNonRoot and image will run as root {who}"
        return None
    if image.username:
        user = image.username.split(":", 1)[0]
        if not user.isdigit():
            return (f"container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is "
                    f"non-root {who}")
        return f"container has runAsNonRoot and image will run as root {who}" if int(user) == 0 else None
    return f"container has runAsNonRoot and image will run as root {who}"
