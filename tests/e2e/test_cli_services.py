"""`nodelet get services|endpoints` and `describe service` against the real daemon running the service proxy
(iptables mode): the rows, the endpoint of the ready pod, and the programmed rules with live packet counters."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, runtime_pods, wait_until
from proxy.cleanup import cleanup_sync

pytestmark = [pytest.mark.root, pytest.mark.containerd]

MANIFESTS = """apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: %(image)s
    command: ["sh", "-c", "echo hello > /tmp/index.html; httpd -f -p 8080 -h /tmp"]
    ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: %(ip)s
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
"""


@pytest.fixture
def service_ip_stays_local() -> Iterator[None]:
    """A port-less bridge owns the test's ClusterIP range: nothing can leave the machine before the rules exist."""
    name = f"nlt8s{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        subprocess.run(["ip", "route", "add", "10.96.8.0/24", "dev", name], check=True)
        yield
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def nodelet(agent: AgentProcess, *args: str) -> tuple[int, str, str]:
    p = subprocess.run([sys.executable, "-m", "kubelet.cli.main", *args, "--socket", agent.socket], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.usefixtures("service_ip_stays_local")
@pytest.mark.parametrize("mode,IP", [("iptables", "10.96.8.61"), ("nftables", "10.96.8.62")])
def test_services_endpoints_and_rules(containerd, tmp_path: Path, mode: str, IP: str) -> None:  # type: ignore[no-untyped-def]
    agent = AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}", runtime=containerd,
                         extra={"proxyMode": mode})
    agent.start()
    node = agent.config["nodeName"]
    try:
        agent.write("web.yaml", MANIFESTS % {"image": BUSYBOX, "ip": IP})
        pod = wait_until(lambda: (p := agent.pod(f"web-{node}")) and p["status"]["phase"] == "Running"
                         and p["status"]["containerStatuses"][0]["ready"] and p, timeout=60, what="web ready")
        ep = f"{pod['status']['podIP']}:8080"

        def synced() -> bool:
            st = agent.get("/api/v1/extra/services")
            return any(p.get("cluster_ip") == IP and ep in p.get("endpoints", []) for p in st.get("ports", [])) and st.get("pending") == 0
        wait_until(synced, timeout=15, what="service synced with its endpoint")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{IP}/index.html", timeout=5) as r:  # one connection through the rules
            assert r.read() == b"hello\n"

        assert nodelet(agent, "get", "svc") == (0, (
            "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n"
            f"web    ClusterIP   {IP}   <none>        80/TCP    <unknown>\n"), "")
        code, out, err = nodelet(agent, "get", "endpoints")
        assert (code, err) == (0, "") and re.fullmatch(rf"NAME +ENDPOINTS +AGE\nweb +{re.escape(ep)} +<unknown>\n", out), out

        code, out, err = nodelet(agent, "describe", "svc", "web")
        assert (code, err) == (0, ""), err
        assert out.startswith(f"Name:       web\nNamespace:  default\nType:       ClusterIP\nIP:         {IP}\n"
                              f"Port:       http  80/TCP\nEndpoints:  {ep}\n"), out
        if mode == "iptables":
            assert "\nRules (iptables, nat):\n" in out
            dnat = [ln for ln in out.splitlines() if f"DNAT --to-destination {ep}" in ln]
            assert dnat and int(dnat[0].split()[0]) >= 1, out  # the connection above went through it
            assert any(f"-d {IP}/32" in ln and "-j NODELET-SVC-" in ln for ln in out.splitlines()), out
        else:  # nodelet's nft rules carry no counters: the rules are shown as programmed
            assert "\nRules (nftables, table ip nodelet):\n" in out
            assert re.search(rf"\n  map: .*{re.escape(IP)} \. tcp \. 80 : goto svc-\S+", out), out
            assert re.search(r"\n  svc-\S+: .*dnat to", out), out
    finally:
        for f in agent.manifests.iterdir():
            f.unlink()
        wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="teardown")
        agent.stop()
        cleanup_sync(mode)  # the daemon's rules outlive it (as kube-proxy's do) until cleanup
