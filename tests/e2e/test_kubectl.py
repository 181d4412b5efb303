"""nodelet's Kubernetes API driven by the real `/usr/bin/kubectl` (the dispatcher runs kubectl 1.32, the minor the
server reports) and by the official `kubernetes` Python client, against a real agent on the private containerd.
One agent for the module; every test asserts what a user sees: tables, jsonpath values, files apply wrote, 401/403."""
from __future__ import annotations

import json
import os
import select
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.slow]

KUBECTL = "/usr/bin/kubectl"

HAND = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: hand
  labels: {{app: hand}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: talker
    image: {BUSYBOX}
    command: ["sh", "-c", "for i in 1 2 3; do echo line $i; done; while :; do echo tick; sleep 1; done"]
  - name: crasher
    image: {BUSYBOX}
    command: ["sh", "-c", "echo crash-run; sleep 1; exit 3"]
---
apiVersion: v1
kind: Service
metadata: {{name: hand-svc}}
spec:
  clusterIP: 10.96.0.77
  selector: {{app: hand}}
  ports: [{{port: 80, targetPort: 8080, protocol: TCP}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: hand-cm}}
data: {{a: "1", b: "2"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: hand-secret}}
type: Opaque
data: {{password: c2VjcmV0}}
"""

WEB = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {{app: web, tier: %(tier)s}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {BUSYBOX}
    command: ["sh", "-c", "echo web-started; while :; do sleep 1; done"]
    env: [{{name: A, value: "%(tier)s"}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    assert os.access(KUBECTL, os.X_OK), f"{KUBECTL} is missing: these tests need the real kubectl"
    base = tmp_path_factory.mktemp("kubectl")
    a = AgentProcess(base, endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}", runtime=containerd,
                     extra={"nodeIP": "127.0.0.1", "apiPort": free_port()})
    (a.manifests / "hand.yaml").write_text(HAND)
    a.start()
    try:
        wait_until(lambda: Path(a.config["adminKubeconfig"]).exists(), timeout=20, what="admin kubeconfig")
        yield a
    finally:
        for f in a.manifests.iterdir():
            f.unlink()
        try:
            wait_until(lambda: not runtime_pods(containerd.endpoint, a.config["nodeName"]), timeout=60, what="teardown")
        finally:
            assert a.stop() == 0, a.log()


def kubectl(agent: AgentProcess, *args: str, kubeconfig: str | None = None, stdin: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=kubeconfig or agent.config["adminKubeconfig"], HOME=str(agent.base))
    return subprocess.run([KUBECTL, "--cache-dir", str(agent.base / "kcache"), *args], capture_output=True, text=True,
                          input=stdin, env=env, timeout=timeout)


def ok(agent: AgentProcess, *args: str, **kw: Any) -> str:
    p = kubectl(agent, *args, **kw)
    assert p.returncode == 0, (args, p.stdout, p.stderr, agent.log()[-2000:])
    return p.stdout


def popen(agent: AgentProcess, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, KUBECONFIG=agent.config["adminKubeconfig"], HOME=str(agent.base))
    return subprocess.Popen([KUBECTL, "--cache-dir", str(agent.base / "kcache"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while needle.encode() not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            raise AssertionError(f"{needle!r} not seen within {timeout}s; got {buf.decode(errors='replace')!r}")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"output ended before {needle!r}: {buf!r} {proc.stderr.read() if proc.stderr else b''!r}")
        buf += chunk
    return buf.decode()


def node(agent: AgentProcess) -> str:
    return str(agent.config["nodeName"])


def hand_running(agent: AgentProcess) -> None:
    def up() -> bool:
        out = ok(agent, "get", "pod", f"hand-{node(agent)}", "-o", "jsonpath={.status.containerStatuses[?(@.name=='talker')].state.running.startedAt}")
        return bool(out.strip())
    wait_until(up, timeout=60, what="hand pod running")


def test_version_and_discovery(agent: AgentProcess) -> None:
    v = json.loads(ok(agent, "version", "-o", "json"))
    assert v["serverVersion"]["minor"] == "32" and v["serverVersion"]["gitVersion"].startswith("v1.32.")
    res = ok(agent, "api-resources", "--no-headers")
    names = {line.split()[0] for line in res.splitlines()}
    assert {"pods", "nodes", "events", "services", "configmaps", "secrets", "namespaces", "endpointslices"} <= names
    assert "metrics.k8s.io/v1beta1" in res


def test_get_pods_table_and_output_formats(agent: AgentProcess) -> None:
    hand_running(agent)
    name = f"hand-{node(agent)}"
    out = ok(agent, "get", "pods")
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert any(line.startswith(name + " ") for line in out.splitlines())
    wide = ok(agent, "get", "pods", "-o", "wide")
    assert wide.splitlines()[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert node(agent) in wide
    assert "app=hand" in ok(agent, "get", "pods", "--show-labels")
    uid = ok(agent, "get", "pod", name, "-o", "jsonpath={.metadata.uid}")
    assert uid and ok(agent, "get", "po", "hand", "-o", "jsonpath={.metadata.uid}") == uid  # by its manifest's name
    assert ok(agent, "get", "pods", "-o", "name") .splitlines() == [f"pod/{name}"]
    cc = ok(agent, "get", "pods", "-o", "custom-columns=N:.metadata.name,NODE:.spec.nodeName").splitlines()
    assert cc[0].split() == ["N", "NODE"] and cc[1].split() == [name, node(agent)]
    assert ok(agent, "get", "pods", "-l", "app=nothing", "-o", "name") == ""
    assert ok(agent, "get", "pods", "-l", "app=hand", "-o", "name").strip() == f"pod/{name}"
    assert ok(agent, "get", "pods", "--field-selector", f"metadata.name={name}", "-o", "name").strip() == f"pod/{name}"
    assert ok(agent, "get", "pods", "--field-selector", "metadata.name=x", "-o", "name") == ""
    a = ok(agent, "get", "pods", "-A")
    assert a.splitlines()[0].split()[0] == "NAMESPACE" and "default" in a
    assert name in ok(agent, "get", "pods", "--sort-by", ".metadata.name")
    doc = json.loads(ok(agent, "get", "pod", name, "-o", "json"))
    assert doc["kind"] == "Pod" and doc["metadata"]["resourceVersion"]
    assert "kind: Pod" in ok(agent, "get", "pod", name, "-o", "yaml")
    p = kubectl(agent, "get", "pod", "nope")
    assert p.returncode == 1 and 'Error from server (NotFound): pods "nope" not found' in p.stderr
    p = kubectl(agent, "get", "frobnicators")
    assert p.returncode == 1 and 'the server doesn\'t have a resource type "frobnicators"' in p.stderr


def test_describe_pod_with_events_and_nodes(agent: AgentProcess) -> None:
    hand_running(agent)
    out = ok(agent, "describe", "pod", f"hand-{node(agent)}")
    assert "Containers:" in out and "talker:" in out and "Events:" in out and "Started" in out
    nodes = ok(agent, "get", "nodes").splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert nodes[1].split()[:2] == [node(agent), "Ready"]
    d = ok(agent, "describe", "node", node(agent))
    for section in ("Conditions:", "Addresses:", "Capacity:", "Allocatable:", "System Info:", "InternalIP:  127.0.0.1", "KubeletReady"):
        assert section in d, section


def test_get_other_resources(agent: AgentProcess) -> None:
    hand_running(agent)
    ev = ok(agent, "get", "events")
    assert ev.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert f"pod/hand-{node(agent)}" in ev
    assert "Started" in ok(agent, "get", "events.events.k8s.io")
    svc = ok(agent, "get", "svc").splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1].split()[:5] == ["hand-svc", "ClusterIP", "10.96.0.77", "<none>", "80/TCP"]
    eps = ok(agent, "get", "endpointslices")
    assert "hand-svc-nodelet" in eps and "8080" in eps
    cm = ok(agent, "get", "cm,secret")
    assert "configmap/hand-cm" in cm and "secret/hand-secret" in cm
    assert ok(agent, "get", "secret", "hand-secret", "-o", "jsonpath={.data.password}") == "c2VjcmV0"
    assert "kube-system" in ok(agent, "get", "ns")
    al = ok(agent, "get", "all")
    assert f"pod/hand-{node(agent)}" in al and "service/hand-svc" in al


def test_logs(agent: AgentProcess) -> None:
    hand_running(agent)
    name = f"hand-{node(agent)}"
    out = ok(agent, "logs", name, "-c", "talker")
    assert out.splitlines()[:3] == ["line 1", "line 2", "line 3"]
    assert ok(agent, "logs", name, "-c", "talker", "--tail", "1").splitlines() in (["tick"],)
    ts = ok(agent, "logs", name, "-c", "talker", "--timestamps", "--tail", "1")
    assert ts.split(" ", 1)[0].endswith("Z") and ts.strip().endswith("tick")
    assert ok(agent, "logs", name, "-c", "talker", "--since", "1h").startswith("line 1")
    assert ok(agent, "logs", name, "-c", "talker", "--limit-bytes", "4") == "line"
    assert ok(agent, "logs", name, "-c", "talker", "--since-time", "2000-01-01T00:00:00Z").startswith("line 1")
    wait_until(lambda: ok(agent, "get", "pod", name, "-o", "jsonpath={.status.containerStatuses[?(@.name=='crasher')].restartCount}") not in ("", "0"),
               timeout=60, what="crasher restarted")
    assert "crash-run" in ok(agent, "logs", name, "-c", "crasher", "--previous")
    both = ok(agent, "logs", name, "--all-containers", "--prefix")
    assert f"[pod/{name}/talker] line 1" in both and f"[pod/{name}/crasher] crash-run" in both
    assert "line 3" in ok(agent, "logs", "-l", "app=hand", "-c", "talker")
    p = kubectl(agent, "logs", name, "-c", "nope")
    assert p.returncode == 1 and "container nope is not valid" in p.stderr
    f = popen(agent, "logs", "-f", name, "-c", "talker", "--tail", "0")
    try:
        assert "tick" in read_until(f, "tick\n", timeout=10)  # a line written after the request started
    finally:
        f.kill()
        f.wait()


def test_apply_create_replace_delete_and_watch(agent: AgentProcess) -> None:
    manifest_file = agent.manifests / "nodelet-api-default-pod-web.yaml"
    w = popen(agent, "get", "pods", "-w")
    ev = popen(agent, "get", "events", "-w", "--watch-only")
    try:
        read_until(w, "NAME", timeout=10)
        dry = ok(agent, "apply", "-f", "-", "--dry-run=server", stdin=WEB % {"tier": "a"})
        assert "pod/web created (server dry run)" in dry and not manifest_file.exists()
        assert ok(agent, "apply", "-f", "-", stdin=WEB % {"tier": "a"}).strip() == "pod/web created"
        assert manifest_file.exists() and "tier: a" in manifest_file.read_text()
        read_until(w, f"web-{node(agent)}", timeout=20)  # the watch shows the new pod
        read_until(ev, f"pod/web-{node(agent)}", timeout=30)  # and the events watch its events
    finally:
        for proc in (w, ev):
            proc.kill()
            proc.wait()
    wait_until(lambda: ok(agent, "get", "pod", "web", "-o", "jsonpath={.status.phase}") == "Running", timeout=60, what="web running")
    assert ok(agent, "apply", "-f", "-", stdin=WEB % {"tier": "b"}).strip() == "pod/web configured"
    text = manifest_file.read_text()
    assert "tier: b" in text and "value: b" in text and "kubectl.kubernetes.io/last-applied-configuration" in text
    wait_until(lambda: ok(agent, "get", "pod", "web", "-o", "jsonpath={.metadata.labels.tier}") == "b", timeout=20,
               what="the agent picked up the new file")
    p = kubectl(agent, "apply", "-f", "-", "-v=8", stdin=WEB % {"tier": "b"})
    assert p.stdout.strip() == "pod/web unchanged", [ln for ln in p.stderr.splitlines() if "Request Body" in ln or "PATCH" in ln]
    p = kubectl(agent, "create", "-f", "-", stdin=WEB % {"tier": "b"})
    assert p.returncode == 1 and "AlreadyExists" in p.stderr
    replaced = ok(agent, "replace", "-f", "-", stdin=WEB % {"tier": "c"})
    assert replaced.strip() == "pod/web replaced" and "tier: c" in manifest_file.read_text()
    bad = (WEB % {"tier": "a"}).replace("name: web\n  labels", "name: bad\n  labels").replace("terminationGracePeriodSeconds: 1", "terminationGracePeriodSeconds: 1\n  restartPolicy: Sometimes")
    p = kubectl(agent, "apply", "-f", "-", stdin=bad)
    assert p.returncode == 1 and "spec.restartPolicy" in p.stderr and 'Unsupported value: "Sometimes"' in p.stderr, p.stderr
    assert not (agent.manifests / "nodelet-api-default-pod-bad.yaml").exists()
    p = kubectl(agent, "apply", "-f", "-", stdin=HAND.split("---")[0])
    assert p.returncode == 1 and "Forbidden" in p.stderr and str(agent.manifests / "hand.yaml") in p.stderr, p.stderr
    p = kubectl(agent, "delete", "pod", "hand", "--wait=false")
    assert p.returncode == 1 and "hand.yaml" in p.stderr and (agent.manifests / "hand.yaml").exists()
    cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api-cm}\ndata: {k: v}\n'
    assert ok(agent, "apply", "-f", "-", stdin=cm).strip() == "configmap/api-cm created"
    wait_until(lambda: ok(agent, "get", "cm", "api-cm", "-o", "jsonpath={.data.k}") == "v", timeout=20, what="cm visible")
    assert ok(agent, "apply", "--server-side", "-f", "-", stdin=cm.replace("k: v", "k: w")).strip() == "configmap/api-cm serverside-applied"
    wait_until(lambda: ok(agent, "get", "cm", "api-cm", "-o", "jsonpath={.data.k}") == "w", timeout=20, what="ssa visible")
    ok(agent, "delete", "cm", "api-cm")
    out = ok(agent, "delete", "pod", "web", timeout=60)
    assert out.strip() == 'pod "web" deleted' and not manifest_file.exists()
    # gone once its grace period is over (a replaced pod's predecessor may still be terminating under the same name)
    wait_until(lambda: kubectl(agent, "get", "pod", "web").returncode == 1, timeout=30, what="web gone")


def test_viewer_gets_403_and_no_credentials_401(agent: AgentProcess) -> None:
    viewer = str(agent.base / "viewer.conf")
    Path(viewer).write_text(subprocess.run(
        ["python3", "-m", "kubelet.cli.main", "kubeconfig", "--config", str(agent.config_path), "--user", "viewer"],
        capture_output=True, text=True, check=True, env=dict(os.environ)).stdout)
    assert f"hand-{node(agent)}" in ok(agent, "get", "pods", kubeconfig=viewer)
    p = kubectl(agent, "delete", "pod", "hand", kubeconfig=viewer)
    assert p.returncode == 1 and "Error from server (Forbidden)" in p.stderr and 'User "nodelet-viewer" cannot delete' in p.stderr
    p = kubectl(agent, "apply", "-f", "-", stdin=WEB % {"tier": "v"}, kubeconfig=viewer)
    assert p.returncode == 1 and "Forbidden" in p.stderr
    assert not (agent.manifests / "nodelet-api-default-pod-web.yaml").exists()
    ctx = ssl.create_default_context(cafile=str(Path(agent.config["rootDir"]) / "pki" / "ca.crt"))
    with socket.create_connection(("127.0.0.1", agent.config["apiPort"]), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /api/v1/pods HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 401") and b'"reason":"Unauthorized"' in reply


def test_top(agent: AgentProcess) -> None:
    hand_running(agent)
    pods = ok(agent, "top", "pod").splitlines()
    assert pods[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"] and pods[1].startswith(f"hand-{node(agent)}")
    n = ok(agent, "top", "node").splitlines()
    assert n[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"] and n[1].startswith(node(agent))


def test_python_client_lists_pods_and_streams_a_log(agent: AgentProcess) -> None:
    from kubernetes import client, config

    hand_running(agent)
    api = client.CoreV1Api(config.new_client_from_config(config_file=agent.config["adminKubeconfig"]))
    names = [p.metadata.name for p in api.list_namespaced_pod("default").items]
    assert f"hand-{node(agent)}" in names
    resp = api.read_namespaced_pod_log(f"hand-{node(agent)}", "default", container="talker", follow=True,
                                       _preload_content=False)
    try:
        seen = b""
        deadline = time.monotonic() + 10
        for chunk in resp.stream(64):
            seen += chunk
            if b"tick" in seen or time.monotonic() > deadline:
                break
        assert seen.startswith(b"line 1\n") and b"tick" in seen
    finally:
        resp.release_conn()
