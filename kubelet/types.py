"""The agent's model of a static pod: parsed, validated and defaulted from a manifest. Frozen values.

`Pod.manifest` keeps the whole defaulted object (Kubernetes-shaped dict) for the API and for fields the agent
reads directly; the typed fields are the ones the sync logic depends on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NewType

PodUID = NewType("PodUID", str)

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
    # Hash of the defaulted container object: a change restarts the container (annotation io.kubernetes.container.hash).
    hash: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PodSpec:
    containers: tuple[ContainerSpec, ...]
    init_containers: tuple[ContainerSpec, ...] = ()
    restart_policy: str = "Always"  # Always | OnFailure | Never
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    share_process_namespace: bool = False
    termination_grace_period_seconds: int = 30
    dns_policy: str = "ClusterFirst"
    hostname: str = ""
    subdomain: str = ""
    node_name: str = ""


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


@dataclass(frozen=True, kw_only=True)
class ManifestSet:
    """Everything the manifest directory says right now: one full snapshot (sources send the full set every time)."""

    pods: tuple[Pod, ...] = ()
    others: tuple[OtherObject, ...] = ()
    errors: tuple[ManifestError, ...] = ()
    # Files that currently fail to parse/validate: the agent keeps their last good pods running.
    broken_files: frozenset[str] = frozenset()
