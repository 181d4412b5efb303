"""Install nodelet on a Debian/Ubuntu host as a systemd service — idempotently — and uninstall exactly that.

`nodelet install` (or, before any venv exists, `python3 -m kubelet.node.install` from a checkout) does, in order:

1. apt packages (containerd, runc, iptables, nftables, conntrack, iproute2, the reference CNI plugins, busybox-static,
   gcc for the CNI client, python3-venv);
2. the Python package into its own virtual environment (default ``/opt/nodelet/venv``), rebuilt only when the source
   tree's digest changes (recorded in ``<venv>/nodelet-source.sha256``);
3. files: the systemd unit and its drop-in, ``/etc/default/nodelet``, sysctl.d, modules-load.d, containerd's
   config and its systemd drop-in, ``/etc/crictl.yaml``, ``/etc/nodelet/config.yaml`` and the manifest directory;
4. ``nodelet-cni`` into the CNI bin dir (``cni.install.ensure_plugin_installed``, run by the venv's interpreter so
   the plugin names it) and links to the host's reference plugins (loopback, portmap…);
5. ``/usr/local/bin/nodelet``, a link to the venv's command;
6. on the real root only: modprobe, sysctl, ``systemctl daemon-reload`` / restart of what changed / ``enable --now``.

Everything under ``--root DIR`` (tests install into a temp tree). A file is written only when its content or mode
differs, atomically (temp file + rename), so a second run reports 0 changes and leaves every mtime alone. Files a
person edits (``/etc/default/nodelet``, ``/etc/nodelet/config.yaml``, ``/etc/crictl.yaml``) are never overwritten once
they differ from what nodelet wrote, and a pre-existing file nodelet did not write is never touched. Every path
written is recorded with its digest in ``/var/lib/nodelet/install.json``; ``--uninstall`` removes those that still
carry nodelet's content (edited ones are kept and reported), the venv, and directories it created that are empty.

Only the standard library is imported at module level: this module bootstraps the venv it lives in.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from cni import fsutil
from kubelet.errors import PermanentError, from_subprocess, from_subprocess_failure

from kubelet.node.progress import SILENT, ProgressSink

log = logging.getLogger(__name__)

MANIFEST_PATH = "/var/lib/nodelet/install.json"
DEFAULT_VENV = "/opt/nodelet/venv"
DEFAULT_CNI_BIN_DIR = "/opt/cni/bin"
REFERENCE_CNI_DIR = "/usr/lib/cni"
APT_PACKAGES = (
    "containerd", "runc", "iptables", "nftables", "conntrack", "iproute2", "containernetworking-plugins",
    "busybox-static", "gcc", "libc6-dev", "python3-venv",
)
PACKAGES = ("kubelet", "cri", "cni", "proxy", "probes")
SOURCE_SUFFIXES = (".py", ".pyi", ".c", ".proto", ".yaml", ".sh")
STAMP = "nodelet-source.sha256"
VENV_MARK = "nodelet-venv"


class InstallError(PermanentError):
    """The installer cannot go on; the message names the step, the path and what to do."""


@dataclass(frozen=True, kw_only=True)
class InstallOptions:
    source: Path
    root: Path = Path("/")
    venv: str = DEFAULT_VENV
    python: str = sys.executable
    system_site_packages: bool = False  # reuse the interpreter's installed dependencies (CI)
    apt: bool = True
    activate: bool = True  # modprobe/sysctl/systemctl: only ever on the real root
    dry_run: bool = False
    cni_bin_dir: str = DEFAULT_CNI_BIN_DIR
    manifest_dir: str = "/etc/kubernetes/manifests"
    node_name: str = ""
    node_ip: str = ""
    pod_cidr: str = ""
    cgroup_driver: str = "cgroupfs"  # the agent's cgroupDriver; containerd's SystemdCgroup is written to match
    # cluster mode: etcd client URLs (comma-separated), TLS files, the cluster's pod network
    etcd_endpoints: str = ""
    etcd_ca_file: str = ""
    etcd_cert_file: str = ""
    etcd_key_file: str = ""
    cluster_cidr: str = ""

    def at(self, path: str) -> Path:
        """`path` (absolute, as on the target system) under the install root."""
        return self.root / path.lstrip("/")


@dataclass(frozen=True, kw_only=True)
class FileSpec:
    path: str  # absolute on the target system
    content: bytes
    mode: int = 0o644
    editable: bool = False  # a person's file once they edit it: never overwritten then


@dataclass(frozen=True, kw_only=True)
class Change:
    action: str  # create | update | remove | keep | install
    path: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:<7} {self.path}" + (f" ({self.detail})" if self.detail else "")


@dataclass(kw_only=True)
class InstallReport:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(1 for c in self.changes if c.action != "keep")


# ---------------------------------------------------------------------------------------------- pure rendering


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def render_config_yaml(opts: InstallOptions) -> str:
    lines = [
        "# /etc/nodelet/config.yaml, written by `nodelet install` (kept once you edit it). Every key also has a",
        "# `nodelet run --<flag>`; flags (NODELET_EXTRA_ARGS in /etc/default/nodelet) win over this file.",
        "apiVersion: nodelet.io/v1alpha1",
        "kind: NodeletConfiguration",
        f"staticPodPath: {opts.manifest_dir}",
        "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock",
        "rootDir: /var/lib/nodelet",
        "apiSocket: /run/nodelet/nodelet.sock",
        "cniConfDir: /etc/cni/net.d",
        f"cniBinDir: {opts.cni_bin_dir}",
        f"cgroupDriver: {opts.cgroup_driver}  # containerd's SystemdCgroup in /etc/containerd/nodelet.toml matches it",
    ]
    for key, value, example in (
        ("nodeName", opts.node_name, "node1"),
        ("nodeIP", opts.node_ip, "192.168.56.11"),
        ("podCIDR", opts.pod_cidr, "10.244.1.0/24"),
    ):
        lines.append(f"{key}: {value}" if value else f"# {key}: {example}")
    urls = [u.strip() for u in opts.etcd_endpoints.split(",") if u.strip()]
    lines.append(f"etcdEndpoints: [{', '.join(urls)}]" if urls else "# etcdEndpoints: [https://192.168.56.11:2379]")
    for key, value, example in (
        ("etcdCAFile", opts.etcd_ca_file, "/etc/nodelet/etcd/ca.pem"),
        ("etcdCertFile", opts.etcd_cert_file, "/etc/nodelet/etcd/client.pem"),
        ("etcdKeyFile", opts.etcd_key_file, "/etc/nodelet/etcd/client-key.pem"),
        ("clusterCIDR", opts.cluster_cidr, "10.244.0.0/16"),
    ):
        lines.append(f"{key}: {value}" if value else f"# {key}: {example}")
    return "\n".join(lines) + "\n"


def render_containerd_config(*, systemd_cgroup: bool = False) -> str:
    """containerd's config for the system instance: CRI with the local pause image, /opt/cni/bin, /etc/cni/net.d."""
    from kubelet.node.runtime.containerd import needs_restrict_oom_score_adj, render_config
    from kubelet.node.runtime.images import PAUSE_IMAGE

    head = "# /etc/containerd/nodelet.toml, written by `nodelet install` (containerd runs with it via the\n" \
           "# containerd.service.d/10-nodelet.conf drop-in; Debian's /etc/containerd/config.toml is left alone).\n"
    return head + render_config(sandbox_image=PAUSE_IMAGE, cni_bin_dirs=(DEFAULT_CNI_BIN_DIR,),
                                restrict_oom_score_adj=needs_restrict_oom_score_adj(), systemd_cgroup=systemd_cgroup)


