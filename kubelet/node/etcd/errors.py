"""One error tree for everything the etcd client raises, translated from gRPC in exactly one place (`translate`)."""
from __future__ import annotations

import grpc


class EtcdError(Exception):
    """An etcd call failed. `retryable` says whether the same call may succeed later unchanged."""

    retryable = False

    def __init__(self, message: str, *, endpoint: str = "", rpc: str = "", code: str = "") -> None:
        self.message, self.endpoint, self.rpc, self.code = message, endpoint, rpc, code
        where = f"{rpc} on {endpoint}" if rpc and endpoint else (rpc or endpoint)
        super().__init__(f"etcd {where}: {message}" if where else f"etcd: {message}")


class ConfigError(EtcdError):
    """The client cannot be built: a bad endpoint URL, an unreadable CA/cert/key file."""


class Unavailable(EtcdError):
    """No endpoint answered (down, unreachable, refused, no leader). Retry with backoff."""

    retryable = True


class TLSError(Unavailable):
    """The TLS handshake failed (wrong CA, expired or mismatched certificate); retrying helps only once fixed."""


class DeadlineExceeded(EtcdError):
    retryable = True


class Compacted(EtcdError):
    """The revision asked for was compacted away (ErrCompacted): re-list, then watch from the new revision."""

    def __init__(self, message: str, *, compact_revision: int = 0, **kw: str) -> None:
        super().__init__(message, **kw)
        self.compact_revision = compact_revision


class LeaseNotFound(EtcdError):
    """The lease expired or was revoked (etcdserver: requested lease not found)."""


class PermissionDenied(EtcdError):
    """Authentication or authorisation refused the call."""


class RequestRejected(EtcdError):
    """Any other error etcd reported (invalid argument, too large, NOSPACE …); its message says what."""


def translate(err: grpc.RpcError, *, endpoint: str, rpc: str) -> EtcdError:
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else "") or str(err)
    name = code.name if code is not None else ""
    kw = {"endpoint": endpoint, "rpc": rpc, "code": name}
    low = details.lower()
    if "certificate" in low or "handshake" in low or "ssl" in low or "tls" in low:
        return TLSError(f"TLS handshake failed: {details}", **kw)
    if "compacted" in low:
        return Compacted(details, **kw)  # type: ignore[arg-type]
    if "lease not found" in low:
        return LeaseNotFound(details, **kw)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED) or "no leader" in low or "leader changed" in low:
        return Unavailable(details, **kw)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(details, **kw)
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return PermissionDenied(details, **kw)
    return RequestRejected(details, **kw)
