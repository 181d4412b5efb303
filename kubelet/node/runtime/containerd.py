"""A containerd for nodelet: its config, the host checks behind it, and a private instance for tests and demos.

The private instance has its own root, state, socket and CNI conf dir under one base directory, so tests never
disturb a system containerd, and it is found again by its socket (a second `start()` adopts a running one).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from cni.fsutil import write_if_changed
from kubelet.errors import PermanentError

log = logging.getLogger(__name__)

CAP_SYS_RESOURCE = 24
DEFAULT_CNI_BIN_DIRS = ("/opt/cni/bin", "/usr/lib/cni")
APT_PACKAGES = ("containerd", "runc")


class RuntimeSetupError(PermanentError):
    """Setting up or starting the runtime failed; the message says what and what to try."""


def has_capability(cap: int, *, status_path: str = "/proc/self/status") -> bool:
    """Whether this process has capability `cap` in its effective set."""
    with open(status_path) as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def needs_restrict_oom_score_adj() -> bool:
    """Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj and every RunPodSandbox fails
    ("can't get final child's PID from pipe: EOF"); containerd's restrict_oom_score_adj avoids that."""
    return not has_capability(CAP_SYS_RESOURCE)


@dataclass(frozen=True, kw_only=True)
class ContainerdLayout:
    """Where one containerd instance keeps everything."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def socket(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def config(self) -> Path:
        return self.base / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni" / "net.d"

    @property
    def cni_bin_dir(self) -> Path:
        return self.base / "cni" / "bin"

    @property
    def log_file(self) -> Path:
        return self.base / "containerd.log"

    @property
    def pid_file(self) -> Path:
        return self.base / "containerd.pid"


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(
    *,
    sandbox_image: str,
    cni_bin_dirs: tuple[str, ...] = DEFAULT_CNI_BIN_DIRS,
    cni_conf_dir: str = "/etc/cni/net.d",
    restrict_oom_score_adj: bool,
    layout: ContainerdLayout | None = None,
    snapshotter: str = "overlayfs",
    systemd_cgroup: bool = False,
) -> str:
    """containerd 1.6 config (version 2) with the CRI plugin set up for nodelet. Pure.

    With a layout, the instance is private: own root, state, socket (and no metrics/debug listeners).
    containerd 1.6 takes one CNI bin dir; the first existing one of cni_bin_dirs is used by the caller.
    ``systemd_cgroup`` must match the agent's cgroupDriver (systemd: true, cgroupfs: false).
    """
    lines = ["version = 2"]
    if layout is not None:
        lines += [
            f"root = {_toml_str(str(layout.root))}",
            f"state = {_toml_str(str(layout.state))}",
            "",
            "[grpc]",
            f"  address = {_toml_str(str(layout.socket))}",
            "",
            "[ttrpc]",
            f"  address = {_toml_str(str(layout.socket) + '.ttrpc')}",
        ]
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    lines += [
        "",
        f"[{cri}]",
        f"  sandbox_image = {_toml_str(sandbox_image)}",
        f"  restrict_oom_score_adj = {'true' if restrict_oom_score_adj else 'false'}",
        "  enable_unprivileged_ports = false",
        "  stream_server_address = \"127.0.0.1\"",
        "  stream_server_port = \"0\"",
        "",
        f"[{cri}.containerd]",
        f"  snapshotter = {_toml_str(snapshotter)}",
        '  default_runtime_name = "runc"',
        "",
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        "",
        f"[{cri}.containerd.runtimes.runc.options]",
        f"  SystemdCgroup = {'true' if systemd_cgroup else 'false'}",
        "",
        f"[{cri}.cni]",
        f"  bin_dir = {_toml_str(cni_bin_dirs[0])}",
        f"  conf_dir = {_toml_str(cni_conf_dir)}",
        "  max_conf_num = 1",
    ]
    if layout is not None:
        lines += [
            "",
            '[plugins."io.containerd.internal.v1.opt"]',
            f"  path = {_toml_str(str(layout.base / 'opt'))}",
        ]
    return "\n".join(lines) + "\n"


def link_reference_plugins(bin_dir: Path, sources: tuple[str, ...] = DEFAULT_CNI_BIN_DIRS) -> list[str]:
    """Symlink the host's CNI plugins (loopback, bridge, portmap, …) into bin_dir; existing entries are kept."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    linked = []
    for src in sources:
        d = Path(src)
        if not d.is_dir() or d.resolve() == bin_dir.resolve():
            continue
        for plugin in sorted(d.iterdir()):
            dest = bin_dir / plugin.name
            if plugin.is_file() and os.access(plugin, os.X_OK) and not dest.exists() and not dest.is_symlink():
                dest.symlink_to(plugin)
                linked.append(plugin.name)
    return linked