def compute_files(opts: InstallOptions) -> list[FileSpec]:
    """Every file the installer owns, with its content (pure but for reading the source's systemd/ dir)."""
    sd = opts.source / "systemd"

    def src(name: str) -> bytes:
        text = (sd / name).read_text()
        return text.replace(DEFAULT_VENV, opts.venv).encode()

    return [
        FileSpec(path="/etc/systemd/system/nodelet.service", content=src("nodelet.service")),
        FileSpec(path="/etc/systemd/system/nodelet.service.d/10-nodelet.conf", content=src("nodelet.service.d/10-nodelet.conf")),
        FileSpec(path="/etc/default/nodelet", content=src("default.nodelet"), editable=True),
        FileSpec(path="/etc/sysctl.d/90-nodelet.conf", content=src("sysctl-90-nodelet.conf")),
        FileSpec(path="/etc/modules-load.d/nodelet.conf", content=src("modules-load-nodelet.conf")),
        FileSpec(path="/etc/systemd/system/containerd.service.d/10-nodelet.conf", content=src("containerd.service.d/10-nodelet.conf")),
        FileSpec(path="/etc/containerd/nodelet.toml", content=render_containerd_config(systemd_cgroup=opts.cgroup_driver == "systemd").encode()),
        FileSpec(path="/etc/crictl.yaml", content=src("crictl.yaml"), editable=True),
        FileSpec(path="/etc/nodelet/config.yaml", content=render_config_yaml(opts).encode(), editable=True),
    ]


