"""One error tree for everything the CRI client raises, translated from gRPC in exactly one place."""
from __future__ import annotations

import grpc


class CRIError(Exception):
    """A CRI call failed. `retryable` says whether the same call may succeed later unchanged."""

    retryable = False

    def __init__(self, message: str, *, endpoint: str = "", rpc: str = "", code: str = "") -> None:
        self.message = message
        self.endpoint = endpoint
        self.rpc = rpc
        self.code = code
        where = f"{rpc} on {endpoint}" if rpc and endpoint else (rpc or endpoint)
        super().__init__(f"{where}: {message}" if where else message)


class NotFound(CRIError):
    """The sandbox, container or image does not exist (any more)."""


class AlreadyExists(CRIError):
    """A sandbox or container with that name already exists."""


class Unavailable(CRIError):
    """The runtime cannot be reached: socket missing, runtime restarting or down."""

    retryable = True


class DeadlineExceeded(CRIError):
    """The call did not finish within its deadline."""

    retryable = True


class Unimplemented(CRIError):
    """The runtime does not implement this RPC (containerd 1.6 for the newest ones)."""


class InvalidArgument(CRIError):
    """The runtime rejected the request as invalid."""


class RuntimeFailure(CRIError):
    """Any other error reported by the runtime (its message says what)."""


_BY_CODE: dict[grpc.StatusCode, type[CRIError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
}


def translate(err: grpc.RpcError, *, endpoint: str, rpc: str) -> CRIError:
    """Map a gRPC error to the CRIError subclass for its status code, naming endpoint and RPC."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else "") or ""
    cls = _BY_CODE.get(code, RuntimeFailure)
    if cls is Unavailable:
        details = f"runtime unreachable ({details.strip() or 'no details'})"
    elif cls is Unimplemented:
        details = f"not implemented by this runtime ({details.strip() or 'no details'})"
    elif cls is DeadlineExceeded:
        details = f"deadline exceeded ({details.strip() or 'no details'})"
    return cls(details, endpoint=endpoint, rpc=rpc, code=code.name if code else "")
