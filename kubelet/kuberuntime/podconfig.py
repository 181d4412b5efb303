"""CRI configs for a pod: sandbox config, container config, env and $(VAR) expansion, DNS. Pure."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Mapping

from cri import api
from kubelet.kuberuntime import resources as res
from kubelet.kuberuntime import security as sec
from kubelet import types as t
from kubelet.types import ContainerSpec, Pod

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    node_name: str
    host_ip: str
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    pod_logs_dir: str = "/var/log/pods"
    host_resolv_conf: str = "/etc/resolv.conf"
    memory_capacity: int = 0  # bytes; 0 = read /proc/meminfo (Burstable oom_score_adj scales with it)
    seccomp_root: str = "/var/lib/nodelet/seccomp"  # Localhost seccomp profiles are relative to it


def node_memory_capacity() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _all_containers(pod: Pod) -> list[Mapping[str, object]]:
    return [c.raw for c in pod.spec.init_containers + pod.spec.containers]


def compute_pod_qos(pod: Pod) -> str:
    return res.compute_qos_class(_all_containers(pod))  # type: ignore[arg-type]


def compute_container_resources(pod: Pod, c: ContainerSpec, node: NodeInfo) -> api.LinuxResources:
    spec = pod.manifest.get("spec", {})
    critical = spec.get("priorityClassName") == res.NODE_CRITICAL_PRIORITY_CLASS
    return res.compute_linux_resources(c.raw, qos=compute_pod_qos(pod),
                                       memory_capacity=node.memory_capacity or node_memory_capacity(),
                                       node_critical=critical)


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: defined vars substituted, $$ escapes, undefined references left as written."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR.sub(sub, value)


def field_ref_value(path: str, pod: Pod, *, pod_ip: str, host_ip: str) -> str:
    values = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "metadata.uid": pod.uid,
        "spec.nodeName": pod.spec.node_name,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,  # comma-separated like upstream; nodelet gives a pod one IP
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "spec.serviceAccountName": "",  # static pods may not name a service account
    }
    if path in values:
        return values[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        src = pod.labels if m.group(1) == "labels" else pod.annotations
        return src.get(m.group(2), "")
    return ""


def node_allocatable() -> dict[str, int]:
    """What a container without a limit may use (the kubelet's node allocatable, without reservations): cpu in
    millicores, memory and ephemeral-storage in bytes."""
    import shutil

    return {"cpu": 1000 * (os.cpu_count() or 1), "memory": node_memory_capacity(),
            "ephemeral-storage": shutil.disk_usage("/").total}


def resource_field_value(ref: t.ResourceFieldRef, c: ContainerSpec, pod: Pod,
                         allocatable: Mapping[str, int]) -> str:
    """``ExtractContainerResourceValue`` after ``MergeContainerResourceLimits``: the limit or request (a missing
    cpu/memory/ephemeral-storage limit is the node's allocatable) divided by the divisor, rounded up; cpu in
    millicores over the divisor's millicores."""
    target = pod.container(ref.container_name) if ref.container_name else c
    return container_resource_value((target or c).raw.get("resources") or {}, ref.resource, ref.divisor, allocatable)


def container_resource_value(resources: Mapping[str, object], resource: str, divisor_text: str,
                             allocatable: Mapping[str, int]) -> str:
    """One container's ``limits.cpu``/``requests.memory``/… divided by the divisor, rounded up (env and
    downwardAPI volumes)."""
    kind, _, name = resource.partition(".")
    values = res.effective_requests(resources) if kind == "requests" else dict(resources.get("limits") or {})  # type: ignore[arg-type, call-overload]
    if name == "cpu":
        amount = res.milli_cpu(values["cpu"]) if "cpu" in values else (
            allocatable["cpu"] if kind == "limits" else 0)
        divisor = res.milli_cpu(divisor_text)
    else:
        amount = res.memory_bytes(values[name]) if name in values else (
            allocatable.get(name, 0) if kind == "limits" else 0)
        divisor = res.memory_bytes(divisor_text)
    return str(-(-amount // max(divisor, 1)))


def compute_env(c: ContainerSpec, pod: Pod, *, pod_ip: str, host_ip: str,
                allocatable: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """Env in order; each value may reference earlier ones with $(VAR)."""
    env: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for e in c.env:
        if e.field_path:
            v = field_ref_value(e.field_path, pod, pod_ip=pod_ip, host_ip=host_ip)
        elif e.resource_field_ref is not None:
            if allocatable is None:
                allocatable = node_allocatable()
            v = resource_field_value(e.resource_field_ref, c, pod, allocatable)
        else:
            v = expand(e.value or "", env)
        env[e.name] = v
        out.append((e.name, v))
    return out


def pod_log_dir(pod: Pod, pod_logs_dir: str) -> str:
    return f"{pod_logs_dir}/{pod.namespace}_{pod.name}_{pod.uid}"


def parse_resolv_conf(text: str) -> api.DNSConfig:
    servers, searches, options = [], [], []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            servers.append(parts[1])
        elif parts[0] == "search":
            searches = parts[1:]
        elif parts[0] == "options":
            options += parts[1:]
    return api.DNSConfig(servers=tuple(servers), searches=tuple(searches), options=tuple(options))


def compute_dns(pod: Pod, node: NodeInfo, host_resolv: api.DNSConfig) -> api.DNSConfig | None:
    policy = pod.spec.dns_policy
    extra = pod.manifest.get("spec", {}).get("dnsConfig") or {}
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not pod.spec.host_network):
        if node.cluster_dns:
            d = node.cluster_domain
            base = api.DNSConfig(
                servers=node.cluster_dns,
                searches=(f"{pod.namespace}.svc.{d}", f"svc.{d}", d, *host_resolv.searches),
                options=("ndots:5",),
            )
        else:
            base = host_resolv  # no cluster DNS configured: fall back to Default, as the kubelet does
    elif policy == "None":
        base = api.DNSConfig()
    else:  # Default, or ClusterFirst on hostNetwork
        base = host_resolv
    if not extra:
        return base
    opts = list(base.options)
    for o in extra.get("options") or []:
        name = o.get("name", "")
        opts = [x for x in opts if x.split(":")[0] != name]
        opts.append(f"{name}:{o['value']}" if o.get("value") is not None else name)
    return api.DNSConfig(
        servers=tuple(dict.fromkeys([*base.servers, *(extra.get("nameservers") or [])])),
        searches=tuple(dict.fromkeys([*base.searches, *(extra.get("searches") or [])])),
        options=tuple(opts),
    )


def compute_sandbox_config(pod: Pod, node: NodeInfo, *, attempt: int, host_resolv: api.DNSConfig) -> api.PodSandboxConfig:
    spec = pod.spec
    labels = {**pod.labels, t.LABEL_POD_NAME: pod.name, t.LABEL_POD_NAMESPACE: pod.namespace, t.LABEL_POD_UID: pod.uid, t.LABEL_MANAGED_BY: pod.spec.node_name}
    hostname = ""
    if not spec.host_network:
        hostname = (spec.hostname or pod.name)[:63].rstrip("-.")
    ports = tuple(
        api.PortMapping(
            container_port=p.container_port,
            host_port=p.host_port,
            protocol=api.Protocol[p.protocol],
            host_ip=p.host_ip,
        )
        for c in spec.containers
        for p in c.ports
        if p.host_port and not spec.host_network
    )
    linux = api.LinuxSandboxConfig(
        cgroup_parent=res.compute_cgroup_parent(pod.uid, compute_pod_qos(pod)),
        security=sec.compute_sandbox_security(pod, seccomp_root=node.seccomp_root),
        sysctls=sec.compute_sysctls(pod),
        resources=res.compute_pod_resources([c.raw for c in spec.containers], [c.raw for c in spec.init_containers]),
    )
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=pod.name, uid=pod.uid, namespace=pod.namespace, attempt=attempt),
        hostname=hostname,
        log_directory=pod_log_dir(pod, node.pod_logs_dir),
        dns=compute_dns(pod, node, host_resolv),
        port_mappings=ports,
        labels=labels,
        annotations=dict(pod.annotations),
        linux=linux,
    )


def compute_container_config(
    pod: Pod, c: ContainerSpec, *, restart_count: int, init: bool, pod_ip: str, host_ip: str, image: str,
    node: NodeInfo | None = None, mounts: tuple[api.Mount, ...] = (),
) -> api.ContainerConfig:
    env = compute_env(c, pod, pod_ip=pod_ip, host_ip=host_ip)
    envmap = dict(env)
    labels = {
        t.LABEL_POD_NAME: pod.name,
        t.LABEL_POD_NAMESPACE: pod.namespace,
        t.LABEL_POD_UID: pod.uid,
        t.LABEL_CONTAINER_NAME: c.name,
        t.LABEL_MANAGED_BY: pod.spec.node_name,
    }
    annotations = {
        t.ANN_CONTAINER_HASH: c.hash,
        t.ANN_RESTART_COUNT: str(restart_count),
        t.ANN_TERMINATION_MESSAGE_PATH: c.termination_message_path,
        t.ANN_TERMINATION_MESSAGE_POLICY: c.termination_message_policy,
        t.ANN_GRACE_PERIOD: str(pod.spec.termination_grace_period_seconds),
        t.ANN_CONTAINER_TYPE: "init" if init else "regular",
    }
    if c.ports:
        annotations[t.ANN_PORTS] = json.dumps(
            [{"name": p.name, "containerPort": p.container_port, "protocol": p.protocol} | ({"hostPort": p.host_port} if p.host_port else {}) for p in c.ports],
            separators=(",", ":"),
        )
    pre_stop = (c.raw.get("lifecycle") or {}).get("preStop")
    if pre_stop:
        annotations[t.ANN_PRESTOP_HANDLER] = json.dumps(pre_stop, separators=(",", ":"))
    node = node or NodeInfo(node_name=pod.spec.node_name, host_ip=host_ip)
    security = sec.compute_container_security(pod, c, seccomp_root=node.seccomp_root)
    return api.ContainerConfig(
        name=c.name,
        attempt=restart_count,
        image=image,
        command=tuple(expand(x, envmap) for x in c.command),
        args=tuple(expand(x, envmap) for x in c.args),
        working_dir=c.working_dir,
        envs=tuple(env),
        labels=labels,
        annotations=annotations,
        log_path=f"{c.name}/{restart_count}.log",
        stdin=bool(c.raw.get("stdin")),
        stdin_once=bool(c.raw.get("stdinOnce")),
        tty=bool(c.raw.get("tty")),
        mounts=mounts,
        resources=compute_container_resources(pod, c, node),
        security=security,
    )
