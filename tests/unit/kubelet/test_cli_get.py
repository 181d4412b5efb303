"""`nodelet get pods|events` through click's CliRunner against a real LocalAPI (own loop in a thread)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import click
import pytest
import yaml
from click.testing import CliRunner

from kubelet.cli import get as cli_get
from kubelet.server.api import LocalAPI, StaticView
from kubelet.cli.get import get_group

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod(name: str, ns: str, *, created: str, containers: list[dict], phase: str = "Running", labels: dict | None = None,
         ip: str = "10.88.0.9") -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "labels": labels or {}},
        "spec": {"nodeName": "node1", "containers": [{"name": c["name"], "image": "busybox"} for c in containers]},
        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "containerStatuses": containers,
                   "conditions": [{"type": "Ready", "status": "True" if phase == "Running" else "False"}]},
    }


RUNNING = {"name": "web", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": ago(hours=1)}}}
CRASH = {"name": "app", "ready": False, "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(minutes=5)}}}
PODS = [
    _pod("web-node1", "default", created=ago(hours=3, minutes=4), containers=[RUNNING], labels={"app": "web"}),
    _pod("crash-node1", "default", created=ago(days=2, hours=3), containers=[CRASH], labels={"app": "crash"}, ip="10.88.0.10"),
    _pod("etcd-node1", "kube-system", created=ago(seconds=45), containers=[RUNNING], labels={"component": "etcd"}, ip="10.88.0.11"),
]
EVENTS = [
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "crash-node1.1", "namespace": "default"},
     "involvedObject": {"kind": "Pod", "name": "crash-node1", "namespace": "default"}, "reason": "BackOff",
     "message": "Back-off restarting failed container app", "type": "Warning", "count": 4,
     "firstTimestamp": ago(minutes=4), "lastTimestamp": ago(seconds=30)},
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "etcd-node1.2", "namespace": "kube-system"},
     "involvedObject": {"kind": "Pod", "name": "etcd-node1", "namespace": "kube-system"}, "reason": "Started",
     "message": "Started container etcd", "type": "Normal", "count": 1,
     "firstTimestamp": ago(seconds=40), "lastTimestamp": ago(seconds=40)},
]


class ServerThread:
    """A LocalAPI on its own event loop in a thread, so the synchronous CLI can call it."""

    def __init__(self, view: StaticView, path: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.api = LocalAPI(view, socket_path=path, healthz_port=None)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.api.start(), self.loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def sock_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=f"nodelet-cli-{os.getpid()}-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(sock_dir: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(cli_get, "_now", lambda: NOW)
    path = os.path.join(sock_dir, "nodelet.sock")
    with ServerThread(StaticView(pod_list=PODS, event_list=EVENTS), path):
        yield path


def run(path: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(get_group, [*args, "--socket", path], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_get_pods_table(server: str) -> None:
    assert run(server, "pods") == (0, (
        "NAME          READY   STATUS             RESTARTS     AGE\n"
        "web-node1     1/1     Running            0            3h4m\n"
        "crash-node1   0/1     CrashLoopBackOff   5 (5m ago)   2d3h\n"
    ), "")


@pytest.mark.parametrize("alias", ["pod", "po"])
def test_aliases(server: str, alias: str) -> None:
    assert run(server, alias) == run(server, "pods")
    assert run(server, "ev")[1] == run(server, "events")[1]


def test_all_namespaces_wide(server: str) -> None:
    code, out, err = run(server, "pods", "-A", "-o", "wide")
    assert (code, err) == (0, "")
    assert out == (
        "NAMESPACE     NAME          READY   STATUS             RESTARTS     AGE    IP           NODE    NOMINATED NODE   READINESS GATES\n"
        "default       web-node1     1/1     Running            0            3h4m   10.88.0.9    node1   <none>           <none>\n"
        "default       crash-node1   0/1     CrashLoopBackOff   5 (5m ago)   2d3h   10.88.0.10   node1   <none>           <none>\n"
        "kube-system   etcd-node1    1/1     Running            0            45s    10.88.0.11   node1   <none>           <none>\n"
    )


def test_namespace_and_selector(server: str) -> None:
    assert run(server, "pods", "-n", "kube-system")[1].splitlines()[1].startswith("etcd-node1 ")
    assert run(server, "pods", "-l", "app=crash", "-o", "name") == (0, "pod/crash-node1\n", "")
    assert run(server, "pods", "-A", "-l", "app in (web, crash),app!=web", "-o", "name") == (0, "pod/crash-node1\n", "")


def test_json_is_a_v1_list_of_pods(server: str) -> None:
    code, out, err = run(server, "pods", "-o", "json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]) == ("v1", "List", {"resourceVersion": ""})
    assert doc["items"] == PODS[:2]
    assert out.startswith('{\n    "apiVersion": "v1",\n    "items": [\n        {\n            "apiVersion": "v1",\n')
    code, out, _ = run(server, "pods", "-A", "-o", "yaml")
    assert yaml.safe_load(out)["items"] == PODS


def test_named_pods(server: str) -> None:
    code, out, err = run(server, "pods", "web-node1", "-o", "json")
    assert (code, json.loads(out), err) == (0, PODS[0], "")  # one name: the object itself, as kubectl
    code, out, err = run(server, "pods", "web-node1", "nope")
    assert code == 1
    assert out.splitlines()[1].startswith("web-node1 ")
    assert err == 'nodelet: pods "nope" not found\n'
    assert run(server, "pods", "nope", "-o", "json") == (1, "", 'nodelet: pods "nope" not found\n')


def test_nothing_found(server: str) -> None:
    assert run(server, "pods", "-n", "empty") == (0, "", "No resources found in empty namespace.\n")
    assert run(server, "pods", "-l", "app=none", "-A") == (0, "", "No resources found\n")
    assert run(server, "pods", "-n", "empty", "-o", "name") == (0, "", "")
    code, out, _ = run(server, "pods", "-n", "empty", "-o", "json")
    assert json.loads(out) == {"apiVersion": "v1", "items": [], "kind": "List", "metadata": {"resourceVersion": ""}}


def test_events(server: str) -> None:
    assert run(server, "events") == (0, (
        "LAST SEEN   TYPE      REASON    OBJECT            MESSAGE\n"
        "30s         Warning   BackOff   pod/crash-node1   Back-off restarting failed container app\n"
    ), "")
    code, out, _ = run(server, "events", "-A")
    assert out.splitlines() == [
        "NAMESPACE     LAST SEEN   TYPE      REASON    OBJECT            MESSAGE",
        "default       30s         Warning   BackOff   pod/crash-node1   Back-off restarting failed container app",
        "kube-system   40s         Normal    Started   pod/etcd-node1    Started container etcd",
    ]
    code, out, _ = run(server, "events", "-A", "-o", "json")
    assert [e["metadata"]["name"] for e in json.loads(out)["items"]] == ["crash-node1.1", "etcd-node1.2"]
    assert run(server, "events", "-o", "name") == (0, "event/crash-node1.1\n", "")


def test_daemon_down_is_one_line_exit_1(sock_dir: str) -> None:
    path = os.path.join(sock_dir, "nodelet.sock")
    assert run(path, "pods", "-r", f"unix://{sock_dir}/cri.sock") == (1, "", (
        f"nodelet: cannot reach the nodelet daemon at {path} (is `nodelet run` running?); no runtime to fall back to at "
        f"unix://{sock_dir}/cri.sock (no socket at {sock_dir}/cri.sock)\n"))


def test_default_socket_and_env(sock_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODELET_SOCKET", raising=False)
    result = CliRunner().invoke(get_group, ["events"])  # events: no runtime fallback
    if not os.path.exists("/run/nodelet/nodelet.sock"):
        assert result.stderr == "nodelet: cannot reach the nodelet daemon at /run/nodelet/nodelet.sock (is `nodelet run` running?)\n"
    path = os.path.join(sock_dir, "env.sock")
    result = CliRunner().invoke(get_group, ["events"], env={"NODELET_SOCKET": path})
    assert (result.exit_code, result.stderr) == (1, f"nodelet: cannot reach the nodelet daemon at {path} (is `nodelet run` running?)\n")


def test_bad_selector_from_the_server_is_exit_1(server: str) -> None:
    code, out, err = run(server, "pods", "-l", "a b")
    assert (code, out) == (1, "")
    assert err.startswith("nodelet: unable to parse requirement: 'a b'") and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [["pods", "-o", "table"], ["pods", "--bogus"], ["deployments"], ["pods", "x", "-A"], ["pods", "x", "-l", "a=b"], ["pods", "-n"]],
)
def test_usage_errors_exit_2(server: str, args: list[str]) -> None:
    code, out, err = run(server, *args) if args[-1] != "-n" else _run_raw(args)
    assert code == 2
    assert out == ""
    assert "Usage:" in err or "Error:" in err


def _run_raw(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(get_group, args)
    return result.exit_code, result.stdout, result.stderr


def test_group_is_named_get() -> None:
    assert isinstance(get_group, click.Group) and get_group.name == "get"
    assert set(get_group.commands) == {"pods", "events", "services", "endpoints", "nodes"}


def test_wired_into_the_nodelet_command(server: str) -> None:
    """The real entry point (a separate process, real clock): `nodelet get pods` reaches the API."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kubelet.cli.main", "get", "po", "-A", "-o", "name"],
                          env={**os.environ, "NODELET_SOCKET": server}, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "pod/web-node1\npod/crash-node1\npod/etcd-node1\n", "")
    proc = subprocess.run([sys.executable, "-m", "kubelet.cli.main", "get", "events", "--socket", server + ".missing"],
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == f"nodelet: cannot reach the nodelet daemon at {server}.missing (is `nodelet run` running?)\n"


def test_watch_prints_changes_only(sock_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    monkeypatch.setattr(cli_get, "_now", lambda: NOW)
    view = StaticView(pod_list=copy.deepcopy(PODS[:2]))
    changed = copy.deepcopy(PODS[1])
    changed["status"]["containerStatuses"][0]["restartCount"] = 6
    steps = [
        lambda: None,  # nothing changed: nothing printed
        lambda: view.pod_list.__setitem__(1, changed),
        lambda: view.pod_list.append(copy.deepcopy(PODS[2]) | {"metadata": {"name": "new-node1", "namespace": "default", "creationTimestamp": ago(seconds=3)}}),
    ]

    def sleep(_: float) -> None:
        if not steps:
            raise KeyboardInterrupt
        steps.pop(0)()

    monkeypatch.setattr(cli_get, "_sleep", sleep)
    path = os.path.join(sock_dir, "w.sock")
    with ServerThread(view, path):
        assert run(path, "pods", "-w") == (0, (
            "NAME          READY   STATUS             RESTARTS     AGE\n"
            "web-node1     1/1     Running            0            3h4m\n"
            "crash-node1   0/1     CrashLoopBackOff   5 (5m ago)   2d3h\n"
            "crash-node1   0/1     CrashLoopBackOff   6 (5m ago)   2d3h\n"
            "new-node1     1/1     Running            0            3s\n"
        ), "")


def test_watch_events_prints_new_and_recounted(sock_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    monkeypatch.setattr(cli_get, "_now", lambda: NOW)
    view = StaticView(event_list=copy.deepcopy(EVENTS[:1]))
    again = copy.deepcopy(EVENTS[0]) | {"count": 5, "lastTimestamp": ago(seconds=1)}
    steps = [lambda: view.event_list.__setitem__(0, again), lambda: view.event_list.append(copy.deepcopy(EVENTS[1]))]

    def sleep(_: float) -> None:
        if not steps:
            raise KeyboardInterrupt
        steps.pop(0)()

    monkeypatch.setattr(cli_get, "_sleep", sleep)
    path = os.path.join(sock_dir, "ev.sock")
    with ServerThread(view, path):
        code, out, err = run(path, "events", "-A", "-w")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "NAMESPACE   LAST SEEN   TYPE      REASON    OBJECT            MESSAGE",
        "default     30s         Warning   BackOff   pod/crash-node1   Back-off restarting failed container app",
        "default     1s          Warning   BackOff   pod/crash-node1   Back-off restarting failed container app",
        "kube-system   40s         Normal    Started   pod/etcd-node1    Started container etcd",
    ]
