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
    FieldProblem, Path, api_reference, container_port_refs, duplicate, forbidden, int_fits, invalid, is_dns1123_label,
    is_dns1123_subdomain, is_env_var_name, is_label_value, is_qualified_name, is_valid_port_name, out_of_range,
    parse_path, render_path, required, type_error, unsupported,
)
from kubelet.manifest.validation_spec import (
    validate_container_extras, validate_dns_and_aliases, validate_pod_quantities, validate_pod_security,
    validate_volumes,
)

__all__ = [
    "Path", "FieldProblem", "render_path", "parse_path", "is_dns1123_label", "is_dns1123_subdomain",
    "is_valid_port_name", "is_env_var_name", "is_qualified_name", "is_label_value", "required", "invalid",
    "duplicate", "unsupported", "forbidden", "type_error", "validate_pod", "FIELD_REF_PATHS", "parse_field_ref",
    "RESOURCE_FIELD_REFS", "int_fits", "out_of_range", "api_reference",
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
TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
HOST_USERS_REFUSAL = ("user namespaces are not supported by nodelet's runtime: `hostUsers: false` needs the CRI "
                      "user-namespace option (NamespaceOption.userns_options), which containerd implements from 2.0 "
                      "on (with runc >= 1.2 and Linux >= 6.3 for idmapped mounts); containerd 1.6 would silently run "
                      "the pod in the node's user namespace")
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
#: downward-API env paths (``validEnvDownwardAPIFieldPathExpressions``; plus metadata.labels['k'] and
#: metadata.annotations['k']), all resolved by nodelet
FIELD_REF_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
                   "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
#: ``validContainerResourceFieldPathExpressions`` (plus the ``hugepages-<size>`` prefixes)
RESOURCE_FIELD_REFS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                       "requests.ephemeral-storage", "requests.memory")
RESOURCE_FIELD_REF_KEYS = frozenset({"containerName", "resource", "divisor"})
ENV_FROM_KEYS = frozenset({"prefix", "configMapRef", "secretRef"})
#: Pod fields that are int32 in ``core/v1/types.go`` wherever they appear (by key; everything else is int64 at most)
INT32_KEYS = frozenset({"containerPort", "hostPort", "port", "initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                        "successThreshold", "failureThreshold", "defaultMode", "mode", "priority", "maxSkew",
                        "minDomains", "weight", "partition", "lun"})
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

    def integer(self, obj: Mapping[str, Any], key: str, path: Path, *, bits: int = 64) -> int | None:
        """An optional integer of a Go ``int32``/``int64`` field: beyond its range the API server cannot even decode
        the object, so neither does nodelet (a value that would fail later, e.g. in a CRI request, never gets in)."""
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.add(path + (key,), type_error(value, "an integer"))
            return None
        if not int_fits(value, bits):
            self.add(path + (key,), out_of_range(value, bits))
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
    _check_integer_bounds(c, obj, ())
    return c.problems


