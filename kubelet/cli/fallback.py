"""When the daemon is down: the node's pods rebuilt from the CRI alone (sandboxes and containers carry the kubelet's
`io.kubernetes.pod.*` labels), as v1-Pod-shaped dicts the printers understand. Readiness from probes is unknown here:
a running container counts as ready."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from kubelet.lifecycle.statusfmt import render_running, render_terminated, render_time

__all__ = ["ANN_LOG_DIRECTORY", "compute_runtime_pods", "list_runtime_pods"]

#: on pods rebuilt from the runtime: the pod's log directory as the runtime reports it (CRI ContainerStatus.log_path)
ANN_LOG_DIRECTORY = "nodelet.io/log-directory"

_POD_NAME = "io.kubernetes.pod.name"
_POD_NAMESPACE = "io.kubernetes.pod.namespace"
_POD_UID = "io.kubernetes.pod.uid"
_CONTAINER_NAME = "io.kubernetes.container.name"
_MANAGED_BY = "io.nodelet.node"
_RESTART_COUNT = "io.kubernetes.container.restartCount"
_CONTAINER_TYPE = "io.nodelet.container.type"
_INTERNAL_PREFIXES = ("io.kubernetes.", "io.nodelet.")


_rfc = render_time


def _state(c: Any) -> dict[str, Any]:
    name = c.state.name
    if name == "RUNNING":
        return render_running(c)
    if name == "EXITED":
        return {"terminated": render_terminated(c, "containerd")}
    return {"waiting": {"reason": "ContainerCreating" if name == "CREATED" else "Unknown"}}


def compute_runtime_pods(sandboxes: Sequence[Any], sandbox_ips: Mapping[str, str], containers: Sequence[Any]) -> list[dict[str, Any]]:
    """Pods from CRI sandboxes (newest per UID wins), their IPs and ContainerStatus values (all instances)."""
    pods: dict[str, dict[str, Any]] = {}
    for s in sorted(sandboxes, key=lambda s: s.created_at):
        uid = s.labels.get(_POD_UID) or s.metadata.uid
        ready = s.state.name == "READY"
        labels = {k: v for k, v in s.labels.items() if not k.startswith(_INTERNAL_PREFIXES)}
        pods[uid] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": s.labels.get(_POD_NAME) or s.metadata.name,
                         "namespace": s.labels.get(_POD_NAMESPACE) or s.metadata.namespace, "uid": uid,
                         "creationTimestamp": _rfc(s.created_at), "labels": labels},
            "spec": {"nodeName": s.labels.get(_MANAGED_BY, ""), "containers": [], "initContainers": []},
            "status": {"phase": "Pending", "containerStatuses": [], "initContainerStatuses": [], "sandboxReady": ready},
        }
        if ready and sandbox_ips.get(s.id):  # omitted, not "", when there is none (as the API server does)
            pods[uid]["status"]["podIP"] = sandbox_ips[s.id]
            pods[uid]["status"]["podIPs"] = [{"ip": sandbox_ips[s.id]}]
    by_name: dict[tuple[str, str], list[Any]] = {}
    for c in containers:
        uid = c.labels.get(_POD_UID)
        if uid in pods:
            by_name.setdefault((uid, c.labels.get(_CONTAINER_NAME) or c.name), []).append(c)
    for (uid, name), instances in sorted(by_name.items()):
        instances.sort(key=lambda c: (c.attempt, c.created_at), reverse=True)
        latest = instances[0]
        pod = pods[uid]
        init = latest.annotations.get(_CONTAINER_TYPE) == "init"
        try:
            restarts = int(latest.annotations.get(_RESTART_COUNT, latest.attempt))
        except ValueError:
            restarts = latest.attempt
        st: dict[str, Any] = {"name": name, "image": latest.image, "imageID": latest.image_ref,
                              "containerID": f"containerd://{latest.id}", "restartCount": restarts,
                              "ready": latest.state.name == "RUNNING", "started": latest.state.name == "RUNNING",
                              "state": _state(latest), "lastState": {}}
        if latest.log_path:  # not a v1 field: the runtime's log directory goes into an annotation for `nodelet logs`
            pod["metadata"].setdefault("annotations", {})[ANN_LOG_DIRECTORY] = os.path.dirname(
                os.path.dirname(latest.log_path))
        if len(instances) > 1 and instances[1].state.name == "EXITED":
            st["lastState"] = _state(instances[1])
        pod["spec"]["initContainers" if init else "containers"].append({"name": name, "image": latest.image})
        pod["status"]["initContainerStatuses" if init else "containerStatuses"].append(st)
    for pod in pods.values():
        status = pod["status"]
        regular = status["containerStatuses"]
        if regular and all("running" in c["state"] for c in regular):
            status["phase"] = "Running"
        elif regular and all("terminated" in c["state"] for c in regular):
            status["phase"] = "Succeeded" if all(c["state"]["terminated"]["exitCode"] == 0 for c in regular) else "Failed"
        elif any("running" in c["state"] for c in regular):
            status["phase"] = "Running"
        ready = bool(regular) and all(c["ready"] for c in regular)
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
        if not pod["spec"]["initContainers"]:
            del pod["spec"]["initContainers"], status["initContainerStatuses"]
        del status["sandboxReady"]
    return sorted(pods.values(), key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))


async def list_runtime_pods(client: Any, *, node: str | None = None) -> list[dict[str, Any]]:
    """The pods nodelet made (label io.nodelet.node, of `node` when given) as the runtime shows them."""
    import cri

    sel = {_MANAGED_BY: node} if node else {}
    sandboxes = [s for s in await client.list_pod_sandboxes(labels=sel) if _MANAGED_BY in s.labels]
    ips: dict[str, str] = {}
    for s in sandboxes:
        if s.state.name == "READY":
            try:
                ips[s.id] = (await client.pod_sandbox_status(s.id)).ip
            except cri.NotFound:
                pass
    statuses = []
    for c in await client.list_containers(labels=sel):
        if _MANAGED_BY not in c.labels:
            continue
        try:
            statuses.append(await client.container_status(c.id))
        except cri.NotFound:
            continue
    return compute_runtime_pods(sandboxes, ips, statuses)
