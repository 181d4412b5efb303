"""downwardAPI and projected volumes: the pod's own fields and resources as files, and projections that combine
downwardAPI, configMap and secret sources in one directory.

Upstream: ``pkg/volume/downwardapi`` (``CollectData``: each item's value as the file's bytes, no trailing newline;
``metadata.labels``/``metadata.annotations`` as ``key="value"`` lines sorted by key, ``fieldpath.FormatMap``; a
resourceFieldRef names its container and is divided by its divisor, a missing limit being the node's allocatable)
and ``pkg/volume/projected`` (sources merged into one file set, the volume's ``defaultMode`` for items without a
``mode``). Both volumes live on a tmpfs (upstream wraps them in a memory-medium emptyDir) and are written with the
AtomicWriter layout of :mod:`kubelet.kuberuntime.projected`. Like the kubelet, nodelet recomputes them at every pod
sync and swaps ``..data`` only when a value changed: what can change for a running static pod is a value nodelet
itself supplies (the ``kubernetes.io/config.*`` annotations, a node-allocatable default for a missing limit) and,
for projected volumes, the ConfigMap/Secret documents; a changed manifest is a new pod (a new UID).

``parse_*`` read a validated volume source once into frozen types; ``compute_*`` are pure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

from kubelet.kuberuntime.projected import ProjectionError, compute_projection
from kubelet.types import ContainerSpec, Pod, ResourceFieldRef
from probes.errors import go_quote

__all__ = [
    "DEFAULT_MODE", "DOWNWARD_API_PLUGIN", "PROJECTED_PLUGIN", "DownwardAPIFile", "DownwardAPISource", "KeyProjection",
    "Projection", "parse_downward_api_volume", "parse_projected_volume", "compute_field_value",
    "compute_projection_files", "format_map", "needs_allocatable",
]

DOWNWARD_API_PLUGIN = "kubernetes.io~downward-api"
PROJECTED_PLUGIN = "kubernetes.io~projected"
DEFAULT_MODE = 0o644  # DownwardAPIVolumeSourceDefaultMode / ProjectedVolumeSourceDefaultMode

_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['(.*)'\]")


@dataclass(frozen=True, kw_only=True)
class DownwardAPIFile:
    """One ``items[]`` entry: a file whose content is a pod field or a container resource."""
    path: str
    field_path: str = ""  # fieldRef.fieldPath
    resource_field_ref: ResourceFieldRef | None = None
    mode: int | None = None  # None: the volume's defaultMode


@dataclass(frozen=True, kw_only=True)
class DownwardAPISource:
    items: tuple[DownwardAPIFile, ...] = ()


@dataclass(frozen=True, kw_only=True)
class KeyProjection:
    """A projected volume's configMap or secret source (nodelet's local documents, see ``projected.py``)."""
    kind: str  # "configMap" | "secret"
    name: str
    items: tuple[tuple[str, str, int | None], ...] = ()  # (key, path, mode)
    optional: bool = False


ProjectionSource = Union[DownwardAPISource, KeyProjection]


@dataclass(frozen=True, kw_only=True)
class Projection:
    """A downwardAPI volume (one DownwardAPISource) or a projected volume (its sources, in order)."""
    sources: tuple[ProjectionSource, ...] = ()
    default_mode: int = DEFAULT_MODE


def _resource_ref(raw: Mapping[str, Any]) -> ResourceFieldRef:
    return ResourceFieldRef(resource=raw["resource"], container_name=raw.get("containerName") or "",
                            divisor=str(raw.get("divisor") or "1"))


def _downward_source(raw: Mapping[str, Any]) -> DownwardAPISource:
    items = []
    for item in raw.get("items") or ():
        ref = item.get("resourceFieldRef")
        items.append(DownwardAPIFile(
            path=item["path"], field_path=(item.get("fieldRef") or {}).get("fieldPath") or "",
            resource_field_ref=_resource_ref(ref) if ref is not None else None, mode=item.get("mode")))
    return DownwardAPISource(items=tuple(items))


def _mode(raw: Mapping[str, Any]) -> int:
    mode = raw.get("defaultMode")
    return DEFAULT_MODE if mode is None else int(mode)


def parse_downward_api_volume(raw: Mapping[str, Any] | None) -> Projection:
    """A validated ``volumes[].downwardAPI``."""
    raw = raw or {}
    return Projection(sources=(_downward_source(raw),), default_mode=_mode(raw))


def parse_projected_volume(raw: Mapping[str, Any] | None) -> Projection:
    """A validated ``volumes[].projected`` (validation has refused the sources that need the API server)."""
    raw = raw or {}
    sources: list[ProjectionSource] = []
    for src in raw.get("sources") or ():
        if src.get("downwardAPI") is not None:
            sources.append(_downward_source(src["downwardAPI"]))
        for kind in ("configMap", "secret"):
            if src.get(kind) is not None:
                s = src[kind]
                sources.append(KeyProjection(
                    kind=kind, name=s.get("name") or "", optional=s.get("optional") is True,
                    items=tuple((i["key"], i["path"], i.get("mode")) for i in s.get("items") or ())))
    return Projection(sources=tuple(sources), default_mode=_mode(raw))


def needs_allocatable(p: Projection) -> bool:
    """Whether computing the files reads node allocatable (a resourceFieldRef)."""
    return any(isinstance(s, DownwardAPISource) and any(f.resource_field_ref for f in s.items) for s in p.sources)


def format_map(m: Mapping[str, str]) -> str:
    """``fieldpath.FormatMap``: ``key="value"`` lines sorted by key, values quoted as Go's %q, no final newline."""
    return "\n".join(f"{k}={go_quote(str(m[k]))}" for k in sorted(m))


