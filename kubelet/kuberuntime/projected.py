"""configMap and secret volumes from ``kind: ConfigMap`` / ``kind: Secret`` documents in the manifest directory.

Beyond upstream (a static pod cannot reference API objects there): nodelet resolves the reference against the
documents of its own manifest directory, same namespace. The files are laid out as the kubelet's AtomicWriter
does — ``..<timestamp>/`` holds the data, ``..data`` points at it, each key is a symlink ``key -> ..data/key`` —
so an update (at the pod's next sync) is one atomic symlink swap and a running container never sees half of it.
Secret volumes live on a tmpfs (never on disk). ``items`` pick and rename keys; ``defaultMode``/``mode`` set
permissions (0644 default); ``optional: true`` makes a missing object or key an empty volume instead of an error.
"""
from __future__ import annotations

import base64
import binascii
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence
from kubelet.errors import PermanentError

__all__ = ["PLUGIN_DIRS", "compute_projection", "ensure_projected_volume", "ProjectionError"]

PLUGIN_DIRS = {"configMap": "kubernetes.io~configmap", "secret": "kubernetes.io~secret"}  # downwardAPI/projected: downward.py
_KINDS = {"configMap": "ConfigMap", "secret": "Secret"}


class ProjectionError(PermanentError):
    """A projected/configMap/secret source that cannot be rendered (missing object or key)."""


def _find(objects: Sequence[Any], kind: str, namespace: str, name: str) -> Any | None:
    return next((o for o in objects if o.kind == kind and o.namespace == namespace and o.name == name), None)


def _payload(kind: str, body: Mapping[str, Any], name: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    label = f'{"configmap" if kind == "configMap" else "secret"} "{name}"'
    data = body.get("data") or {}
    if not isinstance(data, Mapping):
        raise ProjectionError(f"{label}: data must be a map of strings")
    for k, v in data.items():
        if not isinstance(v, str):
            raise ProjectionError(f"{label}: data[{k}] must be a string")
        if kind == "secret":
            try:
                out[str(k)] = base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise ProjectionError(f"{label}: data[{k}] is not valid base64") from None
        else:
            out[str(k)] = v.encode()
    extra_key = "binaryData" if kind == "configMap" else "stringData"
    for k, v in (body.get(extra_key) or {}).items():
        if not isinstance(v, str):
            raise ProjectionError(f"{label}: {extra_key}[{k}] must be a string")
        if kind == "configMap":
            try:
                out[str(k)] = base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise ProjectionError(f"{label}: binaryData[{k}] is not valid base64") from None
        else:
            out[str(k)] = v.encode()
    return out


def compute_projection(kind: str, source: Mapping[str, Any], objects: Sequence[Any],
                       namespace: str) -> dict[str, tuple[bytes, int]]:
    """relative path → (content, mode) for one configMap/secret volume source. Pure."""
    name = source.get("name") if kind == "configMap" else source.get("secretName")
    optional = source.get("optional") is True
    default_mode = source.get("defaultMode", 0o644)
    obj = _find(objects, _KINDS[kind], namespace, str(name))
    label = f'{"configmap" if kind == "configMap" else "secret"} "{name}"'
    if obj is None:
        if optional:
            return {}
        raise ProjectionError(f"{label} not found (nodelet reads kind: {_KINDS[kind]} documents in namespace "
                              f"{namespace} from the manifest directory)")
    payload = _payload(kind, obj.body, str(name))
    items = source.get("items")
    if not items:
        return {k: (v, default_mode) for k, v in payload.items()}
    out = {}
    for item in items:
        key = item["key"]
        if key not in payload:
            if optional:
                continue
            raise ProjectionError(f'{label}: key "{key}" not found')
        out[item["path"]] = (payload[key], item.get("mode", default_mode))
    return out


def _current(volume_dir: Path) -> dict[str, tuple[bytes, int]] | None:
    data = volume_dir / "..data"
    if not data.is_symlink():
        return None
    out = {}
    root = data.resolve()
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath, f)
            out[str(p.relative_to(root))] = (p.read_bytes(), p.stat().st_mode & 0o777)
    return out


def ensure_projected_volume(volume_dir: Path, files: Mapping[str, tuple[bytes, int]], *,
                            gid: int | None = None) -> bool:
    """Lay out ``files`` under ``volume_dir`` atomically; True when something changed."""
    volume_dir.mkdir(parents=True, exist_ok=True)
    if _current(volume_dir) == dict(files):
        return False
    stamp = volume_dir / f"..{time.strftime('%Y_%m_%d_%H_%M_%S', time.gmtime())}.{time.time_ns() % 10**9}"
    stamp.mkdir(mode=0o755)
    for rel, (content, mode) in files.items():
        p = stamp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        os.chmod(p, mode)
        if gid is not None:
            os.chown(p, -1, gid)
    old = os.readlink(volume_dir / "..data") if (volume_dir / "..data").is_symlink() else None
    tmp = volume_dir / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(stamp.name, tmp)
    os.replace(tmp, volume_dir / "..data")
    tops = {Path(rel).parts[0] for rel in files}
    for top in tops:
        link = volume_dir / top
        if not link.is_symlink():
            os.symlink(f"..data/{top}", link)
    for entry in volume_dir.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    if old and old != stamp.name:
        shutil.rmtree(volume_dir / old, ignore_errors=True)
    return True
