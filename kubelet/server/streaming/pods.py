"""Which pod and container a streaming request means, and the Status bodies its errors carry."""
from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from cri import api

__all__ = ["APIViewLocator", "PodLocator", "RuntimeViewLocator", "StreamTarget", "forbidden_for", "locator_for",
           "render_status", "status_response"]


@dataclass(frozen=True, kw_only=True)
class StreamTarget:
    namespace: str
    name: str
    sandbox_id: str  # the newest sandbox ("" when none)
    sandbox_ready: bool
    containers: Mapping[str, tuple[str, bool]] = field(default_factory=dict)  # name → (newest container id, running)


class PodLocator(Protocol):
    async def find(self, namespace: str, name: str) -> StreamTarget | None:
        ...


class RuntimeViewLocator:
    """Looks pods up in `kubelet.kuberuntime.view.RuntimeView` (what the runtime runs, by CRI labels)."""

    def __init__(self, view: Any) -> None:
        self.view = view

    async def find(self, namespace: str, name: str) -> StreamTarget | None:
        pods = await self.view.all_pods()
        for p in pods.values():
            if p.namespace == namespace and p.name == name:
                sb = p.newest_sandbox
                containers: dict[str, tuple[str, bool]] = {}
                for c in p.containers:  # newest first
                    if c.name not in containers:
                        containers[c.name] = (c.id, c.running)
                return StreamTarget(namespace=namespace, name=name, sandbox_id=sb.id if sb else "",
                                    sandbox_ready=bool(sb and sb.ready), containers=containers)
        return None


class APIViewLocator:
    """Looks pods up in the Kubernetes API's view (`kubelet.server.apiserver.resources.APIView`: v1 Pod dicts), by
    the same rule as the API's pod routes (exact name, else the static pod's `<name>-<nodeName>`); the sandbox id,
    which a Pod object does not carry, comes from the runtime by the pod-UID label."""

    def __init__(self, view: Any, runtime: Any) -> None:
        self.view, self.runtime = view, runtime

    async def find(self, namespace: str, name: str) -> StreamTarget | None:
        from kubelet.server.apiserver.handlers import find_pod
        from kubelet.server.apiserver.status import ApiError

        pods = self.view.pods()
        if inspect.isawaitable(pods):
            pods = await pods
        try:
            pod = find_pod(pods, namespace, name, self.view.node_name)
        except ApiError:
            return None
        status = pod.get("status") or {}
        containers: dict[str, tuple[str, bool]] = {}
        for cs in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
            cid = str(cs.get("containerID") or "").partition("://")[2]
            if cs.get("name") and cid:
                containers[cs["name"]] = (cid, "running" in (cs.get("state") or {}))
        sandbox_id, ready = "", False
        uid = (pod.get("metadata") or {}).get("uid", "")
        if uid and self.runtime is not None:
            from kubelet.types import LABEL_POD_UID

            sandboxes = sorted(await self.runtime.list_pod_sandboxes(labels={LABEL_POD_UID: uid}),
                               key=lambda sb: sb.created_at, reverse=True)
            if sandboxes:
                sandbox_id, ready = sandboxes[0].id, sandboxes[0].state == api.SandboxState.READY
        return StreamTarget(namespace=namespace, name=str(pod["metadata"].get("name", name)), sandbox_id=sandbox_id,
                            sandbox_ready=ready, containers=containers)


def locator_for(app: web.Application) -> PodLocator:
    """`app["nodelet.streaming.locator"]` if the wiring set one; else built over `app["nodelet.view"]`: the API's
    APIView (has `pods()`), a `RuntimeView` (has `all_pods()`), or anything with `find()`."""
    loc = app.get("nodelet.streaming.locator")
    if loc is not None:
        return loc
    view = app["nodelet.view"]
    if hasattr(view, "find"):
        return view
    if hasattr(view, "all_pods"):
        return RuntimeViewLocator(view)
    return APIViewLocator(view, app.get("nodelet.runtime"))


def forbidden_for(request: web.Request, verb: str) -> web.Response | None:
    """A 403 for an identity that may not write (exec/attach/portforward are `create` on pods/<verb>): the API's
    middleware checks POST itself, the WebSocket GET upgrade is checked here. No identity on the request means no
    authenticating middleware in front (a test app)."""
    if "nodelet.user" not in request:
        return None
    user = request["nodelet.user"]
    if user is not None and getattr(user, "can_write", False):
        return None
    who = getattr(user, "name", "system:anonymous")
    ns, name = request.match_info["namespace"], request.match_info["name"]
    return status_response(403, f'pods "{name}" is forbidden: User "{who}" cannot create resource "pods/{verb}" '
                                f'in API group "" in the namespace "{ns}"',
                           details={"name": name, "kind": f"pods/{verb}"})


def render_status(code: int, reason: str, message: str, *, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "code": code}
    if details:
        st["details"] = dict(details)
    return st


_REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 500: "InternalError", 503: "ServiceUnavailable"}


def status_response(code: int, message: str, *, reason: str = "", details: Mapping[str, Any] | None = None) -> web.Response:
    body = render_status(code, reason or _REASONS.get(code, "Unknown"), message, details=details)
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")
