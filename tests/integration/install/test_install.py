"""The installer for real, into a temp root: apt check, venv, files, CNI plugin; idempotent; --uninstall; systemd-analyze."""
from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
UNIT = "/etc/systemd/system/nodelet.service"
DROPIN = "/etc/systemd/system/nodelet.service.d/10-nodelet.conf"


def run_installer(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "kubelet.cli.main", "install", *args], capture_output=True, text=True, timeout=600, cwd=REPO)
    if check:
        assert p.returncode == 0, f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def mtimes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            out[str(p.relative_to(root))] = p.lstat().st_mtime_ns
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = tmp_path_factory.mktemp(f"nlt-install-{os.getpid()}")
    # a snapshot of the source: the shared checkout changes under us while colleagues work, and a changed source
    # legitimately rebuilds the venv
    src = base / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", "tests", "bench", ".vagrant"))
    root = base / "root"
    # files that are somebody else's before we install: never touched, never removed
    (root / "etc/sysctl.d").mkdir(parents=True)
    (root / "etc/sysctl.d/99-theirs.conf").write_text("vm.swappiness = 10\n")
    (root / "opt/cni/bin").mkdir(parents=True)
    (root / "opt/cni/bin/theirs").write_text("#!/bin/sh\n")
    (root / "opt/cni/bin/theirs").chmod(0o755)
    (root / "etc/crictl.yaml").write_text("runtime-endpoint: unix:///run/crio/crio.sock\n")
    args = ("--root", str(root), "--source", str(src), "--system-site-packages")
    first = run_installer(*args)
    yield {"root": root, "src": src, "args": args, "first": first}
    shutil.rmtree(base, ignore_errors=True)


