"""kubelet/errors.py: one tree, retryable explicit, translations in one place."""
from __future__ import annotations

import errno

import pytest

from kubelet.config import ConfigError
from kubelet.errors import NodeletError, PermanentError, RetryableError, from_os_error, from_subprocess, is_transient_os_error
from kubelet.kuberuntime.hooks import HookError
from kubelet.kuberuntime.manager import SandboxError
from kubelet.kuberuntime.projected import ProjectionError
from kubelet.kuberuntime.resources import QuantityError
from kubelet.kuberuntime.volumes import VolumeError
from kubelet.node.install import InstallError
from kubelet.node.runtime.containerd import RuntimeSetupError


@pytest.mark.parametrize("cls", [ConfigError, HookError, ProjectionError, QuantityError, VolumeError, InstallError,
                                 RuntimeSetupError])
def test_permanent_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, PermanentError) and issubclass(cls, NodeletError) and not cls.retryable  # type: ignore[attr-defined]


def test_value_errors_stay_value_errors() -> None:
    for cls in (ConfigError, QuantityError):
        assert issubclass(cls, ValueError)


def test_sandbox_error_is_retryable_and_keeps_its_reason() -> None:
    err = SandboxError("CreatePodSandboxError", "no network")
    assert isinstance(err, RetryableError) and err.retryable and (err.reason, err.message, str(err)) == ("CreatePodSandboxError", "no network", "no network")


def test_from_os_error_keeps_the_message_shape() -> None:
    err = from_os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), what="cannot set up volumes", cls=VolumeError)
    assert isinstance(err, VolumeError)
    assert err.message == "cannot set up volumes: [Errno 2] No such file or directory: '/x'"
    assert is_transient_os_error(OSError(errno.EBUSY, "busy")) and not is_transient_os_error(OSError(errno.ENOENT, "x"))


def test_from_subprocess_tail() -> None:
    err = from_subprocess(["apt-get", "install", "x"], 100, "  " + "e" * 2000 + "\n", what="packages", cls=InstallError, tail=10)
    assert err.message == "packages: `apt-get install x` exited 100: " + "e" * 10
