"""Validation of the pod-spec fields beyond containers and probes: volumes, volumeMounts, security contexts,
resources and lifecycle hooks (pure; API-server messages where upstream has them, ``pkg/apis/core/validation``).

Everything a manifest alone can show to be wrong is an error here (the pod never starts); what only the node can
tell (a hostPath type on a missing path, a root image under runAsNonRoot) is a CreateContainerConfigError later.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from kubelet.kuberuntime.resources import QuantityError, parse_quantity
from kubelet.kuberuntime.security import CAPABILITIES, is_namespaced_sysctl
from kubelet.kuberuntime.volumes import HOST_PATH_TYPES, MOUNT_PROPAGATION
from kubelet.manifest.fields import (
    Path, api_reference, container_port_refs, duplicate, forbidden, invalid, is_dns1123_label, is_dns1123_subdomain,
    is_qualified_name,
    parse_path, render_path, required, type_error, unsupported,
)

__all__ = ["VOLUME_SOURCES", "validate_volumes", "validate_pod_security", "validate_container_extras",
           "validate_pod_quantities", "compute_unimplemented_fields"]

# Every volume source the v1 API knows; nodelet implements SUPPORTED_VOLUME_SOURCES and refuses the rest.
VOLUME_SOURCES = frozenset({
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
})
SUPPORTED_VOLUME_SOURCES = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected")
#: projected sources nodelet serves from its own manifest directory (the local ConfigMap/Secret extension)
LOCAL_PROJECTED_SOURCES = frozenset({"configMap", "secret"})
#: volume types a kubelet >= 1.34 refuses in static pods (``podutil.HasAPIObjectReference``), with its wording; a
#: secretRef in any volume type counts as "secrets" first, as upstream visits secret names before volume types
API_REFERENCE_VOLUMES = {
    "csi": "csidrivers (via CSI volumes)", "glusterfs": "endpoints (via glusterFS volumes)",
    "persistentVolumeClaim": "persistentvolumeclaims", "ephemeral": "persistentvolumeclaims (via ephemeral volumes)",
    "azureFile": "secrets (via azureFile volumes)",
}
_SECRET_REF_KEYS = {"cephfs": "secretRef", "cinder": "secretRef", "flexVolume": "secretRef", "rbd": "secretRef",
                    "iscsi": "secretRef", "scaleIO": "secretRef", "storageos": "secretRef",
                    "csi": "nodePublishSecretRef"}
PROJECTED_API_SOURCES = {
    "configMap": "configmaps (via projected volumes)", "secret": "secrets (via projected volumes)",
    "serviceAccountToken": "serviceaccounts (via projected volumes)", "clusterTrustBundle": "clustertrustbundles",
    "podCertificate": "podcertificates",
}
PROJECTED_SOURCES = frozenset(PROJECTED_API_SOURCES) | {"downwardAPI"}  # configMap/secret: see LOCAL_PROJECTED_SOURCES
IMAGE_VOLUME_REFUSAL = ("image volumes are not supported by nodelet's runtime: they need the CRI image mount "
                        "(Mount.image), which containerd implements from 2.1 on; containerd 1.6 has none, and nodelet "
                        "does not fake it")
#: ``validVolumeDownwardAPIFieldPathExpressions`` (plus metadata.labels['k'] / metadata.annotations['k'])
VOLUME_FIELD_REF_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
                          "metadata.uid")
SELINUX_REFUSAL = ("SELinux labels are not applied by nodelet (it passes none to the runtime, so the container "
                   "would run with the runtime's default label)")
WINDOWS_REFUSAL = "Windows-only settings: nodelet runs Linux containers, where they would have no effect"
APPARMOR_REFUSAL = ("AppArmor profiles are not applied by nodelet (it passes none to the runtime, so the profile "
                    "would be ignored)")
VOLUME_MOUNT_KEYS = frozenset({"name", "readOnly", "recursiveReadOnly", "mountPath", "subPath", "mountPropagation",
                               "subPathExpr"})
POD_SC_KEYS = frozenset({"seLinuxOptions", "windowsOptions", "runAsUser", "runAsGroup", "runAsNonRoot",
                         "supplementalGroups", "supplementalGroupsPolicy", "fsGroup", "sysctls", "fsGroupChangePolicy",
                         "seccompProfile", "appArmorProfile", "seLinuxChangePolicy"})
CONTAINER_SC_KEYS = frozenset({"capabilities", "privileged", "seLinuxOptions", "windowsOptions", "runAsUser",
                               "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation",
                               "procMount", "seccompProfile", "appArmorProfile"})
SECCOMP_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")
HANDLER_KEYS = ("exec", "httpGet", "tcpSocket", "sleep")
_SYSCTL_RE = re.compile(r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")
_MAX_ID = 2147483647
MAX_INT64 = 2**63 - 1
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _check_id(c: Any, obj: Mapping[str, Any], key: str, path: Path) -> None:
    value = c.integer(obj, key, path)
    if value is not None and not 0 <= value <= _MAX_ID:
        c.add(path + (key,), invalid(value, f"must be between 0 and {_MAX_ID}, inclusive"))


def _check_seccomp(c: Any, sc: Mapping[str, Any], path: Path) -> None:
    prof = c.mapping(sc.get("seccompProfile"), path + ("seccompProfile",))
    if prof is None:
        return
    ppath = path + ("seccompProfile",)
    c.unknown(prof, frozenset({"type", "localhostProfile"}), ppath)
    if prof.get("type") in (None, ""):
        c.add(ppath + ("type",), required())
    c.choice(prof, "type", ppath, SECCOMP_TYPES)
    local = c.string(prof, "localhostProfile", ppath)
    if prof.get("type") == "Localhost":
        if not local:
            c.add(ppath + ("localhostProfile",), required("must be set when seccomp type is Localhost"))
        elif local.startswith("/") or ".." in PurePosixPath(local).parts:
            c.add(ppath + ("localhostProfile",), invalid(local, "must be a relative path without '..'"))
    elif local:
        c.add(ppath + ("localhostProfile",), forbidden("can only be set when seccomp type is Localhost"))


def validate_volumes(c: Any, spec: Mapping[str, Any], path: Path) -> set[str]:
    """The pod's volumes; returns the names of the well-formed ones (for volumeMounts)."""
    names: set[str] = set()
    for i, vpath, vol in c.mappings(spec.get("volumes"), path + ("volumes",)):
        c.unknown(vol, VOLUME_SOURCES | {"name"}, vpath)
        name = c.required_string(vol, "name", vpath)
        if name and c.names(name, vpath + ("name",), is_dns1123_label):
            if name in names:
                c.add(vpath + ("name",), duplicate(name))
            names.add(name)
        sources = [k for k in vol if k in VOLUME_SOURCES]
        if not sources:
            continue  # the API defaults a volume without a source to an emptyDir (SetDefaults_Volume)
        if len(sources) > 1:
            c.add(vpath + (sources[1],), forbidden("may not specify more than 1 volume type"))
            continue
        kind = sources[0]
        spath = vpath + (kind,)
        secret_key = _SECRET_REF_KEYS.get(kind)
        if secret_key and isinstance(vol.get(kind), Mapping) and vol[kind].get(secret_key) is not None:
            c.add(spath + (secret_key,), api_reference("secrets"))
            continue
        if kind in API_REFERENCE_VOLUMES:
            c.add(spath, api_reference(API_REFERENCE_VOLUMES[kind]))
            continue
        if kind == "image":
            c.add(spath, forbidden(IMAGE_VOLUME_REFUSAL))
            continue
        if kind == "downwardAPI":
            src = c.mapping(vol.get(kind) if vol.get(kind) is not None else {}, spath)
            if src is not None:
                _check_downward_api(c, src, spath, projected=False)
            continue
        if kind == "projected":
            _check_projected(c, vol.get(kind), spath)
            continue
        if kind not in SUPPORTED_VOLUME_SOURCES:
            c.add(spath, forbidden(f"{kind} volumes are not supported by nodelet (emptyDir, hostPath, downwardAPI, "
                                   "and configMap/secret/projected from documents in the manifest directory are)"))
            continue
        src = c.mapping(vol.get(kind) if vol.get(kind) is not None else {}, spath)
        if src is None:
            continue
        if kind in ("configMap", "secret"):
            _check_projection(c, src, spath, kind)
        elif kind == "emptyDir":
            c.unknown(src, frozenset({"medium", "sizeLimit"}), spath)
            medium = c.string(src, "medium", spath)
            if medium == "HugePages" or (medium or "").startswith("HugePages-"):
                c.add(spath + ("medium",), forbidden("hugepages emptyDir volumes are not supported by nodelet"))
            elif medium not in (None, "", "Memory"):
                c.add(spath + ("medium",), unsupported(medium, ("", "Memory", "HugePages")))
            if src.get("sizeLimit") is not None:
                try:
                    if parse_quantity(src["sizeLimit"]) < 0:
                        c.add(spath + ("sizeLimit",), invalid(src["sizeLimit"], "must be greater than or equal to 0"))
                except QuantityError as e:
                    c.add(spath + ("sizeLimit",), invalid(src["sizeLimit"], str(e)))
        else:
            c.unknown(src, frozenset({"path", "type"}), spath)
            hp = c.required_string(src, "path", spath)
            if hp:
                if ".." in PurePosixPath(hp).parts:
                    c.add(spath + ("path",), invalid(hp, "must not contain '..'"))
                elif not hp.startswith("/"):
                    c.add(spath + ("path",), invalid(hp, "must be an absolute path"))
            c.choice(src, "type", spath, HOST_PATH_TYPES)
    return names


