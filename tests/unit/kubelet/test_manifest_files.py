"""The directory rules of compute_manifest_set: listing, documents, kinds, conflicts, broken files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kubelet.manifest.parse import MAX_FILE_SIZE, compute_manifest_set, list_manifest_files


def pod_yaml(name: str, image: str = "busybox:1.36", namespace: str | None = None) -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}{ns}}}\n"
            f"spec:\n  containers:\n  - {{name: c, image: '{image}'}}\n")


def write(d: Path, name: str, text: str) -> str:
    (d / name).write_text(text)
    return str(d / name)


def names(d: Path) -> list[str]:
    return [p.name for p in compute_manifest_set(str(d), node_name="n").pods]


def test_listing_rules(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", pod_yaml("b"))
    write(tmp_path, "a.yml", pod_yaml("a"))
    write(tmp_path, "c.json", json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"},
                                          "spec": {"containers": [{"name": "c", "image": "x:1"}]}}))
    write(tmp_path, ".hidden.yaml", pod_yaml("hidden"))
    write(tmp_path, "backup.yaml~", pod_yaml("backup"))
    write(tmp_path, "notes.txt", "not a manifest")
    write(tmp_path, ".web.yaml.swp", "\0binary")
    (tmp_path / "sub.yaml").mkdir()
    write(tmp_path / "sub.yaml", "d.yaml", pod_yaml("d"))
    os.mkfifo(tmp_path / "fifo.yaml")  # must not block the relist
    os.symlink(tmp_path / "gone", tmp_path / "dangling.yaml")
    assert names(tmp_path) == ["a-n", "b-n", "c-n"]
    assert list_manifest_files(str(tmp_path)) == [str(tmp_path / n) for n in
                                                  ("a.yml", "b.yaml", "c.json", "dangling.yaml", "fifo.yaml",
                                                   "sub.yaml")]
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert result.errors == () and result.broken_files == frozenset()


def test_single_file_path_is_the_only_manifest(tmp_path: Path) -> None:
    f = write(tmp_path, "pods", pod_yaml("only"))  # any name when named explicitly
    write(tmp_path, "other.yaml", pod_yaml("other"))
    result = compute_manifest_set(f, node_name="n")
    assert [p.name for p in result.pods] == ["only-n"]
    assert result.pods[0].source == f


def test_missing_path_is_empty(tmp_path: Path) -> None:
    result = compute_manifest_set(str(tmp_path / "nope"), node_name="n")
    assert result.pods == () and result.errors == ()


def test_multi_document_yaml_with_other_kinds(tmp_path: Path) -> None:
    text = pod_yaml("web") + "---\n" + """apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
