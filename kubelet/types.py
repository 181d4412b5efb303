"""The agent's model of a static pod: parsed, validated and defaulted from a manifest. Frozen values.

`Pod.manifest` keeps the whole defaulted object (Kubernetes-shaped dict) for the API and for fields the agent
reads directly; the typed fields are the ones the sync logic depends on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

# The ids kubelet/ uses, each defined once where it originates: runtime objects' in cri.api, the pod UID in
# probes.types (which imports nothing of ours). probes keeps its own ContainerId (it must not import cri), cni its
# own (a separate program).
from cri.api import ContainerId as ContainerId, SandboxId as SandboxId
from probes.types import PodUID as PodUID

# Label and annotation keys shared with the kubelet, so crictl & co. see familiar pods and a restarted agent adopts them.
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_MANAGED_BY = "io.nodelet.node"  # nodelet's own: the node name of the agent that created the sandbox/container
ANN_CONTAINER_HASH = "io.kubernetes.container.hash"
ANN_RESTART_COUNT = "io.kubernetes.container.restartCount"
ANN_TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
ANN_TERMINATION_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy"
ANN_PRESTOP_HANDLER = "io.kubernetes.container.preStopHandler"
ANN_PORTS = "io.kubernetes.container.ports"
ANN_GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
ANN_CONTAINER_TYPE = "io.nodelet.container.type"  # "init" | "regular"
ANN_CONFIG_HASH = "kubernetes.io/config.hash"
ANN_CONFIG_SOURCE = "kubernetes.io/config.source"
ANN_CONFIG_SEEN = "kubernetes.io/config.seen"
ANN_CONFIG_FILE = "io.nodelet.config.file"  # nodelet's own: which manifest file the pod came from


@dataclass(frozen=True, kw_only=True)
class ResourceFieldRef:
    """env ``valueFrom.resourceFieldRef``: a container's limit or request, divided by ``divisor`` (rounded up)."""
    resource: str  # limits.cpu, requests.memory, limits.hugepages-2Mi …
    container_name: str = ""  # "" = the container the variable is set in
    divisor: str = "1"


@dataclass(frozen=True, kw_only=True)
class EnvVar:
    name: str
    value: str | None = None
    field_path: str | None = None  # valueFrom.fieldRef.fieldPath
    resource_field_ref: ResourceFieldRef | None = None  # valueFrom.resourceFieldRef


@dataclass(frozen=True, kw_only=True)
class ContainerPort:
    name: str
    container_port: int
    protocol: str = "TCP"
    host_port: int = 0
    host_ip: str = ""


@dataclass(frozen=True, kw_only=True)
class SleepAction:
    """lifecycle.*.sleep: wait this long (the only hook handler that is not a probe handler)."""

    seconds: int


# A lifecycle hook handler: probes.types.ExecAction | HTTPGetAction | TCPSocketAction (the probe grammar) or sleep.
LifecycleHandler = Any


@dataclass(frozen=True, kw_only=True)
class Lifecycle:
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None
    # The manifest's preStop object as compact JSON, for the io.kubernetes.container.preStopHandler annotation.
    pre_stop_json: str = ""


@dataclass(frozen=True, kw_only=True)
class DNSOption:
    name: str
    value: str | None = None


@dataclass(frozen=True, kw_only=True)
class PodDNSConfig:
    """spec.dnsConfig, merged over what dnsPolicy gives."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[DNSOption, ...] = ()


@dataclass(frozen=True, kw_only=True)
class VolumeSpec:
    """One pod volume nodelet sets up (kuberuntime.volumes.compute_volumes parses them)."""

    name: str
    kind: str  # "emptyDir" | "hostPath" | "configMap" | "secret" | "downwardAPI" | "projected"
    medium: str = ""  # emptyDir: "" | "Memory"
    size_limit: int | None = None  # emptyDir: bytes
    path: str = ""  # hostPath
    type: str = ""  # hostPath type
    source: Mapping[str, Any] = field(default_factory=dict)  # configMap / secret source
    projection: Any = None  # downwardAPI / projected: kubelet.kuberuntime.downward.Projection


@dataclass(frozen=True, kw_only=True)
class VolumeMount:
    name: str
    mount_path: str
    sub_path: str = ""
    sub_path_expr: str = ""
    read_only: bool = False
    mount_propagation: str = ""  # "" (None) | HostToContainer | Bidirectional


@dataclass(frozen=True, kw_only=True)
class HostAlias:
    ip: str
    hostnames: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ResourceRequirements:
    """A container's resources: quantities as written (``"500m"``, ``"1Gi"``, ``2``); kuberuntime.resources
    parses them (API defaulting: a limit without a request requests the limit)."""

    requests: Mapping[str, Any] = field(default_factory=dict)
    limits: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SeccompProfile:
    type: str  # RuntimeDefault | Localhost | Unconfined
    localhost_profile: str = ""


@dataclass(frozen=True, kw_only=True)
class SecurityContext:
    """A container's securityContext (the fields nodelet acts on; None = not set). The pod's inherited fields
    (runAsUser, runAsGroup, runAsNonRoot, seccompProfile) are merged in by security.effective_security_context."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    privileged: bool | None = None
    allow_privilege_escalation: bool | None = None
    read_only_root_filesystem: bool | None = None
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    proc_mount: str | None = None
    seccomp_profile: SeccompProfile | None = None