def _check_mode(c: Any, obj: Mapping[str, Any], key: str, path: Path) -> None:
    mode = c.integer(obj, key, path, bits=32)
    if mode is not None and not 0 <= mode <= 0o777:
        c.add(path + (key,), invalid(mode, "must be a number between 0 and 0777 (octal), both inclusive"))


def _check_projection(c: Any, src: Mapping[str, Any], spath: Path, kind: str) -> None:
    name_key = "name" if kind == "configMap" else "secretName"
    c.unknown(src, frozenset({name_key, "items", "defaultMode", "optional"}), spath)
    name = c.required_string(src, name_key, spath)
    if name:
        c.names(name, spath + (name_key,), is_dns1123_subdomain)
    c.boolean(src, "optional", spath)
    _check_mode(c, src, "defaultMode", spath)
    paths: set[str] = set()
    for j, ipath, item in c.mappings(src.get("items"), spath + ("items",)):
        c.unknown(item, frozenset({"key", "path", "mode"}), ipath)
        c.required_string(item, "key", ipath)
        _check_item_path(c, item, ipath, paths)
        _check_mode(c, item, "mode", ipath)


def _check_item_path(c: Any, item: Mapping[str, Any], ipath: Path, paths: set[str]) -> None:
    """``validateLocalDescendingPath`` + uniqueness of a projected file's ``path``."""
    p = c.required_string(item, "path", ipath)
    if p:
        parts = PurePosixPath(p).parts
        if p.startswith("/"):
            c.add(ipath + ("path",), invalid(p, "must be a relative path"))
        elif ".." in parts or any(x.startswith("..") for x in parts):
            c.add(ipath + ("path",), invalid(p, "must not contain '..'"))
        elif p in paths:
            c.add(ipath + ("path",), invalid(p, "must be unique"))
        paths.add(p)


