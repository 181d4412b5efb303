"""Services from the manifest dir through the real daemon: ClusterIP rules on this host, endpoints from readiness."""
from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, cstatus, exec_in, runtime_pods, wait_until
from proxy.cleanup import cleanup_sync

pytestmark = [pytest.mark.root, pytest.mark.containerd]

MANIFESTS = f"""apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {BUSYBOX}
    command: ["sh", "-c", "echo hello from web > /tmp/index.html; httpd -f -p 8080 -h /tmp"]
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      exec: {{command: ["cat", "/tmp/ready"]}}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: %(ip)s
  selector: {{app: web}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
"""


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an environment HTTP proxy


def get(url: str) -> str:
    try:
        with _DIRECT.open(url, timeout=2) as r:
            return r.read().decode()
    except (urllib.error.URLError, OSError) as err:
        return f"error: {err}"


@pytest.fixture
def service_cidr_stays_local() -> Iterator[None]:
    """Safety net: without it, a packet to a ClusterIP sent before the rules exist would follow the default route
    off this machine. A port-less bridge takes the service range (nothing leaves it); DNATed packets are re-routed to the pod as usual."""
    subprocess.run(["ip", "link", "add", "nlt-svc0", "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", "nlt-svc0", "up"], check=True)
    subprocess.run(["ip", "route", "add", "10.96.0.0/12", "dev", "nlt-svc0"], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "link", "del", "nlt-svc0"], check=False)


def removed(summary) -> int:  # type: ignore[no-untyped-def]
    return sum(v for counts in summary.iptables.values() for v in counts.values()) + sum(summary.nftables.values())


def programmed(agent: AgentProcess, ip: str) -> bool:
    """The service is known and every change to it has been synced (no endpoints yet: only its REJECT rule)."""
    st = agent.get("/api/v1/extra/services")
    known = any(p.get("cluster_ip") == ip for p in st.get("ports", []))
    return known and st.get("pending") == 0 and st.get("last_sync") is not None and not st.get("last_error")


@pytest.mark.usefixtures("service_cidr_stays_local")
@pytest.mark.parametrize("mode,ip", [("iptables", "10.96.0.51"), ("nftables", "10.96.0.52")])
def test_cluster_ip_follows_readiness(containerd, tmp_path: Path, mode: str, ip: str) -> None:  # type: ignore[no-untyped-def]
    agent = AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}", runtime=containerd, extra={"proxyMode": mode})
    agent.start()
    node = agent.config["nodeName"]
    try:
        agent.write("web.yaml", MANIFESTS % {"ip": ip})
        pod = wait_until(lambda: (p := agent.pod(f"web-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
        wait_until(lambda: programmed(agent, ip), timeout=10, what="service rules programmed")
        # Not ready: no endpoints, the ClusterIP rejects.
        first = wait_until(lambda: (r := get(f"http://{ip}/index.html")).startswith("error") and r, timeout=10)
        assert "refused" in first.lower() or "unreachable" in first.lower(), first
        cid = cstatus(pod, "httpd")["containerID"].split("://")[1]
        exec_in(containerd.endpoint, cid, ["touch", "/tmp/ready"])
        assert wait_until(lambda: (r := get(f"http://{ip}/index.html")) == "hello from web\n" and r, timeout=10, what="service answers once ready")
        # Unready again: new connections stop within 2 s (1 s probe period + ≤ 1 s sync).
        exec_in(containerd.endpoint, cid, ["rm", "/tmp/ready"])
        wait_until(lambda: get(f"http://{ip}/index.html").startswith("error"), timeout=5, what="endpoint removed when unready")
    finally:
        for f in agent.manifests.iterdir():
            f.unlink()
        wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="teardown")
        agent.stop()
        assert removed(cleanup_sync(mode)) > 0  # the daemon's rules outlive it (as kube-proxy's do) until cleanup
        assert removed(cleanup_sync(mode)) == 0
