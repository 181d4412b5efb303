"""`nodelet validate`, `version` and `logs` with exact output: the CLI through CliRunner against a real LocalAPI over
fixed data (StaticView) and CRI log files in a temp dir."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubelet.server.api import StaticView
from kubelet.cli.main import cli
from kubelet.cli.logs import compute_log_file
from kubelet.cli.testing import ServerThread, write_cri_log
from kubelet.cli.version import CLIENT_VERSION

UID = "0f1e2d3c"


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def tmp() -> Iterator[Path]:
    d = tempfile.mkdtemp(prefix=f"nodelet-cli8-{os.getpid()}-")
    try:
        yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- validate ----------------------------------------------------------------------------------------------------------

BAD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: c
    image: busybox
    ports:
    - containerPort: 99999
"""
GOOD = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: c, image: busybox}]\n"
SVC = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n"


def test_validate_dir_reports_file_line_and_exits_1(tmp: Path) -> None:
    (tmp / "a.yaml").write_text(BAD)
    (tmp / "b.yaml").write_text(GOOD)
    (tmp / "c.yaml").write_text(SVC)
    (tmp / "notes.txt").write_text("ignored")
    assert invoke("validate", "--node-name", "n1", str(tmp)) == (1, (
        f"{tmp}/a.yaml:10: spec.containers[0].ports[0].containerPort: Invalid value: 99999: must be between 1 and 65535, inclusive\n"
    ), f"{tmp}: 3 files, 1 pod, 1 Service valid; 1 error in 1 file\n")


def test_validate_file_ok_quiet_and_missing(tmp: Path) -> None:
    (tmp / "b.yaml").write_text(GOOD)
    assert invoke("validate", "--node-name", "n1", str(tmp / "b.yaml")) == (0, f"{tmp}/b.yaml: 1 file, 1 pod valid\n", "")
    assert invoke("validate", "-q", "--node-name", "n1", str(tmp / "b.yaml")) == (0, "", "")
    assert invoke("validate", str(tmp / "nope.yaml")) == (1, "", f"nodelet: {tmp}/nope.yaml: no such file or directory\n")
    assert invoke("validate")[0] == 2


def test_validate_duplicate_across_files(tmp: Path) -> None:
    (tmp / "a.yaml").write_text(GOOD)
    (tmp / "b.yaml").write_text(GOOD)
    code, out, _ = invoke("validate", "--node-name", "n1", str(tmp))
    assert code == 1 and out.startswith(f"{tmp}/b.yaml:3: metadata.name: ") and "a.yaml" in out, out


# --- version -------------------------------------------------------------------------------------------------------------

def test_client_version_matches_agent() -> None:
    from kubelet.lifecycle.agent import VERSION

    assert CLIENT_VERSION == VERSION
    assert invoke("version", "--client") == (0, f"Client Version: nodelet {VERSION}\n", "")


def test_version_daemon_up_runtime_down(tmp: Path) -> None:
    sock = str(tmp / "api.sock")
    with ServerThread(StaticView(node_info={"name": "node1", "nodeletVersion": "0.1.0"}), sock):
        code, out, err = invoke("version", "--socket", sock, "-r", f"unix://{tmp}/no-cri.sock")
    assert (code, out) == (1, (
        f"Client Version: nodelet {CLIENT_VERSION}\n"
        f"Daemon Version: nodelet 0.1.0 (node node1, {sock})\n"
        "Runtime Version: unreachable\n"))
    assert err.startswith(f"nodelet: cannot reach the container runtime at unix://{tmp}/no-cri.sock: ") and err.endswith("(try --runtime-endpoint)\n")


def test_version_daemon_down(tmp: Path) -> None:
    code, out, err = invoke("version", "--socket", str(tmp / "none.sock"), "-r", f"unix://{tmp}/no-cri.sock")
    assert code == 1 and "Daemon Version: not running\n" in out
    assert f"nodelet: cannot reach the nodelet daemon at {tmp}/none.sock (is `nodelet run` running?)\n" in err


# --- logs ----------------------------------------------------------------------------------------------------------------

def _pod(restarts: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-n1", "namespace": "default", "uid": UID},
        "spec": {"containers": [{"name": "app"}, {"name": "side"}], "initContainers": [{"name": "init"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "app", "restartCount": restarts, "containerID": "containerd://c1", "state": {"running": {}}},
            {"name": "side", "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]},
    }


T0, T1, T2 = "2026-01-10T12:00:00.1Z", "2026-01-10T12:00:01.2Z", "2026-01-10T12:00:02.3Z"


@pytest.fixture
def logs_api(tmp: Path) -> Iterator[tuple[str, Path]]:
    logs = tmp / "pods"
    cdir = logs / f"default_web-n1_{UID}" / "app"
    write_cri_log(str(cdir / "0.log"), [(T0, "stdout", "F", "first run")])
    write_cri_log(str(cdir / "1.log.20260110-120001"), [(T1, "stdout", "P", "rot"), (T1, "stdout", "F", "ated")])
    write_cri_log(str(cdir / "1.log"), [(T2, "stderr", "F", "to stderr"), (T2, "stdout", "F", "last")])
    sock = str(tmp / "api.sock")
    view = StaticView(pod_list=[_pod()], node_info={"name": "n1", "podLogsDir": str(logs)})
    with ServerThread(view, sock):
        yield sock, tmp


def test_logs_current_with_rotated_and_default_container(logs_api: tuple[str, Path]) -> None:
    sock, _ = logs_api
    assert invoke("logs", "web-n1", "--socket", sock) == (
        0, "rotated\nto stderr\nlast\n", 'Defaulted container "app" out of: app, side, init (init)\n')


def test_logs_options(logs_api: tuple[str, Path]) -> None:
    sock, _ = logs_api
    assert invoke("logs", "web-n1", "-c", "app", "--tail", "1", "--timestamps", "--socket", sock) == (0, f"{T2} last\n", "")
    assert invoke("logs", "web-n1", "-c", "app", "--previous", "--socket", sock) == (0, "first run\n", "")
    assert invoke("logs", "web-n1", "-c", "app", "--since", "1h", "--socket", sock) == (0, "", "")  # all lines are from 2026-01-10


def test_logs_errors(logs_api: tuple[str, Path]) -> None:
    sock, _ = logs_api
    assert invoke("logs", "web-n1", "-c", "nope", "--socket", sock) == (
        1, "", "nodelet: container nope is not valid for pod web-n1: choose one of: [init app side]\n")
    assert invoke("logs", "web-n1", "-c", "side", "--socket", sock) == (
        1, "", 'nodelet: container "side" in pod "web-n1" has no logs yet (ContainerCreating)\n')
    assert invoke("logs", "missing", "--socket", sock) == (
        1, "", 'nodelet: pods "missing" not found in namespace default (try `nodelet get pods -A`)\n')
    assert invoke("logs", "web-n1", "-c", "app", "-p", "-f", "--socket", sock)[0] == 2
    assert invoke("logs", "web-n1", "--since", "soon", "--socket", sock)[0] == 2


def test_compute_log_file() -> None:
    files = {0: "0.log", 1: "1.log", 3: "3.log"}
    assert compute_log_file(files, restart_count=3, previous=False) == "3.log"
    assert compute_log_file(files, restart_count=3, previous=True) == "1.log"
    assert compute_log_file(files, restart_count=7, previous=False) == "3.log"  # newest when the count's file is gone
    assert compute_log_file({0: "0.log"}, restart_count=0, previous=True) is None
    assert compute_log_file({}, restart_count=0, previous=False) is None
