"""The containerd config nodelet writes, and the capability check behind restrict_oom_score_adj."""
from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

from kubelet.node.runtime.containerd import CAP_SYS_RESOURCE, ContainerdLayout, has_capability, render_config
from kubelet.node.runtime.images import PAUSE_IMAGE, render_layer, Entry


@pytest.mark.parametrize("restrict", [True, False])
def test_render_config_sets_the_cri_plugin_up_for_nodelet(restrict: bool) -> None:
    text = render_config(sandbox_image=PAUSE_IMAGE, cni_bin_dirs=("/opt/cni/bin",), cni_conf_dir="/etc/cni/net.d", restrict_oom_score_adj=restrict)
    conf = tomllib.loads(text)
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert conf["version"] == 2
    assert cri["sandbox_image"] == "localhost/nodelet/pause:3.9"
    assert cri["restrict_oom_score_adj"] is restrict
    assert cri["cni"] == {"bin_dir": "/opt/cni/bin", "conf_dir": "/etc/cni/net.d", "max_conf_num": 1}
    assert cri["containerd"]["runtimes"]["runc"]["runtime_type"] == "io.containerd.runc.v2"
    assert "root" not in conf and "grpc" not in conf  # a system config keeps containerd's own paths


def test_private_layout_has_its_own_root_state_and_socket(tmp_path: Path) -> None:
    lay = ContainerdLayout(base=tmp_path)
    conf = tomllib.loads(render_config(sandbox_image=PAUSE_IMAGE, restrict_oom_score_adj=True, layout=lay, cni_conf_dir=str(lay.cni_conf_dir)))
    assert conf["root"] == str(tmp_path / "root") and conf["state"] == str(tmp_path / "state")
    assert conf["grpc"]["address"] == str(tmp_path / "containerd.sock")
    assert conf["plugins"]["io.containerd.internal.v1.opt"]["path"] == str(tmp_path / "opt")


@pytest.mark.parametrize(
    "capeff,expected",
    [("000001fffeffffff", False), ("000001ffffffffff", True), ("0000000001000000", True), ("0000000000000000", False)],
)
def test_cap_sys_resource_detection(tmp_path: Path, capeff: str, expected: bool) -> None:
    status = tmp_path / "status"
    status.write_text(f"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t{capeff}\n")
    assert has_capability(CAP_SYS_RESOURCE, status_path=str(status)) is expected


def test_layers_are_reproducible() -> None:
    entries = [Entry(path="bin", kind="dir"), Entry(path="bin/sh", kind="symlink", target="busybox"), Entry(path="etc/x", kind="file", data=b"1")]
    assert render_layer(entries) == render_layer(list(reversed(entries)))
