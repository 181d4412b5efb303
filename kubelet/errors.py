"""One error tree for `kubelet/`: every error the agent and its tools raise is a NodeletError that says whether the
same operation may succeed later unchanged (`retryable`).

    NodeletError
    ├── PermanentError   the input or the setup is wrong: fix it (config, manifest, volume, hook, install…)
    └── RetryableError   the world may change under us: try again (runtime busy, sandbox creation, I/O that may pass)

CRI calls raise `cri.CRIError` (translated from gRPC in exactly one place, cri/errors.py; `cri` must not import
`kubelet`), which carries the same `retryable` attribute, so callers treat both trees alike. Translations from the
other libraries live here, one function each: `from_os_error` (OSError → by errno) and `from_subprocess`
(a finished command → message with its tail of output).
"""
from __future__ import annotations

import errno
import subprocess
from typing import ClassVar, Sequence, TypeVar

E = TypeVar("E", bound="NodeletError")


class NodeletError(Exception):
    """Base of every kubelet/ error; `message` is the text a user sees (no traceback needed)."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentError(NodeletError):
    """Fails again unchanged until the input (config, manifest, host setup) is fixed."""


class RetryableError(NodeletError):
    """May succeed later unchanged: the caller retries with backoff."""

    retryable = True


# errnos where the same call can pass later without anyone fixing input: busy, interrupted, out of space/memory
_TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ENOSPC, errno.ENOMEM,
                               errno.EMFILE, errno.ENFILE, errno.ECONNREFUSED, errno.ECONNRESET})


def is_transient_os_error(err: OSError) -> bool:
    return err.errno in _TRANSIENT_ERRNOS


def from_os_error(err: OSError, *, what: str, cls: type[E]) -> E:
    """`<what>: <the OSError as Python prints it>` as `cls` (the caller's subclass says what failed)."""
    return cls(f"{what}: {err}")


def from_subprocess(cmd: Sequence[str], returncode: int, output: str, *, what: str, cls: type[E], tail: int = 1500) -> E:
    """A command that exited non-zero: `<what>: `<cmd>` exited <rc>: <last `tail` chars of its output>`."""
    return cls(f"{what}: `{' '.join(cmd)}` exited {returncode}: {output.strip()[-tail:]}")


def from_subprocess_failure(cmd: Sequence[str], err: OSError | subprocess.SubprocessError, *, what: str, cls: type[E]) -> E:
    """A command that could not run or did not finish (not found, not executable, timeout)."""
    return cls(f"{what}: {' '.join(cmd)}: {err}")


__all__ = ["NodeletError", "PermanentError", "RetryableError", "from_os_error", "from_subprocess",
           "from_subprocess_failure", "is_transient_os_error"]