def ensure_packages(packages: tuple[str, ...] = APT_PACKAGES) -> list[str]:
    """Install Debian packages that are missing (idempotent). Returns those installed."""
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return []
    if shutil.which("apt-get") is None:
        raise RuntimeSetupError(f"packages {', '.join(missing)} are missing and apt-get is not available")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    return missing


def _dpkg_installed(package: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


class PrivateContainerd:
    """A containerd of our own under `base` (its socket, root, state, CNI conf dir and log)."""

    def __init__(
        self,
        base: str | Path,
        *,
        sandbox_image: str,
        cni_bin_dir: str | None = None,
        containerd_bin: str = "containerd",
        systemd_cgroup: bool = False,
    ) -> None:
        self.layout = ContainerdLayout(base=Path(base))
        self.systemd_cgroup = systemd_cgroup
        self.sandbox_image = sandbox_image
        # Our own bin dir: links to the host's reference plugins (loopback is required by containerd) plus
        # whatever nodelet installs there (nodelet-cni), without writing into a package-owned directory.
        self.cni_bin_dir = cni_bin_dir or str(self.layout.cni_bin_dir)
        self.containerd_bin = containerd_bin
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return self.layout.endpoint

    def write_config(self) -> bool:
        """Write the config (and link the CNI plugins). True when the config changed."""
        lay = self.layout
        for d in (lay.base, lay.root, lay.state, lay.cni_conf_dir):
            d.mkdir(parents=True, exist_ok=True)
        if Path(self.cni_bin_dir) == lay.cni_bin_dir:
            link_reference_plugins(lay.cni_bin_dir)
        text = render_config(
            sandbox_image=self.sandbox_image,
            cni_bin_dirs=(self.cni_bin_dir,),
            cni_conf_dir=str(lay.cni_conf_dir),
            restrict_oom_score_adj=needs_restrict_oom_score_adj(),
            layout=lay,
            systemd_cgroup=self.systemd_cgroup,
        )
        return write_if_changed(lay.config, text, fsync=False)

    def pid(self) -> int | None:
        """The pid of the running instance (ours or adopted from the pid file), else None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self.layout.pid_file.read_text())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if str(self.layout.config).encode() in cmdline else None

    def start(self, *, timeout: float = 30.0) -> None:
        """Start (or adopt an already running) instance and wait until its socket answers."""
        if shutil.which(self.containerd_bin) is None:
            raise RuntimeSetupError(f"{self.containerd_bin} not found: run `nodelet runtime setup` (installs containerd and runc)")
        changed = self.write_config()
        if changed and self.pid() is not None:
            log.info("containerd config changed, restarting base=%s", self.layout.base)
            self.stop()
        if self.pid() is None:
            logf = open(self.layout.log_file, "ab")
            self._proc = subprocess.Popen(
                [self.containerd_bin, "--config", str(self.layout.config)],
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            logf.close()
            self.layout.pid_file.write_text(str(self._proc.pid))
        self.wait_ready(timeout=timeout)

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeSetupError(f"containerd exited with {self._proc.returncode}; see {self.layout.log_file}:\n{self.log_tail()}")
            if self.layout.socket.exists() and _ctr(self, "version").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeSetupError(f"containerd did not answer on {self.layout.socket} within {timeout}s; see {self.layout.log_file}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.layout.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, *, timeout: float = 10.0, kill: bool = False) -> None:
        """Stop containerd itself; container shims (and so the containers) keep running, as on a real node."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    break
            elif not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.02)
        else:
            os.kill(pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout=5)
            self._proc = None

    def restart(self, *, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout=timeout)


    def shim_pids(self) -> list[int]:
        """containerd-shim processes serving this instance (they name our socket in their command line)."""
        sock = str(self.layout.socket).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and sock in cmd:
                pids.append(int(entry.name))
        return pids

def _ctr(instance: PrivateContainerd, *args: str, namespace: str = "k8s.io", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(instance.layout.socket), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ctr(instance: PrivateContainerd, *args: str, namespace: str = "k8s.io", timeout: float = 60) -> str:
    """Run `ctr` against the instance; raises RuntimeSetupError with its stderr on failure."""
    r = _ctr(instance, *args, namespace=namespace, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeSetupError(f"ctr {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout
