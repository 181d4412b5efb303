"""Discovery as kubectl 1.32's client-go reads it: `/version`, the legacy `/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`
lists, and the aggregated `apidiscovery.k8s.io/v2` documents when the Accept header asks for them (REF §9)."""
from __future__ import annotations

from typing import Any

from kubelet.server.apiserver.resources import RESOURCES, SUBRESOURCES, Resource, group_versions

__all__ = ["AGGREGATED_V2", "KUBE_VERSION", "compute_api_group_list", "compute_api_versions", "compute_aggregated",
           "compute_resource_list", "compute_version", "wants_aggregated"]

#: the Kubernetes API whose shapes are served; the kubectl dispatcher runs kubectl.1.<minor>
KUBE_VERSION = (1, 32, 4)
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def compute_version(nodelet_version: str) -> dict[str, Any]:
    major, minor, patch = KUBE_VERSION
    return {
        "major": str(major), "minor": str(minor),
        "gitVersion": f"v{major}.{minor}.{patch}-nodelet.{nodelet_version}",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "n/a (nodelet is Python)", "compiler": "cpython", "platform": "linux/amd64",
    }


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "v=v2;" in accept.replace(" ", "") + ";"


def compute_api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _groups() -> list[str]:
    return [g for g, _ in group_versions() if g]


def compute_api_group_list() -> dict[str, Any]:
    groups = []
    for name in _groups():
        versions = [{"groupVersion": f"{name}/{v}", "version": v} for g, v in group_versions() if g == name]
        groups.append({"name": name, "versions": versions, "preferredVersion": versions[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _subresources(r: Resource) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(sub, kind, verbs) for parent, sub, kind, verbs in SUBRESOURCES if r.group == "" and parent == r.name]


def compute_resource_list(group: str, version: str) -> dict[str, Any] | None:
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    if not rs:
        return None
    out = []
    for r in rs:
        entry: dict[str, Any] = {"name": r.name, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                                 "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub, kind, verbs in _subresources(r):
            out.append({"name": f"{r.name}/{sub}", "singularName": "", "namespaced": r.namespaced, "kind": kind,
                        "verbs": list(verbs)})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": out}


def _aggregated_group(group: str) -> dict[str, Any]:
    versions = []
    for g, v in group_versions():
        if g != group:
            continue
        resources = []
        for r in RESOURCES:
            if r.group != group or r.version != v:
                continue
            entry: dict[str, Any] = {
                "resource": r.name, "responseKind": {"group": group, "version": v, "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular or r.name,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            subs = [{"subresource": sub, "responseKind": {"group": "", "version": v, "kind": kind}, "verbs": list(verbs)}
                    for sub, kind, verbs in _subresources(r)]
            if subs:
                entry["subresources"] = subs
            resources.append(entry)
        versions.append({"version": v, "resources": resources, "freshness": "Current"})
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}


def compute_aggregated(core: bool) -> dict[str, Any]:
    """`/api` (core) or `/apis` (every named group) as an APIGroupDiscoveryList."""
    items = [_aggregated_group("")] if core else [_aggregated_group(g) for g in _groups()]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}