def _check_downward_api(c: Any, src: Mapping[str, Any], spath: Path, *, projected: bool) -> None:
    """``validateDownwardAPIVolumeSource``: items with a path and exactly one of fieldRef (the volume paths) and
    resourceFieldRef (containerName required), modes."""
    from kubelet.manifest.validation import _check_resource_field_ref, check_field_ref
    c.unknown(src, frozenset({"items"} if projected else {"items", "defaultMode"}), spath)
    if not projected:
        _check_mode(c, src, "defaultMode", spath)
    paths: set[str] = set()
    for j, ipath, item in c.mappings(src.get("items"), spath + ("items",)):
        c.unknown(item, frozenset({"path", "fieldRef", "resourceFieldRef", "mode"}), ipath)
        _check_item_path(c, item, ipath, paths)
        _check_mode(c, item, "mode", ipath)
        refs = [k for k in ("fieldRef", "resourceFieldRef") if item.get(k) is not None]
        if len(refs) != 1:
            c.add(ipath, invalid("", "fieldRef and resourceFieldRef can not be specified simultaneously") if refs
                  else required("one of fieldRef and resourceFieldRef is required"))
            continue
        if refs[0] == "resourceFieldRef":
            _check_resource_field_ref(c, item["resourceFieldRef"], ipath + ("resourceFieldRef",), volume=True)
            continue
        check_field_ref(c, item["fieldRef"], ipath + ("fieldRef",), VOLUME_FIELD_REF_PATHS)