def _check_integer_bounds(c: _Checker, obj: Any, path: Path) -> None:
    """The safety net behind the per-field checks: no integer anywhere in the pod exceeds its Go type (int32 for
    the fields in INT32_KEYS, int64 otherwise), also in fields nodelet does not otherwise look into."""
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_integer_bounds(c, v, path + (str(k),))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_integer_bounds(c, v, path + (i,))
    elif isinstance(obj, int) and not isinstance(obj, bool):
        key = next((p for p in reversed(path) if isinstance(p, str)), "")
        bits = 32 if key in INT32_KEYS and path[-1] == key else 64
        if not int_fits(obj, bits) and not any(path[:len(p.path)] == p.path for p in c.problems):
            c.add(path, out_of_range(obj, bits))


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
            elif k.startswith(APPARMOR_ANNOTATION_PREFIX):
                c.add(kpath, forbidden("AppArmor profiles are not applied by nodelet (it does not pass them to the "
                                       "runtime); remove the annotation rather than have it ignored"))


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
    deadline = c.integer(spec, "activeDeadlineSeconds", path)
    if deadline is not None and not 1 <= deadline <= 2147483647:
        c.add(path + ("activeDeadlineSeconds",), invalid(deadline, "must be between 1 and 2147483647, inclusive"))
    c.integer(spec, "priority", path, bits=32)
    if c.list_(spec.get("ephemeralContainers"), path + ("ephemeralContainers",)):
        c.add(path + ("ephemeralContainers",), forbidden("cannot be set on create"))  # ValidatePodCreate
    _validate_api_references(c, spec, path)
    c.boolean(spec, "hostUsers", path)
    if spec.get("hostUsers") is False:
        c.add(path + ("hostUsers",), forbidden(HOST_USERS_REFUSAL))
    runtime_class = c.string(spec, "runtimeClassName", path)
    if runtime_class:
        c.add(path + ("runtimeClassName",), forbidden(
            "not supported by nodelet: it passes no runtime handler to the runtime, so the pod would run with the "
            "default one (runc) instead of the isolation the RuntimeClass names"))
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
    for i, tpath, toleration in c.mappings(spec.get("tolerations"), path + ("tolerations",)):
        c.unknown(toleration, TOLERATION_KEYS, tpath)
        for key in ("key", "value"):
            c.string(toleration, key, tpath)
        c.choice(toleration, "operator", tpath, ("Equal", "Exists"))
        c.choice(toleration, "effect", tpath, ("NoExecute", "NoSchedule", "PreferNoSchedule"))
        c.integer(toleration, "tolerationSeconds", tpath)

    host_network = spec.get("hostNetwork") is True
    volumes = validate_volumes(c, spec, path)
    validate_pod_security(c, spec, path)
    validate_pod_quantities(c, spec, path)
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


def _validate_api_references(c: _Checker, spec: Mapping[str, Any], path: Path) -> None:
    """``podutil.HasAPIObjectReference`` for the pod-level fields (kubelet ≥ 1.34 refuses such static pods); the
    container fields (env, envFrom) and volumes are checked where they are validated. nodelet's own extension,
    configMap/secret volumes from documents in the manifest directory, is not an API reference."""
    for key in ("serviceAccountName", "serviceAccount"):  # v1 serviceAccount is the deprecated alias
        if c.string(spec, key, path):
            c.add(path + (key,), api_reference("serviceaccounts"))
    if c.list_(spec.get("imagePullSecrets"), path + ("imagePullSecrets",)):
        c.add(path + ("imagePullSecrets",), api_reference("secrets"))
    if c.list_(spec.get("resourceClaims"), path + ("resourceClaims",)):
        c.add(path + ("resourceClaims",), api_reference("resourceclaims"))


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
    for j, fpath, src in c.mappings(ctr.get("envFrom"), path + ("envFrom",)):
        c.unknown(src, ENV_FROM_KEYS, fpath)
        c.string(src, "prefix", fpath)
        refs = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
        if not refs:
            c.add(fpath, invalid("", "must specify one of: `configMapRef` or `secretRef`"))
        for k in refs:
            c.add(fpath + (k,), api_reference("configmaps" if k == "configMapRef" else "secrets"))
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
        number = c.integer(port, "containerPort", ppath, bits=32)
        if port.get("containerPort") is None or number == 0:
            c.add(ppath + ("containerPort",), required())
        elif number is not None and not 1 <= number <= 65535:
            c.add(ppath + ("containerPort",), invalid(number, "must be between 1 and 65535, inclusive"))
        host_port = c.integer(port, "hostPort", ppath, bits=32)
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
        kind = kinds[0]
        if kind in ("configMapKeyRef", "secretKeyRef"):
            c.add(vpath + (kind,), api_reference("configmaps" if kind == "configMapKeyRef" else "secrets"))
            continue
        if kind == "fileKeyRef":
            c.add(vpath + (kind,), forbidden("fileKeyRef (alpha, EnvFiles feature gate) is not supported by nodelet"))
            continue
        if kind == "resourceFieldRef":
            _check_resource_field_ref(c, source.get(kind), vpath + (kind,), volume=False)
            continue
        check_field_ref(c, source.get("fieldRef"), vpath + ("fieldRef",), FIELD_REF_PATHS)


