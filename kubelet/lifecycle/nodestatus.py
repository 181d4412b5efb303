"""This node as a `v1 Node` object, the way the kubelet's node-status setters build it (k/k
`pkg/kubelet/kubelet_node_status.go` initialNode + `pkg/kubelet/nodestatus/setters.go`).

`compute_node_object(...)` is pure: every fact comes in as an argument (`NodeFacts`, the conditions, the clock
reading), so single-node `kubectl get nodes` and cluster mode (which stores it in etcd) render the same object.
`collect_node_facts(...)` is the side effect that reads the machine (/proc, uname, disk) once per call.
"""
from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KUBELET_PORT = 10250  # status.daemonEndpoints.kubeletEndpoint.Port, as the kubelet reports it

# Condition types and reasons, exactly the kubelet's (pkg/kubelet/nodestatus/setters.go).
_PRESSURE = (
    # type, reason when False, message when False, reason when True, message when True
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available",
     "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
     "KubeletHasDiskPressure", "kubelet has disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available",
     "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
)


@dataclass(frozen=True, kw_only=True)
class NodeFacts:
    """What the machine and the runtime say about this node (collected once, then passed around)."""

    name: str
    internal_ip: str
    hostname: str = ""  # the Hostname address; defaults to `name`
    pod_cidr: str = ""
    cpu_millis: int = 0  # capacity.cpu in millicores
    memory_bytes: int = 0
    ephemeral_storage_bytes: int = 0
    max_pods: int = 110
    kernel_version: str = ""
    os_image: str = ""
    architecture: str = "amd64"  # GOARCH spelling
    operating_system: str = "linux"
    boot_id: str = ""
    machine_id: str = ""
    container_runtime_version: str = ""  # "containerd://1.6.20"
    kubelet_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # extra labels (config), merged over the kubelet's own
    uid: str = ""
    creation_timestamp: str = ""  # RFC 3339, UTC; when the node first registered


@dataclass(frozen=True, kw_only=True)
class NodeHealth:
    """The inputs of the Ready and pressure conditions."""

    ready: bool
    not_ready_message: str = ""  # why not ready (runtime down, network not configured, ...)
    memory_pressure: bool = False
    disk_pressure: bool = False
    pid_pressure: bool = False
    # RFC 3339 time of the last transition per condition type; absent: the heartbeat time
    transitions: Mapping[str, str] = field(default_factory=dict)


def _go_arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def _quantity_cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _quantity_bytes(n: int) -> str:
    """Bytes as the apiserver shows them: Ki when exact (memory capacity is usually reported in Ki)."""
    if n and n % 1024 == 0:
        return f"{n // 1024}Ki"
    return str(n)


def compute_node_labels(facts: NodeFacts) -> dict[str, str]:
    """The kubelet's own labels (initialNode) with the configured extra labels over them."""
    labels = {
        "beta.kubernetes.io/arch": facts.architecture,
        "beta.kubernetes.io/os": facts.operating_system,
        "kubernetes.io/arch": facts.architecture,
        "kubernetes.io/hostname": facts.hostname or facts.name,
        "kubernetes.io/os": facts.operating_system,
    }
    labels.update(facts.labels)
    return labels


def compute_node_conditions(health: NodeHealth, *, heartbeat: str) -> list[dict[str, Any]]:
    """MemoryPressure, DiskPressure, PIDPressure, Ready — in the kubelet's order, with its reasons and messages."""
    out: list[dict[str, Any]] = []
    flags = {"MemoryPressure": health.memory_pressure, "DiskPressure": health.disk_pressure, "PIDPressure": health.pid_pressure}
    for type_, ok_reason, ok_msg, bad_reason, bad_msg in _PRESSURE:
        on = flags[type_]
        out.append({"type": type_, "status": "True" if on else "False",
                    "lastHeartbeatTime": heartbeat, "lastTransitionTime": health.transitions.get(type_, heartbeat),
                    "reason": bad_reason if on else ok_reason, "message": bad_msg if on else ok_msg})
    out.append({"type": "Ready", "status": "True" if health.ready else "False",
                "lastHeartbeatTime": heartbeat, "lastTransitionTime": health.transitions.get("Ready", heartbeat),
                "reason": "KubeletReady" if health.ready else "KubeletNotReady",
                "message": "kubelet is posting ready status" if health.ready else (health.not_ready_message or "kubelet is not ready")})
    return out