def _check_projected(c: Any, obj: Any, spath: Path) -> None:
    """``validateProjectedVolumeSource``: downwardAPI sources as in a downwardAPI volume; configMap/secret sources
    (upstream: API references a static pod may not make) served from the manifest directory as nodelet's local
    extension; serviceAccountToken, clusterTrustBundle and podCertificate refused with the kubelet's wording. Paths
    are unique across the sources ("conflicting duplicate paths")."""
    src = c.mapping(obj if obj is not None else {}, spath)
    if src is None:
        return
    c.unknown(src, frozenset({"sources", "defaultMode"}), spath)
    _check_mode(c, src, "defaultMode", spath)
    earlier: set[str] = set()  # the paths of the sources before this one
    for j, ppath, source in c.mappings(src.get("sources"), spath + ("sources",)):
        c.unknown(source, PROJECTED_SOURCES, ppath)
        mine: set[str] = set()
        kinds = [k for k in source if k in PROJECTED_SOURCES and source[k] is not None]
        if len(kinds) > 1:
            c.add(ppath, forbidden("may not specify more than 1 volume type per source"))
        for key in kinds:
            kpath = ppath + (key,)
            if key in LOCAL_PROJECTED_SOURCES:
                proj = c.mapping(source[key], kpath)
                if proj is None:
                    continue
                c.unknown(proj, frozenset({"name", "items", "optional"}), kpath)
                name = c.required_string(proj, "name", kpath)
                if name:
                    c.names(name, kpath + ("name",), is_dns1123_subdomain)
                c.boolean(proj, "optional", kpath)
                paths: set[str] = set()
                for _, ipath, item in c.mappings(proj.get("items"), kpath + ("items",)):
                    c.unknown(item, frozenset({"key", "path", "mode"}), ipath)
                    c.required_string(item, "key", ipath)
                    _check_item_path(c, item, ipath, paths)
                    _check_mode(c, item, "mode", ipath)
                    _check_conflict(c, item, spath, earlier, mine, name or "")
            elif key in PROJECTED_API_SOURCES:
                c.add(kpath, api_reference(PROJECTED_API_SOURCES[key]))
            else:  # downwardAPI
                d = c.mapping(source[key], kpath)
                if d is not None:
                    _check_downward_api(c, d, kpath, projected=True)
                    for item in d.get("items") if isinstance(d.get("items"), list) else ():
                        _check_conflict(c, item, spath, earlier, mine, None)
        earlier |= mine


def _check_conflict(c: Any, item: Any, spath: Path, earlier: set[str], mine: set[str], name: str | None) -> None:
    """A projected file's path already used by an earlier source: upstream reports it on the volume, with the
    source's name (configMap/secret) or the path (downwardAPI) as the value (a repeat within one source is the
    item's own "must be unique")."""
    p = item.get("path") if isinstance(item, Mapping) else None
    if not isinstance(p, str) or not p:
        return
    if p in earlier:
        c.add(spath, invalid(p if name is None else name, "conflicting duplicate paths"))
    mine.add(p)


