"""Defaulting of a validated static pod, its UID and hashes, and the typed :class:`~kubelet.types.Pod` (pure).

Upstream: ``pkg/apis/core/v1/defaults.go`` (API defaults) and ``pkg/kubelet/config/common.go`` (``applyDefaults``:
name suffix, namespace, nodeName, UID, config.* annotations, the NoExecute toleration).

- UID: the first 32 hex characters of SHA-256 over the canonical JSON of the defaulted pod (before the name suffix
  and the config annotations) followed by ``host:<nodeName>`` and ``file:<path>``. Any edit, rename or node-name
  change gives a new UID. A ``metadata.uid`` written in the manifest is ignored (upstream would use it as is).
- Container hash: 8 hex characters of SHA-256 over the canonical JSON of the defaulted container object.
- The rest of the API server's defaults (``SetObjectDefaults_Pod``: probes, schedulerName, securityContext,
  enableServiceLinks, volume modes, resources, …, and the Priority admission's priority/preemptionPolicy of a mirror
  pod) are applied to the objects the agent emits (:func:`compute_api_object`), not to ``Pod.manifest``: the emitted
  object is what a cluster shows, while UIDs, container hashes and the "accepted but not implemented" check see only
  what the manifest says (upgrading nodelet restarts no pod; a default is not reported as a field nodelet ignores).
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from kubelet.types import (
    ANN_CONFIG_FILE, ANN_CONFIG_HASH, ANN_CONFIG_SEEN, ANN_CONFIG_SOURCE, ContainerPort, ContainerSpec, DNSOption,
    EnvVar, HostAlias, Lifecycle, Pod, PodDNSConfig, PodSecurityContext, PodSpec, PodUID, ResourceFieldRef, SeccompProfile, SecurityContext,
    SleepAction,
)
from kubelet.kuberuntime.resources import parse_resource_requirements
from kubelet.kuberuntime.volumes import compute_volumes, parse_volume_mounts
from kubelet.manifest.fields import container_port_refs, render_path
from kubelet.manifest.validation import Path, parse_probes

__all__ = ["apply_api_server_defaults", "canonical_json", "compute_api_object", "compute_image_pull_policy", "compute_pod", "default_pod_object", "format_rfc3339nano",
           "generate_pod_name"]

NO_EXECUTE_TOLERATION = {"operator": "Exists", "effect": "NoExecute"}
_CONFIG_ANNOTATIONS = (ANN_CONFIG_HASH, ANN_CONFIG_SOURCE, ANN_CONFIG_SEEN, ANN_CONFIG_FILE,
                       "kubernetes.io/config.mirror")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def generate_pod_name(name: str, node_name: str) -> str:
    """``generatePodName``: ``<metadata.name>-<nodeName lowercased>``."""
    return f"{name}-{node_name.lower()}"


def format_rfc3339nano(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: trailing zeros of the fraction dropped (``…T10:00:00.5Z``)."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def compute_image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or an untagged name without digest, else ``IfNotPresent`` (SetDefaults_Container)."""
    name = image.split("@", 1)[0]
    has_digest = "@" in image
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    if tag == "latest" or (not tag and not has_digest):
        return "Always"
    return "IfNotPresent"


