"""Where the CLI finds the runtime (crictl's conventions) and the daemon's settings."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubelet.cli.common import (DEFAULT_RUNTIME_ENDPOINT, missing_socket, parse_crictl_endpoint, resolve_runtime_endpoint,
                                target_from)


def test_precedence() -> None:
    kw = dict(flag="unix:///flag", env="unix:///env", config_value="unix:///config", daemon_value="unix:///daemon", crictl_value="unix:///crictl")
    order = ["flag", "env", "config_value", "daemon_value", "crictl_value"]
    for i, key in enumerate(order):
        assert resolve_runtime_endpoint(**{k: (v if k in order[i:] else None) for k, v in kw.items()}) == kw[key]  # type: ignore[arg-type]
    assert resolve_runtime_endpoint(flag=None, env=None, config_value=None, daemon_value=None, crictl_value=None) == DEFAULT_RUNTIME_ENDPOINT


def test_crictl_yaml() -> None:
    assert parse_crictl_endpoint("runtime-endpoint: unix:///run/k3s/containerd/containerd.sock\nimage-endpoint: x\ntimeout: 2\n") == \
        "unix:///run/k3s/containerd/containerd.sock"
    assert parse_crictl_endpoint("timeout: 2\n") is None
    assert parse_crictl_endpoint(": : :\n- [") is None
    assert parse_crictl_endpoint("- a list\n") is None


def test_crictl_file_and_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crictl = tmp_path / "crictl.yaml"
    crictl.write_text("runtime-endpoint: unix:///from/crictl.sock\n")
    monkeypatch.setenv("CRI_CONFIG_FILE", str(crictl))
    monkeypatch.delenv("CONTAINER_RUNTIME_ENDPOINT", raising=False)
    t = target_from(str(tmp_path / "no-daemon.sock"), None)
    assert t.runtime_endpoint() == "unix:///from/crictl.sock"
    monkeypatch.setenv("CONTAINER_RUNTIME_ENDPOINT", "unix:///from/env.sock")
    assert target_from(str(tmp_path / "no-daemon.sock"), None).runtime_endpoint() == "unix:///from/env.sock"
    monkeypatch.delenv("CONTAINER_RUNTIME_ENDPOINT")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"containerRuntimeEndpoint": "unix:///from/config.sock", "apiSocket": str(tmp_path / "api.sock"),
                               "podLogsDir": "/srv/logs"}))
    t = target_from(None, str(cfg))
    assert (t.socket_path, t.runtime_endpoint(), t.setting("podLogsDir", "pod_logs_dir")) == (
        str(tmp_path / "api.sock"), "unix:///from/config.sock", "/srv/logs")
    assert target_from(None, str(cfg), "unix:///flag.sock").runtime_endpoint() == "unix:///flag.sock"


def test_bad_config_is_usage_error(tmp_path: Path) -> None:
    import click

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("podLogsDir: relative/path\n")
    with pytest.raises(click.exceptions.Exit) as e:
        target_from(None, str(cfg))
    assert e.value.exit_code == 2


def test_missing_socket(tmp_path: Path) -> None:
    assert missing_socket(f"unix://{tmp_path}/x.sock") == f"no socket at {tmp_path}/x.sock"
    assert missing_socket(f"{tmp_path}/x.sock") == f"no socket at {tmp_path}/x.sock"
    assert missing_socket("localhost:1234") is None
    (tmp_path / "y.sock").touch()
    assert missing_socket(f"unix:{tmp_path}/y.sock") is None