def validate_pod_security(c: Any, spec: Mapping[str, Any], path: Path) -> None:
    sc = c.mapping(spec.get("securityContext"), path + ("securityContext",))
    if sc is None:
        return
    spath = path + ("securityContext",)
    c.unknown(sc, POD_SC_KEYS, spath)
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        _check_id(c, sc, key, spath)
    c.boolean(sc, "runAsNonRoot", spath)
    for j, g in enumerate(c.list_(sc.get("supplementalGroups"), spath + ("supplementalGroups",))):
        if not isinstance(g, int) or isinstance(g, bool) or not 0 <= g <= _MAX_ID:
            c.add(spath + ("supplementalGroups", j), invalid(g, f"must be between 0 and {_MAX_ID}, inclusive"))
    c.choice(sc, "fsGroupChangePolicy", spath, ("OnRootMismatch", "Always"))
    c.choice(sc, "supplementalGroupsPolicy", spath, ("Merge", "Strict"))
    if sc.get("supplementalGroupsPolicy") == "Strict":
        c.add(spath + ("supplementalGroupsPolicy",), forbidden(
            "Strict is not supported by nodelet's runtime: containerd 1.6 always adds the groups of the image's "
            "/etc/group (the CRI SupplementalGroupsPolicy needs containerd >= 2.0)"))
    c.choice(sc, "seLinuxChangePolicy", spath, ("MountOption", "Recursive"))
    if sc.get("seLinuxChangePolicy") is not None:
        c.add(spath + ("seLinuxChangePolicy",), forbidden("SELinux relabelling is not done by nodelet"))
    _refuse_unhonoured_security(c, sc, spath)
    _check_seccomp(c, sc, spath)
    seen: set[str] = set()
    for j, kpath, s in c.mappings(sc.get("sysctls"), spath + ("sysctls",)):
        c.unknown(s, frozenset({"name", "value"}), kpath)
        name = c.required_string(s, "name", kpath)
        c.string(s, "value", kpath)
        if not name:
            continue
        if len(name) > 253 or not _SYSCTL_RE.match(name):
            c.add(kpath + ("name",), invalid(name, "must have at most 253 characters and match regex "
                                                   + _SYSCTL_RE.pattern))
            continue
        if name in seen:
            c.add(kpath + ("name",), invalid(name, "duplicate sysctl"))
        seen.add(name)
        ns = is_namespaced_sysctl(name)
        if ns is None:
            c.add(kpath + ("name",), forbidden(f'sysctl "{name}" is not namespaced: it would change the whole node '
                                              "(only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* "
                                              "can be set per pod)"))
        elif ns == "net" and spec.get("hostNetwork") is True:
            c.add(kpath + ("name",), invalid(name, "sysctl not allowed with hostNetwork: it would change the node's "
                                                   "network namespace"))
        elif ns == "ipc" and spec.get("hostIPC") is True:
            c.add(kpath + ("name",), invalid(name, "sysctl not allowed with hostIPC: it would change the node's IPC "
                                                   "namespace"))


def _refuse_unhonoured_security(c: Any, sc: Mapping[str, Any], spath: Path) -> None:
    """Security settings nodelet does not pass to the runtime: refused, never dropped quietly (an empty object sets
    nothing and is fine)."""
    for key, why in (("seLinuxOptions", SELINUX_REFUSAL), ("windowsOptions", WINDOWS_REFUSAL),
                     ("appArmorProfile", APPARMOR_REFUSAL)):
        value = c.mapping(sc.get(key), spath + (key,))
        if value and any(v not in (None, "", False) for v in value.values()):
            c.add(spath + (key,), forbidden(why))


def validate_dns_and_aliases(c: Any, spec: Mapping[str, Any], path: Path) -> None:
    """``validateHostAliases`` and ``validatePodDNSConfig``: at most 3 nameservers (IPs), 32 search domains (2048
    characters), options with names."""
    import ipaddress

    for i, apath, a in c.mappings(spec.get("hostAliases"), path + ("hostAliases",)):
        c.unknown(a, frozenset({"ip", "hostnames"}), apath)
        ip = c.required_string(a, "ip", apath)
        if ip:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                c.add(apath + ("ip",), invalid(ip, "must be a valid IP address"))
        c.strings(a, "hostnames", apath)
        for j, h in enumerate(a.get("hostnames") or [] if isinstance(a.get("hostnames"), list) else []):
            if isinstance(h, str):
                c.names(h, apath + ("hostnames", j), is_dns1123_subdomain)
    dns = c.mapping(spec.get("dnsConfig"), path + ("dnsConfig",))
    if dns is None:
        return
    dpath = path + ("dnsConfig",)
    c.unknown(dns, frozenset({"nameservers", "searches", "options"}), dpath)
    c.strings(dns, "nameservers", dpath)
    c.strings(dns, "searches", dpath)
    servers = [s for s in dns.get("nameservers") or [] if isinstance(s, str)] if isinstance(dns.get("nameservers"), list) else []
    if len(servers) > 3:
        c.add(dpath + ("nameservers",), invalid(servers, "must not have more than 3 nameservers"))
    for j, s in enumerate(servers):
        try:
            ipaddress.ip_address(s)
        except ValueError:
            c.add(dpath + ("nameservers", j), invalid(s, "must be valid IP address"))
    if spec.get("dnsPolicy") == "None" and not servers:
        c.add(dpath + ("nameservers",), required("must provide at least one DNS nameserver when `dnsPolicy` is None"))
    searches = [s for s in dns.get("searches") or [] if isinstance(s, str)] if isinstance(dns.get("searches"), list) else []
    if len(searches) > 32:
        c.add(dpath + ("searches",), invalid(searches, "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        c.add(dpath + ("searches",), invalid(searches, "must not have more than 2048 characters (including spaces) in "
                                                       "the search list"))
    for j, s in enumerate(searches):
        s = s[:-1] if s.endswith(".") else s
        for msg in is_dns1123_subdomain(s):
            c.add(dpath + ("searches", j), invalid(searches[j], msg))
    for j, opath, o in c.mappings(dns.get("options"), dpath + ("options",)):
        c.unknown(o, frozenset({"name", "value"}), opath)
        c.required_string(o, "name", opath)
        c.string(o, "value", opath)