def test_first_run_installs_everything(installed: dict[str, Any]) -> None:
    root: Path = installed["root"]
    out = installed["first"].stdout
    assert "create  /opt/nodelet/venv/ (virtual environment)" in out
    for path in (UNIT, DROPIN, "/etc/default/nodelet", "/etc/sysctl.d/90-nodelet.conf", "/etc/modules-load.d/nodelet.conf",
                 "/etc/containerd/nodelet.toml", "/etc/systemd/system/containerd.service.d/10-nodelet.conf",
                 "/etc/nodelet/config.yaml", "/opt/cni/bin/nodelet-cni", "/var/lib/nodelet/install.json"):
        assert (root / path.lstrip("/")).is_file(), path
    assert (root / "etc/kubernetes/manifests").is_dir()
    assert "net.bridge.bridge-nf-call-iptables = 1" in (root / "etc/sysctl.d/90-nodelet.conf").read_text()
    assert "br_netfilter" in (root / "etc/modules-load.d/nodelet.conf").read_text().split()
    toml = (root / "etc/containerd/nodelet.toml").read_text()
    assert 'sandbox_image = "localhost/nodelet/pause:3.9"' in toml and 'bin_dir = "/opt/cni/bin"' in toml
    # the venv works and is its own: its nodelet runs
    venv = root / "opt/nodelet/venv"
    v = subprocess.run([str(venv / "bin/nodelet"), "--help"], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and "run" in v.stdout, v
    where = subprocess.run([str(venv / "bin/python"), "-I", "-c", "import kubelet.app, cni, proxy, probes, cri; print(kubelet.app.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
    assert where.returncode == 0 and where.stdout.startswith(str(venv)), where  # not the checkout's editable install
    # someone else's crictl.yaml is left alone (and said so)
    assert (root / "etc/crictl.yaml").read_text() == "runtime-endpoint: unix:///run/crio/crio.sock\n"
    assert "keep    /etc/crictl.yaml (exists and was not written by nodelet)" in out
    manifest = json.loads((root / "var/lib/nodelet/install.json").read_text())
    assert "/etc/crictl.yaml" not in manifest["files"] and "/opt/cni/bin/theirs" not in manifest["links"]
    assert manifest["links"]["/opt/cni/bin/loopback"] == "/usr/lib/cni/loopback"
    assert os.readlink(root / "usr/local/bin/nodelet") == "/opt/nodelet/venv/bin/nodelet"
    # the plugin's in-process fallback imports the venv's packages, never the checkout's
    assert str(venv).encode() in (root / "opt/cni/bin/nodelet-cni").read_bytes()


def test_installed_cni_plugin_answers_version(installed: dict[str, Any]) -> None:
    plugin = installed["root"] / "opt/cni/bin/nodelet-cni"
    env = {"CNI_COMMAND": "VERSION", "PATH": "/usr/sbin:/usr/bin", "NODELET_CNI_SOCKET": str(installed["root"] / "no.sock")}
    p = subprocess.run([str(plugin)], input=b'{"cniVersion": "1.0.0"}', env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p
    assert "1.1.0" in json.loads(p.stdout)["supportedVersions"]


def test_second_run_changes_nothing(installed: dict[str, Any]) -> None:
    root: Path = installed["root"]
    before = mtimes(root)
    second = run_installer(*installed["args"])
    assert second.stdout.strip().splitlines()[-1] == "nodelet install: 0 changes (changed)", second.stdout
    assert mtimes(root) == before


def _effective_unit(root: Path) -> configparser.RawConfigParser:
    """The unit as systemd sees it: the main file, then the drop-in (later assignments win; ExecStart= resets)."""
    merged: dict[str, list[str]] = {}
    for path in (UNIT, DROPIN):
        section = ""
        for line in (root / path.lstrip("/")).read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            k = f"{section}.{key}"
            if key in ("ExecStart", "EnvironmentFile", "Environment", "After", "Wants") and value:
                merged.setdefault(k, []).append(value)
            elif key == "ExecStart":
                merged[k] = []
            else:
                merged[k] = [value]
    cp = configparser.RawConfigParser()
    cp.read_dict({"unit": {k: "\n".join(v) for k, v in merged.items()}})
    return cp


def test_unit_verifies_and_has_the_service_contract(installed: dict[str, Any], tmp_path: Path) -> None:
    root: Path = installed["root"]
    if shutil.which("systemd-analyze") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "systemd"], check=True, timeout=600)
    # the installed units and drop-ins, with the venv path re-rooted into the temp root (ExecStart must exist:
    # verify checks it), on systemd's unit path ahead of the system's own units
    units = tmp_path / "units"
    shutil.copytree(root / "etc/systemd/system", units)
    for f in units.rglob("*"):
        if f.is_file():
            f.write_text(f.read_text().replace("/opt/nodelet/venv", f"{root}/opt/nodelet/venv"))
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:", SYSTEMD_LOG_LEVEL="notice")
    for unit in ("nodelet.service", "containerd.service"):
        p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, env=env, cwd=units, timeout=60)
        assert p.returncode == 0 and not p.stderr.strip(), f"{unit}: rc={p.returncode} {p.stderr}"
    u = _effective_unit(root)["unit"]
    assert u["Service.Type"] == "notify"
    assert u["Service.WatchdogSec"] == "60s"
    assert u["Service.Restart"] == "always"
    assert u["Service.KillMode"] == "process"  # stopping nodelet never stops a pod
    for dep in ("containerd.service", "network-online.target"):
        assert dep in u["Unit.After"] and dep in u["Unit.Wants"]
    assert "-/etc/default/nodelet" in u["Service.EnvironmentFile"].split("\n")
    execs = u["Service.ExecStart"].split("\n")
    assert len(execs) == 1, execs  # the drop-in's ExecStart= reset, then one command
    argv = execs[0].split()
    assert argv[0] == "/opt/nodelet/venv/bin/nodelet" and argv[1] == "run" and "$NODELET_ARGS" in argv and "$NODELET_EXTRA_ARGS" in argv
    assert os.access(root / argv[0].lstrip("/"), os.X_OK)


def test_a_broken_unit_fails_verification(installed: dict[str, Any], tmp_path: Path) -> None:
    """The verification above can fail: a unit whose ExecStart does not exist is rejected."""
    d = tmp_path / "units"
    d.mkdir()
    text = (installed["root"] / UNIT.lstrip("/")).read_text().replace("/opt/nodelet/venv/bin/nodelet", "/nonexistent/nodelet")
    (d / "nodelet.service").write_text(text)
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{d}:")
    p = subprocess.run(["systemd-analyze", "verify", "nodelet.service"], capture_output=True, text=True, env=env, cwd=d, timeout=60)
    assert p.returncode != 0 and "/nonexistent/nodelet" in p.stderr


def test_edited_config_survives_reinstall_and_uninstall(installed: dict[str, Any]) -> None:
    root: Path = installed["root"]
    cfg = root / "etc/nodelet/config.yaml"
    cfg.write_text(cfg.read_text() + "maxPods: 20\n")
    again = run_installer(*installed["args"], "--pod-cidr", "10.244.7.0/24")
    assert "keep    /etc/nodelet/config.yaml (edited locally)" in again.stdout
    assert "maxPods: 20" in cfg.read_text() and "10.244.7.0/24" not in cfg.read_text()

    out = run_installer(*installed["args"], "--uninstall").stdout
    assert "keep    /etc/nodelet/config.yaml (edited after install)" in out
    assert cfg.exists()
    for path in (UNIT, DROPIN, "etc/default/nodelet", "etc/sysctl.d/90-nodelet.conf", "opt/cni/bin/nodelet-cni", "opt/cni/bin/loopback",
                 "usr/local/bin/nodelet"):
        p = root / path.lstrip("/")
        assert not (p.exists() or p.is_symlink()), path
    assert not (root / "opt/nodelet").exists()
    # what was there before is untouched
    assert (root / "etc/sysctl.d/99-theirs.conf").read_text() == "vm.swappiness = 10\n"
    assert (root / "opt/cni/bin/theirs").exists()
    assert (root / "etc/crictl.yaml").read_text() == "runtime-endpoint: unix:///run/crio/crio.sock\n"
    # the kept file stays recorded, so a later uninstall (after the person looks) can finish
    left = json.loads((root / "var/lib/nodelet/install.json").read_text())
    assert list(left["files"]) == ["/etc/nodelet/config.yaml"]
    cfg.write_text(cfg.read_text().replace("maxPods: 20\n", ""))
    out = run_installer(*installed["args"], "--uninstall").stdout
    assert "remove  /etc/nodelet/config.yaml" in out and not cfg.exists()
    assert not (root / "var/lib/nodelet/install.json").exists()


def test_default_root_dry_run_changes_nothing() -> None:
    """The default path (root /, apt check on) as far as is safe here: --dry-run plans, writes nothing."""
    watched = [Path(p) for p in ("/etc/systemd/system", "/etc/nodelet", "/etc/default", "/etc/sysctl.d", "/opt/cni/bin",
                                 "/etc/crictl.yaml", "/var/lib/nodelet/install.json", "/etc/containerd")]
    before = {str(p): (p.exists(), mtimes(p) if p.is_dir() else (p.stat().st_mtime_ns if p.exists() else None)) for p in watched}
    p = run_installer("--dry-run")
    after = {str(p): (p.exists(), mtimes(p) if p.is_dir() else (p.stat().st_mtime_ns if p.exists() else None)) for p in watched}
    assert after == before
    last = p.stdout.strip().splitlines()[-1]
    assert last.startswith("nodelet install: ") and last.endswith("(would change)"), p.stdout
    if not Path(UNIT).exists():
        assert f"create  {UNIT}" in p.stdout
