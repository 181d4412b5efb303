"""`nodelet describe pod` with exact output (kubectl describe's layout through the tabwriter) and `nodelet exec`'s
refusals, against a real LocalAPI over fixed data."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from kubelet.cli import describe as cli_describe
from kubelet.server.api import StaticView
from kubelet.cli.main import cli
from kubelet.cli.describe import render_go_duration, render_probe
from kubelet.cli.testing import ServerThread
from kubelet.server.printers import render_tabwriter

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=timezone.utc)

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-n1", "namespace": "default", "uid": "u1", "labels": {"app": "web", "tier": "front"},
                 "annotations": {"kubernetes.io/config.source": "file", "kubernetes.io/config.hash": "u1"}},
    "spec": {
        "nodeName": "n1", "serviceAccountName": "default", "priority": 0,
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "echo hi"]}],
        "containers": [{
            "name": "httpd", "image": "busybox", "command": ["httpd", "-f"],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 0,
                              "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 90},
            "env": [{"name": "GREETING", "value": "hello"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}],
            "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
        }],
        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "hostPath": {"path": "/etc/web", "type": "Directory"}}],
    },
    "status": {
        "phase": "Running", "hostIP": "192.168.1.5", "podIP": "10.244.0.7", "podIPs": [{"ip": "10.244.0.7"}],
        "startTime": "2026-01-10T11:00:00Z", "qosClass": "Burstable",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"},
                       {"type": "ContainersReady", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
        "initContainerStatuses": [{"name": "init", "containerID": "containerd://aaa", "imageID": "sha256:b", "ready": True,
                                   "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                   "startedAt": "2026-01-10T11:00:01Z", "finishedAt": "2026-01-10T11:00:02Z"}}}],
        "containerStatuses": [{"name": "httpd", "containerID": "containerd://bbb", "imageID": "sha256:b", "ready": False,
                               "restartCount": 2, "state": {"running": {"startedAt": "2026-01-10T11:50:00Z"}},
                               "lastState": {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": "2026-01-10T11:40:00Z",
                                                            "finishedAt": "2026-01-10T11:49:59Z"}}}],
    },
}
EVENTS = [
    {"involvedObject": {"kind": "Pod", "name": "web-n1", "namespace": "default", "uid": "u1"}, "type": "Warning",
     "reason": "Unhealthy", "message": "Liveness probe failed: HTTP probe failed with statuscode: 500", "count": 3,
     "firstTimestamp": "2026-01-10T11:45:00Z", "lastTimestamp": "2026-01-10T11:49:30Z", "source": {"component": "kubelet"}},
    {"involvedObject": {"kind": "Pod", "name": "web-n1", "namespace": "default", "uid": "u1"}, "type": "Normal",
     "reason": "Started", "message": "Started container httpd", "count": 1,
     "firstTimestamp": "2026-01-10T11:00:03Z", "lastTimestamp": "2026-01-10T11:00:03Z", "source": {"component": "kubelet"}},
    {"involvedObject": {"kind": "Pod", "name": "other", "namespace": "default"}, "type": "Normal", "reason": "X", "message": "no"},
]
PROBES = [
    {"podUID": "u1", "container": "httpd", "probe": "liveness", "result": "Success", "lastResult": "Success",
     "consecutiveSuccesses": 4, "consecutiveFailures": 0, "lastMessage": "", "lastLatencySeconds": 0.0012},
    {"podUID": "u1", "container": "httpd", "probe": "readiness", "result": "Failure", "lastResult": "Failure",
     "consecutiveSuccesses": 0, "consecutiveFailures": 7, "lastMessage": "cat: can't open '/tmp/ready'", "lastLatencySeconds": None},
]

EXPECTED = """\
Name:             web-n1
Namespace:        default
Priority:         0
Service Account:  default
Node:             n1/192.168.1.5
Start Time:       Sat, 10 Jan 2026 11:00:00 +0000
Labels:           app=web
                  tier=front
Annotations:      kubernetes.io/config.hash: u1
                  kubernetes.io/config.source: file
Status:           Running
IP:               10.244.0.7
IPs:
  IP:  10.244.0.7
Init Containers:
  init:
    Container ID:  containerd://aaa
    Image:         busybox
    Image ID:      sha256:b
    Port:          <none>
    Host Port:     <none>
    Command:
      sh
      -c
      echo hi
    State:          Terminated
      Reason:       Completed
      Exit Code:    0
      Started:      Sat, 10 Jan 2026 11:00:01 +0000
      Finished:     Sat, 10 Jan 2026 11:00:02 +0000
    Ready:          True
    Restart Count:  0
    Environment:    <none>
    Mounts:         <none>