def _check_caps(c: Any, caps: Mapping[str, Any], cpath: Path) -> None:
    c.unknown(caps, frozenset({"add", "drop"}), cpath)
    for key in ("add", "drop"):
        for j, cap in enumerate(c.list_(caps.get(key), cpath + (key,))):
            if not isinstance(cap, str):
                c.add(cpath + (key, j), type_error(cap, "a string"))
            elif cap.upper().startswith("CAP_"):
                c.add(cpath + (key, j), invalid(cap, f'write capabilities without the CAP_ prefix ("{cap[4:]}"), as '
                                                     "the runtime adds it"))
            elif cap.upper() not in CAPABILITIES:
                c.add(cpath + (key, j), invalid(cap, "unknown capability (see capabilities(7); e.g. NET_ADMIN, "
                                                     "SYS_TIME, ALL)"))


def _validate_resources(c: Any, ctr: Mapping[str, Any], path: Path) -> None:
    res = c.mapping(ctr.get("resources"), path + ("resources",))
    if res is None:
        return
    rpath = path + ("resources",)
    c.unknown(res, frozenset({"limits", "requests", "claims"}), rpath)
    if res.get("claims"):
        c.add(rpath + ("claims",), forbidden("resource claims (DRA) are not supported by nodelet"))
    parsed: dict[str, dict[str, Any]] = {}
    for kind in ("limits", "requests"):
        m = c.mapping(res.get(kind), rpath + (kind,))
        parsed[kind] = {}
        for name, value in (m or {}).items():
            qpath = rpath + (kind, str(name))
            if name not in _STANDARD_RESOURCES and not str(name).startswith("hugepages-"):
                msgs = is_qualified_name(str(name))
                if msgs or "/" not in str(name):
                    c.add(qpath, invalid(name, "must be a standard resource type (cpu, memory, ephemeral-storage, "
                                               "hugepages-<size>) or a fully qualified extended resource name"))
                    continue
            try:
                q = parse_quantity(value)
            except QuantityError as e:
                c.add(qpath, invalid(value, str(e)))
                continue
            if q < 0:
                c.add(qpath, invalid(value, "must be greater than or equal to 0"))
                continue
            if name == "cpu" and q * 1000 > MAX_INT64:
                c.add(qpath, invalid(value, f"must be less than or equal to {MAX_INT64}m: the runtime gets cpu in "
                                            "millicores as a 64-bit integer"))
                continue
            if name == "memory" and q != q.to_integral_value() and kind == "limits":
                c.add(qpath, invalid(value, "must be a whole number of bytes"))
                continue
            parsed[kind][str(name)] = (value, q)
    for name, (value, q) in parsed["requests"].items():
        lim = parsed["limits"].get(name)
        if lim is not None and q > lim[1]:
            c.add(rpath + ("requests", name), invalid(value, f"must be less than or equal to {name} limit of "
                                                             f"{lim[0]}"))


