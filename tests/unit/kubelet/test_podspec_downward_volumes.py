"""Issue 15 item 2, runtime side: the file sets of downwardAPI and projected volumes (pure), their validation, and
the AtomicWriter update when a value changes."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from kubelet.kuberuntime.downward import (
    compute_field_value, compute_projection_files, format_map, parse_downward_api_volume, parse_projected_volume,
)
from kubelet.kuberuntime.podconfig import resource_field_value
from kubelet.kuberuntime.projected import ProjectionError, ensure_projected_volume
from kubelet.kuberuntime.volumes import compute_fs_group_modes, compute_read_only_volumes, compute_volumes
from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.types import OtherObject, Pod

POD = b"""apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: ns
  labels: {app: web, tier: front}
  annotations: {note: "two\\nlines", q: 'say "x"'}
spec:
  containers:
  - name: c
    image: x
    resources: {limits: {cpu: 1500m, memory: 64Mi}, requests: {cpu: 250m}}
  - name: bare
    image: x
  volumes:
  - name: d
    downwardAPI:
      defaultMode: 0600
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: meta/ns, fieldRef: {fieldPath: metadata.namespace}, mode: 0444}
      - {path: uid, fieldRef: {fieldPath: metadata.uid}}
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: annotations, fieldRef: {fieldPath: metadata.annotations}}
      - {path: app, fieldRef: {fieldPath: "metadata.labels['app']"}}
      - {path: absent, fieldRef: {fieldPath: "metadata.annotations['nope']"}}
      - {path: cpu_m, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}}
      - {path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu}}
      - {path: mem_mi, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}
      - {path: bare_mem, resourceFieldRef: {containerName: bare, resource: limits.memory}}
      - {path: bare_req, resourceFieldRef: {containerName: bare, resource: requests.cpu}}
  - name: p
    projected:
      defaultMode: 0640
      sources:
      - downwardAPI: {items: [{path: pod/name, fieldRef: {fieldPath: metadata.name}}]}
      - configMap: {name: cfg, items: [{key: a, path: cfg/a}, {key: b, path: cfg/b, mode: 0400}]}
      - secret: {name: sec}
      - secret: {name: missing, optional: true}
  - name: e
    emptyDir: {}
"""
ALLOCATABLE = {"cpu": 4000, "memory": 8 << 30, "ephemeral-storage": 100 << 30}
OBJECTS = [OtherObject(kind="ConfigMap", api_version="v1", name="cfg", namespace="ns", source="f",
                       body={"data": {"a": "1", "b": "2", "c": "3"}}),
           OtherObject(kind="Secret", api_version="v1", name="sec", namespace="ns", source="f",
                       body={"data": {"token": "c2VjcmV0"}})]


def _pod() -> Pod:
    pods, _, errors = parse_manifest_bytes(POD, file="/m/web.yaml", node_name="node1")
    assert not errors, errors
    return pods[0]


def _volumes(pod: Pod) -> dict[str, object]:
    return {v.name: v for v in compute_volumes(pod.manifest)}


def _files(pod: Pod, name: str) -> dict[str, tuple[bytes, int]]:
    v = _volumes(pod)[name]
    return compute_projection_files(v.projection, pod, objects=OBJECTS,  # type: ignore[attr-defined]
                                    resource_value=lambda r, c: resource_field_value(r, c, pod, ALLOCATABLE))


def test_format_map_is_fieldpath_format_map() -> None:
    assert format_map({"b": "2", "a": 'say "hi"\n'}) == 'a="say \\"hi\\"\\n"\nb="2"'
    assert format_map({}) == ""


def test_downward_api_volume_files() -> None:
    pod = _pod()
    files = _files(pod, "d")
    assert files["name"] == (b"web-node1", 0o600)  # the static pod's name, with the node suffix
    assert files["meta/ns"] == (b"ns", 0o444)  # per-item mode wins over defaultMode
    assert files["uid"] == (pod.uid.encode(), 0o600)
    assert files["labels"][0] == b'app="web"\ntier="front"'
    annotations = files["annotations"][0].decode().splitlines()
    assert 'note="two\\nlines"' in annotations and 'q="say \\"x\\""' in annotations  # quoted as Go's %q
    assert f'kubernetes.io/config.hash="{pod.uid}"' in annotations  # what the kubelet adds to a static pod
    assert 'kubernetes.io/config.source="file"' in annotations
    assert annotations == sorted(annotations)
    assert files["app"][0] == b"web" and files["absent"][0] == b""
    assert files["cpu_m"][0] == b"1500" and files["cpu"][0] == b"2"  # rounded up, as upstream
    assert files["mem_mi"][0] == b"64"
    assert files["bare_mem"][0] == str(8 << 30).encode()  # no limit: the node's allocatable
    assert files["bare_req"][0] == b"0"
    assert set(files) == {"name", "meta/ns", "uid", "labels", "annotations", "app", "absent", "cpu_m", "cpu",
                          "mem_mi", "bare_mem", "bare_req"}


def test_projected_volume_combines_sources() -> None:
    files = _files(_pod(), "p")
    assert files == {"pod/name": (b"web-node1", 0o640), "cfg/a": (b"1", 0o640), "cfg/b": (b"2", 0o400),
                     "token": (b"secret", 0o640)}  # the optional, missing secret adds nothing


def test_missing_object_and_container_are_volume_errors() -> None:
    pod = _pod()
    p = parse_projected_volume({"sources": [{"configMap": {"name": "gone"}}]})
    with pytest.raises(ProjectionError, match='configmap "gone" not found'):
        compute_projection_files(p, pod, objects=OBJECTS)
    d = parse_downward_api_volume({"items": [{"path": "x", "resourceFieldRef": {"containerName": "zz",
                                                                                  "resource": "limits.cpu"}}]})
    with pytest.raises(ProjectionError, match="container zz not found"):
        compute_projection_files(d, pod, resource_value=lambda r, c: "1")


def test_field_values_follow_the_pod() -> None:
    """What the kubelet's per-sync remount sees: a changed annotation (nodelet's own config.seen, e.g. after an
    adoption) changes the file's content, nothing else."""
    pod = _pod()
    later = dataclasses.replace(pod, annotations={**pod.annotations, "kubernetes.io/config.seen": "later"})
    assert compute_field_value("metadata.annotations['kubernetes.io/config.seen']", later) == "later"
    assert _files(pod, "d")["labels"] == _files(later, "d")["labels"]
    assert _files(pod, "d")["annotations"] != _files(later, "d")["annotations"]