def compute_field_value(field_path: str, pod: Pod) -> str:
    """``fieldpath.ExtractFieldPathAsString`` for the paths a volume may use (validation allows no others); a
    missing label/annotation key is an empty file, as upstream."""
    simple = {"metadata.name": pod.name, "metadata.namespace": pod.namespace, "metadata.uid": str(pod.uid)}
    if field_path in simple:
        return simple[field_path]
    if field_path == "metadata.labels":
        return format_map(pod.labels)
    if field_path == "metadata.annotations":
        return format_map(pod.annotations)
    m = _SUBSCRIPT.fullmatch(field_path)
    if m:
        return (pod.labels if m.group(1) == "labels" else pod.annotations).get(m.group(2), "")
    raise ProjectionError(f"unsupported fieldPath {field_path!r}")


def _downward_files(src: DownwardAPISource, pod: Pod, default_mode: int,
                    resource_value: Callable[[ResourceFieldRef, ContainerSpec], str]) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    errors = []
    for f in src.items:
        mode = default_mode if f.mode is None else f.mode
        if f.resource_field_ref is not None:
            ref = f.resource_field_ref
            target = pod.container(ref.container_name)
            if target is None:  # ExtractResourceValueByContainerName
                errors.append(f"{f.path}: resourceFieldRef {ref.resource}: container {ref.container_name} not found")
                continue
            value = resource_value(ref, target)
        else:
            value = compute_field_value(f.field_path, pod)
        out[_clean(f.path)] = (value.encode(), mode)
    if errors:
        raise ProjectionError("; ".join(errors))
    return out


def _clean(path: str) -> str:
    return "/".join(p for p in path.split("/") if p not in ("", "."))  # filepath.Clean of a validated relative path


def compute_projection_files(p: Projection, pod: Pod, *, objects: Sequence[Any] = (),
                             resource_value: Callable[[ResourceFieldRef, ContainerSpec], str] | None = None,
                             ) -> dict[str, tuple[bytes, int]]:
    """relative path → (content, mode) of a downwardAPI or projected volume. Pure: ``resource_value`` computes a
    resourceFieldRef for its container (``podconfig.resource_field_value`` with the node's allocatable), ``objects``
    are the manifest directory's ConfigMaps/Secrets. Later sources win a path, as upstream's merge does."""
    out: dict[str, tuple[bytes, int]] = {}
    for src in p.sources:
        if isinstance(src, DownwardAPISource):
            if resource_value is None and any(f.resource_field_ref for f in src.items):
                raise ProjectionError("resourceFieldRef needs the node's allocatable resources")
            out.update(_downward_files(src, pod, p.default_mode, resource_value or (lambda r, c: "")))
        else:
            name_key = "name" if src.kind == "configMap" else "secretName"
            legacy = {name_key: src.name, "optional": src.optional, "defaultMode": p.default_mode,
                      "items": [{"key": k, "path": path, **({} if m is None else {"mode": m})}
                                for k, path, m in src.items]}
            out.update((_clean(k), v) for k, v in compute_projection(src.kind, legacy, objects, pod.namespace).items())
    return out
