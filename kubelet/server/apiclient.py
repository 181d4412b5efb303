"""A small synchronous client of the agent's local API (the unix socket), for the CLI."""
from __future__ import annotations

import http.client
import json
import socket
from typing import Any

__all__ = ["APIClient", "APIClientError", "APIError", "APIUnavailable", "DEFAULT_SOCKET_PATH"]

# The same path as kubelet.server.api.DEFAULT_SOCKET_PATH (a test keeps them equal): not imported from there so the CLI
# does not pay for asyncio and the server's imports.
DEFAULT_SOCKET_PATH = "/run/nodelet/nodelet.sock"


class APIClientError(Exception):
    """Base of the client's errors; str() is a one-line message for the user."""


class APIUnavailable(APIClientError):
    """Nobody answers on the socket: the daemon is not running (or not yet listening, or hung)."""

    def __init__(self, socket_path: str, detail: str = "") -> None:
        self.socket_path = socket_path
        self.detail = detail
        super().__init__(f"cannot reach the nodelet daemon at {socket_path} (is `nodelet run` running?)")


class APIError(APIClientError):
    """The daemon answered with an error (non-2xx): `code`, `reason` and `message` from its v1 Status."""

    def __init__(self, code: int, message: str, *, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        self.message = message
        super().__init__(message)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class APIClient:
    def __init__(self, socket_path: str = DEFAULT_SOCKET_PATH, *, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def get(self, path: str) -> dict[str, Any] | str:
        """GET `path` (with its query string): the decoded JSON object, or the text for text responses."""
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            try:
                conn.request("GET", path, headers={"Accept": "application/json", "User-Agent": "nodelet-cli", "Connection": "close"})
            except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as e:
                raise APIUnavailable(self.socket_path, e.strerror or str(e)) from e
            except PermissionError as e:
                raise APIError(403, f"permission denied on {self.socket_path} (the nodelet API is for root only)", reason="Forbidden") from e
            try:
                resp = conn.getresponse()
                body = resp.read()
            except (TimeoutError, socket.timeout) as e:
                raise APIUnavailable(self.socket_path, f"no answer within {self.timeout:g}s") from e
            except (ConnectionError, http.client.HTTPException) as e:
                raise APIUnavailable(self.socket_path, f"connection failed: {e}") from e
        finally:
            conn.close()
        ctype = resp.getheader("Content-Type", "")
        text = body.decode("utf-8", errors="replace")
        obj: Any = None
        if ctype.startswith("application/json"):
            try:
                obj = json.loads(text)
            except ValueError as e:
                raise APIError(resp.status, f"malformed JSON from the daemon for {path}: {e}") from e
        if not 200 <= resp.status < 300:
            if isinstance(obj, dict) and obj.get("kind") == "Status":
                raise APIError(resp.status, str(obj.get("message") or resp.reason), reason=str(obj.get("reason", "")))
            raise APIError(resp.status, text.strip() or f"{resp.status} {resp.reason}", reason=resp.reason)
        return obj if obj is not None else text