def validate_pod_quantities(c: Any, spec: Mapping[str, Any], path: Path) -> None:
    """spec.overhead and the pod-level spec.resources (accepted, not acted on): well-formed, bounded quantities."""
    targets = [(path + ("overhead",), spec.get("overhead"))]
    res = c.mapping(spec.get("resources"), path + ("resources",))
    if res is not None:
        c.unknown(res, frozenset({"limits", "requests", "claims"}), path + ("resources",))
        targets += [(path + ("resources", k), res.get(k)) for k in ("limits", "requests")]
    for qpath, obj in targets:
        for name, value in (c.mapping(obj, qpath) or {}).items():
            try:
                q = parse_quantity(value)
            except QuantityError as e:
                c.add(qpath + (str(name),), invalid(value, str(e)))
                continue
            if q < 0:
                c.add(qpath + (str(name),), invalid(value, "must be greater than or equal to 0"))


def _validate_lifecycle(c: Any, ctr: Mapping[str, Any], path: Path, grace: Any) -> None:
    lc = c.mapping(ctr.get("lifecycle"), path + ("lifecycle",))
    if lc is None:
        return
    lpath = path + ("lifecycle",)
    c.unknown(lc, frozenset({"postStart", "preStop", "stopSignal"}), lpath)
    if lc.get("stopSignal") is not None:
        c.add(lpath + ("stopSignal",), forbidden("not supported by nodelet (the image's STOPSIGNAL is used)"))
    for hook in ("postStart", "preStop"):
        h = c.mapping(lc.get(hook), lpath + (hook,))
        if h is None:
            continue
        hpath = lpath + (hook,)
        c.unknown(h, frozenset(HANDLER_KEYS), hpath)
        present = [k for k in HANDLER_KEYS if h.get(k) is not None]
        if not present:
            c.add(hpath, required("must specify a handler type"))
            continue
        if len(present) > 1:
            c.add(hpath + (present[1],), forbidden("may not specify more than 1 handler type"))
            continue
        if present[0] == "sleep":
            s = c.mapping(h["sleep"], hpath + ("sleep",))
            if s is None:
                continue
            c.unknown(s, frozenset({"seconds"}), hpath + ("sleep",))
            secs = c.integer(s, "seconds", hpath + ("sleep",))
            if s.get("seconds") is None:
                c.add(hpath + ("sleep", "seconds"), required())
            elif secs is not None and secs < 0:
                c.add(hpath + ("sleep", "seconds"), invalid(secs, "must be non-negative"))
            elif secs is not None and isinstance(grace, int) and secs > grace:
                c.add(hpath + ("sleep", "seconds"), invalid(secs, f"must be less than or equal to "
                                                                  f"terminationGracePeriodSeconds ({grace})"))
            continue
        from probes.errors import ProbeSpecError
        from probes.spec import parse_handler  # the probe handler grammar is the hook grammar (minus grpc/sleep)
        field = render_path(hpath)
        try:
            parse_handler(h, field=field, container_ports=container_port_refs(ctr))
        except ProbeSpecError as e:
            text = str(e)
            reason = text[len(e.field) + 2:] if text.startswith(e.field + ": ") else text
            c.add(parse_path(e.field), reason)