---
""" + pod_yaml("db", namespace="prod")
    f = write(tmp_path, "all.yaml", text)
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert [p.key for p in result.pods] == ["default/web-n", "prod/db-n"]
    assert [(o.kind, o.api_version, o.namespace, o.name, o.source) for o in result.others] == [
        ("Service", "v1", "prod", "web", f), ("EndpointSlice", "discovery.k8s.io/v1", "default", "web-1", f),
        ("Node", "v1", "", "n2", f)]
    assert result.others[0].body["spec"] == {"ports": [{"port": 80}]}


def test_v1_list(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
         "spec": {"containers": [{"name": "c", "image": "x:1"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}, "spec": {"containers": [{"name": "c"}]}},
    ]}
    f = write(tmp_path, "list.json", json.dumps(doc, indent=2))
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert result.pods == ()
    assert [str(e) for e in result.errors] == [f"{f}:28: items[1].spec.containers[0].image: Required value"]
    doc["items"][1]["spec"]["containers"][0]["image"] = "y:1"
    write(tmp_path, "list.json", json.dumps(doc))
    assert names(tmp_path) == ["a-n", "b-n"]


def test_empty_documents_and_empty_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "---\n" + pod_yaml("a") + "---\n---\n")
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "comment.yaml", "# nothing yet\n")
    result = compute_manifest_set(str(tmp_path), node_name="n")
    # empty documents inside a file are fine; a file with no object at all is an error, as for the kubelet
    # ("couldn't parse as pod(Object 'Kind' is missing in 'null')"), and costs no other file anything
    assert [p.name for p in result.pods] == ["a-n"]
    empty = ("empty file: no object in it (the kubelet refuses it too: couldn't parse as pod(Object 'Kind' is "
             "missing in 'null'))")
    assert [str(e) for e in result.errors] == [f"{tmp_path}/comment.yaml: {empty}", f"{tmp_path}/empty.yaml: {empty}"]


def test_conflict_between_files_first_in_name_order_wins(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", pod_yaml("web"))
    b = write(tmp_path, "b.yaml", pod_yaml("api") + "---\n" + pod_yaml("web", image="nginx:1"))
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert [(p.name, p.source) for p in result.pods] == [("web-n", a)]
    assert [str(e) for e in result.errors] == [
        f'{b}:10: metadata.name: Duplicate value: "web-n": pod default/web-n is already declared in {a}:3 '
        "(the first file in name order wins)"]
    assert result.broken_files == frozenset({b})


def test_conflict_within_one_file(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", pod_yaml("web") + "---\n" + pod_yaml("web", image="nginx:1"))
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert result.pods == ()
    assert [str(e) for e in result.errors] == [
        f'{a}:10: metadata.name: Duplicate value: "web-n": pod default/web-n is already declared earlier in this '
        "file (line 3)"]


def test_same_name_in_other_namespace_is_no_conflict(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", pod_yaml("web"))
    write(tmp_path, "b.yaml", pod_yaml("web", namespace="prod"))
    assert names(tmp_path) == ["web-n", "web-n"]


def test_conflicting_other_objects(tmp_path: Path) -> None:
    svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
    write(tmp_path, "a.yaml", svc)
    b = write(tmp_path, "b.yaml", svc)
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert len(result.others) == 1 and result.broken_files == frozenset({b})
    assert "Service default/web is already declared in" in result.errors[0].reason


def test_broken_file_contributes_nothing_and_others_are_untouched(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", pod_yaml("a"))
    bad = write(tmp_path, "b.yaml", pod_yaml("b") + "---\n" + pod_yaml("b2").replace("image: 'busybox:1.36'", ""))
    write(tmp_path, "c.yaml", pod_yaml("c"))
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert [p.name for p in result.pods] == ["a-n", "c-n"]
    assert result.broken_files == frozenset({bad})
    assert [str(e) for e in result.errors] == [f"{bad}:13: spec.containers[0].image: Required value"]


def test_file_over_10_mib(tmp_path: Path) -> None:
    big = write(tmp_path, "big.yaml", pod_yaml("big") + "#" * MAX_FILE_SIZE + "\n")
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert result.pods == () and result.broken_files == frozenset({big})
    assert [str(e) for e in result.errors] == [
        f"{big}: file is larger than the maximum of 10485760 bytes (10 MiB): 10485761 bytes"]


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubelet.manifest.parse as manifest

    f = write(tmp_path, "a.yaml", pod_yaml("a"))
    write(tmp_path, "b.yaml", pod_yaml("b"))
    real_open = os.open

    def fake_open(path, flags, *a):  # type: ignore[no-untyped-def]
        if path == f:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *a)

    monkeypatch.setattr(manifest.os, "open", fake_open)
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert [p.name for p in result.pods] == ["b-n"]
    assert [str(e) for e in result.errors] == [f"{f}: cannot read: Permission denied"]


def test_first_seen_is_recorded_and_reused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", pod_yaml("a"))
    seen: dict = {}
    one = compute_manifest_set(str(tmp_path), node_name="n", first_seen=seen, clock_ns=lambda: 10**18)
    two = compute_manifest_set(str(tmp_path), node_name="n", first_seen=seen, clock_ns=lambda: 2 * 10**18)
    assert one == two
    assert seen == {one.pods[0].uid: "2001-09-09T01:46:40Z"}


def test_cache_serves_unchanged_files_and_rereads_changed_ones(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import kubelet.manifest.parse as manifest

    parsed: list[str] = []
    real_parse = manifest._parse

    def counting_parse(data, *, file, **kw):  # type: ignore[no-untyped-def]
        parsed.append(os.path.basename(file))
        return real_parse(data, file=file, **kw)

    monkeypatch.setattr(manifest, "_parse", counting_parse)
    later = lambda: time.time_ns() + 10**10  # noqa: E731 - as if the files were written 10 s ago
    write(tmp_path, "a.yaml", pod_yaml("a"))
    write(tmp_path, "b.yaml", pod_yaml("b"))
    cache: dict = {}
    one = compute_manifest_set(str(tmp_path), node_name="n", cache=cache, clock_ns=later)
    two = compute_manifest_set(str(tmp_path), node_name="n", cache=cache, clock_ns=later)
    assert one == two and parsed == ["a.yaml", "b.yaml"]
    write(tmp_path, "b.yaml", pod_yaml("b", image="busybox:1.37"))  # same size, new content
    three = compute_manifest_set(str(tmp_path), node_name="n", cache=cache, clock_ns=later)
    assert parsed == ["a.yaml", "b.yaml", "b.yaml"]
    assert three.pods[1].spec.containers[0].image == "busybox:1.37"
    os.unlink(tmp_path / "a.yaml")
    assert [p.name for p in compute_manifest_set(str(tmp_path), node_name="n", cache=cache,
                                                 clock_ns=later).pods] == ["b-n"]
    assert set(cache) == {str(tmp_path / "b.yaml")}


def test_recently_written_files_are_not_cached(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", pod_yaml("a"))
    cache: dict = {}
    compute_manifest_set(str(tmp_path), node_name="n", cache=cache)
    assert cache == {}  # written just now: its timestamp cannot tell a same-size rewrite within the same tick


def test_parser_bug_costs_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubelet.manifest.parse as manifest

    a = write(tmp_path, "a.yaml", pod_yaml("a"))
    write(tmp_path, "b.yaml", pod_yaml("b"))
    real_parse = manifest._parse

    def buggy(data, *, file, **kw):  # type: ignore[no-untyped-def]
        if file == a:
            raise KeyError("oops")
        return real_parse(data, file=file, **kw)

    monkeypatch.setattr(manifest, "_parse", buggy)
    result = compute_manifest_set(str(tmp_path), node_name="n")
    assert [p.name for p in result.pods] == ["b-n"] and result.broken_files == frozenset({a})
    assert [str(e) for e in result.errors] == [f"{a}: internal error while parsing (a nodelet bug, please report): "
                                               "KeyError('oops')"]
