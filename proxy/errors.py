"""The proxy package's one error tree.

Everything below :class:`ProxyError` is raised by this package; subprocess failures are translated into
:class:`BackendError` in exactly one place (``backend.py``).
"""
from __future__ import annotations


class ProxyError(Exception):
    """Base of every error the proxy package raises."""


class ServiceSpecError(ProxyError):
    """A Service / EndpointSlice / Endpoints document is invalid (permanent until the file changes).

    ``str()`` names the file, the object, the field path and the reason, e.g.
    ``svc/web.yaml: Service default/web: spec.ports[0].port: must be between 1 and 65535, got 70000``.
    """

    def __init__(self, source: str, field: str, reason: str, *, obj: str = "") -> None:
        self.source = source
        self.field = field
        self.reason = reason
        self.obj = obj
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: {self.obj}: " if self.obj else f"{self.source}: "
        return f"{where}{self.field}: {self.reason}" if self.field else f"{where}{self.reason}"


class AllocationError(ServiceSpecError):
    """A ClusterIP or nodePort cannot be given to a service (outside the range, taken, range full)."""


class BackendError(ProxyError):
    """Programming the kernel failed (iptables-restore, nft, conntrack). Retryable: the next sync is full."""

    def __init__(self, command: str, returncode: int, stderr: str, *, context: str = "") -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        self.context = context
        msg = f"{command} exited {returncode}: {stderr.strip()}"
        if context:
            msg += f"\n{context}"
        super().__init__(msg)


class BackendUnavailable(ProxyError):
    """A required tool (iptables-restore, nft, conntrack) is missing (permanent)."""
