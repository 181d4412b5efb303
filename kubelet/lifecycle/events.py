"""Kubernetes-style events kept in a bounded in-memory list (newest last), with kubelet-like deduplication."""
from __future__ import annotations

import collections
import itertools
import logging
from typing import Any

from kubelet.clock import Clock, RealClock, rfc3339

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


def _container_kind(pod: Any, container: str) -> str:
    """The field of the pod spec that holds the container, as in the kubelet's object references."""
    inits = getattr(getattr(pod, "spec", None), "init_containers", ())
    return "initContainers" if any(c.name == container for c in inits) else "containers"


class EventRecorder:
    def __init__(self, *, host: str, capacity: int = 1000, clock: Clock | None = None) -> None:
        self.host = host
        self.clock = clock or RealClock()
        self._events: collections.OrderedDict[tuple[Any, ...], dict[str, Any]] = collections.OrderedDict()
        self._capacity = capacity
        self._seq = itertools.count(1)

    def record(
        self,
        *,
        kind: str,
        name: str,
        namespace: str = "",
        uid: str = "",
        field_path: str = "",
        type: str = NORMAL,
        reason: str,
        message: str,
    ) -> None:
        key = (kind, namespace, name, uid, field_path, type, reason, message)
        now = rfc3339(self.clock.now())
        ev = self._events.pop(key, None)
        if ev is not None:
            ev["count"] += 1
            ev["lastTimestamp"] = now
        else:
            n = next(self._seq)
            ev = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name}.{n:x}", "namespace": namespace or "default"},
                "involvedObject": {"kind": kind, "name": name, "namespace": namespace, "uid": uid, "apiVersion": "v1"}
                | ({"fieldPath": field_path} if field_path else {}),
                "reason": reason,
                "message": message,
                "type": type,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": "nodelet", "host": self.host},
                "reportingComponent": "nodelet",
                "reportingInstance": self.host,
            }
        self._events[key] = ev
        while len(self._events) > self._capacity:
            self._events.popitem(last=False)
        logger = log.warning if type == WARNING else log.info
        logger("event object=%s/%s/%s%s reason=%s msg=%s", kind, namespace, name, f"[{field_path}]" if field_path else "", reason, message)

    def pod(self, pod: Any, *, reason: str, message: str, type: str = NORMAL, container: str = "") -> None:
        self.record(
            kind="Pod",
            name=pod.name,
            namespace=pod.namespace,
            uid=pod.uid,
            field_path=f"spec.{_container_kind(pod, container)}{{{container}}}" if container else "",
            type=type,
            reason=reason,
            message=message,
        )

    def node(self, *, reason: str, message: str, type: str = NORMAL) -> None:
        self.record(kind="Node", name=self.host, uid=self.host, type=type, reason=reason, message=message)

    def list(self, *, namespace: str | None = None, uid: str | None = None) -> list[dict[str, Any]]:
        out = list(self._events.values())
        if namespace is not None:
            out = [e for e in out if e["involvedObject"]["namespace"] == namespace]
        if uid is not None:
            out = [e for e in out if e["involvedObject"]["uid"] == uid]
        return sorted(out, key=lambda e: e["lastTimestamp"])
