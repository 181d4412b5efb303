"""Pure mapping between cri.api values and runtime.v1 protobuf messages. No I/O."""
from __future__ import annotations

from typing import Mapping

from cri import api
from cri._gen import api_pb2 as pb

_PROFILE_TYPES = {"RuntimeDefault": 0, "Unconfined": 1, "Localhost": 2}


def _i64(value: int | None) -> pb.Int64Value | None:
    return None if value is None else pb.Int64Value(value=value)


def _u64(msg: pb.UInt64Value, present: bool) -> int | None:
    return msg.value if present else None


def _profile(p: api.SecurityProfile | None) -> pb.SecurityProfile | None:
    if p is None:
        return None
    return pb.SecurityProfile(profile_type=_PROFILE_TYPES[p.type], localhost_ref=p.localhost_ref)


def _namespaces(ns: api.NamespaceOptions) -> pb.NamespaceOption:
    return pb.NamespaceOption(network=int(ns.network), pid=int(ns.pid), ipc=int(ns.ipc), target_id=ns.target_id)


def to_resources(r: api.LinuxResources | None) -> pb.LinuxContainerResources | None:
    if r is None:
        return None
    return pb.LinuxContainerResources(
        cpu_period=r.cpu_period,
        cpu_quota=r.cpu_quota,
        cpu_shares=r.cpu_shares,
        memory_limit_in_bytes=r.memory_limit_in_bytes,
        oom_score_adj=r.oom_score_adj,
        cpuset_cpus=r.cpuset_cpus,
        cpuset_mems=r.cpuset_mems,
        unified=dict(r.unified),
    )


def to_sandbox_config(c: api.PodSandboxConfig) -> pb.PodSandboxConfig:
    m = c.metadata
    sec = c.linux.security
    linux = pb.LinuxPodSandboxConfig(
        cgroup_parent=c.linux.cgroup_parent,
        sysctls=dict(c.linux.sysctls),
        security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=_namespaces(sec.namespaces),
            run_as_user=_i64(sec.run_as_user),
            run_as_group=_i64(sec.run_as_group),
            readonly_rootfs=sec.readonly_rootfs,
            supplemental_groups=list(sec.supplemental_groups),
            privileged=sec.privileged,
            seccomp=_profile(sec.seccomp),
        ),
        overhead=to_resources(c.linux.overhead),
        resources=to_resources(c.linux.resources),
    )
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=m.name, uid=m.uid, namespace=m.namespace, attempt=m.attempt),
        hostname=c.hostname,
        log_directory=c.log_directory,
        dns_config=(
            pb.DNSConfig(servers=list(c.dns.servers), searches=list(c.dns.searches), options=list(c.dns.options))
            if c.dns
            else None
        ),
        port_mappings=[
            pb.PortMapping(
                protocol=int(p.protocol), container_port=p.container_port, host_port=p.host_port, host_ip=p.host_ip
            )
            for p in c.port_mappings
        ],
        labels=dict(c.labels),
        annotations=dict(c.annotations),
        linux=linux,
    )


def to_mount(m: api.Mount) -> pb.Mount:
    return pb.Mount(
        container_path=m.container_path,
        host_path=m.host_path,
        readonly=m.readonly,
        selinux_relabel=m.selinux_relabel,
        propagation=int(m.propagation),
    )


def to_container_config(c: api.ContainerConfig) -> pb.ContainerConfig:
    linux = None
    if c.resources is not None or c.security is not None:
        sec = c.security
        linux = pb.LinuxContainerConfig(
            resources=to_resources(c.resources),
            security_context=(
                pb.LinuxContainerSecurityContext(
                    capabilities=(
                        pb.Capability(
                            add_capabilities=list(sec.capabilities.add), drop_capabilities=list(sec.capabilities.drop)
                        )
                        if sec.capabilities
                        else None
                    ),
                    privileged=sec.privileged,
                    namespace_options=_namespaces(sec.namespaces),
                    run_as_user=_i64(sec.run_as_user),
                    run_as_group=_i64(sec.run_as_group),
                    run_as_username=sec.run_as_username,
                    readonly_rootfs=sec.readonly_rootfs,
                    supplemental_groups=list(sec.supplemental_groups),
                    no_new_privs=sec.no_new_privs,
                    masked_paths=list(sec.masked_paths),
                    readonly_paths=list(sec.readonly_paths),
                    seccomp=_profile(sec.seccomp),
                    apparmor=_profile(sec.apparmor),
                )
                if sec
                else None
            ),
        )
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=c.name, attempt=c.attempt),
        image=pb.ImageSpec(image=c.image),
        command=list(c.command),
        args=list(c.args),
        working_dir=c.working_dir,
        envs=[pb.KeyValue(key=k, value=v.encode()) for k, v in c.envs],
        mounts=[to_mount(m) for m in c.mounts],
        devices=[
            pb.Device(container_path=d.container_path, host_path=d.host_path, permissions=d.permissions)
            for d in c.devices
        ],
        labels=dict(c.labels),
        annotations=dict(c.annotations),
        log_path=c.log_path,
        stdin=c.stdin,
        stdin_once=c.stdin_once,
        tty=c.tty,
        linux=linux,
    )