def compute_source_digest(source: Path, python: str) -> str:
    """Digest of what goes into the venv: the five packages' sources, pyproject.toml and the interpreter."""
    h = hashlib.sha256(f"python={python}\n".encode())
    files = [source / "pyproject.toml"]
    for pkg in PACKAGES:
        files += [p for p in sorted((source / pkg).rglob("*")) if p.is_file() and p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts]
    for p in files:
        h.update(str(p.relative_to(source)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- the manifest


@dataclass(kw_only=True)
class Manifest:
    """What this installer created: {path: sha256} for files, symlinks {path: target}, dirs, the venv."""

    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    venv: str = ""

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as e:
            raise InstallError(f"{path}: unreadable install manifest: {e} (move it away to start over)") from e
        return cls(files=dict(raw.get("files", {})), links=dict(raw.get("links", {})), dirs=list(raw.get("dirs", [])), venv=raw.get("venv", ""))

    def render(self) -> bytes:
        doc = {"kind": "NodeletInstall", "files": dict(sorted(self.files.items())), "links": dict(sorted(self.links.items())),
               "dirs": sorted(set(self.dirs)), "venv": self.venv}
        return (json.dumps(doc, indent=2) + "\n").encode()


# ---------------------------------------------------------------------------------------------- side effects


def write_atomic(path: Path, content: bytes, mode: int) -> None:
    fsutil.write_atomic(path, content, mode=mode)


class Installer:
    def __init__(self, opts: InstallOptions, *, progress: ProgressSink = SILENT) -> None:
        self.opts = opts
        self.progress = progress
        self.report = InstallReport()
        self.manifest_path = opts.at(MANIFEST_PATH)
        self.manifest = Manifest.load(self.manifest_path)

    # -- helpers
    def _change(self, action: str, path: str, detail: str = "") -> None:
        self.report.changes.append(Change(action=action, path=path, detail=detail))
        log.info("install %s path=%s %s", action, path, detail)

    def ensure_dir(self, path: str) -> None:
        p = self.opts.at(path)
        missing = [d for d in (p, *p.parents) if not d.exists()]
        if not missing:
            return
        for d in reversed(missing):
            rel = "/" + str(d.relative_to(self.opts.root)) if d != self.opts.root else "/"
            self._change("create", rel + "/")
            if not self.opts.dry_run:
                d.mkdir(mode=0o755)
                self.manifest.dirs.append(rel)

    def ensure_file(self, spec: FileSpec) -> None:
        p = self.opts.at(spec.path)
        want = _sha(spec.content)
        recorded = self.manifest.files.get(spec.path)
        if p.exists() or p.is_symlink():
            have = _sha(p.read_bytes()) if p.is_file() else ""
            if have == want:
                if (p.stat().st_mode & 0o7777) != spec.mode:
                    self._change("update", spec.path, f"mode {spec.mode:o}")
                    if not self.opts.dry_run:
                        os.chmod(p, spec.mode)
                if recorded is None and not self.opts.dry_run:
                    self.manifest.files[spec.path] = want  # identical to ours: adopt
                return
            if recorded is None:
                self._change("keep", spec.path, "exists and was not written by nodelet")
                return
            if spec.editable and have != recorded:
                self._change("keep", spec.path, "edited locally")
                return
            action = "update"
        else:
            if recorded is not None and spec.editable:
                pass  # removed by the person after we wrote it: write it again (a config must exist)
            action = "create"
        self.ensure_dir(os.path.dirname(spec.path))
        self._change(action, spec.path)
        if not self.opts.dry_run:
            write_atomic(p, spec.content, spec.mode)
            self.manifest.files[spec.path] = want

    def ensure_apt(self) -> None:
        missing = [pkg for pkg in APT_PACKAGES if not _dpkg_installed(pkg)]
        if not missing:
            return
        self._change("install", "apt:" + ",".join(missing))
        if self.opts.dry_run:
            return
        if shutil.which("apt-get") is None:
            raise InstallError(f"apt: packages {', '.join(missing)} are missing and apt-get is not available")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
            _run(cmd, step="apt", env=env)

    def ensure_venv(self) -> None:
        venv = self.opts.at(self.opts.venv)
        digest = compute_source_digest(self.opts.source, self.opts.python)
        stamp = venv / STAMP
        if stamp.exists() and stamp.read_text().strip() == digest and (venv / "bin" / "nodelet").exists():
            return
        fresh = not (venv / "bin" / "python").exists()
        ours = (venv / VENV_MARK).exists() or self.manifest.venv == self.opts.venv or (venv / "bin" / "nodelet").exists()
        if venv.exists() and not ours:  # a venv of nodelet's (demo.sh makes one) is adopted; anything else is not ours
            raise InstallError(f"{self.opts.venv}: exists and is not a nodelet virtual environment; pass --venv DIR")
        self.ensure_dir(os.path.dirname(self.opts.venv))
        self._change("create" if fresh else "update", self.opts.venv + "/", "virtual environment")
        if self.opts.dry_run:
            return
        if fresh:
            cmd = [self.opts.python, "-m", "venv", *(["--system-site-packages"] if self.opts.system_site_packages else []), str(venv)]
            _run(cmd, step="venv")
        if not (venv / VENV_MARK).exists():
            (venv / VENV_MARK).write_text("made by `nodelet install`; removed by `nodelet install --uninstall`\n")
        self.manifest.venv = self.opts.venv
        with tempfile.TemporaryDirectory(prefix="nodelet-install-") as tmp:
            # build from a clean copy: the source tree (a shared checkout, a synced /vagrant) is never written to
            copy = Path(tmp) / "src"
            shutil.copytree(self.opts.source, copy, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".vagrant", "tests", "bench"))
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            if self.opts.system_site_packages:
                pip += ["--upgrade-strategy", "only-if-needed"]  # dependencies the interpreter has are used as they are
            _run([*pip, str(copy)], step="pip")
        write_atomic(stamp, digest.encode() + b"\n", 0o644)

    def ensure_cni(self) -> None:
        bin_dir = self.opts.at(self.opts.cni_bin_dir)
        plugin = bin_dir / "nodelet-cni"
        path = self.opts.cni_bin_dir.rstrip("/") + "/nodelet-cni"
        before = _sha(plugin.read_bytes()) if plugin.is_file() else None
        if before is not None and path not in self.manifest.files:
            self._change("keep", path, "exists and was not written by nodelet")
        elif not self.opts.dry_run:
            self.ensure_dir(self.opts.cni_bin_dir)
            py = self.opts.at(self.opts.venv) / "bin" / "python"
            code = "import sys; from cni.install import ensure_plugin_installed; print(ensure_plugin_installed(sys.argv[1]))"
            _run([str(py), "-I", "-c", code, str(bin_dir)], step="cni plugin")
            after = _sha(plugin.read_bytes())
            if after != before:
                self._change("create" if before is None else "update", path)
            self.manifest.files[path] = after
        elif before is None:
            self._change("create", path)
        ref = Path(REFERENCE_CNI_DIR)
        if not ref.is_dir():
            return
        for src in sorted(ref.iterdir()):
            dest = bin_dir / src.name
            lpath = self.opts.cni_bin_dir.rstrip("/") + "/" + src.name
            if src.name == "nodelet-cni" or not (src.is_file() and os.access(src, os.X_OK)):
                continue
            if dest.exists() or dest.is_symlink():
                continue  # somebody's plugin (or our link already): leave it
            self.ensure_dir(self.opts.cni_bin_dir)
            self._change("create", lpath, f"-> {src}")
            if not self.opts.dry_run:
                dest.symlink_to(src)
                self.manifest.links[lpath] = str(src)

    def ensure_command_link(self) -> None:
        """/usr/local/bin/nodelet -> the venv's nodelet, so `sudo nodelet get pods` works; never over somebody's file."""
        path = "/usr/local/bin/nodelet"
        target = str(Path(self.opts.venv) / "bin" / "nodelet")
        p = self.opts.at(path)
        if p.is_symlink() and os.readlink(p) == target:
            if path not in self.manifest.links and not self.opts.dry_run:
                self.manifest.links[path] = target
            return
        if p.exists() or p.is_symlink():
            self._change("keep", path, "exists and was not written by nodelet")
            return
        self.ensure_dir(os.path.dirname(path))
        self._change("create", path, f"-> {target}")
        if not self.opts.dry_run:
            p.symlink_to(target)
            self.manifest.links[path] = target

    def save_manifest(self) -> None:
        if self.opts.dry_run:
            return
        content = self.manifest.render()
        if self.manifest_path.exists() and self.manifest_path.read_bytes() == content:
            return
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.manifest_path, content, 0o644)

    # -- the two entry points
    def install(self) -> InstallReport:
        if not (self.opts.source / "pyproject.toml").exists() or not (self.opts.source / "systemd" / "nodelet.service").exists():
            raise InstallError(f"{self.opts.source}: not a nodelet source tree (pyproject.toml, systemd/); pass --source DIR")
        activate = self.opts.activate and self.opts.root == Path("/") and not self.opts.dry_run
        self.progress.set_total(3 + int(self.opts.apt) + int(activate))
        if self.opts.apt:
            self.progress.step("Debian packages (apt-get when missing)")
            self.ensure_apt()
        try:
            self.progress.step(f"virtual environment {self.opts.venv} (pip install of the source)")
            self.ensure_venv()
            files = compute_files(self.opts)
            self.progress.step("files")
            for i, spec in enumerate(files):
                self.ensure_file(spec)
                self.progress.count(i + 1, len(files), spec.path)
            self.ensure_dir(self.opts.manifest_dir)
            self.ensure_dir("/var/lib/nodelet")
            self.progress.step("CNI plugin and the nodelet command")
            self.ensure_cni()
            self.ensure_command_link()
        finally:
            self.save_manifest()  # a failed run still records what it wrote, so --uninstall can remove it
        if activate:
            self.progress.step("activate: modules, sysctls, systemd units, containerd images")
            self.activate({c.path for c in self.report.changes if c.action in ("create", "update")})
        return self.report

    def uninstall(self) -> InstallReport:
        if self.opts.activate and self.opts.root == Path("/") and not self.opts.dry_run and _systemd_running():
            _run(["systemctl", "disable", "--now", "nodelet.service"], step="systemctl", check=False)
            self.report.notes.append("nodelet.service stopped and disabled; pods keep running in containerd")
        for path, digest in sorted(self.manifest.files.items()):
            p = self.opts.at(path)
            if not p.exists():
                self.manifest.files.pop(path) if not self.opts.dry_run else None
                continue
            if _sha(p.read_bytes()) != digest:
                self._change("keep", path, "edited after install")
                continue
            self._change("remove", path)
            if not self.opts.dry_run:
                p.unlink()
                self.manifest.files.pop(path)
        for path, target in sorted(self.manifest.links.items()):
            p = self.opts.at(path)
            if p.is_symlink() and os.readlink(p) == target:
                self._change("remove", path)
                if not self.opts.dry_run:
                    p.unlink()
        if self.manifest.venv:
            venv = self.opts.at(self.manifest.venv)
            if (venv / VENV_MARK).exists():
                self._change("remove", self.manifest.venv + "/", "virtual environment")
                if not self.opts.dry_run:
                    shutil.rmtree(venv)
        if not self.opts.dry_run:
            self.manifest_path.unlink(missing_ok=True)
        kept = [c.path for c in self.report.changes if c.action == "keep"]
        for d in sorted(set(self.manifest.dirs), key=lambda s: s.count("/"), reverse=True):
            p = self.opts.at(d)
            if p.is_dir() and not any(p.iterdir()):
                self._change("remove", d + "/")
                if not self.opts.dry_run:
                    p.rmdir()
        if self.opts.dry_run:
            return self.report
        if kept:
            # keep a manifest of what is left so a later --uninstall (after a look) can still finish the job
            left = Manifest(files={k: v for k, v in self.manifest.files.items() if k in kept},
                            dirs=[d for d in self.manifest.dirs if self.opts.at(d).is_dir()])
            self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.manifest_path, left.render(), 0o644)
        if self.opts.activate and self.opts.root == Path("/") and _systemd_running():
            _run(["systemctl", "daemon-reload"], step="systemctl", check=False)
        return self.report

    def activate(self, changed: set[str]) -> None:
        """Make the installed files take effect on this host (real root only). Idempotent."""
        for mod in ("overlay", "br_netfilter"):
            _run(["modprobe", mod], step="modprobe", check=False)
        _run(["sysctl", "-q", "-p", "/etc/sysctl.d/90-nodelet.conf"], step="sysctl", check=False)
        if not _systemd_running():
            self.report.notes.append("systemd is not running (a container?): units installed, not started")
            return
        _run(["systemctl", "daemon-reload"], step="systemctl")
        containerd_changed = {"/etc/containerd/nodelet.toml", "/etc/systemd/system/containerd.service.d/10-nodelet.conf"} & changed
        if containerd_changed:
            _run(["systemctl", "restart", "containerd.service"], step="systemctl")
            self.report.notes.append("containerd restarted with /etc/containerd/nodelet.toml (running containers stay)")
        sock = "/run/containerd/containerd.sock"
        nodelet = str(Path(self.opts.venv) / "bin" / "nodelet")
        if _wait_for(sock):
            _run([nodelet, "runtime", "images", "--address", sock], step="images")
        _run(["systemctl", "enable", "--now", "nodelet.service"], step="systemctl")
        if changed & {"/etc/systemd/system/nodelet.service", "/etc/systemd/system/nodelet.service.d/10-nodelet.conf",
                      "/etc/default/nodelet", "/etc/nodelet/config.yaml", self.opts.venv + "/"}:
            _run(["systemctl", "restart", "nodelet.service"], step="systemctl")  # pods keep running (KillMode=process)


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def _wait_for(path: str, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _dpkg_installed(package: str) -> bool:
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    except FileNotFoundError:
        return False
    return r.returncode == 0 and "install ok installed" in r.stdout


def _run(cmd: list[str], *, step: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    log.info("install step=%s cmd=%s", step, " ".join(cmd))
    try:
        # cwd "/": a checkout in the caller's cwd must not shadow (`python -c`/`-m` put the cwd on sys.path)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as e:
        if not check:
            return subprocess.CompletedProcess(cmd, 1, "", str(e))
        raise from_subprocess_failure(cmd, e, what=step, cls=InstallError) from e
    if check and p.returncode != 0:
        raise from_subprocess(cmd, p.returncode, p.stderr or p.stdout, what=step, cls=InstallError)
    return p


def default_source() -> Path:
    """The checkout this module runs from (an editable install or `python -m kubelet.node.install` in a checkout)."""
    return Path(__file__).resolve().parents[2]


def run_install(opts: InstallOptions, *, uninstall: bool = False, progress: ProgressSink = SILENT) -> InstallReport:
    inst = Installer(opts, progress=progress)
    return inst.uninstall() if uninstall else inst.install()


def render_report(report: InstallReport, *, uninstall: bool, dry_run: bool) -> Iterable[str]:
    for c in report.changes:
        yield str(c)
    yield from report.notes
    verb = "would change" if dry_run else "changed"
    yield f"nodelet {'uninstall' if uninstall else 'install'}: {report.changed} {'change' if report.changed == 1 else 'changes'} ({verb})"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m kubelet.node.install", description=(__doc__ or "").split("\n")[0])
    add_arguments(ap)
    return ap


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--uninstall", action="store_true", help="remove what the installer installed (edited files are kept)")
    ap.add_argument("--root", default="/", help="install under this directory instead of / (tests, images)")
    ap.add_argument("--source", default=None, help="nodelet source tree (default: the checkout this runs from)")
    ap.add_argument("--venv", default=DEFAULT_VENV, help="virtual environment path on the target")
    ap.add_argument("--python", default=sys.executable, help="interpreter that creates the venv")
    ap.add_argument("--system-site-packages", action="store_true", help="the venv reuses the interpreter's installed packages (no dependency downloads)")
    ap.add_argument("--no-apt", action="store_true", help="do not install Debian packages")
    ap.add_argument("--no-activate", action="store_true", help="write files only (no modprobe/sysctl/systemctl)")
    ap.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    ap.add_argument("--cni-bin-dir", default=DEFAULT_CNI_BIN_DIR)
    ap.add_argument("--manifest-dir", default="/etc/kubernetes/manifests")
    ap.add_argument("--node-name", default="")
    ap.add_argument("--node-ip", default="")
    ap.add_argument("--pod-cidr", default="")
    ap.add_argument("--cgroup-driver", choices=("cgroupfs", "systemd"), default="cgroupfs")
    ap.add_argument("--etcd-endpoints", default="", help="comma-separated etcd client URLs (cluster mode)")
    ap.add_argument("--etcd-ca-file", default="")
    ap.add_argument("--etcd-cert-file", default="")
    ap.add_argument("--etcd-key-file", default="")
    ap.add_argument("--cluster-cidr", default="")


def options_from_args(ns: argparse.Namespace) -> InstallOptions:
    return InstallOptions(
        source=Path(ns.source).resolve() if ns.source else default_source(),
        root=Path(ns.root).resolve(),
        venv=ns.venv,
        python=ns.python,
        system_site_packages=ns.system_site_packages,
        apt=not ns.no_apt,
        activate=not ns.no_activate,
        dry_run=ns.dry_run,
        cni_bin_dir=ns.cni_bin_dir,
        manifest_dir=ns.manifest_dir,
        node_name=ns.node_name,
        node_ip=ns.node_ip,
        pod_cidr=ns.pod_cidr,
        cgroup_driver=ns.cgroup_driver,
        etcd_endpoints=ns.etcd_endpoints, etcd_ca_file=ns.etcd_ca_file, etcd_cert_file=ns.etcd_cert_file,
        etcd_key_file=ns.etcd_key_file, cluster_cidr=ns.cluster_cidr,
    )


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0 and Path(ns.root).resolve() == Path("/") and not ns.dry_run:
        print("nodelet install: run as root (or pass --root DIR / --dry-run)", file=sys.stderr)
        return 2
    try:
        report = run_install(options_from_args(ns), uninstall=ns.uninstall)
    except InstallError as e:
        print(f"nodelet install: {e}", file=sys.stderr)
        return 1
    for line in render_report(report, uninstall=ns.uninstall, dry_run=ns.dry_run):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
