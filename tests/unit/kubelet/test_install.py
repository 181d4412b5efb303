"""kubelet.node.install without a venv: what files it owns, and the write/keep/adopt/uninstall rules on a temp root."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubelet.node.install import FileSpec, InstallError, Installer, InstallOptions, Manifest, compute_files, render_config_yaml

REPO = Path(__file__).resolve().parents[3]


def opts(root: Path, **kw: object) -> InstallOptions:
    return InstallOptions(source=REPO, root=root, apt=False, activate=False, **kw)  # type: ignore[arg-type]


def test_files_owned_and_venv_substituted(tmp_path: Path) -> None:
    files = {f.path: f for f in compute_files(opts(tmp_path, venv="/srv/nl"))}
    assert set(files) == {
        "/etc/systemd/system/nodelet.service", "/etc/systemd/system/nodelet.service.d/10-nodelet.conf", "/etc/default/nodelet",
        "/etc/sysctl.d/90-nodelet.conf", "/etc/modules-load.d/nodelet.conf", "/etc/systemd/system/containerd.service.d/10-nodelet.conf",
        "/etc/containerd/nodelet.toml", "/etc/crictl.yaml", "/etc/nodelet/config.yaml",
    }
    unit = files["/etc/systemd/system/nodelet.service"].content.decode()
    assert "ExecStart=/srv/nl/bin/nodelet run $NODELET_ARGS $NODELET_EXTRA_ARGS" in unit and "/opt/nodelet/venv" not in unit
    assert {p for p, f in files.items() if f.editable} == {"/etc/default/nodelet", "/etc/crictl.yaml", "/etc/nodelet/config.yaml"}


def test_config_yaml_carries_the_node_settings(tmp_path: Path) -> None:
    import yaml

    text = render_config_yaml(opts(tmp_path, node_name="node2", node_ip="192.168.56.12", pod_cidr="10.244.2.0/24",
                                   etcd_endpoints="https://192.168.56.11:2379,https://192.168.56.12:2379", cluster_cidr="10.244.0.0/16",
                                   etcd_ca_file="/etc/nodelet/etcd/ca.pem"))
    cfg = yaml.safe_load(text)
    assert cfg["kind"] == "NodeletConfiguration" and cfg["nodeName"] == "node2" and cfg["podCIDR"] == "10.244.2.0/24"
    assert "podCIDR" not in yaml.safe_load(render_config_yaml(opts(tmp_path)))  # unset: a commented example only
    from kubelet.config import load_config

    p = tmp_path / "config.yaml"
    p.write_text(text)
    c = load_config(str(p), {})
    assert c.node_ip == "192.168.56.12" and c.cluster_cidr == "10.244.0.0/16" and c.etcd_ca_file == "/etc/nodelet/etcd/ca.pem"
    assert c.etcd_endpoints == ("https://192.168.56.11:2379", "https://192.168.56.12:2379")


def test_write_keep_adopt_and_uninstall(tmp_path: Path) -> None:
    spec = FileSpec(path="/etc/x.conf", content=b"a\n")
    edit = FileSpec(path="/etc/y.conf", content=b"b\n", editable=True)
    foreign = FileSpec(path="/etc/z.conf", content=b"c\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/z.conf").write_text("theirs\n")

    inst = Installer(opts(tmp_path))
    for s in (spec, edit, foreign):
        inst.ensure_file(s)
    inst.save_manifest()
    assert [(c.action, c.path) for c in inst.report.changes] == [("create", "/etc/x.conf"), ("create", "/etc/y.conf"), ("keep", "/etc/z.conf")]
    assert (tmp_path / "etc/z.conf").read_text() == "theirs\n"

    (tmp_path / "etc/y.conf").write_text("edited\n")
    again = Installer(opts(tmp_path))
    for s in (FileSpec(path="/etc/x.conf", content=b"a2\n"), FileSpec(path="/etc/y.conf", content=b"b2\n", editable=True), foreign):
        again.ensure_file(s)
    assert [(c.action, c.path, c.detail) for c in again.report.changes] == [
        ("update", "/etc/x.conf", ""), ("keep", "/etc/y.conf", "edited locally"), ("keep", "/etc/z.conf", "exists and was not written by nodelet")]
    assert (tmp_path / "etc/x.conf").read_text() == "a2\n" and (tmp_path / "etc/y.conf").read_text() == "edited\n"
    again.save_manifest()

    out = Installer(opts(tmp_path)).uninstall()
    assert [(c.action, c.path) for c in out.changes] == [("remove", "/etc/x.conf"), ("keep", "/etc/y.conf")]
    assert (tmp_path / "etc/z.conf").exists() and (tmp_path / "etc/y.conf").exists() and (tmp_path / "etc").is_dir()
    left = json.loads((tmp_path / "var/lib/nodelet/install.json").read_text())
    assert list(left["files"]) == ["/etc/y.conf"]


def test_identical_existing_file_is_adopted(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/x.conf").write_text("a\n")
    (tmp_path / "etc/x.conf").chmod(0o644)
    inst = Installer(opts(tmp_path))
    inst.ensure_file(FileSpec(path="/etc/x.conf", content=b"a\n"))
    assert inst.report.changed == 0 and "/etc/x.conf" in inst.manifest.files


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    inst = Installer(opts(tmp_path, dry_run=True))
    inst.ensure_file(FileSpec(path="/etc/a/b.conf", content=b"x"))
    inst.save_manifest()
    assert [c.action for c in inst.report.changes] == ["create", "create", "create"]  # /etc/, /etc/a/, the file
    assert list(tmp_path.iterdir()) == []


def test_unreadable_manifest_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "var/lib/nodelet/install.json"
    p.parent.mkdir(parents=True)
    p.write_text("{nope")
    with pytest.raises(InstallError, match=r"install.json: unreadable install manifest: .* \(move it away to start over\)"):
        Installer(opts(tmp_path))
    assert Manifest.load(tmp_path / "none.json").files == {}


def test_not_a_source_tree(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="not a nodelet source tree"):
        Installer(InstallOptions(source=tmp_path, root=tmp_path / "r", apt=False, activate=False)).install()