@dataclass(frozen=True, kw_only=True)
class PodSecurityContext:
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    seccomp_profile: SeccompProfile | None = None
    supplemental_groups: tuple[int, ...] = ()
    fs_group: int | None = None
    sysctls: tuple[tuple[str, str], ...] = ()  # (name, value)


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    name: str
    image: str
    image_pull_policy: str  # Always | IfNotPresent | Never
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    env: tuple[EnvVar, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    termination_message_path: str = "/dev/termination-log"
    termination_message_policy: str = "File"
    # Parsed probes (probes.spec.ProbeSpec) or None.
    liveness_probe: Any = None
    readiness_probe: Any = None
    startup_probe: Any = None
    # Container-level restartPolicy: "Always" on an init container makes it a sidecar (KEP-753); "" = unset.
    restart_policy: str = ""
    lifecycle: Lifecycle = Lifecycle()
    security_context: SecurityContext = SecurityContext()
    resources: ResourceRequirements = ResourceRequirements()
    volume_mounts: tuple[VolumeMount, ...] = ()
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    # Hash of the defaulted container object: a change restarts the container (annotation io.kubernetes.container.hash).
    hash: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_sidecar(self) -> bool:
        """A restartable init container (podutil.IsRestartableInitContainer)."""
        return self.restart_policy == "Always"


@dataclass(frozen=True, kw_only=True)
class PodSpec:
    containers: tuple[ContainerSpec, ...]
    init_containers: tuple[ContainerSpec, ...] = ()
    restart_policy: str = "Always"  # Always | OnFailure | Never
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    share_process_namespace: bool = False
    security_context: PodSecurityContext = PodSecurityContext()
    priority_class_name: str = ""
    termination_grace_period_seconds: int = 30
    dns_policy: str = "ClusterFirst"
    dns_config: PodDNSConfig | None = None
    hostname: str = ""
    subdomain: str = ""
    host_aliases: tuple[HostAlias, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()
    node_name: str = ""

    @property
    def sidecars(self) -> tuple[ContainerSpec, ...]:
        return tuple(c for c in self.init_containers if c.is_sidecar)


@dataclass(frozen=True, kw_only=True)
class Pod:
    uid: PodUID
    name: str  # <metadata.name>-<nodename>
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: PodSpec
    source: str  # manifest file path
    manifest: Mapping[str, Any]  # the defaulted v1 Pod object (without status)

    @property
    def key(self) -> str:
        """namespace/name: the identity a user sees (and conflicts are detected on)."""
        return f"{self.namespace}/{self.name}"

    @property
    def full_name(self) -> str:
        """name_namespace, the kubelet's format in messages (`pod=<name>_<ns>(<uid>)`)."""
        return f"{self.name}_{self.namespace}"

    def container(self, name: str) -> ContainerSpec | None:
        for c in self.spec.init_containers + self.spec.containers:
            if c.name == name:
                return c
        return None


@dataclass(frozen=True, kw_only=True)
class ManifestError:
    """One precise problem with one manifest file: file, line (1-based, 0 if unknown), field path and reason."""

    file: str
    reason: str
    line: int = 0
    field: str = ""
    document: int = 0  # index of the YAML document in the file

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ': ' if self.field else ''}{self.reason}"


@dataclass(frozen=True, kw_only=True)
class OtherObject:
    """A non-Pod document from the manifest dir (Service, EndpointSlice, ConfigMap, Node…), handed to its owner."""

    kind: str
    api_version: str
    name: str
    namespace: str
    source: str
    body: Mapping[str, Any]
    # What its owner parsed it into when the manifest was read (a proxy.model.Service or EndpointSets), if any.
    parsed: Any = None


@dataclass(frozen=True, kw_only=True)
class ManifestSet:
    """Everything the manifest directory says right now: one full snapshot (sources send the full set every time)."""

    pods: tuple[Pod, ...] = ()
    others: tuple[OtherObject, ...] = ()
    errors: tuple[ManifestError, ...] = ()
    # Files that currently fail to parse/validate: the agent keeps their last good pods running.
    broken_files: frozenset[str] = frozenset()
    # Problems in objects handed to their owners (a Service its proxy rejects), file:line like `errors`: the object
    # is skipped by its owner (which reports it), the rest of its file is unaffected.
    object_errors: tuple[ManifestError, ...] = ()
