"""v1 Status errors, shaped as the API server sends them (apimachinery `pkg/api/errors`): the one place an HTTP
error body is made. kubectl prints them as `Error from server (<reason>): <message>`."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

__all__ = ["ApiError", "already_exists", "bad_request", "conflict", "forbidden", "gone", "invalid", "json_response",
           "method_not_allowed", "not_found", "render_status", "too_large", "unauthorized", "unsupported_media_type"]

_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType",
    422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
}


class ApiError(Exception):
    """An error answer: HTTP code, Status reason, message and details (name, group, kind, causes)."""

    def __init__(self, code: int, message: str, *, reason: str = "", details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = dict(details or {})

    def status(self) -> dict[str, Any]:
        return render_status(self.code, self.message, reason=self.reason, details=self.details)

    def response(self) -> web.Response:
        return json_response(self.status(), status=self.code)


def render_status(code: int, message: str, *, reason: str = "", details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                           "reason": reason or _REASONS.get(code, "Unknown"), "code": code}
    if details:
        out["details"] = dict(details)
    return out


def json_response(obj: Any, *, status: int = 200, content_type: str = "application/json") -> web.Response:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(body=body, status=status, content_type=content_type)


def _details(resource: str, name: str, group: str = "") -> dict[str, Any]:
    d: dict[str, Any] = {"kind": resource}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    return d


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    what = f"{resource}.{group}" if group else resource
    return ApiError(404, f'{what} "{name}" not found', details=_details(resource, name, group))


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    what = f"{resource}.{group}" if group else resource
    return ApiError(409, f'{what} "{name}" already exists', reason="AlreadyExists", details=_details(resource, name, group))


def conflict(message: str) -> ApiError:
    return ApiError(409, message, reason="Conflict")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def forbidden(message: str, *, resource: str = "", name: str = "", group: str = "") -> ApiError:
    return ApiError(403, message, details=_details(resource, name, group) if resource else None)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized")


def gone(message: str) -> ApiError:
    return ApiError(410, message, reason="Expired")


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body too large: the limit is {limit} bytes")


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, f"the server does not allow this method on the requested resource ({method})")


def unsupported_media_type(ctype: str) -> ApiError:
    return ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                         f"application/json, application/yaml, application/merge-patch+json, "
                         f"application/strategic-merge-patch+json, application/apply-patch+yaml (got {ctype!r})")


def invalid(kind: str, name: str, causes: Sequence[Mapping[str, str]], *, group: str = "") -> ApiError:
    """422 Invalid with field causes ({field, reason, message}); the message lists them as the API server does."""
    what = f"{kind}.{group}" if group else kind
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    msg = f'{what} "{name}" is invalid: ' + ("[" + ", ".join(parts) + "]" if len(parts) > 1 else (parts[0] if parts else ""))
    details = {"name": name, "kind": kind, "causes": [dict(c) for c in causes]}
    if group:
        details["group"] = group
    return ApiError(422, msg, reason="Invalid", details=details)