def validate_container_extras(c: Any, ctr: Mapping[str, Any], path: Path, spec: Mapping[str, Any],
                              volumes: set[str]) -> None:
    """volumeMounts, securityContext, resources, lifecycle of one container."""
    sc = c.mapping(ctr.get("securityContext"), path + ("securityContext",)) or {}
    spath = path + ("securityContext",)
    privileged = sc.get("privileged") is True
    if sc:
        c.unknown(sc, CONTAINER_SC_KEYS, spath)
        for key in ("runAsUser", "runAsGroup"):
            _check_id(c, sc, key, spath)
        for key in ("privileged", "runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation"):
            c.boolean(sc, key, spath)
        c.choice(sc, "procMount", spath, ("Default", "Unmasked"))
        _refuse_unhonoured_security(c, sc, spath)
        caps = c.mapping(sc.get("capabilities"), spath + ("capabilities",))
        if caps is not None:
            _check_caps(c, caps, spath + ("capabilities",))
        _check_seccomp(c, sc, spath)
        if sc.get("allowPrivilegeEscalation") is False:
            if privileged:
                c.add(spath, invalid("", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
            added = [str(x).upper() for x in (caps or {}).get("add") or [] if isinstance(x, str)]
            if "SYS_ADMIN" in added:
                c.add(spath, invalid("", "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` "
                                         "CAP_SYS_ADMIN"))
        if sc.get("procMount") == "Unmasked" and spec.get("hostUsers") is not False:
            c.add(spath + ("procMount",), forbidden("`hostUsers` must be false to use `Unmasked`"))
    mount_paths: set[str] = set()
    for j, mpath, m in c.mappings(ctr.get("volumeMounts"), path + ("volumeMounts",)):
        c.unknown(m, VOLUME_MOUNT_KEYS, mpath)
        name = c.required_string(m, "name", mpath)
        if name and name not in volumes:
            c.add(mpath + ("name",), f'Not found: "{name}"')
        mount_path = c.required_string(m, "mountPath", mpath)
        if mount_path:
            if mount_path in mount_paths:
                c.add(mpath + ("mountPath",), invalid(mount_path, "must be unique"))
            mount_paths.add(mount_path)
            if not mount_path.startswith("/"):
                c.add(mpath + ("mountPath",), invalid(mount_path, "must be an absolute path"))
        c.boolean(m, "readOnly", mpath)
        sub = c.string(m, "subPath", mpath)
        if sub:
            if sub.startswith("/"):
                c.add(mpath + ("subPath",), invalid(sub, "must be a relative path"))
            if ".." in PurePosixPath(sub).parts:
                c.add(mpath + ("subPath",), invalid(sub, "must not contain '..'"))
        expr = c.string(m, "subPathExpr", mpath)
        if expr:
            if sub:
                c.add(mpath + ("subPathExpr",), invalid(expr, "subPathExpr and subPath are mutually exclusive"))
            if expr.startswith("/"):
                c.add(mpath + ("subPathExpr",), invalid(expr, "must be a relative path"))
        c.choice(m, "mountPropagation", mpath, tuple(MOUNT_PROPAGATION))
        if m.get("mountPropagation") == "Bidirectional" and not privileged:
            c.add(mpath + ("mountPropagation",),
                  forbidden("Bidirectional mount propagation is available only to privileged containers"))
        rro = m.get("recursiveReadOnly")
        if rro not in (None, "Disabled"):
            c.add(mpath + ("recursiveReadOnly",), forbidden("not supported by nodelet"))
    _validate_resources(c, ctr, path)
    _validate_lifecycle(c, ctr, path, spec.get("terminationGracePeriodSeconds", 30))


# ---------------------------------------------------------------------------------------------------------------------
# accepted but not implemented: one warning event per pod

# (security settings are never here: what nodelet does not honour is refused in validation)
_POD_UNIMPLEMENTED = ("activeDeadlineSeconds", "affinity", "nodeSelector", "priority", "readinessGates",
                      "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os", "schedulingGates",
                      "resources", "automountServiceAccountToken", "preemptionPolicy",
                      "schedulerName", "hostnameOverride")
_POD_SC_UNIMPLEMENTED: tuple[str, ...] = ()
_CTR_UNIMPLEMENTED = ("resizePolicy", "volumeDevices")
_CTR_SC_UNIMPLEMENTED: tuple[str, ...] = ()


def compute_unimplemented_fields(manifest: Mapping[str, Any]) -> list[str]:
    """Field paths set in the manifest that nodelet accepts but does not act on."""
    spec = manifest.get("spec") or {}
    out = [f"spec.{k}" for k in _POD_UNIMPLEMENTED if spec.get(k) not in (None, "", [], {}, False)]
    psc = spec.get("securityContext") or {}
    out += [f"spec.securityContext.{k}" for k in _POD_SC_UNIMPLEMENTED if psc.get(k) is not None]
    for kind in ("initContainers", "containers"):
        for i, ctr in enumerate(spec.get(kind) or []):
            out += [f"spec.{kind}[{i}].{k}" for k in _CTR_UNIMPLEMENTED if ctr.get(k)]
            csc = ctr.get("securityContext") or {}
            out += [f"spec.{kind}[{i}].securityContext.{k}" for k in _CTR_SC_UNIMPLEMENTED if csc.get(k) is not None]
            res = ctr.get("resources") or {}
            for r in list(res.get("limits") or {}) + list(res.get("requests") or {}):
                if r not in ("cpu", "memory"):
                    out.append(f"spec.{kind}[{i}].resources.{r}")
    return list(dict.fromkeys(out))