Containers:
  httpd:
    Container ID:  containerd://bbb
    Image:         busybox
    Image ID:      sha256:b
    Port:          8080/TCP
    Host Port:     0/TCP
    Command:
      httpd
      -f
    State:          Running
      Started:      Sat, 10 Jan 2026 11:50:00 +0000
    Last State:     Terminated
      Reason:       Error
      Exit Code:    137
      Started:      Sat, 10 Jan 2026 11:40:00 +0000
      Finished:     Sat, 10 Jan 2026 11:49:59 +0000
    Ready:          False
    Restart Count:  2
    Limits:
      memory:  64Mi
    Requests:
      cpu:      100m
      memory:   64Mi
    Liveness:   http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3
      Now:      success (last probe: success, 4 in a row, 1.2ms)
    Readiness:  exec [cat /tmp/ready] delay=0s timeout=1s period=1m30s #success=1 #failure=3
      Now:      failure (last probe: failure, 7 in a row): cat: can't open '/tmp/ready'
    Environment:
      GREETING:  hello
      POD_NAME:  web-n1 (v1:metadata.name)
    Mounts:
      /data from data (rw)
      /etc/cfg from cfg (ro)
Conditions:
  Type              Status
  Initialized       True 
  Ready             False 
  ContainersReady   False 
  PodScheduled      True 
Volumes:
  data:
    Type:       EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:     
    SizeLimit:  <unset>
  cfg:
    Type:          HostPath (bare host directory volume)
    Path:          /etc/web
    HostPathType:  Directory
QoS Class:         Burstable
Node-Selectors:    <none>
Tolerations:       <none>
Events:
  Type     Reason     Age                From     Message
  ----     ------     ----               ----     -------
  Normal   Started    59m                kubelet  Started container httpd
  Warning  Unhealthy  10m (x3 over 15m)  kubelet  Liveness probe failed: HTTP probe failed with statuscode: 500
"""


@pytest.fixture
def sock() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=f"nodelet-desc-{os.getpid()}-")
    path = os.path.join(d, "api.sock")
    try:
        with ServerThread(StaticView(pod_list=[POD], event_list=EVENTS, extras={"probes": PROBES}), path):
            yield path
    finally:
        shutil.rmtree(d, ignore_errors=True)


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_describe_pod_exact(sock: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_describe, "_now", lambda: NOW)
    code, out, err = invoke("describe", "pod", "web-n1", "--socket", sock)
    assert (code, err) == (0, "")
    assert out == EXPECTED, "\n" + out
    assert invoke("describe", "po", "web-n1", "--socket", sock)[1] == out


def test_describe_missing_pod(sock: str) -> None:
    assert invoke("describe", "pod", "nope", "-n", "kube-system", "--socket", sock) == (
        1, "", 'nodelet: pods "nope" not found in namespace kube-system (try `nodelet get pods -A`)\n')


def test_probe_and_duration_rendering() -> None:
    assert [render_go_duration(s) for s in (0, 5, 60, 90, 3600, 3725)] == ["0s", "5s", "1m0s", "1m30s", "1h0m0s", "1h2m5s"]
    assert render_probe({"tcpSocket": {"port": 5432}}) == "tcp-socket :5432 delay=0s timeout=1s period=10s #success=1 #failure=3"
    assert render_probe({"grpc": {"port": 9000, "service": "x"}}).startswith("grpc <pod>:9000 x delay=0s")
    assert render_probe({"httpGet": {"host": "::1", "port": "http", "path": "/", "scheme": "HTTPS"}}).startswith("http-get https://[::1]:http/ ")


def test_tabwriter_blocks() -> None:
    # a line without a tab ends the block; a deeper column starts its own block
    assert render_tabwriter("a:\tx\nlonger:\ty\nsep\nb:\tz\n") == "a:       x\nlonger:  y\nsep\nb:  z\n"
    assert render_tabwriter("k\tv\tw\nkk\tv\n") == "k   v  w\nkk  v\n"


def test_exec_refusals(sock: str) -> None:
    code, _, err = invoke("exec", "web-n1", "-c", "init", "--socket", sock, "--", "true")
    assert (code, err) == (1, "nodelet: cannot exec into container init of pod web-n1: it is not running (see `nodelet describe pod web-n1`)\n")
    assert invoke("exec", "web-n1", "--socket", sock)[0] == 2