def check_field_ref(c: _Checker, obj: Any, fpath: Path, allowed: tuple[str, ...]) -> None:
    """An ObjectFieldSelector (env ``valueFrom.fieldRef`` or a downwardAPI item's): apiVersion v1, a ``fieldPath``
    among ``allowed`` or one label/annotation by qualified name."""
    ref = c.mapping(obj, fpath)
    if ref is None:
        return
    c.unknown(ref, FIELD_REF_KEYS, fpath)
    api_version = c.string(ref, "apiVersion", fpath)
    if api_version and api_version != "v1":
        c.add(fpath + ("apiVersion",), unsupported(api_version, ("v1",)))
    field_path = c.required_string(ref, "fieldPath", fpath)
    if not field_path:
        return
    _, sub = parse_field_ref(field_path)
    if sub is not None:
        for msg in is_qualified_name(sub):
            c.add(fpath + ("fieldPath",), invalid(field_path, msg))
    elif field_path not in allowed:
        c.add(fpath + ("fieldPath",), unsupported(field_path, sorted(
            allowed + ("metadata.annotations['<key>']", "metadata.labels['<key>']"))))


def _check_resource_field_ref(c: _Checker, obj: Any, path: Path, *, volume: bool) -> None:
    """``validateContainerResourceFieldSelector`` + ``validateContainerResourceDivisor``: the resource, the
    container (required in volumes, defaults to the container itself in env) and a divisor of 1 of a unit."""
    from kubelet.kuberuntime.resources import QuantityError, parse_quantity

    ref = c.mapping(obj, path)
    if ref is None:
        return
    c.unknown(ref, RESOURCE_FIELD_REF_KEYS, path)
    container = c.string(ref, "containerName", path)
    if volume and not container:
        c.add(path + ("containerName",), required())
    resource = c.required_string(ref, "resource", path)
    if resource is None:
        return
    if resource not in RESOURCE_FIELD_REFS and not resource.startswith(("limits.hugepages-", "requests.hugepages-")):
        c.add(path + ("resource",), unsupported(resource, RESOURCE_FIELD_REFS))
        return
    divisor = ref.get("divisor")
    if divisor is None:
        return
    try:
        q = parse_quantity(divisor)
    except QuantityError as e:
        c.add(path + ("divisor",), invalid(divisor, str(e)))
        return
    if resource.endswith(".cpu"):
        if q not in CPU_DIVISORS:
            c.add(path + ("divisor",), invalid(divisor, "only divisor's values 1m and 1 are supported with the cpu "
                                                        "resource"))
    elif q not in BYTE_DIVISORS:
        what = "memory" if resource.endswith(".memory") else "local ephemeral storage" \
            if resource.endswith(".ephemeral-storage") else "hugepages"
        c.add(path + ("divisor",), invalid(divisor, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, "
                                                    f"1Gi, 1Ti, 1Pi, 1Ei are supported with the {what} resource"))


def _divisors() -> tuple[frozenset[Any], frozenset[Any]]:
    from decimal import Decimal
    cpu = frozenset({Decimal("0.001"), Decimal(1)})
    byte = frozenset({Decimal(1)} | {Decimal(10) ** (3 * i) for i in range(1, 7)}
                     | {Decimal(2) ** (10 * i) for i in range(1, 7)})
    return cpu, byte


CPU_DIVISORS, BYTE_DIVISORS = _divisors()


def _validate_probes(c: _Checker, ctr: Mapping[str, Any], path: Path) -> None:
    c.problems.extend(probe_problems(ctr, path))


def parse_probes(ctr: Mapping[str, Any], path: Path) -> tuple[dict[str, Any], list[FieldProblem]]:
    """The container's probes through ``probes.spec.parse_probe``: {"livenessProbe": ProbeSpec, …} and problems
    (each ``ProbeSpecError`` as a FieldProblem). This is the single call site of the probes package."""
    from probes.errors import ProbeSpecError
    from probes.spec import parse_probe, split_unknown_fields
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
        obj, unknown = split_unknown_fields(obj, field=field)
        errors = list(unknown)
        try:
            parsed[kind.field_name] = parse_probe(obj, field=field, kind=kind, container_ports=refs)  # type: ignore[arg-type]  # split_unknown_fields keeps the object's type
        except ProbeSpecError as e:
            errors.append(e)
        for err in errors:
            text = str(err)
            reason = text[len(err.field) + 2:] if text.startswith(err.field + ": ") else text
            problems.append(FieldProblem(path=parse_path(err.field), reason=reason))
    return parsed, problems


def probe_problems(ctr: Mapping[str, Any], path: Path) -> list[FieldProblem]:
    return parse_probes(ctr, path)[1]