def test_update_swaps_data_atomically(tmp_path: Path) -> None:
    pod = _pod()
    vol = tmp_path / "kubernetes.io~downward-api" / "d"
    assert ensure_projected_volume(vol, _files(pod, "d"))
    first = os.readlink(vol / "..data")
    assert first.startswith("..") and (vol / first).is_dir()
    assert os.readlink(vol / "labels") == "..data/labels" and os.readlink(vol / "meta") == "..data/meta"
    assert (vol / "meta" / "ns").stat().st_mode & 0o777 == 0o444
    assert not ensure_projected_volume(vol, _files(pod, "d"))  # same values: nothing rewritten
    assert os.readlink(vol / "..data") == first
    later = dataclasses.replace(pod, annotations={**pod.annotations, "kubernetes.io/config.seen": "later"})
    assert ensure_projected_volume(vol, _files(later, "d"))
    second = os.readlink(vol / "..data")
    assert second != first and not (vol / first).exists()  # the old timestamped dir is gone after the swap
    assert b'kubernetes.io/config.seen="later"' in (vol / "annotations").read_bytes()


def test_atomic_volumes_mount_read_only() -> None:
    assert compute_read_only_volumes(_pod().spec.volumes) == {"d", "p"}  # not the emptyDir


def test_fs_group_adds_group_read() -> None:
    assert compute_fs_group_modes({"a": (b"", 0o400), "b": (b"", 0o600), "c": (b"", 0o644)}) == {
        "a": (b"", 0o440), "b": (b"", 0o640), "c": (b"", 0o644)}


def _errors(volumes: str) -> list[str]:
    text = ("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: x}]\n"
            "  volumes:\n" + volumes)
    _, _, errors = parse_manifest_bytes(text.encode(), file="/m/p.yaml", node_name="node1")
    return [str(e) for e in errors]


def test_validation_accepts_and_refuses_precisely() -> None:
    assert _errors("  - {name: d, downwardAPI: {items: [{path: n, fieldRef: {fieldPath: metadata.name}}]}}\n"
                   "  - {name: p, projected: {sources: [{configMap: {name: c}}, {secret: {name: s, items: "
                   "[{key: k, path: k}]}}, {downwardAPI: {items: [{path: l, fieldRef: {fieldPath: "
                   "metadata.labels}}]}}]}}\n") == []
    assert _errors("  - name: p\n    projected:\n      sources:\n"
                   "      - downwardAPI: {items: [{path: n, fieldRef: {fieldPath: metadata.name}}]}\n"
                   "      - configMap: {name: c, items: [{key: k, path: n}], bogus: 1}\n"
                   "      - serviceAccountToken: {path: t}\n"
                   "      - clusterTrustBundle: {path: b, signerName: x}\n"
                   "      - {configMap: {name: c}, secret: {name: s}}\n") == [
        '/m/p.yaml:8: spec.volumes[0].projected: Invalid value: "c": conflicting duplicate paths',
        '/m/p.yaml:11: spec.volumes[0].projected.sources[1].configMap.bogus: Forbidden: unknown field (nodelet validates strictly, as kubectl --validate=strict)',
        "/m/p.yaml:12: spec.volumes[0].projected.sources[2].serviceAccountToken: Forbidden: static pods may not "
        "reference serviceaccounts (via projected volumes)",
        "/m/p.yaml:13: spec.volumes[0].projected.sources[3].clusterTrustBundle: Forbidden: static pods may not "
        "reference clustertrustbundles",
        "/m/p.yaml:14: spec.volumes[0].projected.sources[4]: Forbidden: may not specify more than 1 volume type per "
        "source"]


def test_describe_prints_them_as_kubectl() -> None:
    import datetime

    from kubelet.cli.describe import render_pod_description

    pod = _pod()
    text = render_pod_description(pod.manifest, events=None, now=datetime.datetime.now(datetime.timezone.utc))
    vols = text[text.index("\nVolumes:\n"):text.index("\nQoS Class:")]
    assert "    Type:  DownwardAPI (a volume populated by information about the pod)\n    Items:\n" in vols
    assert "      metadata.labels -> labels\n" in vols and "      limits.memory -> mem_mi\n" in vols
    lines = [" ".join(line.split()) for line in vols.splitlines()]
    assert lines[lines.index("p:") + 1:lines.index("p:") + 8] == [
        "Type: Projected (a volume that contains injected data from multiple sources)", "DownwardAPI: true",
        "ConfigMapName: cfg", "ConfigMapOptional: <nil>", "SecretName: sec", "SecretOptionalName: <nil>",
        "SecretName: missing"]
