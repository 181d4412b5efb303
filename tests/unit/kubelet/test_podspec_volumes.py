"""Volume setup on real files (no root needed): hostPath type checks, subPath creation and symlink escapes,
the kubelet-managed /etc/hosts text. Mount-level behaviour is in tests/e2e/test_podspec_volumes.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from cri import api
from kubelet.kuberuntime.etchosts import ensure_hosts_file, render_hosts_file
from kubelet.types import HostAlias, PodSpec
from kubelet.kuberuntime.volumes import VolumeError, compute_volumes, ensure_container_mounts, ensure_pod_volumes, parse_volume_mounts


def manifest(*volumes: dict) -> dict:
    return {"spec": {"volumes": list(volumes), "containers": []}}


def test_empty_dir_and_host_path_types(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("")
    paths = ensure_pod_volumes(compute_volumes(manifest({"name": "e", "emptyDir": {}},
                                        {"name": "doc", "hostPath": {"path": str(tmp_path / "a" / "b"), "type": "DirectoryOrCreate"}},
                                        {"name": "foc", "hostPath": {"path": str(tmp_path / "c" / "f"), "type": "FileOrCreate"}},
                                        {"name": "f", "hostPath": {"path": str(f), "type": "File"}},
                                        {"name": "any", "hostPath": {"path": str(tmp_path / "nothing")}})),
                               tmp_path / "root", "uid1")
    assert paths["e"] == str(tmp_path / "root/pods/uid1/volumes/kubernetes.io~empty-dir/e")
    assert os.stat(paths["e"]).st_mode & 0o777 == 0o777
    assert (tmp_path / "a" / "b").is_dir() and (tmp_path / "c" / "f").is_file()
    assert not (tmp_path / "nothing").exists()  # type "": no check, nothing created
    with pytest.raises(VolumeError, match=r'volume "d": hostPath type check failed: .*/f is not a directory'):
        ensure_pod_volumes(compute_volumes(manifest({"name": "d", "hostPath": {"path": str(f), "type": "Directory"}})), tmp_path / "root", "uid1")
    with pytest.raises(VolumeError, match="is not a character device"):
        ensure_pod_volumes(compute_volumes(manifest({"name": "c", "hostPath": {"path": str(f), "type": "CharDevice"}})), tmp_path / "root", "uid1")


def test_sub_paths_are_created_inside_and_never_escape(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), vol / "link")
    mounts = ensure_container_mounts(parse_volume_mounts({"volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": "x/y", "readOnly": True},
                                                       {"name": "v", "mountPath": "/e", "subPathExpr": "$(POD)/logs",
                                                        "mountPropagation": "None"}]}),
                                     {"v": str(vol)}, {"POD": "web"})
    assert mounts == (api.Mount(container_path="/m", host_path=str(vol / "x" / "y"), readonly=True),
                      api.Mount(container_path="/e", host_path=str(vol / "web" / "logs")))
    with pytest.raises(VolumeError, match='subPath "link" of volume "v" escapes the volume'):
        ensure_container_mounts(parse_volume_mounts({"volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": "link"}]}), {"v": str(vol)}, {})
    with pytest.raises(VolumeError, match="escapes the volume"):
        ensure_container_mounts(parse_volume_mounts({"volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": "link/new"}]}), {"v": str(vol)}, {})
    assert not (outside / "new").exists()
    with pytest.raises(VolumeError, match="must be a relative path without '..'"):
        ensure_container_mounts(parse_volume_mounts({"volumeMounts": [{"name": "v", "mountPath": "/m", "subPathExpr": "$(X)"}]}), {"v": str(vol)}, {"X": "../up"})


def test_hosts_file_text(tmp_path: Path) -> None:
    m = PodSpec(containers=(), hostname="web", subdomain="grp", host_aliases=(HostAlias(ip="10.0.0.9", hostnames=("a", "b")),))
    text = render_hosts_file(m, pod_name="p-n1", namespace="ns", pod_ips=["10.244.0.5"], cluster_domain="cluster.local", host_network=False)
    assert text.splitlines()[0] == "# Kubernetes-managed hosts file."
    assert "10.244.0.5\tweb.grp.ns.svc.cluster.local\tweb\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n10.0.0.9\ta\tb\n")
    plain = render_hosts_file(PodSpec(containers=()), pod_name="p-n1", namespace="ns", pod_ips=["10.244.0.5"], cluster_domain="c", host_network=False)
    assert "10.244.0.5\tp-n1\n" in plain and "HostAliases" not in plain
    host = render_hosts_file(m, pod_name="p", namespace="ns", pod_ips=["1.1.1.1"], cluster_domain="c", host_network=True, node_hosts="127.0.0.1 localhost")
    assert host.startswith("# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n")
    path = tmp_path / "etc-hosts"
    ensure_hosts_file(path, "one\n")
    ino = path.stat().st_ino
    ensure_hosts_file(path, "two\n")
    assert path.read_text() == "two\n" and path.stat().st_ino == ino  # in place: a bind mount keeps seeing it


def test_projection_and_atomic_layout(tmp_path: Path) -> None:
    from kubelet.kuberuntime.projected import ProjectionError, compute_projection, ensure_projected_volume
    from kubelet.types import OtherObject

    cm = OtherObject(kind="ConfigMap", api_version="v1", name="c", namespace="ns", source="f",
                     body={"data": {"a": "1", "b": "2"}, "binaryData": {"bin": "AAE="}})
    sec = OtherObject(kind="Secret", api_version="v1", name="s", namespace="ns", source="f", body={"data": {"k": "bm9w"}})
    assert compute_projection("configMap", {"name": "c"}, [cm], "ns") == {"a": (b"1", 0o644), "b": (b"2", 0o644), "bin": (b"\0\1", 0o644)}
    assert compute_projection("configMap", {"name": "c", "items": [{"key": "a", "path": "x/y", "mode": 0o600}]}, [cm], "ns") == {"x/y": (b"1", 0o600)}
    assert compute_projection("secret", {"secretName": "s", "defaultMode": 0o400}, [sec], "ns") == {"k": (b"nop", 0o400)}
    assert compute_projection("configMap", {"name": "c", "optional": True}, [cm], "other-ns") == {}
    with pytest.raises(ProjectionError, match='configmap "c" not found'):
        compute_projection("configMap", {"name": "c"}, [cm], "other-ns")
    with pytest.raises(ProjectionError, match='key "zz" not found'):
        compute_projection("configMap", {"name": "c", "items": [{"key": "zz", "path": "p"}]}, [cm], "ns")
    d = tmp_path / "vol"
    assert ensure_projected_volume(d, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (d / "a").read_bytes() == b"1" and (d / "dir" / "b").read_bytes() == b"2" and (d / "a").is_symlink()
    assert not ensure_projected_volume(d, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})  # unchanged: nothing written
    first = os.readlink(d / "..data")
    assert ensure_projected_volume(d, {"a": (b"new", 0o644)})
    assert (d / "a").read_bytes() == b"new" and not (d / "dir").exists() and not (d / first).exists()


def test_open_subpath_follows_no_symlink_out(tmp_path: Path) -> None:
    from kubelet.kuberuntime.volumes import open_subpath

    vol = tmp_path / "vol"
    (vol / "real").mkdir(parents=True)
    os.symlink("real", vol / "inside")  # a symlink that stays inside: resolved once, then opened without following
    os.symlink(str(tmp_path), vol / "out")
    fd = open_subpath(str(vol), "inside", "v")
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(vol / "real"))
    finally:
        os.close(fd)
    fd = open_subpath(str(vol), "made/here", "v")  # created inside the volume
    os.close(fd)
    assert (vol / "made" / "here").is_dir()
    with pytest.raises(VolumeError, match="escapes the volume"):
        open_subpath(str(vol), "out", "v")


def test_memory_empty_dir_size() -> None:
    from kubelet.kuberuntime.volumes import compute_volumes

    limited = {"resources": {"limits": {"memory": "64Mi"}}}
    vols = {"volumes": [{"name": "a", "emptyDir": {"medium": "Memory"}}, {"name": "b", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                        {"name": "c", "emptyDir": {"sizeLimit": "1Gi"}}]}
    sizes = {v.name: v.size_limit for v in compute_volumes({"spec": {**vols, "containers": [limited]}})}
    assert sizes == {"a": 64 << 20, "b": 8 << 20, "c": 1 << 30}  # disk-backed: sizeLimit is not a tmpfs size
    sizes = {v.name: v.size_limit for v in compute_volumes({"spec": {**vols, "containers": [{}]}})}
    assert sizes == {"a": None, "b": 8 << 20, "c": 1 << 30}