def _meta(m: pb.PodSandboxMetadata) -> api.PodSandboxMetadata:
    return api.PodSandboxMetadata(name=m.name, uid=m.uid, namespace=m.namespace, attempt=m.attempt)


def from_sandbox(s: pb.PodSandbox) -> api.PodSandbox:
    return api.PodSandbox(
        id=api.SandboxId(s.id),
        metadata=_meta(s.metadata),
        state=api.SandboxState(s.state),
        created_at=s.created_at,
        labels=dict(s.labels),
        annotations=dict(s.annotations),
        runtime_handler=s.runtime_handler,
    )


def from_sandbox_status(s: pb.PodSandboxStatus, info: Mapping[str, str]) -> api.PodSandboxStatus:
    return api.PodSandboxStatus(
        id=api.SandboxId(s.id),
        metadata=_meta(s.metadata),
        state=api.SandboxState(s.state),
        created_at=s.created_at,
        ip=s.network.ip,
        additional_ips=tuple(p.ip for p in s.network.additional_ips),
        network_mode=api.NamespaceMode(s.linux.namespaces.options.network),
        labels=dict(s.labels),
        annotations=dict(s.annotations),
        runtime_handler=s.runtime_handler,
        info=dict(info),
    )


def from_container(c: pb.Container) -> api.Container:
    return api.Container(
        id=api.ContainerId(c.id),
        sandbox_id=api.SandboxId(c.pod_sandbox_id),
        name=c.metadata.name,
        attempt=c.metadata.attempt,
        image=c.image.image,
        image_ref=c.image_ref,
        state=api.ContainerState(c.state),
        created_at=c.created_at,
        labels=dict(c.labels),
        annotations=dict(c.annotations),
    )


def from_container_status(s: pb.ContainerStatus, info: Mapping[str, str]) -> api.ContainerStatus:
    return api.ContainerStatus(
        id=api.ContainerId(s.id),
        name=s.metadata.name,
        attempt=s.metadata.attempt,
        state=api.ContainerState(s.state),
        created_at=s.created_at,
        started_at=s.started_at,
        finished_at=s.finished_at,
        exit_code=s.exit_code,
        image=s.image.image,
        image_ref=s.image_ref,
        reason=s.reason,
        message=s.message,
        labels=dict(s.labels),
        annotations=dict(s.annotations),
        mounts=tuple(
            api.Mount(
                container_path=m.container_path,
                host_path=m.host_path,
                readonly=m.readonly,
                propagation=api.MountPropagation(m.propagation),
                selinux_relabel=m.selinux_relabel,
            )
            for m in s.mounts
        ),
        log_path=s.log_path,
        info=dict(info),
    )


def from_container_stats(s: pb.ContainerStats) -> api.ContainerStats:
    cpu, mem, wl = s.cpu, s.memory, s.writable_layer
    return api.ContainerStats(
        id=api.ContainerId(s.attributes.id),
        name=s.attributes.metadata.name,
        labels=dict(s.attributes.labels),
        timestamp=cpu.timestamp or mem.timestamp,
        cpu_usage_core_nanoseconds=_u64(cpu.usage_core_nano_seconds, cpu.HasField("usage_core_nano_seconds")),
        cpu_usage_nano_cores=_u64(cpu.usage_nano_cores, cpu.HasField("usage_nano_cores")),
        memory_working_set_bytes=_u64(mem.working_set_bytes, mem.HasField("working_set_bytes")),
        memory_usage_bytes=_u64(mem.usage_bytes, mem.HasField("usage_bytes")),
        memory_rss_bytes=_u64(mem.rss_bytes, mem.HasField("rss_bytes")),
        writable_layer_bytes=_u64(wl.used_bytes, wl.HasField("used_bytes")),
    )


def from_fs_usage(f: pb.FilesystemUsage) -> api.FilesystemUsage:
    return api.FilesystemUsage(
        mountpoint=f.fs_id.mountpoint,
        used_bytes=_u64(f.used_bytes, f.HasField("used_bytes")),
        inodes_used=_u64(f.inodes_used, f.HasField("inodes_used")),
        timestamp=f.timestamp,
    )


def from_image(i: pb.Image) -> api.Image:
    return api.Image(
        id=i.id,
        repo_tags=tuple(i.repo_tags),
        repo_digests=tuple(i.repo_digests),
        size=i.size,
        uid=i.uid.value if i.HasField("uid") else None,
        username=i.username,
        pinned=i.pinned,
    )
