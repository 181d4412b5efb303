"""Validation of v1 Pod objects from manifests, with the API server's messages (pure).

Name rules mirror apimachinery's ``pkg/util/validation`` (``IsDNS1123Label``, ``IsValidPortName`` …) and the pod rules
``pkg/apis/core/validation`` (``validateContainers``, ``validateContainerPorts``, ``validateEnv`` …); each problem is a
:class:`FieldProblem` whose ``reason`` has the shape of an apimachinery ``field.Error`` body
(``Invalid value: "Web": a lowercase RFC 1123 label must …``). Files and lines are attached by :mod:`kubelet.manifest.parse`.

Where nodelet is stricter than the API server it says so: unknown fields are rejected (as ``kubectl --validate=strict``),
and features nodelet cannot honour (env from ConfigMaps/Secrets) are refused rather than
silently ignored.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kubelet.manifest.fields import (
    FieldProblem, Path, container_port_refs, duplicate, forbidden, invalid, is_dns1123_label, is_dns1123_subdomain,
    is_env_var_name, is_label_value, is_qualified_name, is_valid_port_name, parse_path, render_path, required,
    type_error, unsupported,
)
from kubelet.manifest.validation_spec import (
    validate_container_extras, validate_dns_and_aliases, validate_pod_security, validate_volumes,
)

__all__ = [
    "Path", "FieldProblem", "render_path", "parse_path", "is_dns1123_label", "is_dns1123_subdomain",
    "is_valid_port_name", "is_env_var_name", "is_qualified_name", "is_label_value", "required", "invalid",
    "duplicate", "unsupported", "forbidden", "type_error", "validate_pod", "FIELD_REF_PATHS", "parse_field_ref",
]

# ---------------------------------------------------------------------------------------------------------------------
# known fields of v1 objects (everything the API defines, implemented by nodelet or not: a typo is an error, an
# unimplemented field is kept in the manifest untouched)

POD_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
METADATA_KEYS = frozenset({
    "name", "generateName", "namespace", "uid", "labels", "annotations", "ownerReferences", "finalizers",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "generation",
    "selfLink", "managedFields",
})
POD_SPEC_KEYS = frozenset({
    "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy", "terminationGracePeriodSeconds",
    "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount",
    "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace",
    "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
    "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates", "runtimeClassName",
    "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os",
    "hostUsers", "schedulingGates", "resourceClaims", "resources", "hostnameOverride",
})
CONTAINER_KEYS = frozenset({
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
    "restartPolicy", "restartPolicyRules", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe",
    "startupProbe", "lifecycle", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy",
    "securityContext", "stdin", "stdinOnce", "tty",
})
PORT_KEYS = frozenset({"name", "containerPort", "hostPort", "hostIP", "protocol"})
ENV_KEYS = frozenset({"name", "value", "valueFrom"})
VALUE_FROM_KEYS = frozenset({"fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef"})
FIELD_REF_KEYS = frozenset({"apiVersion", "fieldPath"})

RESTART_POLICIES = ("Always", "OnFailure", "Never")
CONTAINER_RESTART_POLICIES = ("Always",)  # an init container's restartPolicy (sidecar containers)
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("FallbackToLogsOnError", "File")
#: downward-API env paths nodelet resolves (plus metadata.labels['k'] / metadata.annotations['k'])
FIELD_REF_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "status.hostIP",
                   "status.podIP")
_SUBSCRIPT_RE = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


def parse_field_ref(path: str) -> tuple[str, str | None]:
    """``metadata.labels['app']`` → ("metadata.labels", "app"); a plain path → (path, None)."""
    m = _SUBSCRIPT_RE.match(path)
    return (f"metadata.{m.group(1)}", m.group(2)) if m else (path, None)


# ---------------------------------------------------------------------------------------------------------------------
# the pod

class _Checker:
    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def add(self, path: Path, reason: str) -> None:
        self.problems.append(FieldProblem(path=path, reason=reason))

    def unknown(self, obj: Mapping[str, Any], known: frozenset[str], path: Path) -> None:
        for key in obj:
            if key not in known:
                self.add(path + (str(key),), forbidden("unknown field (nodelet validates strictly, as "
                                                       "kubectl --validate=strict)"))

    def mapping(self, obj: Any, path: Path, *, required_: bool = False) -> Mapping[str, Any] | None:
        if obj is None:
            if required_:
                self.add(path, required())
            return None
        if not isinstance(obj, Mapping):
            self.add(path, type_error(obj, "an object"))
            return None
        return obj

    def mappings(self, obj: Any, path: Path) -> Iterator[tuple[int, Path, Mapping[str, Any]]]:
        """(index, field path, item) for each item of a list of objects; a non-list or a non-object item is
        reported (at its own path) and skipped."""
        for i, item in enumerate(self.list_(obj, path)):
            ipath = path + (i,)
            m = self.mapping(item, ipath, required_=True)
            if m is not None:
                yield i, ipath, m

    def list_(self, obj: Any, path: Path) -> list[Any]:
        if obj is None:
            return []
        if not isinstance(obj, list):
            self.add(path, type_error(obj, "a list"))
            return []
        return obj

    def string(self, obj: Mapping[str, Any], key: str, path: Path) -> str | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path + (key,), type_error(value, "a string"))
            return None
        return value

    def required_string(self, obj: Mapping[str, Any], key: str, path: Path) -> str | None:
        """A required string: ``Required value`` when missing or empty, a type error when not a string."""
        value = obj.get(key)
        if value is None or value == "":
            self.add(path + (key,), required())
            return None
        return self.string(obj, key, path)

    def integer(self, obj: Mapping[str, Any], key: str, path: Path) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.add(path + (key,), type_error(value, "an integer"))
            return None
        return value

    def boolean(self, obj: Mapping[str, Any], key: str, path: Path) -> None:
        value = obj.get(key)
        if value is not None and not isinstance(value, bool):
            self.add(path + (key,), type_error(value, "a boolean"))

    def strings(self, obj: Mapping[str, Any], key: str, path: Path) -> None:
        for i, item in enumerate(self.list_(obj.get(key), path + (key,))):
            if not isinstance(item, str):
                self.add(path + (key, i), type_error(item, "a string"))

    def names(self, value: str, path: Path, rule: Any) -> bool:
        msgs = rule(value)
        for msg in msgs:
            self.add(path, invalid(value, msg))
        return not msgs

    def choice(self, obj: Mapping[str, Any], key: str, path: Path, choices: Sequence[str]) -> None:
        value = self.string(obj, key, path)
        if value is not None and value not in choices:
            self.add(path + (key,), unsupported(value, choices))


def validate_pod(obj: Mapping[str, Any]) -> list[FieldProblem]:
    """Every problem of one v1 Pod object (as written in the manifest, before defaulting). Empty: valid."""
    c = _Checker()
    c.unknown(obj, POD_KEYS, ())
    meta = c.mapping(obj.get("metadata"), ("metadata",), required_=True)
    if meta is not None:
        _validate_metadata(c, meta)
    spec = c.mapping(obj.get("spec"), ("spec",), required_=True)
    if spec is not None:
        _validate_spec(c, spec)
    return c.problems


def _validate_metadata(c: _Checker, meta: Mapping[str, Any]) -> None:
    path: Path = ("metadata",)
    c.unknown(meta, METADATA_KEYS, path)
    if meta.get("name") in (None, ""):
        c.add(path + ("name",), required("name or generateName is required") if not meta.get("generateName")
              else forbidden("generateName is not supported for static pods: set name"))
    else:
        name = c.string(meta, "name", path)
        if name:
            c.names(name, path + ("name",), is_dns1123_subdomain)
    namespace = c.string(meta, "namespace", path)
    if namespace:
        c.names(namespace, path + ("namespace",), is_dns1123_label)
    for key in ("labels", "annotations"):
        labels = c.mapping(meta.get(key), path + (key,))
        for k, v in (labels or {}).items():
            kpath = path + (key, str(k))
            if not isinstance(k, str):
                c.add(kpath, type_error(k, "a string key"))
                continue
            for msg in is_qualified_name(k):
                c.add(kpath, invalid(k, msg))
            if not isinstance(v, str):
                c.add(kpath, type_error(v, "a string (quote numbers and booleans)"))
            elif key == "labels":
                c.names(v, kpath, is_label_value)


def _validate_spec(c: _Checker, spec: Mapping[str, Any]) -> None:
    path: Path = ("spec",)
    c.unknown(spec, POD_SPEC_KEYS, path)
    c.choice(spec, "restartPolicy", path, RESTART_POLICIES)
    c.choice(spec, "dnsPolicy", path, DNS_POLICIES)
    if spec.get("dnsPolicy") == "None" and not spec.get("dnsConfig"):
        c.add(path + ("dnsConfig",), required("must provide `dnsConfig` when `dnsPolicy` is None"))
    grace = c.integer(spec, "terminationGracePeriodSeconds", path)
    if grace is not None and grace < 0:
        c.add(path + ("terminationGracePeriodSeconds",), invalid(grace, "must be greater than or equal to 0"))
    for key in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"):
        c.boolean(spec, key, path)
    if spec.get("hostPID") is True and spec.get("shareProcessNamespace") is True:
        c.add(path + ("shareProcessNamespace",),
              invalid(True, "ShareProcessNamespace and HostPID cannot both be enabled"))
    for key in ("hostname", "subdomain"):
        value = c.string(spec, key, path)
        if value:
            c.names(value, path + (key,), is_dns1123_label)
    c.string(spec, "nodeName", path)
    for i, toleration in enumerate(c.list_(spec.get("tolerations"), path + ("tolerations",))):
        c.mapping(toleration, path + ("tolerations", i))

    host_network = spec.get("hostNetwork") is True
    volumes = validate_volumes(c, spec, path)
    validate_pod_security(c, spec, path)
    validate_dns_and_aliases(c, spec, path)
    names: set[str] = set()
    host_ports: set[str] = set()
    containers = c.list_(spec.get("containers"), path + ("containers",))
    if not containers and (spec.get("containers") is None or isinstance(spec.get("containers"), list)):
        c.add(path + ("containers",), required())
    for i, ctr in enumerate(containers):
        _validate_container(c, ctr, path + ("containers", i), names, host_ports, host_network, init=False)
        if isinstance(ctr, Mapping):
            validate_container_extras(c, ctr, path + ("containers", i), spec, volumes)
    for i, ctr in enumerate(c.list_(spec.get("initContainers"), path + ("initContainers",))):
        _validate_container(c, ctr, path + ("initContainers", i), names, host_ports, host_network, init=True)
        if isinstance(ctr, Mapping):
            validate_container_extras(c, ctr, path + ("initContainers", i), spec, volumes)


def _validate_container(c: _Checker, obj: Any, path: Path, names: set[str], host_ports: set[str],
                        host_network: bool, *, init: bool) -> None:
    ctr = c.mapping(obj, path, required_=True)
    if ctr is None:
        return
    c.unknown(ctr, CONTAINER_KEYS, path)
    name = c.required_string(ctr, "name", path)
    if name and c.names(name, path + ("name",), is_dns1123_label):
        if name in names:
            c.add(path + ("name",), duplicate(name))
        names.add(name)
    image = c.required_string(ctr, "image", path)
    if image and image.strip() != image:
        c.add(path + ("image",), invalid(image, "must not have leading or trailing whitespace"))
    c.choice(ctr, "imagePullPolicy", path, PULL_POLICIES)
    c.choice(ctr, "terminationMessagePolicy", path, TERMINATION_MESSAGE_POLICIES)
    c.string(ctr, "terminationMessagePath", path)
    c.string(ctr, "workingDir", path)
    c.strings(ctr, "command", path)
    c.strings(ctr, "args", path)
    for key in ("stdin", "stdinOnce", "tty"):
        c.boolean(ctr, key, path)
    if init:
        # Sidecar containers (KEP-753): an init container with restartPolicy Always may have probes and lifecycle
        # hooks; a plain init container may not (validateInitContainers).
        c.choice(ctr, "restartPolicy", path, CONTAINER_RESTART_POLICIES)
        if ctr.get("restartPolicy") != "Always":
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(key) is not None:
                    c.add(path + (key,), forbidden("may not be set for init containers without restartPolicy=Always"))
    elif ctr.get("restartPolicy") is not None:
        c.add(path + ("restartPolicy",), forbidden("may not be set for non-init containers"))
    if ctr.get("envFrom") is not None:
        c.add(path + ("envFrom",), forbidden("not supported by nodelet: static pods cannot reference ConfigMaps "
                                             "or Secrets"))
    _validate_ports(c, ctr, path, host_ports, host_network)
    _validate_env(c, ctr, path)
    _validate_probes(c, ctr, path)


def _validate_ports(c: _Checker, ctr: Mapping[str, Any], path: Path, host_ports: set[str],
                    host_network: bool) -> None:
    port_names: set[str] = set()
    for j, ppath, port in c.mappings(ctr.get("ports"), path + ("ports",)):
        c.unknown(port, PORT_KEYS, ppath)
        name = c.string(port, "name", ppath)
        if name:
            if c.names(name, ppath + ("name",), is_valid_port_name):
                if name in port_names:
                    c.add(ppath + ("name",), duplicate(name))
                port_names.add(name)
        number = c.integer(port, "containerPort", ppath)
        if port.get("containerPort") is None or number == 0:
            c.add(ppath + ("containerPort",), required())
        elif number is not None and not 1 <= number <= 65535:
            c.add(ppath + ("containerPort",), invalid(number, "must be between 1 and 65535, inclusive"))
        host_port = c.integer(port, "hostPort", ppath)
        if host_port and not 1 <= host_port <= 65535:
            c.add(ppath + ("hostPort",), invalid(host_port, "must be between 1 and 65535, inclusive"))
        host_ip = c.string(port, "hostIP", ppath)
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError:
                c.add(ppath + ("hostIP",), invalid(host_ip, "must be a valid IP address"))
        protocol = c.string(port, "protocol", ppath) or "TCP"
        if protocol not in PROTOCOLS:
            c.add(ppath + ("protocol",), unsupported(protocol, PROTOCOLS))
        if host_network and host_port and number and host_port != number:
            c.add(ppath + ("containerPort",), invalid(number, "must match `hostPort` when `hostNetwork` is true"))
        effective_host_port = host_port or (number if host_network else 0)
        if effective_host_port:
            key = f"{host_ip or ''}/{protocol}/{effective_host_port}"
            if key in host_ports:
                c.add(ppath + ("hostPort",), duplicate(key))
            host_ports.add(key)


def _validate_env(c: _Checker, ctr: Mapping[str, Any], path: Path) -> None:
    for j, epath, env in c.mappings(ctr.get("env"), path + ("env",)):
        c.unknown(env, ENV_KEYS, epath)
        name = c.required_string(env, "name", epath)
        if name:
            c.names(name, epath + ("name",), is_env_var_name)
        value = env.get("value")
        if value is not None and not isinstance(value, str):
            c.add(epath + ("value",), type_error(value, "a string (quote numbers and booleans)"))
        source = c.mapping(env.get("valueFrom"), epath + ("valueFrom",))
        if source is None:
            continue
        vpath = epath + ("valueFrom",)
        if value:
            c.add(vpath, invalid("", "may not be specified when `value` is not empty"))
        c.unknown(source, VALUE_FROM_KEYS, vpath)
        kinds = [k for k in VALUE_FROM_KEYS if source.get(k) is not None]
        if not kinds:
            c.add(vpath, invalid("", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                                     "`secretKeyRef`"))
            continue
        if len(kinds) > 1:
            c.add(vpath, invalid("", "may not have more than one field specified at a time"))
            continue
        if kinds[0] != "fieldRef":
            c.add(vpath + (kinds[0],), forbidden("not supported by nodelet: only `fieldRef` is (static pods cannot "
                                                 "reference ConfigMaps or Secrets)"))
            continue
        fpath = vpath + ("fieldRef",)
        ref = c.mapping(source.get("fieldRef"), fpath)
        if ref is None:
            continue
        c.unknown(ref, FIELD_REF_KEYS, fpath)
        api_version = c.string(ref, "apiVersion", fpath)
        if api_version and api_version != "v1":
            c.add(fpath + ("apiVersion",), unsupported(api_version, ("v1",)))
        field_path = c.required_string(ref, "fieldPath", fpath)
        if not field_path:
            continue
        base, sub = parse_field_ref(field_path)
        if sub is not None:
            for msg in is_qualified_name(sub):
                c.add(fpath + ("fieldPath",), invalid(field_path, msg))
        elif field_path not in FIELD_REF_PATHS:
            c.add(fpath + ("fieldPath",), unsupported(field_path, sorted(
                FIELD_REF_PATHS + ("metadata.annotations['<key>']", "metadata.labels['<key>']"))))


def _validate_probes(c: _Checker, ctr: Mapping[str, Any], path: Path) -> None:
    c.problems.extend(probe_problems(ctr, path))


def parse_probes(ctr: Mapping[str, Any], path: Path) -> tuple[dict[str, Any], list[FieldProblem]]:
    """The container's probes through ``probes.spec.parse_probe``: {"livenessProbe": ProbeSpec, …} and problems
    (each ``ProbeSpecError`` as a FieldProblem). This is the single call site of the probes package."""
    from probes.errors import ProbeSpecError
    from probes.spec import parse_probe
    from probes.types import ProbeKind

    parsed: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    refs = None
    for kind in ProbeKind:
        obj = ctr.get(kind.field_name)
        if obj is None:
            continue
        if refs is None:
            refs = container_port_refs(ctr)
        field = render_path(path + (kind.field_name,))
        try:
            parsed[kind.field_name] = parse_probe(obj, field=field, kind=kind, container_ports=refs)
        except ProbeSpecError as e:
            text = str(e)
            reason = text[len(e.field) + 2:] if text.startswith(e.field + ": ") else text
            problems.append(FieldProblem(path=parse_path(e.field), reason=reason))
    return parsed, problems


def probe_problems(ctr: Mapping[str, Any], path: Path) -> list[FieldProblem]:
    return parse_probes(ctr, path)[1]
