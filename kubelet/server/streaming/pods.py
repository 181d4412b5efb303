"""Which pod and container a streaming request means, and the Status bodies its errors carry."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

__all__ = ["PodLocator", "RuntimeViewLocator", "StreamTarget", "locator_for", "status_response", "render_status"]


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


def locator_for(app: web.Application) -> PodLocator:
    """`app["nodelet.streaming.locator"]` if the wiring set one, else the runtime view in `app["nodelet.view"]`."""
    loc = app.get("nodelet.streaming.locator")
    if loc is not None:
        return loc  # type: ignore[no-any-return]
    view = app["nodelet.view"]
    return view if hasattr(view, "find") else RuntimeViewLocator(view)


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
