"""meta.k8s.io/v1 Tables with the API server's columns (k/k pkg/printers/internalversion/printers.go AddHandlers;
priority 1 = only with -o wide). Cells are computed here, so kubectl prints exactly what the server says."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from kubelet.server.printers import compute_events_rows, compute_pods_rows, parse_time, render_human_duration

__all__ = ["COLUMNS", "compute_row_cells", "render_table_object"]

Col = tuple[str, str, int, str]  # name, type, priority, description


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    t = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return render_human_duration(now - t) if t else "<unknown>"


def _pod(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    _, rows = compute_pods_rows([obj], wide=True, now=now)
    r = rows[0]
    return [r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]]


def _node(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    meta, st = obj.get("metadata") or {}, obj.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    status = "Ready" if conds.get("Ready") == "True" else ("NotReady" if "Ready" in conds else "Unknown")
    if (obj.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (meta.get("labels") or {}) if k.startswith("node-role.kubernetes.io/"))
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    info = st.get("nodeInfo") or {}
    return [meta.get("name", ""), status, ",".join(roles) or "<none>", _age(obj, now), info.get("kubeletVersion", ""),
            addrs.get("InternalIP") or "<none>", addrs.get("ExternalIP") or "<none>", info.get("osImage", "<unknown>"),
            info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion", "<unknown>")]


def _event(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    _, rows = compute_events_rows([obj], wide=True, now=now)
    last, type_, reason, target, sub, source, message, first, count, name = rows[0]
    return [last, type_, reason, target, sub, source, message, first, int(count), name]


def _service(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    type_ = spec.get("type") or "ClusterIP"
    ext = [i.get("ip") or i.get("hostname") for i in (st.get("loadBalancer") or {}).get("ingress") or []]
    ext += spec.get("externalIPs") or []
    if type_ == "ExternalName":
        ext_s = spec.get("externalName") or "<none>"
    else:
        ext_s = ",".join(x for x in ext if x) or ("<pending>" if type_ == "LoadBalancer" else "<none>")
    ports = []
    for p in spec.get("ports") or []:
        s = f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort") and type_ in ("NodePort", "LoadBalancer"):
            s = f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        ports.append(s)
    sel = spec.get("selector") or {}
    return [meta.get("name", ""), type_, spec.get("clusterIP") or "<none>", ext_s, ",".join(ports) or "<none>",
            _age(obj, now), ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"]


def _endpointslice(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    ports = [str(p.get("port")) for p in obj.get("ports") or [] if p.get("port") is not None]
    addrs = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
    return [(obj.get("metadata") or {}).get("name", ""), obj.get("addressType", ""), ",".join(ports) or "<unset>",
            shown or "<unset>", _age(obj, now)]


def _configmap(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    n = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [(obj.get("metadata") or {}).get("name", ""), n, _age(obj, now)]


def _secret(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    n = len(obj.get("data") or {}) + len(obj.get("stringData") or {})
    return [(obj.get("metadata") or {}).get("name", ""), obj.get("type") or "Opaque", n, _age(obj, now)]


def _namespace(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [(obj.get("metadata") or {}).get("name", ""), (obj.get("status") or {}).get("phase", ""), _age(obj, now)]


_NAME = ("Name", "string", 0, "Name must be unique within a namespace.")
_AGE = ("Age", "string", 0, "CreationTimestamp is a timestamp representing the server time when this object was created.")

COLUMNS: dict[str, tuple[tuple[Col, ...], Callable[[Mapping[str, Any], datetime], list[Any]]]] = {
    "pods": ((_NAME, ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
              ("Status", "string", 0, "The aggregate status of the containers in this pod."),
              ("Restarts", "string", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
              _AGE, ("IP", "string", 1, "IP address allocated to the pod. Routable at least within the cluster."),
              ("Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."),
              ("Nominated Node", "string", 1, "nominatedNodeName is set only when this pod preempts other pods on the node."),
              ("Readiness Gates", "string", 1, "If specified, all readiness gates will be evaluated for pod readiness.")), _pod),
    "nodes": ((_NAME, ("Status", "string", 0, "The status of the node"), ("Roles", "string", 0, "The roles of the node"),
               _AGE, ("Version", "string", 0, "Kubelet Version reported by the node."),
               ("Internal-IP", "string", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
               ("External-IP", "string", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
               ("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
               ("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
               ("Container-Runtime", "string", 1, "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).")), _node),
    "events": ((("Last Seen", "string", 0, "The last time this event was observed."), ("Type", "string", 0, "Type of this event."),
                ("Reason", "string", 0, "Short, machine understandable string that gives the reason for this event being generated."),
                ("Object", "string", 0, "The object this event is about."),
                ("Subobject", "string", 1, "The subobject this event is about."),
                ("Source", "string", 1, "The component reporting this event."),
                ("Message", "string", 0, "A human-readable description of the status of this operation."),
                ("First Seen", "string", 1, "The first time this event was observed."),
                ("Count", "integer", 1, "The number of times this event has occurred."),
                ("Name", "string", 1, "Name must be unique within a namespace.")), _event),
    "services": ((_NAME, ("Type", "string", 0, "The type of the service."), ("Cluster-IP", "string", 0, "The IP address of the service."),
                  ("External-IP", "string", 0, "The external IP address of the service."),
                  ("Port(s)", "string", 0, "The ports exposed by the service."), _AGE,
                  ("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector.")), _service),
    "endpointslices": ((_NAME, ("AddressType", "string", 0, "The IP protocol family for this EndpointSlice."),
                        ("Ports", "string", 0, "The ports exposed by this EndpointSlice."),
                        ("Endpoints", "string", 0, "The endpoints of this EndpointSlice."), _AGE), _endpointslice),
    "configmaps": ((_NAME, ("Data", "string", 0, "Data contains the configuration data."), _AGE), _configmap),
    "secrets": ((_NAME, ("Type", "string", 0, "The type of the secret"), ("Data", "string", 0, "The number of entries in the secret"), _AGE), _secret),
    "namespaces": ((_NAME, ("Status", "string", 0, "The status of the namespace"), _AGE), _namespace),
}
_DEFAULT: tuple[tuple[Col, ...], Callable[[Mapping[str, Any], datetime], list[Any]]] = (
    (_NAME, _AGE), lambda o, now: [(o.get("metadata") or {}).get("name", ""), _age(o, now)])


def compute_row_cells(resource: str, obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return COLUMNS.get(resource, _DEFAULT)[1](obj, now)


def _partial(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def render_table_object(resource: str, objs: Sequence[Mapping[str, Any]], *, include_object: str = "Metadata",
                        list_meta: Mapping[str, Any] | None = None, with_columns: bool = True,
                        now: datetime | None = None) -> dict[str, Any]:
    """A Table of `objs` (`includeObject`: None | Metadata | Object, as the API server's)."""
    now = now or datetime.now(timezone.utc)
    cols, cells = COLUMNS.get(resource, _DEFAULT)
    rows = []
    for o in objs:
        row: dict[str, Any] = {"cells": cells(o, now)}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = _partial(o)
        rows.append(row)
    definitions = [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": d, "priority": p}
                   for n, t, p, d in cols] if with_columns else []
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": dict(list_meta or {}),
            "columnDefinitions": definitions, "rows": rows}
