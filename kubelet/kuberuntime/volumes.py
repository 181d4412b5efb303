"""Pod volumes: emptyDir (disk or tmpfs) and hostPath, and the container mounts that use them.

Upstream: ``pkg/volume/emptydir`` (``<rootDir>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>``, mode 0777,
``medium: Memory`` a tmpfs sized by ``sizeLimit``), ``pkg/volume/hostpath`` (the type checks and their messages),
``pkg/volume/volume_linux.go`` (``SetVolumeOwnership``: fsGroup owns the files, group rw, setgid directories),
``pkg/kubelet/kubelet_pods.go`` (``makeMounts``: subPath/subPathExpr, mount propagation).

``compute_*`` functions are pure; ``ensure_*``/``teardown_*`` touch the filesystem and are idempotent.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import stat
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from cri import api
from kubelet.kuberuntime.downward import (
    DOWNWARD_API_PLUGIN, PROJECTED_PLUGIN, Projection, compute_projection_files, needs_allocatable,
    parse_downward_api_volume, parse_projected_volume,
)
from kubelet.kuberuntime.podconfig import expand, node_allocatable, resource_field_value
from kubelet.kuberuntime.projected import PLUGIN_DIRS, ProjectionError, compute_projection, ensure_projected_volume
from kubelet.kuberuntime.resources import compute_pod_resources, memory_bytes, parse_resource_requirements
from kubelet.errors import PermanentError
from kubelet.types import Pod, VolumeMount, VolumeSpec

log = logging.getLogger(__name__)

__all__ = [
    "EMPTY_DIR_PLUGIN", "HOST_PATH_TYPES", "MOUNT_PROPAGATION", "VolumeError", "VolumeSpec", "VolumeMount", "compute_volumes",
    "parse_volume_mounts", "pod_volumes_dir", "ensure_pod_volumes", "refresh_projected_volumes", "ensure_container_mounts",
    "compute_read_only_volumes", "teardown_pod_volumes", "open_subpath", "subpaths_dir", "mount_propagation_of",
]

EMPTY_DIR_PLUGIN = "kubernetes.io~empty-dir"
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                   "BlockDevice")
#: volumes written with the AtomicWriter layout, and their plugin directories
ATOMIC_PLUGIN_DIRS = {**PLUGIN_DIRS, "downwardAPI": DOWNWARD_API_PLUGIN, "projected": PROJECTED_PLUGIN}
#: of those, the ones on a tmpfs (upstream: secret, and downwardAPI/projected wrap a memory-medium emptyDir)
_TMPFS_KINDS = frozenset({"secret", "downwardAPI", "projected"})
MOUNT_PROPAGATION = {
    "None": api.MountPropagation.PRIVATE,
    "HostToContainer": api.MountPropagation.HOST_TO_CONTAINER,
    "Bidirectional": api.MountPropagation.BIDIRECTIONAL,
}

_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2


class VolumeError(PermanentError):
    """A volume or mount that cannot be set up for this pod: the container waits with CreateContainerConfigError."""


def compute_volumes(manifest: Mapping[str, Any]) -> tuple[VolumeSpec, ...]:
    """The pod's volumes from its (validated) manifest. A memory-backed emptyDir is sized by the smaller of its
    sizeLimit and the pod's memory limit (SizeMemoryBackedVolumes); with neither, tmpfs's default applies."""
    spec = manifest.get("spec", {})
    pod_limit = compute_pod_resources([parse_resource_requirements(c.get("resources")) for c in spec.get("containers") or []],
                                      [parse_resource_requirements(c.get("resources")) for c in spec.get("initContainers") or []],
                                      sidecars=[c.get("restartPolicy") == "Always" for c in spec.get("initContainers") or []]).memory_limit_in_bytes
    out = []
    for v in spec.get("volumes") or []:
        if "emptyDir" in v or set(v) == {"name"}:  # no source at all: an emptyDir (SetDefaults_Volume)
            ed = v.get("emptyDir") or {}
            size = memory_bytes(ed["sizeLimit"]) if ed.get("sizeLimit") is not None else None
            medium = ed.get("medium") or ""
            if medium == "Memory" and pod_limit:
                size = min(size, pod_limit) if size else pod_limit
            out.append(VolumeSpec(name=v["name"], kind="emptyDir", medium=medium, size_limit=size))
        elif "hostPath" in v:
            hp = v["hostPath"]
            out.append(VolumeSpec(name=v["name"], kind="hostPath", path=hp["path"], type=hp.get("type") or ""))
        elif "configMap" in v or "secret" in v:
            kind = "configMap" if "configMap" in v else "secret"
            out.append(VolumeSpec(name=v["name"], kind=kind, source=v[kind] or {}))
        elif "downwardAPI" in v:
            out.append(VolumeSpec(name=v["name"], kind="downwardAPI", projection=parse_downward_api_volume(v["downwardAPI"])))
        elif "projected" in v:
            out.append(VolumeSpec(name=v["name"], kind="projected", projection=parse_projected_volume(v["projected"])))
    return tuple(out)


def pod_volumes_dir(root_dir: Path, uid: str) -> Path:
    return root_dir / "pods" / uid / "volumes"


def subpaths_dir(root_dir: Path, uid: str) -> Path:
    return root_dir / "pods" / uid / "volume-subpaths"


# ---------------------------------------------------------------------------------------------------------------------
# mounting (ctypes: no mount(8) dependency, and errors come back as errno)

_libc: Any = None


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {fstype} on {target}: {os.strerror(e)}")


def _umount(target: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.umount2(target.encode(), _MNT_DETACH) != 0:
        e = ctypes.get_errno()
        if e not in (errno.EINVAL, errno.ENOENT):
            raise OSError(e, f"umount {target}: {os.strerror(e)}")


def _mountinfo() -> list[list[str]]:
    with open("/proc/self/mountinfo") as f:
        return [line.split() for line in f]


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mount_points_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    return [_unescape(f[4]) for f in _mountinfo() if _unescape(f[4]).startswith(prefix) or _unescape(f[4]) == str(path)]


def mount_propagation_of(path: str) -> str:
    """"shared", "slave" or "private": the propagation of the mount holding ``path`` (from /proc/self/mountinfo)."""
    real = os.path.realpath(path)
    best, fields = "", None
    for f in _mountinfo():
        mp = _unescape(f[4])
        if (real == mp or real.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, fields = mp, f
    if fields is None:
        return "private"
    opt = fields[6:fields.index("-")]
    if any(o.startswith("shared:") for o in opt):
        return "shared"
    if any(o.startswith("master:") for o in opt):
        return "slave"
    return "private"


# ---------------------------------------------------------------------------------------------------------------------
# volumes

def _set_ownership(path: str, gid: int) -> None:
    """``SetVolumeOwnership``: group fsGroup, group read/write (and x on dirs), setgid on directories."""
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            try:
                st = os.lstat(name)
                if stat.S_ISLNK(st.st_mode):
                    continue
                os.chown(name, -1, gid)
                mode = stat.S_IMODE(st.st_mode) | 0o060
                if stat.S_ISDIR(st.st_mode):
                    mode |= 0o010 | stat.S_ISGID
                os.chmod(name, mode)
            except FileNotFoundError:
                continue


def _ensure_empty_dir(v: VolumeSpec, base: Path, fs_group: int | None) -> str:
    d = base / EMPTY_DIR_PLUGIN / v.name
    d.mkdir(parents=True, exist_ok=True)
    if v.medium == "Memory":
        if str(d) not in _mount_points_under(d):
            opts = "mode=0777" + (f",size={v.size_limit}" if v.size_limit else "")
            _mount("tmpfs", str(d), "tmpfs", _MS_NOSUID | _MS_NODEV, opts)
            log.info("emptyDir tmpfs mounted path=%s options=%s", d, opts)
    st = os.stat(d)
    if fs_group is None:
        if stat.S_IMODE(st.st_mode) != 0o777:
            os.chmod(d, 0o777)
    elif st.st_gid != fs_group or not st.st_mode & stat.S_ISGID:
        # once per volume (fsGroupChangePolicy OnRootMismatch): the volume root tells whether it was done
        os.chmod(d, 0o777)
        _set_ownership(str(d), fs_group)
    return str(d)


def _host_path_error(path: str, what: str) -> VolumeError:
    return VolumeError(f'hostPath type check failed: {path} is not {what}')


def _ensure_host_path(v: VolumeSpec) -> str:
    p, kind = v.path, v.type
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise VolumeError(f"hostPath {p}: {e.strerror}") from None
    if kind == "":
        return p
    if kind == "DirectoryOrCreate":
        if st is None:
            try:
                os.makedirs(p, mode=0o755, exist_ok=True)
            except OSError as e:
                raise VolumeError(f"hostPath type check failed: cannot create directory {p}: {e.strerror}") from None
            return p
        if not stat.S_ISDIR(st.st_mode):
            raise _host_path_error(p, "a directory")
        return p
    if kind == "FileOrCreate":
        if st is None:
            try:
                os.makedirs(os.path.dirname(p) or "/", mode=0o755, exist_ok=True)
                fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
                os.close(fd)
            except OSError as e:
                raise VolumeError(f"hostPath type check failed: cannot create file {p}: {e.strerror}") from None
            return p
        if not stat.S_ISREG(st.st_mode):
            raise _host_path_error(p, "a file")
        return p
    checks = {"Directory": (stat.S_ISDIR, "a directory"), "File": (stat.S_ISREG, "a file"),
              "Socket": (stat.S_ISSOCK, "a socket file"), "CharDevice": (stat.S_ISCHR, "a character device"),
              "BlockDevice": (stat.S_ISBLK, "a block device")}
    test, what = checks[kind]
    if st is None:
        raise VolumeError(f"hostPath type check failed: {p} does not exist (type {kind} requires {what})")
    if not test(st.st_mode):
        raise _host_path_error(p, what)
    return p


def compute_fs_group_modes(files: Mapping[str, tuple[bytes, int]]) -> dict[str, tuple[bytes, int]]:
    """With an fsGroup, ``SetVolumeOwnership`` of a read-only volume adds group read (``roMask`` 0440) to each file."""
    return {path: (content, mode | 0o440) for path, (content, mode) in files.items()}


def _projection_files(v: VolumeSpec, objects: Sequence[Any], namespace: str,
                      pod: Pod | None, memory_capacity: int) -> dict[str, tuple[bytes, int]]:
    if v.projection is None:
        return compute_projection(v.kind, v.source, objects, namespace)
    if pod is None:
        raise ProjectionError(f"{v.kind} volumes need the pod")
    resource_value = None
    if needs_allocatable(v.projection):
        allocatable = node_allocatable(memory_capacity)
        resource_value = lambda ref, c: resource_field_value(ref, c, pod, allocatable)  # noqa: E731
    return compute_projection_files(v.projection, pod, objects=objects, resource_value=resource_value)


def _ensure_projected(v: VolumeSpec, base: Path, fs_group: int | None, objects: Sequence[Any],
                      namespace: str, pod: Pod | None, memory_capacity: int) -> str:
    d = base / ATOMIC_PLUGIN_DIRS[v.kind] / v.name
    d.mkdir(parents=True, exist_ok=True)
    if v.kind in _TMPFS_KINDS and str(d) not in _mount_points_under(d):
        _mount("tmpfs", str(d), "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755")  # never touch the disk
    try:
        files = _projection_files(v, objects, namespace, pod, memory_capacity)
    except ProjectionError as e:
        raise VolumeError(e.message) from None
    if fs_group is not None:
        files = compute_fs_group_modes(files)
    ensure_projected_volume(d, files, gid=fs_group)
    return str(d)


def parse_volume_mounts(ctr: Mapping[str, Any]) -> tuple[VolumeMount, ...]:
    """A (validated) container object's volumeMounts as typed values."""
    return tuple(VolumeMount(name=m["name"], mount_path=m["mountPath"], sub_path=m.get("subPath") or "",
                             sub_path_expr=m.get("subPathExpr") or "", read_only=m.get("readOnly") is True,
                             mount_propagation=m.get("mountPropagation") or "")
                 for m in ctr.get("volumeMounts") or ())


