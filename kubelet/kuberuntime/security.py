"""Pod and container security contexts → CRI security configs (pure).

Upstream: ``pkg/kubelet/kuberuntime/manager/security_context.go`` (``determineEffectiveSecurityContext``: the container's
fields win over the pod's), ``pkg/securitycontext/util.go`` (``AddNoNewPrivileges``, default masked/readonly
paths), ``kuberuntime_sandbox.go`` (sandbox: pod-level user/groups, privileged when any container is),
``security_context_others.go`` (``verifyRunAsNonRoot``).
"""
from __future__ import annotations

import dataclasses

from cri import api
from kubelet.types import ContainerSpec, Pod, SeccompProfile, SecurityContext

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



def is_namespaced_sysctl(name: str) -> str | None:
    """The namespace a sysctl belongs to ("net", "ipc") or None when it is node-wide (never allowed in a pod)."""
    name = name.replace("/", ".")
    if name.startswith("net."):
        return "net"
    if name in ("kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
                "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni") or name.startswith("fs.mqueue."):
        return "ipc"
    return None


def effective_security_context(pod: Pod, c: ContainerSpec) -> SecurityContext:
    """The container's security context with the pod's inherited fields filled in (the container wins)."""
    sc, psc = c.security_context, pod.spec.security_context
    return dataclasses.replace(
        sc,
        run_as_user=sc.run_as_user if sc.run_as_user is not None else psc.run_as_user,
        run_as_group=sc.run_as_group if sc.run_as_group is not None else psc.run_as_group,
        run_as_non_root=sc.run_as_non_root if sc.run_as_non_root is not None else psc.run_as_non_root,
        seccomp_profile=sc.seccomp_profile if sc.seccomp_profile is not None else psc.seccomp_profile,
    )


def compute_seccomp(profile: SeccompProfile | None, *, privileged: bool) -> api.SecurityProfile | None:
    """None (unconfined, the kubelet's default without SeccompDefault) unless a profile is set; privileged
    containers always run unconfined. Localhost profiles are paths relative to the kubelet's seccomp root."""
    if privileged or profile is None:
        return None
    if profile.type == "RuntimeDefault":
        return api.SecurityProfile(type="RuntimeDefault")
    if profile.type == "Localhost":
        return api.SecurityProfile(type="Localhost", localhost_ref=profile.localhost_profile)
    return api.SecurityProfile(type="Unconfined")


def _localhost_root(sec: api.SecurityProfile | None, seccomp_root: str) -> api.SecurityProfile | None:
    if sec is not None and sec.type == "Localhost":
        return api.SecurityProfile(type="Localhost", localhost_ref=f"{seccomp_root.rstrip('/')}/{sec.localhost_ref}")
    return sec


def _groups(pod: Pod) -> tuple[int, ...]:
    psc = pod.spec.security_context
    groups = list(psc.supplemental_groups)
    if psc.fs_group is not None and psc.fs_group not in groups:
        groups.append(psc.fs_group)
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
    privileged = sc.privileged is True
    return api.ContainerSecurity(
        capabilities=api.Capabilities(add=sc.capabilities_add, drop=sc.capabilities_drop),
        privileged=privileged,
        namespaces=compute_namespaces(pod),
        run_as_user=sc.run_as_user,
        run_as_group=sc.run_as_group,
        readonly_rootfs=sc.read_only_root_filesystem is True,
        supplemental_groups=_groups(pod),
        no_new_privs=sc.allow_privilege_escalation is False,  # AddNoNewPrivileges: only an explicit false sets it
        masked_paths=() if privileged or sc.proc_mount == "Unmasked" else DEFAULT_MASKED_PATHS,
        readonly_paths=() if privileged or sc.proc_mount == "Unmasked" else DEFAULT_READONLY_PATHS,
        seccomp=_localhost_root(compute_seccomp(sc.seccomp_profile, privileged=privileged), seccomp_root),
    )


def compute_sandbox_security(pod: Pod, *, seccomp_root: str) -> api.SandboxSecurity:
    psc = pod.spec.security_context
    privileged = any(c.security_context.privileged is True for c in pod.spec.init_containers + pod.spec.containers)
    return api.SandboxSecurity(
        namespaces=compute_namespaces(pod),
        run_as_user=psc.run_as_user,
        run_as_group=psc.run_as_group,
        supplemental_groups=_groups(pod),
        privileged=privileged,
        seccomp=_localhost_root(compute_seccomp(psc.seccomp_profile, privileged=False), seccomp_root),
    )


def compute_sysctls(pod: Pod) -> dict[str, str]:
    return dict(pod.spec.security_context.sysctls)


def verify_run_as_non_root(pod: Pod, c: ContainerSpec, image: api.Image | None) -> str | None:
    """``verifyRunAsNonRoot``: the error message when runAsNonRoot cannot be honoured, else None."""
    sc = effective_security_context(pod, c)
    if sc.run_as_non_root is not True:
        return None
    who = f'(pod: "{pod.full_name}({pod.uid})", container: {c.name})'
    uid = sc.run_as_user
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
