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


def _selects(selector: dict[str, str], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _resolve_port(target: Any, pod: dict[str, Any]) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p.get("containerPort"))
    return None


def compute_endpoint_slices(services: list[dict[str, Any]], pods: list[dict[str, Any]], *, node_name: str) -> list[dict[str, Any]]:
    """One EndpointSlice per Service with a selector, from this node's pods (as the EndpointSlice controller):
    addresses of matching pods with an IP, ready = the pod's Ready condition, ports from targetPort."""
    out = []
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector:
            continue
        ns = meta.get("namespace") or "default"
        endpoints, ports = [], []
        for pod in pods:
            pm, st = pod.get("metadata") or {}, pod.get("status") or {}
            if (pm.get("namespace") or "default") != ns or not _selects(selector, pm.get("labels")) or not st.get("podIP"):
                continue
            if pm.get("deletionTimestamp"):
                continue
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
            endpoints.append({"addresses": [st["podIP"]], "conditions": {"ready": ready, "serving": ready, "terminating": False},
                              "nodeName": node_name, "targetRef": {"kind": "Pod", "namespace": ns, "name": pm.get("name"),
                                                                   "uid": pm.get("uid")}})
            if not ports:
                for p in spec.get("ports") or []:
                    port = _resolve_port(p.get("targetPort", p.get("port")), pod)
                    if port is not None:
                        ports.append({"name": p.get("name", ""), "port": port, "protocol": p.get("protocol", "TCP")})
        name = meta.get("name", "")
        out.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": f"{name}-nodelet", "namespace": ns, "creationTimestamp": meta.get("creationTimestamp"),
                                 "labels": {"kubernetes.io/service-name": name,
                                            "endpointslice.kubernetes.io/managed-by": "nodelet"}},
                    "addressType": "IPv4", "endpoints": endpoints, "ports": ports or None})
    return out