def refresh_projected_volumes(volumes: Sequence[VolumeSpec], root_dir: Path, uid: str, objects: Sequence[Any], *,
                              fs_group: int | None = None, namespace: str = "default", pod: Pod | None = None,
                              memory_capacity: int = 0) -> None:
    """Bring configMap/secret/downwardAPI/projected volumes that are already set up up to date with their documents
    and the pod's values (``pod``: the typed pod, needed for downwardAPI sources)."""
    base = pod_volumes_dir(root_dir, uid)
    for v in volumes:
        if v.kind in ATOMIC_PLUGIN_DIRS and (base / ATOMIC_PLUGIN_DIRS[v.kind] / v.name).is_dir():
            try:
                _ensure_projected(v, base, fs_group, objects, namespace, pod, memory_capacity)
            except (VolumeError, OSError) as e:
                log.warning("cannot refresh volume uid=%s volume=%s err=%s", uid, v.name, e)


def ensure_pod_volumes(volumes: Sequence[VolumeSpec], root_dir: Path, uid: str, objects: Sequence[Any] = (), *,
                       fs_group: int | None = None, namespace: str = "default", pod: Pod | None = None,
                       memory_capacity: int = 0) -> dict[str, str]:
    """Set up every volume of the pod (idempotent): name → host path. Raises VolumeError naming the volume.
    ``objects`` are the manifest directory's other documents (ConfigMaps and Secrets for those volumes); ``pod``
    the typed pod (downwardAPI values)."""
    base = pod_volumes_dir(root_dir, uid)
    out: dict[str, str] = {}
    for v in volumes:
        try:
            if v.kind == "emptyDir":
                out[v.name] = _ensure_empty_dir(v, base, fs_group)
            elif v.kind in ATOMIC_PLUGIN_DIRS:
                out[v.name] = _ensure_projected(v, base, fs_group, objects, namespace, pod, memory_capacity)
            else:
                out[v.name] = _ensure_host_path(v)
        except VolumeError as e:
            raise VolumeError(f'volume "{v.name}": {e.message}') from None
        except OSError as e:
            raise VolumeError(f'volume "{v.name}": {e.strerror or e}') from None
    return out