def compute_node_object(facts: NodeFacts, health: NodeHealth, *, heartbeat: str, images: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The v1 Node for this node. `heartbeat` is the RFC 3339 time of this status (lastHeartbeatTime)."""
    capacity = {
        "cpu": _quantity_cpu(facts.cpu_millis),
        "ephemeral-storage": _quantity_bytes(facts.ephemeral_storage_bytes),
        "memory": _quantity_bytes(facts.memory_bytes),
        "pods": str(facts.max_pods),
    }
    metadata: dict[str, Any] = {"name": facts.name, "labels": compute_node_labels(facts),
                                "annotations": {"node.alpha.kubernetes.io/ttl": "0"}}
    if facts.uid:
        metadata["uid"] = facts.uid
    if facts.creation_timestamp:
        metadata["creationTimestamp"] = facts.creation_timestamp
    spec: dict[str, Any] = {}
    if facts.pod_cidr:
        spec = {"podCIDR": facts.pod_cidr, "podCIDRs": [facts.pod_cidr]}
    addresses = []
    if facts.internal_ip:
        addresses.append({"type": "InternalIP", "address": facts.internal_ip})
    addresses.append({"type": "Hostname", "address": facts.hostname or facts.name})
    status: dict[str, Any] = {
        "addresses": addresses,
        "allocatable": dict(capacity),  # no kube/system reservations in nodelet: allocatable = capacity
        "capacity": capacity,
        "conditions": compute_node_conditions(health, heartbeat=heartbeat),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "architecture": facts.architecture,
            "bootID": facts.boot_id,
            "containerRuntimeVersion": facts.container_runtime_version,
            "kernelVersion": facts.kernel_version,
            "kubeProxyVersion": "",
            "kubeletVersion": facts.kubelet_version,
            "machineID": facts.machine_id,
            "operatingSystem": facts.operating_system,
            "osImage": facts.os_image,
            "systemUUID": facts.machine_id,
        },
    }
    if images is not None:
        status["images"] = images
    return {"apiVersion": "v1", "kind": "Node", "metadata": metadata, "spec": spec, "status": status}


# ------------------------------------------------------------------------------------------------ side effects


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def _memory_bytes() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def collect_node_facts(*, name: str, internal_ip: str, pod_cidr: str = "", max_pods: int = 110, root_dir: str = "/",
                       container_runtime_version: str = "", kubelet_version: str = "",
                       labels: Mapping[str, str] | None = None, uid: str = "", creation_timestamp: str = "") -> NodeFacts:
    """Read this machine: CPUs, memory, the disk under `root_dir`, kernel, OS image, boot and machine ids."""
    try:
        disk = shutil.disk_usage(root_dir if os.path.exists(root_dir) else "/").total
    except OSError:
        disk = 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    uname = platform.uname()
    return NodeFacts(
        name=name, internal_ip=internal_ip, hostname=name, pod_cidr=pod_cidr, cpu_millis=cpus * 1000,
        memory_bytes=_memory_bytes(), ephemeral_storage_bytes=disk, max_pods=max_pods, kernel_version=uname.release,
        os_image=_os_image(), architecture=_go_arch(uname.machine), operating_system="linux",
        boot_id=_read("/proc/sys/kernel/random/boot_id"), machine_id=_read("/etc/machine-id"),
        container_runtime_version=container_runtime_version, kubelet_version=kubelet_version,
        labels=dict(labels or {}), uid=uid, creation_timestamp=creation_timestamp,
    )


__all__ = ["KUBELET_PORT", "NodeFacts", "NodeHealth", "collect_node_facts", "compute_node_conditions",
           "compute_node_labels", "compute_node_object"]
