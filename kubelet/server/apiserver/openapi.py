"""OpenAPI placeholder (filled below)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from kubelet.server.apiserver.status import ApiError


def handle(request: web.Request, segs: list[str]) -> web.Response:
    raise ApiError(404, "the server could not find the requested resource")