def default_pod_object(obj: Mapping[str, Any], *, node_name: str) -> dict[str, Any]:
    """The API and static-pod defaults applied to a validated v1 Pod (name not yet suffixed, no UID/annotations)."""
    pod: dict[str, Any] = copy.deepcopy(dict(obj))
    pod.pop("status", None)
    pod["apiVersion"] = "v1"
    pod["kind"] = "Pod"
    meta = pod.setdefault("metadata", {})
    meta.pop("uid", None)
    meta["namespace"] = meta.get("namespace") or "default"
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _CONFIG_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    spec = pod["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec["nodeName"] = node_name
    host_network = spec.get("hostNetwork") is True
    for key in ("initContainers", "containers"):
        for ctr in spec.get(key) or []:
            _default_container(ctr, host_network=host_network)
    tolerations = list(spec.get("tolerations") or [])
    if NO_EXECUTE_TOLERATION not in tolerations:
        tolerations.append(dict(NO_EXECUTE_TOLERATION))
    spec["tolerations"] = tolerations
    return pod


def _default_container(ctr: dict[str, Any], *, host_network: bool) -> None:
    if not ctr.get("imagePullPolicy"):
        ctr["imagePullPolicy"] = compute_image_pull_policy(ctr["image"])
    ctr.setdefault("terminationMessagePath", "/dev/termination-log")
    ctr.setdefault("terminationMessagePolicy", "File")
    for port in ctr.get("ports") or []:
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if host_network and not port.get("hostPort"):
            port["hostPort"] = port["containerPort"]
    for env in ctr.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("fieldRef")
        if ref is not None and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"


# the built-in PriorityClasses (scheduling/v1: SystemNodeCritical, SystemClusterCritical); any other class: 0 here
_BUILTIN_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_VOLUME_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")
_DEFAULT_MODE = 0o644  # 420: Secret/ConfigMap/DownwardAPI/ProjectedVolumeSourceDefaultMode


def apply_api_server_defaults(pod: dict[str, Any]) -> None:
    """What the API server adds to a (mirror) pod on create, in place: ``SetObjectDefaults_Pod`` of
    ``pkg/apis/core/v1`` (zz_generated.defaults.go + defaults.go) beyond what :func:`default_pod_object` already did,
    plus the Priority admission plugin's ``priority``/``preemptionPolicy``."""
    spec = pod["spec"]
    spec.setdefault("enableServiceLinks", True)  # SetDefaults_Pod
    spec.setdefault("schedulerName", "default-scheduler")  # SetDefaults_PodSpec
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("priority") is None:  # admission: the class's value (no global default class on a fresh cluster)
        spec["priority"] = _BUILTIN_PRIORITIES.get(spec.get("priorityClassName") or "", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for ctr in spec.get(key) or []:
            _api_default_container(ctr)
    for vol in spec.get("volumes") or []:
        _api_default_volume(vol)


def compute_api_object(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a static pod's defaulted manifest with the API server's defaults on top (what a cluster shows)."""
    obj = copy.deepcopy(dict(manifest))
    apply_api_server_defaults(obj)
    return obj


def _api_default_container(ctr: dict[str, Any]) -> None:
    res = ctr.get("resources")
    if res is None:
        res = ctr["resources"] = {}  # a struct in Go: always serialised, as {}
    limits = res.get("limits")
    if limits:  # SetDefaults_Pod: requests default to limits
        res["requests"] = {**limits, **(res.get("requests") or {})}
    for name in _PROBES:
        probe = ctr.get(name)
        if probe is None:
            continue
        for field_, default in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                                ("failureThreshold", 3)):
            if not probe.get(field_):
                probe[field_] = default
        _api_default_handler(probe)
        if probe.get("grpc") is not None and probe["grpc"].get("service") is None:
            probe["grpc"]["service"] = ""  # +default=""
    for hook in ("postStart", "preStop"):
        handler = (ctr.get("lifecycle") or {}).get(hook)
        if handler is not None:
            _api_default_handler(handler)


def _api_default_handler(handler: dict[str, Any]) -> None:
    http = handler.get("httpGet")
    if http is not None:  # SetDefaults_HTTPGetAction
        http["path"] = http.get("path") or "/"
        http["scheme"] = http.get("scheme") or "HTTP"


def _api_default_volume(vol: dict[str, Any]) -> None:
    if not any(k not in ("name",) for k in vol):
        vol["emptyDir"] = {}  # SetDefaults_Volume: no source is an emptyDir
    if vol.get("hostPath") is not None and vol["hostPath"].get("type") is None:
        vol["hostPath"]["type"] = ""  # HostPathUnset
    for key in _VOLUME_SOURCES_WITH_MODE:
        src = vol.get(key)
        if src is not None and src.get("defaultMode") is None:
            src["defaultMode"] = _DEFAULT_MODE
    _api_default_items((vol.get("downwardAPI") or {}).get("items"))
    for source in (vol.get("projected") or {}).get("sources") or []:
        token = source.get("serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600  # SetDefaults_ServiceAccountTokenProjection
        _api_default_items((source.get("downwardAPI") or {}).get("items"))


def _api_default_items(items: Any) -> None:
    for item in items or []:
        ref = item.get("fieldRef")
        if ref is not None and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"  # SetDefaults_ObjectFieldSelector


def compute_pod(obj: Mapping[str, Any], *, file: str, node_name: str, prefix: Path = (),
                first_seen: MutableMapping[PodUID, str] | None = None,
                clock_ns: Callable[[], int] = time.time_ns) -> Pod:
    """The typed, defaulted static pod of a validated v1 Pod object from ``file``."""
    pod = default_pod_object(obj, node_name=node_name)
    hasher = hashlib.sha256(canonical_json(pod).encode())
    hasher.update(f"host:{node_name}".encode())
    hasher.update(f"file:{file}".encode())
    uid = PodUID(hasher.hexdigest()[:32])
    if first_seen is None:
        seen = format_rfc3339nano(clock_ns())
    else:
        seen = first_seen.setdefault(uid, format_rfc3339nano(clock_ns()))

    meta = pod["metadata"]
    meta["name"] = generate_pod_name(meta["name"], node_name)
    meta["uid"] = uid
    meta["annotations"] = {**(meta.get("annotations") or {}), ANN_CONFIG_HASH: uid, ANN_CONFIG_SOURCE: "file",
                           ANN_CONFIG_SEEN: seen, ANN_CONFIG_FILE: file}
    spec = pod["spec"]
    typed = PodSpec(
        containers=tuple(_container(c, prefix + ("spec", "containers", i)) for i, c in enumerate(spec["containers"])),
        init_containers=tuple(_container(c, prefix + ("spec", "initContainers", i))
                              for i, c in enumerate(spec.get("initContainers") or [])),
        restart_policy=spec["restartPolicy"],
        host_network=spec.get("hostNetwork") is True,
        host_pid=spec.get("hostPID") is True,
        host_ipc=spec.get("hostIPC") is True,
        share_process_namespace=spec.get("shareProcessNamespace") is True,
        security_context=_pod_security(spec.get("securityContext") or {}),
        priority_class_name=spec.get("priorityClassName") or "",
        termination_grace_period_seconds=spec["terminationGracePeriodSeconds"],
        dns_policy=spec["dnsPolicy"],
        dns_config=_dns_config(spec.get("dnsConfig")),
        hostname=spec.get("hostname") or "",
        subdomain=spec.get("subdomain") or "",
        volumes=compute_volumes(pod),
        host_aliases=tuple(HostAlias(ip=a["ip"], hostnames=tuple(a.get("hostnames") or ()))
                           for a in spec.get("hostAliases") or ()),
        node_name=node_name,
    )
    return Pod(uid=uid, name=meta["name"], namespace=meta["namespace"], labels=dict(meta.get("labels") or {}),
               annotations=dict(meta["annotations"]), spec=typed, source=file, manifest=pod)


def _container(ctr: Mapping[str, Any], path: Path) -> ContainerSpec:
    probes, problems = parse_probes(ctr, path)
    assert not problems, problems  # validated before
    return ContainerSpec(
        name=ctr["name"],
        image=ctr["image"],
        image_pull_policy=ctr["imagePullPolicy"],
        command=tuple(ctr.get("command") or ()),
        args=tuple(ctr.get("args") or ()),
        working_dir=ctr.get("workingDir") or "",
        env=tuple(_env(e) for e in ctr.get("env") or ()),
        ports=tuple(ContainerPort(name=p.get("name") or "", container_port=p["containerPort"],
                                  protocol=p["protocol"], host_port=p.get("hostPort") or 0,
                                  host_ip=p.get("hostIP") or "")
                    for p in ctr.get("ports") or ()),
        termination_message_path=ctr["terminationMessagePath"],
        termination_message_policy=ctr["terminationMessagePolicy"],
        liveness_probe=probes.get("livenessProbe"),
        readiness_probe=probes.get("readinessProbe"),
        startup_probe=probes.get("startupProbe"),
        restart_policy=ctr.get("restartPolicy") or "",
        lifecycle=_lifecycle(ctr, path),
        security_context=_security(ctr.get("securityContext") or {}),
        resources=parse_resource_requirements(ctr.get("resources")),
        volume_mounts=parse_volume_mounts(ctr),
        stdin=ctr.get("stdin") is True,
        stdin_once=ctr.get("stdinOnce") is True,
        tty=ctr.get("tty") is True,
        hash=hashlib.sha256(canonical_json(ctr).encode()).hexdigest()[:8],
        raw=ctr,
    )


def _lifecycle(ctr: Mapping[str, Any], path: Path) -> Lifecycle:
    """postStart/preStop as typed handlers (validated already: the probes' handler grammar, or sleep)."""
    from probes.spec import parse_handler

    lc = ctr.get("lifecycle") or {}
    handlers: dict[str, Any] = {}
    for hook in ("postStart", "preStop"):
        h = lc.get(hook)
        if h is None:
            continue
        if h.get("sleep") is not None:
            handlers[hook] = SleepAction(seconds=int(h["sleep"].get("seconds", 0)))
        else:
            handlers[hook] = parse_handler(h, field=render_path(path + ("lifecycle", hook)),
                                           container_ports=container_port_refs(ctr))
    pre_stop = lc.get("preStop")
    return Lifecycle(post_start=handlers.get("postStart"), pre_stop=handlers.get("preStop"),
                     pre_stop_json=json.dumps(pre_stop, separators=(",", ":")) if pre_stop else "")


def _seccomp(obj: Mapping[str, Any] | None) -> SeccompProfile | None:
    if not obj:
        return None
    return SeccompProfile(type=str(obj.get("type") or ""), localhost_profile=str(obj.get("localhostProfile") or ""))


def _security(sc: Mapping[str, Any]) -> SecurityContext:
    caps = sc.get("capabilities") or {}
    return SecurityContext(
        run_as_user=sc.get("runAsUser"), run_as_group=sc.get("runAsGroup"), run_as_non_root=sc.get("runAsNonRoot"),
        privileged=sc.get("privileged"), allow_privilege_escalation=sc.get("allowPrivilegeEscalation"),
        read_only_root_filesystem=sc.get("readOnlyRootFilesystem"),
        capabilities_add=tuple(str(x).upper() for x in caps.get("add") or ()),
        capabilities_drop=tuple(str(x).upper() for x in caps.get("drop") or ()),
        proc_mount=sc.get("procMount"), seccomp_profile=_seccomp(sc.get("seccompProfile")),
    )


def _pod_security(psc: Mapping[str, Any]) -> PodSecurityContext:
    groups = list(psc.get("supplementalGroups") or [])
    return PodSecurityContext(
        run_as_user=psc.get("runAsUser"), run_as_group=psc.get("runAsGroup"), run_as_non_root=psc.get("runAsNonRoot"),
        seccomp_profile=_seccomp(psc.get("seccompProfile")), supplemental_groups=tuple(groups),
        fs_group=psc.get("fsGroup"),
        sysctls=tuple((str(s["name"]).replace("/", "."), str(s.get("value", ""))) for s in psc.get("sysctls") or []),
    )


def _dns_config(obj: Mapping[str, Any] | None) -> PodDNSConfig | None:
    if not obj:
        return None
    return PodDNSConfig(nameservers=tuple(obj.get("nameservers") or ()), searches=tuple(obj.get("searches") or ()),
                        options=tuple(DNSOption(name=o.get("name", ""), value=None if o.get("value") is None else str(o["value"]))
                                      for o in obj.get("options") or ()))


def _env(env: Mapping[str, Any]) -> EnvVar:
    ref = (env.get("valueFrom") or {}).get("fieldRef")
    if ref is not None:
        return EnvVar(name=env["name"], field_path=ref["fieldPath"])
    res = (env.get("valueFrom") or {}).get("resourceFieldRef")
    if res is not None:
        return EnvVar(name=env["name"], resource_field_ref=ResourceFieldRef(
            resource=res["resource"], container_name=res.get("containerName") or "",
            divisor=str(res.get("divisor") or "1")))
    return EnvVar(name=env["name"], value=env.get("value") or "")
