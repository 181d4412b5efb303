"""nodelet's CRI v1 client: typed values (`cri.api`), the async client and one error tree."""
from cri.api import ContainerId, SandboxId
from cri.client import DEFAULT_ENDPOINT, RuntimeClient, normalize_endpoint, wait_until_ready
from cri.errors import (
    AlreadyExists,
    CRIError,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    RuntimeFailure,
    Unavailable,
    Unimplemented,
)

__all__ = [
    "AlreadyExists",
    "CRIError",
    "ContainerId",
    "DEFAULT_ENDPOINT",
    "DeadlineExceeded",
    "InvalidArgument",
    "NotFound",
    "RuntimeClient",
    "RuntimeFailure",
    "SandboxId",
    "Unavailable",
    "Unimplemented",
    "normalize_endpoint",
    "wait_until_ready",
]
