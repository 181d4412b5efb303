"""The five generic top-level names must come from the installed nodelet distribution."""
from __future__ import annotations

import importlib
import importlib.metadata as md
from pathlib import Path


def test_distribution_ships_the_five_packages_and_console_scripts() -> None:
    dist = md.distribution("nodelet")
    top = {p.split(".")[0] for p in importlib.import_module("setuptools").find_packages(str(Path(__file__).parents[2]), include=["kubelet*", "cri*", "cni*", "proxy*", "probes*"])}
    assert top == {"kubelet", "cri", "cni", "proxy", "probes"}
    for name in sorted(top):
        mod = importlib.import_module(name)
        assert mod.__file__ is not None
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts["nodelet"] == "kubelet.cli.main:main"
    assert scripts["nodelet-cni"] == "cni.__main__:main"


def test_wheel_contains_the_five_packages_and_the_proto(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).parents[2]
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(root)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("nodelet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for pkg in ("kubelet", "cri", "cni", "proxy", "probes"):
        assert f"{pkg}/__init__.py" in names, pkg
    assert "cri/proto/api.proto" in names and "cri/_gen/api_pb2.py" in names
    assert "kubelet/node/runtime/pause.c" in names
