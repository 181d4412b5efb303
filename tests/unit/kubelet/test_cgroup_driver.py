"""cgroupDriver: pod cgroup names as the kubelet makes them for each driver, and containerd's SystemdCgroup written
by `runtime setup` / `nodelet install` to match (systemd is not PID 1 here: the systemd side is tested as units,
the cgroupfs path live in tests/e2e/test_dropin.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kubelet.kuberuntime.cgroups import pod_cgroup_dirs
from kubelet.kuberuntime.resources import compute_cgroup_parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

UID = "4f1c7e2a-9b1d-4c3e-8f00-123456789abc"  # an API-style UID: '-' becomes '_' under systemd


@pytest.mark.parametrize(("qos", "driver", "expected"), [
    ("Guaranteed", "cgroupfs", f"/kubepods/pod{UID}"),
    ("Burstable", "cgroupfs", f"/kubepods/burstable/pod{UID}"),
    ("BestEffort", "cgroupfs", f"/kubepods/besteffort/pod{UID}"),
    ("Guaranteed", "systemd", "/kubepods.slice/kubepods-pod4f1c7e2a_9b1d_4c3e_8f00_123456789abc.slice"),
    ("Burstable", "systemd", "/kubepods.slice/kubepods-burstable.slice/"
                             "kubepods-burstable-pod4f1c7e2a_9b1d_4c3e_8f00_123456789abc.slice"),
    ("BestEffort", "systemd", "/kubepods.slice/kubepods-besteffort.slice/"
                              "kubepods-besteffort-pod4f1c7e2a_9b1d_4c3e_8f00_123456789abc.slice"),
])
def test_pod_cgroup_names(qos: str, driver: str, expected: str) -> None:
    assert compute_cgroup_parent(UID, qos, driver) == expected


def test_unknown_driver_is_an_error() -> None:
    with pytest.raises(ValueError):
        compute_cgroup_parent(UID, "Burstable", "systemD")


def test_systemd_pod_cgroups_are_found_for_cleanup(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")  # cgroup v2
    d = tmp_path / compute_cgroup_parent("abc", "Burstable", "systemd").lstrip("/")
    d.mkdir(parents=True)
    (tmp_path / "kubepods" / "besteffort" / "podabc").mkdir(parents=True)
    (tmp_path / "kubepods.slice" / "kubepods-burstable.slice" / "kubepods-burstable-podother.slice").mkdir()
    assert sorted(pod_cgroup_dirs("abc", tmp_path)) == sorted([d, tmp_path / "kubepods" / "besteffort" / "podabc"])


def test_sandbox_config_uses_the_configured_driver() -> None:
    from kubelet.kuberuntime.podconfig import NodeInfo, compute_sandbox_config
    from kubelet.testing import pod
    from cri import api

    p = pod("c", uid="u1")
    for driver, parent in (("cgroupfs", "/kubepods/besteffort/podu1"),
                           ("systemd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podu1.slice")):
        node = NodeInfo(node_name="node1", host_ip="192.0.2.1", cgroup_driver=driver)
        assert compute_sandbox_config(p, node, attempt=0, host_resolv=api.DNSConfig()).linux.cgroup_parent == parent


def runc_options(text: str) -> dict:  # type: ignore[type-arg]
    conf = tomllib.loads(text)
    return conf["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runc"]["options"]


def test_runtime_setup_and_installer_write_systemd_cgroup_to_match(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kubelet.cli.main import cli
    from kubelet.node.install import InstallOptions, compute_files, render_config_yaml
    from kubelet.node.runtime.containerd import PrivateContainerd

    for driver, want in (("cgroupfs", False), ("systemd", True)):
        out = CliRunner().invoke(cli, ["runtime", "config", "--cgroup-driver", driver])
        assert out.exit_code == 0, out.output
        assert runc_options(out.output) == {"SystemdCgroup": want}
        inst = PrivateContainerd(tmp_path / driver, sandbox_image="localhost/nodelet/pause:3.9",
                                 systemd_cgroup=driver == "systemd")
        inst.write_config()
        assert runc_options(inst.layout.config.read_text()) == {"SystemdCgroup": want}
        opts = InstallOptions(source=Path(__file__).resolve().parents[3], cgroup_driver=driver)
        files = {f.path: f.content.decode() for f in compute_files(opts)}
        assert runc_options(files["/etc/containerd/nodelet.toml"]) == {"SystemdCgroup": want}
        assert f"\ncgroupDriver: {driver}  #" in render_config_yaml(opts)
        from kubelet.config import load_config

        cfg = tmp_path / f"{driver}.yaml"
        cfg.write_text(render_config_yaml(opts))
        assert load_config(str(cfg), {"nodeName": "n"}).cgroup_driver == driver
