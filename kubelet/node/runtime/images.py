"""Local images with no registry: a pause image and a busybox image, built as OCI archives and imported.

Both are built reproducibly (fixed mtimes and owners), so their digests only change when their content does.
The busybox rootfs comes from Debian's `busybox-static` (/bin/busybox), with every applet linked into /bin,
an /etc/passwd with root, nobody and a non-root `app` user (uid 1000), and /var/www/index.html for `httpd`.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from kubelet.node.runtime.containerd import PrivateContainerd, RuntimeSetupError, ctr
from kubelet.node.progress import SILENT, ProgressSink

PAUSE_IMAGE = "localhost/nodelet/pause:3.9"
BUSYBOX_IMAGE = "localhost/nodelet/busybox:1.35"
PAUSE_SOURCE = Path(__file__).with_name("pause.c")
BUSYBOX_BIN = Path("/bin/busybox")

_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One file system entry of a layer."""

    path: str  # relative, no leading slash
    kind: str  # "dir" | "file" | "symlink"
    mode: int = 0o755
    data: bytes = b""
    target: str = ""


def _arch() -> str:
    try:
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out = "amd64"
    return {"armhf": "arm", "i386": "386"}.get(out, out)


def render_layer(entries: Iterable[Entry]) -> bytes:
    """An uncompressed, reproducible layer tar. Pure."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(e.path)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = e.mode
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.target
                info.mode = 0o777
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def render_oci_archive(*, name: str, layer: bytes, entrypoint: list[str] | None, cmd: list[str] | None, env: list[str], user: str = "") -> bytes:
    """An OCI image layout archive (index.json, oci-layout, blobs) holding one single-layer image. Pure."""
    arch = _arch()
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": env, "Entrypoint": entrypoint, "Cmd": cmd, "WorkingDir": "/", "User": user},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "nodelet runtime images"}],
    }
    config_blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config_blob), "size": len(config_blob)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(layer), "size": len(layer)}],
    }
    manifest_blob = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    tag = name.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _digest(manifest_blob),
                "size": len(manifest_blob),
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    files = [
        Entry(path="oci-layout", kind="file", mode=0o644, data=b'{"imageLayoutVersion":"1.0.0"}'),
        Entry(path="index.json", kind="file", mode=0o644, data=json.dumps(index, sort_keys=True).encode()),
        Entry(path="blobs", kind="dir"),
        Entry(path="blobs/sha256", kind="dir"),
    ]
    for blob in (layer, config_blob, manifest_blob):
        files.append(Entry(path="blobs/sha256/" + _digest(blob).split(":")[1], kind="file", mode=0o644, data=blob))
    return render_layer(files)


def _base_dirs() -> list[Entry]:
    return [Entry(path=d, kind="dir") for d in ("dev", "proc", "sys", "etc", "bin", "sbin", "usr", "usr/bin", "var", "root")] + [
        Entry(path="tmp", kind="dir", mode=0o1777)
    ]


def build_pause_binary(out: Path) -> Path | None:
    """Compile pause.c statically; None when no C compiler (then the busybox-based fallback is used)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    r = subprocess.run([cc, "-static", "-Os", "-s", "-o", str(out), str(PAUSE_SOURCE)], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return out


def pause_image_archive(workdir: Path) -> bytes:
    workdir.mkdir(parents=True, exist_ok=True)
    binary = build_pause_binary(workdir / "pause")
    entries = _base_dirs()
    if binary is not None:
        entries.append(Entry(path="pause", kind="file", data=binary.read_bytes()))
        entrypoint = ["/pause"]
    else:
        # Fallback: a shell loop that exits on TERM; sh as PID 1 reaps orphans.
        entries += [Entry(path="bin/busybox", kind="file", data=BUSYBOX_BIN.read_bytes()), Entry(path="bin/sh", kind="symlink", target="busybox"), Entry(path="bin/sleep", kind="symlink", target="busybox")]
        entrypoint = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
    return render_oci_archive(name=PAUSE_IMAGE, layer=render_layer(entries), entrypoint=entrypoint, cmd=None, env=[_PATH_ENV], user="65535:65535" if binary else "")


def busybox_rootfs() -> list[Entry]:
    if not BUSYBOX_BIN.exists():
        raise RuntimeSetupError(f"{BUSYBOX_BIN} is missing: install Debian's busybox-static")
    applets = subprocess.run([str(BUSYBOX_BIN), "--list"], capture_output=True, text=True, check=True).stdout.split()
    entries = _base_dirs() + [
        Entry(path="bin/busybox", kind="file", data=BUSYBOX_BIN.read_bytes()),
        Entry(path="home", kind="dir"),
        Entry(path="home/app", kind="dir"),
        Entry(path="var/www", kind="dir"),
        Entry(path="var/www/index.html", kind="file", mode=0o644, data=b"nodelet busybox\n"),
        Entry(path="etc/passwd", kind="file", mode=0o644, data=b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        Entry(path="etc/group", kind="file", mode=0o644, data=b"root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
    ]
    entries += [Entry(path=f"bin/{a}", kind="symlink", target="busybox") for a in applets if a != "busybox"]
    return entries


def busybox_image_archive() -> bytes:
    return render_oci_archive(name=BUSYBOX_IMAGE, layer=render_layer(busybox_rootfs()), entrypoint=None, cmd=["sh"], env=[_PATH_ENV])


def _ctr_any(instance: PrivateContainerd | None, address: str | None, *args: str) -> str:
    if instance is not None:
        return ctr(instance, *args)
    cmd = ["ctr", "--namespace", "k8s.io"] + (["--address", address] if address else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeSetupError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r.stdout


def ensure_images(
    instance: PrivateContainerd | None = None,
    *,
    address: str | None = None,
    cache_dir: Path = Path("/var/cache/nodelet/images"),
    force: bool = False,
    progress: ProgressSink = SILENT,
) -> list[str]:
    """Build and import the pause and busybox images into the k8s.io namespace unless present. Idempotent.

    `instance` (a private containerd) or `address` (a containerd socket; default the system one) says where.
    Returns the names imported.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    present = set(_ctr_any(instance, address, "images", "ls", "-q").split())
    imported = []
    images: tuple[tuple[str, Callable[[], bytes]], ...] = (
        (PAUSE_IMAGE, lambda: pause_image_archive(cache_dir / "build")), (BUSYBOX_IMAGE, busybox_image_archive))
    for i, (name, build) in enumerate(images):
        if name in present and not force:
            progress.count(i + 1, len(images), f"{name} present")
            continue
        progress.count(i, len(images), f"building {name}")
        archive = cache_dir / (name.rsplit("/", 1)[1].replace(":", "-") + ".oci.tar")
        archive.write_bytes(build())
        progress.count(i, len(images), f"importing {name}")
        # --no-unpack would leave the CRI plugin to unpack at create time; unpack now so pods start fast.
        _ctr_any(instance, address, "images", "import", "--all-platforms", str(archive))
        progress.count(i + 1, len(images), f"{name} imported")
        if name == PAUSE_IMAGE:
            # Pin the sandbox image in the CRI plugin's eyes is done by containerd itself (sandbox_image).
            pass
        imported.append(name)
    return imported
