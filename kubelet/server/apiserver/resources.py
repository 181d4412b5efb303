"""The resources this API serves (the registry discovery, OpenAPI, handlers and tables read) and the view they come
from. The data is the agent's: the API only reads snapshots through :class:`APIView` and writes manifest files."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["APIView", "RESOURCES", "Resource", "StaticAPIView", "find_resource", "group_versions"]

READ = ("get", "list", "watch")
WRITE = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, kw_only=True)
class Resource:
    group: str  # "" for core
    version: str
    name: str  # plural
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    source: str  # the APIView method that lists it
    writable_kind: str = ""  # the manifest kind writes produce ("" = read-only)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


RESOURCES: tuple[Resource, ...] = (
    Resource(group="", version="v1", name="pods", singular="pod", kind="Pod", namespaced=True, verbs=WRITE,
             short_names=("po",), categories=("all",), source="pods", writable_kind="Pod"),
    Resource(group="", version="v1", name="services", singular="service", kind="Service", namespaced=True, verbs=WRITE,
             short_names=("svc",), categories=("all",), source="services", writable_kind="Service"),
    Resource(group="", version="v1", name="configmaps", singular="configmap", kind="ConfigMap", namespaced=True,
             verbs=WRITE, short_names=("cm",), source="configmaps", writable_kind="ConfigMap"),
    Resource(group="", version="v1", name="secrets", singular="secret", kind="Secret", namespaced=True, verbs=WRITE,
             source="secrets", writable_kind="Secret"),
    Resource(group="", version="v1", name="events", singular="event", kind="Event", namespaced=True, verbs=READ,
             short_names=("ev",), source="events"),
    Resource(group="", version="v1", name="nodes", singular="node", kind="Node", namespaced=False, verbs=READ,
             short_names=("no",), source="nodes"),
    Resource(group="", version="v1", name="namespaces", singular="namespace", kind="Namespace", namespaced=False,
             verbs=READ, short_names=("ns",), source="namespaces"),
    Resource(group="discovery.k8s.io", version="v1", name="endpointslices", singular="endpointslice",
             kind="EndpointSlice", namespaced=True, verbs=READ, source="endpoint_slices"),
    Resource(group="events.k8s.io", version="v1", name="events", singular="event", kind="Event", namespaced=True,
             verbs=READ, short_names=("ev",), source="events_v1"),
    Resource(group="metrics.k8s.io", version="v1beta1", name="pods", singular="", kind="PodMetrics", namespaced=True,
             verbs=("get", "list"), source="pod_metrics"),
    Resource(group="metrics.k8s.io", version="v1beta1", name="nodes", singular="", kind="NodeMetrics",
             namespaced=False, verbs=("get", "list"), source="node_metrics"),
)

#: subresources listed in discovery: (parent, sub, kind, verbs)
SUBRESOURCES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("pods", "log", "Pod", ("get",)),
    ("pods", "status", "Pod", ("get",)),
    ("pods", "exec", "PodExecOptions", ("create", "get")),
    ("pods", "attach", "PodAttachOptions", ("create", "get")),
    ("pods", "portforward", "PodPortForwardOptions", ("create", "get")),
)


def find_resource(group: str, version: str, name: str) -> Resource | None:
    for r in RESOURCES:
        if r.group == group and r.version == version and r.name == name:
            return r
    return None


def group_versions() -> list[tuple[str, str]]:
    """(group, version) pairs in discovery order, core first."""
    out: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in out:
            out.append((r.group, r.version))
    return out


class APIView(Protocol):
    """What the API shows: plain snapshots of Kubernetes-shaped dicts (cheap; called per request and by the watch
    poller). Implemented in kubelet/app.py from the agent; the lead re-points nodes()/pods()/endpoint_slices() to
    the cluster store in cluster mode."""

    node_name: str
    static_pod_path: str
    pod_logs_dir: str

    def pods(self) -> list[dict[str, Any]]: ...
    def events(self) -> list[dict[str, Any]]: ...  # core/v1 Events, oldest first
    def events_v1(self) -> list[dict[str, Any]]: ...  # the same as events.k8s.io/v1
    def nodes(self) -> list[dict[str, Any]]: ...
    def namespaces(self) -> list[dict[str, Any]]: ...
    def services(self) -> list[dict[str, Any]]: ...
    def endpoint_slices(self) -> list[dict[str, Any]]: ...
    def configmaps(self) -> list[dict[str, Any]]: ...
    def secrets(self) -> list[dict[str, Any]]: ...
    def pod_metrics(self) -> Any: ...  # list (or awaitable list) of PodMetrics
    def node_metrics(self) -> Any: ...
    def object_source(self, kind: str, namespace: str, name: str) -> str | None: ...  # the manifest file defining it


@dataclass(kw_only=True)
class StaticAPIView:
    """An APIView over fixed lists (unit tests, the benchmark's in-process reference). Mutate `data` to change it."""

    node_name: str = "node1"
    static_pod_path: str = "/etc/kubernetes/manifests"
    pod_logs_dir: str = "/var/log/pods"
    data: dict[str, list[dict[str, Any]]] | None = None
    sources: Mapping[tuple[str, str, str], str] | None = None

    def _get(self, key: str) -> list[dict[str, Any]]:
        return list((self.data or {}).get(key, []))

    def pods(self) -> list[dict[str, Any]]:
        return self._get("pods")

    def events(self) -> list[dict[str, Any]]:
        return self._get("events")

    def events_v1(self) -> list[dict[str, Any]]:
        from kubelet.server.apiserver.objects import compute_event_v1

        return [compute_event_v1(e) for e in self.events()]

    def nodes(self) -> list[dict[str, Any]]:
        return self._get("nodes")

    def namespaces(self) -> list[dict[str, Any]]:
        from kubelet.server.apiserver.objects import compute_namespaces

        return compute_namespaces(self)

    def services(self) -> list[dict[str, Any]]:
        return self._get("services")

    def endpoint_slices(self) -> list[dict[str, Any]]:
        return self._get("endpoint_slices")

    def configmaps(self) -> list[dict[str, Any]]:
        return self._get("configmaps")

    def secrets(self) -> list[dict[str, Any]]:
        return self._get("secrets")

    def pod_metrics(self) -> list[dict[str, Any]]:
        return self._get("pod_metrics")

    def node_metrics(self) -> list[dict[str, Any]]:
        return self._get("node_metrics")

    def object_source(self, kind: str, namespace: str, name: str) -> str | None:
        return (self.sources or {}).get((kind, namespace, name))
