"""Typed values at the CRI package boundary: what callers build and what the client returns.

Nothing here imports protobuf; `cri.convert` maps these to and from the wire messages. Timestamps are
nanoseconds since the epoch, as the CRI carries them.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, NewType

SandboxId = NewType("SandboxId", str)
ContainerId = NewType("ContainerId", str)

EMPTY: Mapping[str, str] = {}


class ContainerState(enum.IntEnum):
    CREATED = 0
    RUNNING = 1
    EXITED = 2
    UNKNOWN = 3


class SandboxState(enum.IntEnum):
    READY = 0
    NOTREADY = 1


class NamespaceMode(enum.IntEnum):
    POD = 0
    CONTAINER = 1
    NODE = 2
    TARGET = 3


class Protocol(enum.IntEnum):
    TCP = 0
    UDP = 1
    SCTP = 2


class MountPropagation(enum.IntEnum):
    PRIVATE = 0
    HOST_TO_CONTAINER = 1
    BIDIRECTIONAL = 2


# ---- runtime ----


@dataclass(frozen=True, kw_only=True)
class Version:
    version: str
    runtime_name: str
    runtime_version: str
    runtime_api_version: str


@dataclass(frozen=True, kw_only=True)
class RuntimeCondition:
    type: str
    status: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class RuntimeStatus:
    conditions: tuple[RuntimeCondition, ...]
    info: Mapping[str, str] = field(default_factory=dict)

    def condition(self, type_: str) -> RuntimeCondition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def runtime_ready(self) -> bool:
        c = self.condition("RuntimeReady")
        return bool(c and c.status)

    @property
    def network_ready(self) -> bool:
        c = self.condition("NetworkReady")
        return bool(c and c.status)


# ---- sandbox config ----


@dataclass(frozen=True, kw_only=True)
class PodSandboxMetadata:
    name: str
    uid: str
    namespace: str
    attempt: int = 0


@dataclass(frozen=True, kw_only=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PortMapping:
    container_port: int
    host_port: int
    protocol: Protocol = Protocol.TCP
    host_ip: str = ""


@dataclass(frozen=True, kw_only=True)
class NamespaceOptions:
    network: NamespaceMode = NamespaceMode.POD
    pid: NamespaceMode = NamespaceMode.CONTAINER
    ipc: NamespaceMode = NamespaceMode.POD
    target_id: str = ""


@dataclass(frozen=True, kw_only=True)
class SecurityProfile:
    """seccomp/AppArmor profile: type is RuntimeDefault, Unconfined or Localhost."""

    type: str = "RuntimeDefault"
    localhost_ref: str = ""


@dataclass(frozen=True, kw_only=True)
class SandboxSecurity:
    namespaces: NamespaceOptions = NamespaceOptions()
    run_as_user: int | None = None
    run_as_group: int | None = None
    readonly_rootfs: bool = False
    supplemental_groups: tuple[int, ...] = ()
    privileged: bool = False
    seccomp: SecurityProfile | None = None


@dataclass(frozen=True, kw_only=True)
class LinuxResources:
    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_shares: int = 0
    memory_limit_in_bytes: int = 0
    oom_score_adj: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    unified: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class LinuxSandboxConfig:
    cgroup_parent: str = ""
    security: SandboxSecurity = SandboxSecurity()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    overhead: LinuxResources | None = None
    resources: LinuxResources | None = None


@dataclass(frozen=True, kw_only=True)
class PodSandboxConfig:
    metadata: PodSandboxMetadata
    hostname: str = ""
    log_directory: str = ""
    dns: DNSConfig | None = None
    port_mappings: tuple[PortMapping, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    linux: LinuxSandboxConfig = LinuxSandboxConfig()


# ---- sandbox results ----


@dataclass(frozen=True, kw_only=True)
class PodSandbox:
    id: SandboxId
    metadata: PodSandboxMetadata
    state: SandboxState
    created_at: int
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    runtime_handler: str = ""


@dataclass(frozen=True, kw_only=True)
class PodSandboxStatus:
    id: SandboxId
    metadata: PodSandboxMetadata
    state: SandboxState
    created_at: int
    ip: str = ""
    additional_ips: tuple[str, ...] = ()
    network_mode: NamespaceMode = NamespaceMode.POD
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    runtime_handler: str = ""
    info: Mapping[str, str] = field(default_factory=dict)


# ---- container config ----


@dataclass(frozen=True, kw_only=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: MountPropagation = MountPropagation.PRIVATE
    selinux_relabel: bool = False


@dataclass(frozen=True, kw_only=True)
class Device:
    container_path: str
    host_path: str
    permissions: str = "rwm"


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ContainerSecurity:
    capabilities: Capabilities | None = None
    privileged: bool = False
    namespaces: NamespaceOptions = NamespaceOptions()
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_username: str = ""
    readonly_rootfs: bool = False
    supplemental_groups: tuple[int, ...] = ()
    no_new_privs: bool = False
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    seccomp: SecurityProfile | None = None
    apparmor: SecurityProfile | None = None


@dataclass(frozen=True, kw_only=True)
class ContainerConfig:
    name: str
    image: str
    attempt: int = 0
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    envs: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    devices: tuple[Device, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    log_path: str = ""
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: LinuxResources | None = None
    security: ContainerSecurity | None = None


# ---- container results ----


@dataclass(frozen=True, kw_only=True)
class Container:
    id: ContainerId
    sandbox_id: SandboxId
    name: str
    attempt: int
    image: str
    image_ref: str
    state: ContainerState
    created_at: int
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ContainerStatus:
    id: ContainerId
    name: str
    attempt: int
    state: ContainerState
    created_at: int
    started_at: int
    finished_at: int
    exit_code: int
    image: str
    image_ref: str
    reason: str = ""
    message: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    log_path: str = ""
    info: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


# ---- stats ----


@dataclass(frozen=True, kw_only=True)
class ContainerStats:
    id: ContainerId
    name: str
    labels: Mapping[str, str]
    timestamp: int
    cpu_usage_core_nanoseconds: int | None
    cpu_usage_nano_cores: int | None
    memory_working_set_bytes: int | None
    memory_usage_bytes: int | None
    memory_rss_bytes: int | None
    writable_layer_bytes: int | None


@dataclass(frozen=True, kw_only=True)
class FilesystemUsage:
    mountpoint: str
    used_bytes: int | None
    inodes_used: int | None
    timestamp: int


# ---- images ----


@dataclass(frozen=True, kw_only=True)
class Image:
    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int
    uid: int | None = None
    username: str = ""
    pinned: bool = False
