"""A drop-in for an upstream node, end to end on the real containerd: the agent runs from a kubeadm-style
KubeletConfiguration plus a NodeletConfiguration (one file, two documents); Debian's real Prometheus scrapes its
metrics port and sees kubelet_running_pods equal to the pods running; the emitted pods and events load into the
official client's v1 models with unknown fields rejected and carry the API server's defaults; the ignored upstream
fields are one Warning event; /metrics/probes and /metrics/resource answer; pod cgroups are cgroupfs-named."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from kubelet.testing import AgentProcess, wait_until
from kubelet.testing_shape import assert_v1_shape

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.slow]

KUBELET_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {cacheTTL: 0s, enabled: true}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization: {mode: Webhook, webhook: {cacheAuthorizedTTL: 0s, cacheUnauthorizedTTL: 0s}}
cgroupDriver: cgroupfs
clusterDomain: cluster.local
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 0
rotateCertificates: true
runtimeRequestTimeout: 0s
syncFrequency: 0s
staticPodPath: MANIFESTS
containerRuntimeEndpoint: ENDPOINT
podLogsDir: LOGS
resolvConf: RESOLV
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  dnsPolicy: Default
  containers:
  - name: app
    image: localhost/nodelet/busybox:1.35
    command: [sleep, "3600"]
    readinessProbe: {{exec: {{command: ["true"]}}, periodSeconds: 1}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback only
        return r.read().decode()


def prom_query(port: int, query: str) -> list:  # type: ignore[type-arg]
    from urllib.parse import quote

    return json.loads(http_get(f"http://127.0.0.1:{port}/api/v1/query?query={quote(query)}"))["data"]["result"]


def test_kubelet_configuration_metrics_and_v1_objects(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prometheus = shutil.which("prometheus")
    assert prometheus, "Debian's prometheus package is needed (test.sh installs it)"
    metrics_port, prom_port = free_port(), free_port()
    agent = AgentProcess(tmp_path / "agent", endpoint=containerd.endpoint)
    nodelet_doc = {k: v for k, v in agent.config.items()
                   if k not in ("staticPodPath", "containerRuntimeEndpoint", "podLogsDir", "healthzPort",
                                "fileCheckFrequency")}
    nodelet_doc |= {"apiVersion": "nodelet.io/v1alpha1", "kind": "NodeletConfiguration",
                    "metricsBindAddress": f"127.0.0.1:{metrics_port}"}
    agent.config_path.write_text(
        KUBELET_CONFIG.replace("MANIFESTS", str(agent.manifests)).replace("ENDPOINT", containerd.endpoint)
        .replace("LOGS", agent.config["podLogsDir"]).replace("RESOLV", str(tmp_path / "resolv.conf"))
        + "---\n" + json.dumps(nodelet_doc) + "\n")
    # systemd-resolved's stub next to a reachable server: the pods must get only the latter
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.test\n")
    for name in ("drop-a", "drop-b"):
        agent.write(f"{name}.yaml", POD.format(name=name))
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    (prom_dir / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"- job_name: nodelet\n  static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n")
    prom = None
    agent.start()
    try:
        prom = subprocess.Popen([prometheus, f"--config.file={prom_dir / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={prom_dir / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=open(prom_dir / "prom.log", "wb"))

        def running() -> list:  # type: ignore[type-arg]
            pods = [p for p in agent.pods() if p["status"].get("phase") == "Running"]
            return pods if len(pods) == 2 and all(
                c.get("ready") for p in pods for c in p["status"].get("containerStatuses", [])) else []

        pods = wait_until(running, timeout=90, what="both pods running and ready")

        def target_up() -> bool:
            try:
                targets = json.loads(http_get(f"http://127.0.0.1:{prom_port}/api/v1/targets"))["data"]["activeTargets"]
            except OSError:
                return False
            return any(t["scrapeUrl"] == f"http://127.0.0.1:{metrics_port}/metrics" and t["health"] == "up"
                       for t in targets)

        wait_until(target_up, timeout=60, what="prometheus target up")

        def running_pods_seen() -> bool:
            result = prom_query(prom_port, 'kubelet_running_pods{job="nodelet"}')
            return bool(result) and float(result[0]["value"][1]) == 2.0

        wait_until(running_pods_seen, timeout=60, what="kubelet_running_pods == 2 in prometheus")
        assert prom_query(prom_port, 'up{job="nodelet"}')[0]["value"][1] == "1"

        # the v1 shape of everything the API emits, and the API server's defaults
        for pod in agent.pods():
            assert_v1_shape("Pod", pod)
        assert_v1_shape("PodList", agent.get("/api/v1/pods"))
        events = agent.events()
        for event in events:
            assert_v1_shape("Event", event)
        probe = pods[0]["spec"]["containers"][0]["readinessProbe"]
        assert (probe["failureThreshold"], probe["successThreshold"], probe["timeoutSeconds"]) == (3, 1, 1)
        assert pods[0]["spec"]["schedulerName"] == "default-scheduler"
        ignored = [e for e in events if e["reason"] == "IgnoredConfigFields"]
        assert len(ignored) == 1 and ignored[0]["type"] == "Warning"
        assert "authentication (" in ignored[0]["message"] and "rotateCertificates (" in ignored[0]["message"]

        # no loopback nameserver in a pod, and a Warning saying so
        from kubelet.testing import exec_in

        cid = pods[0]["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
        res = exec_in(containerd.endpoint, cid, ["cat", "/etc/resolv.conf"])
        servers = [ln.split()[1] for ln in res.stdout.decode().splitlines() if ln.startswith("nameserver")]
        assert servers == ["192.0.2.53"], res.stdout
        assert {e["involvedObject"]["name"] for e in events if e["reason"] == "DNSConfigForming"} == {
            "drop-a-node1", "drop-b-node1"}

        # the other two paths
        probes = http_get(f"http://127.0.0.1:{metrics_port}/metrics/probes")
        assert 'probe_type="Readiness",result="successful"}' in probes and 'pod="drop-a-node1"' in probes
        resource = http_get(f"http://127.0.0.1:{metrics_port}/metrics/resource")
        assert 'container_memory_working_set_bytes{container="app",namespace="default",pod="drop-b-node1"}' in resource
        assert "resource_scrape_error 0.0" in resource

        # cgroupfs naming, live: /kubepods/besteffort/pod<uid>
        from kubelet.kuberuntime.cgroups import pod_cgroup_dirs

        for pod in pods:
            dirs = pod_cgroup_dirs(pod["metadata"]["uid"])
            assert dirs and all("/kubepods/besteffort/pod" in str(d) for d in dirs), dirs
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=20)
        for name in ("drop-a", "drop-b"):
            (agent.manifests / f"{name}.yaml").unlink(missing_ok=True)
        try:
            wait_until(lambda: not agent.pods(), timeout=30, what="pods gone")
        finally:
            agent.stop()