def teardown_pod_volumes(root_dir: Path, uid: str) -> None:
    """Unmount the pod's tmpfs volumes and delete its volume directories (hostPaths are never touched)."""
    base = pod_volumes_dir(root_dir, uid)
    subpaths = subpaths_dir(root_dir, uid)
    for mp in sorted(_mount_points_under(subpaths), key=len, reverse=True):
        try:
            _umount(mp)
        except OSError as e:
            log.warning("cannot unmount subPath uid=%s path=%s err=%s", uid, mp, e)
    if subpaths.exists() and not _mount_points_under(subpaths):
        shutil.rmtree(subpaths, ignore_errors=True)
    if not base.exists():
        return
    for mp in sorted(_mount_points_under(base), key=len, reverse=True):
        try:
            _umount(mp)
        except OSError as e:
            log.warning("cannot unmount volume uid=%s path=%s err=%s", uid, mp, e)
    if not _mount_points_under(base):
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------------
# mounts

def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _sub_path(host: str, sub: str, volume: str, *, create: bool) -> str:
    full = os.path.join(host, sub)
    real_root = os.path.realpath(host)
    if create and not os.path.lexists(full):
        # Create missing components one at a time, refusing to follow a symlink out of the volume.
        cur = real_root
        for part in Path(sub).parts:
            cur = os.path.join(cur, part)
            if not os.path.lexists(cur):
                os.mkdir(cur, 0o755)
            if not _within(os.path.realpath(cur), real_root):
                raise VolumeError(f'subPath "{sub}" of volume "{volume}" escapes the volume')
    real = os.path.realpath(full)
    if not _within(real, real_root):
        raise VolumeError(f'subPath "{sub}" of volume "{volume}" escapes the volume (resolves to {real})')
    if not os.path.lexists(real):
        raise VolumeError(f'subPath "{sub}" of volume "{volume}" does not exist')
    return real


