"""`nodelet run` with clusterDir on the real runtime: the node registers itself, publishes its ready pods for a cluster
Service (atomically, one file per node), shows the cluster under /api/v1/extra/cluster, and withdraws a removed pod."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from kubelet.testing import BUSYBOX, AgentProcess, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.slow]

WEB = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: %s
    command: ["httpd", "-f", "-p", "8080", "-h", "/"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def published(cdir: Path, node: str) -> list[dict] | None:
    p = cdir / "endpoints" / f"{node}.yaml"
    return yaml.safe_load(p.read_text())["items"] if p.exists() else None


def test_daemon_registers_and_publishes(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node = f"cl-{uuid.uuid4().hex[:8]}"
    cdir = tmp_path / "cluster"
    (cdir / "services").mkdir(parents=True)
    (cdir / "services" / "web.yaml").write_text(SERVICE)
    agent = AgentProcess(tmp_path / "agent", endpoint=containerd.endpoint, node_name=node, runtime=containerd,
                         extra={"clusterDir": str(cdir), "nodeIP": "192.0.2.10"})
    agent.write("web.yaml", WEB % BUSYBOX)
    agent.start()
    try:
        doc = yaml.safe_load(wait_until(lambda: (cdir / "nodes" / f"{node}.yaml").exists() and (cdir / "nodes" / f"{node}.yaml").read_text(), timeout=30, what="node registered"))
        assert doc["metadata"]["name"] == node and doc["spec"]["podCIDR"] == agent.config["podCIDR"]
        assert {"type": "InternalIP", "address": "192.0.2.10"} in doc["status"]["addresses"]

        def ready_ip() -> str | None:
            pod = agent.pod(f"web-{node}")
            if pod and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])):
                return pod["status"]["podIP"]
            return None

        ip = wait_until(ready_ip, timeout=60, what="web ready")
        def published_ready() -> list | None:  # type: ignore[type-arg]
            items = published(cdir, node)
            ok = items and all(ep["conditions"]["ready"] for s in items for ep in s["endpoints"])
            return items if ok else None

        # The first publication may predate readiness; wait for the one that says ready.
        items = wait_until(published_ready, timeout=30, what="ready endpoints published")
        (s,) = items
        assert s["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
        assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        assert s["endpoints"] == [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node,
                                   "targetRef": {"kind": "Pod", "namespace": "default", "name": f"web-{node}"}}]
        snap = agent.get("/api/v1/extra/cluster")
        assert snap["synced"] and snap["nodes"] == [{"name": node, "internalIP": "192.0.2.10", "podCIDR": agent.config["podCIDR"]}]
        assert snap["routes"] == {} and snap["errors"] == []

        (agent.manifests / "web.yaml").unlink()
        wait_until(lambda: published(cdir, node) == [], timeout=60, what="endpoints withdrawn")
        wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="pods torn down")
    finally:
        for f in agent.manifests.iterdir():
            f.unlink()
        assert agent.stop() == 0, agent.log()
