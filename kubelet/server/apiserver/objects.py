"""Objects the API derives from the agent's data (pure): namespaces, events.k8s.io/v1 Events, metrics."""
from __future__ import annotations

from typing import Any

__all__ = ["BUILTIN_NAMESPACES", "compute_event_v1", "compute_namespace", "compute_namespaces"]

BUILTIN_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


def compute_namespace(name: str, created: str = "") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "creationTimestamp": created or None, "uid": f"nodelet-ns-{name}",
                         "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def compute_namespaces(view: Any, created: str = "") -> list[dict[str, Any]]:
    """The built-in namespaces plus every namespace an object of the view is in."""
    names = set(BUILTIN_NAMESPACES)
    for source in ("pods", "services", "configmaps", "secrets", "endpoint_slices"):
        for obj in getattr(view, source)():
            names.add((obj.get("metadata") or {}).get("namespace") or "default")
    return [compute_namespace(n, created) for n in sorted(names)]


def compute_event_v1(ev: dict[str, Any]) -> dict[str, Any]:
    """A core/v1 Event as events.k8s.io/v1 (k/k pkg/apis/events/v1 conversion)."""
    src = ev.get("source") or {}
    out: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": dict(ev.get("metadata") or {}),
        "eventTime": ev.get("eventTime"), "reason": ev.get("reason", ""), "note": ev.get("message", ""),
        "type": ev.get("type", ""), "regarding": dict(ev.get("involvedObject") or {}),
        "reportingController": ev.get("reportingComponent") or src.get("component", ""),
        "reportingInstance": ev.get("reportingInstance") or src.get("host", ""),
        "action": ev.get("action", ""),
        "deprecatedSource": src, "deprecatedFirstTimestamp": ev.get("firstTimestamp"),
        "deprecatedLastTimestamp": ev.get("lastTimestamp"), "deprecatedCount": ev.get("count", 1),
    }
    if ev.get("series"):
        out["series"] = ev["series"]
    return out
