"""`nodelet get services|endpoints` from the daemon's `extra/services` (= asdict(proxy.ProxyStatus)), exact output."""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from kubelet.server.api import StaticView
from kubelet.cli.main import cli
from kubelet.cli.testing import ServerThread
from proxy import ProxyStatus, ServicePortStatus

STATUS = dataclasses.asdict(ProxyStatus(mode="iptables", errors=(), last_sync=None, last_sync_kind=None, last_error=None, ports=(
    ServicePortStatus(name="default/web:http", protocol="TCP", cluster_ip="10.96.0.10", port=80, node_port=None,
                      endpoints=("10.244.0.2:8080", "10.244.0.3:8080"), chains=("KUBE-SVC-AAAA",)),
    ServicePortStatus(name="default/web:metrics", protocol="TCP", cluster_ip="10.96.0.10", port=9090, node_port=30090,
                      endpoints=("10.244.0.2:9090",), chains=("KUBE-SVC-BBBB",)),
    ServicePortStatus(name="kube-system/dns", protocol="UDP", cluster_ip="10.96.0.53", port=53, node_port=None,
                      endpoints=("10.244.0.4:53", "10.244.0.5:53", "10.244.0.6:53", "10.244.0.7:53"), chains=()),
)))


@pytest.fixture
def sock() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=f"nodelet-svc-{os.getpid()}-")
    try:
        yield os.path.join(d, "api.sock")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_services_and_endpoints(sock: str) -> None:
    with ServerThread(StaticView(extras={"services": STATUS}), sock):
        assert invoke("get", "svc", "--socket", sock) == (0, (
            "NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)                 AGE\n"
            "web    NodePort   10.96.0.10   <none>        80/TCP,9090:30090/TCP   <unknown>\n"), "")
        assert invoke("get", "endpoints", "-A", "--socket", sock) == (0, (
            "NAMESPACE     NAME   ENDPOINTS                                               AGE\n"
            "default       web    10.244.0.2:8080,10.244.0.3:8080,10.244.0.2:9090         <unknown>\n"
            "kube-system   dns    10.244.0.4:53,10.244.0.5:53,10.244.0.6:53 + 1 more...   <unknown>\n"), "")
        assert invoke("get", "services", "nope", "--socket", sock) == (1, "", 'nodelet: services "nope" not found\n')


def test_proxy_not_wired(sock: str) -> None:
    with ServerThread(StaticView(), sock):
        assert invoke("get", "services", "--socket", sock) == (
            1, "", "nodelet: the service proxy is not running in this daemon (proxyMode none, or a nodelet without the proxy wired)\n")
