"""Rebuild the corpus: Pod manifests (and Pod templates of workloads, turned into Pods) from upstream repositories.

Usage: python3 tests/data/corpus/build.py REPO=GITDIR…   (GITDIR: a clone of REPO, read at its HEAD)

Each Pod is written to pods/<n>.yaml exactly as upstream wrote it (a workload's template becomes a Pod named after
the workload, in its namespace); index.json records each file's repository, path, commit and document index. Files
that are not plain manifests (templates with {{ }}, kustomize patches) are skipped. A StatefulSet's Pod gets the
claims of its volumeClaimTemplates as the controller adds them. Extra files added by hand
(see index.json entries with "added": "by hand") are kept.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}


def to_pod(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        pod = dict(doc)
        pod.pop("status", None)
        return pod
    if kind not in WORKLOADS:
        return None
    spec = doc.get("spec") or {}
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return None
    meta = dict(template.get("metadata") or {})
    outer = doc.get("metadata") or {}
    meta["name"] = outer.get("name") or meta.get("name")
    if outer.get("namespace"):
        meta["namespace"] = outer["namespace"]
    if not meta.get("name"):
        return None
    pod_spec = dict(template["spec"])
    if kind == "StatefulSet":  # as the StatefulSet controller does for pod 0: one claim per volumeClaimTemplate
        claims = [t.get("metadata", {}).get("name") for t in spec.get("volumeClaimTemplates") or []]
        pod_spec["volumes"] = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims] + [
            {"name": c, "persistentVolumeClaim": {"claimName": f"{c}-{meta['name']}-0"}} for c in claims if c]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}


def main(args: list[str]) -> None:
    index_path = HERE / "index.json"
    old = json.loads(index_path.read_text()) if index_path.exists() else []
    kept = [e for e in old if e.get("added") == "by hand"]
    entries: list[dict[str, Any]] = list(kept)
    pods_dir = HERE / "pods"
    pods_dir.mkdir(exist_ok=True)
    keep_files = {e["file"] for e in kept}
    for f in pods_dir.iterdir():
        if f.name not in keep_files:
            f.unlink()
    n = 0  # hand-added files are named w<n>.yaml, built ones <n>.yaml
    for arg in args:
        repo, gitdir = arg.split("=", 1)
        commit = subprocess.run(["git", "-C", gitdir, "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        names = subprocess.run(["git", "-C", gitdir, "ls-tree", "-r", "--name-only", commit], capture_output=True,
                               text=True, check=True).stdout.split("\n")
        for path in sorted(p for p in names if p.endswith((".yaml", ".yml")) and "patch" not in p):
            text = subprocess.run(["git", "-C", gitdir, "show", f"{commit}:{path}"], capture_output=True,
                                  check=True).stdout.decode("utf-8", "replace")
            if "{{" in text or "$patch" in text:  # templates and patches are not manifests
                continue
            try:
                docs = list(yaml.safe_load_all(text))
            except yaml.YAMLError:
                continue
            for i, doc in enumerate(docs):
                pod = to_pod(doc) if isinstance(doc, dict) else None
                if pod is None:
                    continue
                n += 1
                name = f"{n:04d}.yaml"
                (pods_dir / name).write_text(yaml.safe_dump(pod, sort_keys=False, allow_unicode=True))
                entries.append({"file": name, "repository": repo, "path": path, "commit": commit, "document": i,
                                "kind": doc["kind"]})
    index_path.write_text(json.dumps(entries, indent=1) + "\n")
    print(f"{len(entries)} pods")


if __name__ == "__main__":
    main(sys.argv[1:])