def open_subpath(host: str, sub: str, volume: str) -> int:
    """An O_PATH fd on the subPath inside the volume, opened one component at a time without following any
    symlink (upstream ``doSafeOpen``): symlinks are resolved once first and must stay inside the volume; one swapped
    in afterwards makes the open fail instead of escaping. The caller closes the fd."""
    real_root = os.path.realpath(host)
    real = _sub_path(host, sub, volume, create=True)
    rel = os.path.relpath(real, real_root)
    fd = os.open(real_root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for part in [] if rel == "." else rel.split("/"):
            nfd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nfd
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise VolumeError(f'subPath "{sub}" of volume "{volume}" changed into a symlink while being mounted')
    except OSError as e:
        os.close(fd)
        raise VolumeError(f'subPath "{sub}" of volume "{volume}": {e.strerror}') from None
    except VolumeError:
        os.close(fd)
        raise
    return fd


_MS_BIND, _MS_REC = 4096, 16384


def _bind_subpath(host: str, sub: str, volume: str, target: Path) -> str:
    """Bind-mount the safely opened subPath on ``target`` (``<pod>/volume-subpaths/<vol>/<ctr>/<i>``): the runtime
    then mounts a path nobody inside a container can redirect."""
    fd = open_subpath(host, sub, volume)
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        if str(target) in _mount_points_under(target):
            _umount(str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            target.mkdir(exist_ok=True)
        elif not target.exists():
            target.touch()
        _mount(f"/proc/self/fd/{fd}", str(target), "", _MS_BIND | _MS_REC, "")
    finally:
        os.close(fd)
    return str(target)


def compute_read_only_volumes(volumes: Sequence[VolumeSpec]) -> frozenset[str]:
    """Volumes every container mounts read-only whatever its volumeMount says: configMap, secret, downwardAPI and
    projected (their mounters' ``GetAttributes().ReadOnly``, honoured by ``makeMounts`` as ``mustMountRO``)."""
    return frozenset(v.name for v in volumes if v.kind in ATOMIC_PLUGIN_DIRS)


def ensure_container_mounts(mounts: Sequence[VolumeMount], volume_paths: Mapping[str, str],
                            env: Mapping[str, str], *, container: str = "",
                            subpath_dir: Path | None = None, read_only: Collection[str] = ()) -> tuple[api.Mount, ...]:
    """The container's CRI mounts. subPath directories are created in the volume (as the kubelet does); a subPath
    that resolves outside its volume, or a propagation the host mount cannot give, is a VolumeError. With
    ``subpath_dir`` each subPath is bind-mounted there first (safe against symlink swaps; needs root). Volumes in
    ``read_only`` (:func:`compute_read_only_volumes`) are mounted read-only."""
    out = []
    for i, m in enumerate(mounts):
        name = m.name
        host = volume_paths[name]
        sub = m.sub_path
        if m.sub_path_expr:
            sub = expand(m.sub_path_expr, env)
            if sub.startswith("/") or ".." in Path(sub).parts:
                raise VolumeError(f'subPathExpr "{m.sub_path_expr}" of volume "{name}" expands to "{sub}": must be '
                                  "a relative path without '..'")
        if sub:
            if subpath_dir is not None:
                host = _bind_subpath(host, sub, name, subpath_dir / name / container / str(i))
            else:
                host = _sub_path(host, sub, name, create=True)
        propagation = MOUNT_PROPAGATION[m.mount_propagation or "None"]
        if propagation != api.MountPropagation.PRIVATE:
            have = mount_propagation_of(host)
            need = ("shared",) if propagation == api.MountPropagation.BIDIRECTIONAL else ("shared", "slave")
            if have not in need:
                raise VolumeError(
                    f'volumeMount "{name}" ({m.mount_path}): mountPropagation {m.mount_propagation} needs the host '
                    f"mount holding {host} to be {' or '.join(need)}, it is {have} "
                    f"(make it shared: mount --make-rshared <mountpoint>)")
        out.append(api.Mount(container_path=m.mount_path, host_path=host, readonly=m.read_only or name in read_only,
                             propagation=propagation))
    return tuple(out)
