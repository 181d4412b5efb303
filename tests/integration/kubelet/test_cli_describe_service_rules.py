"""`nodelet describe service` reads the real ruleset with real packet counters: a service's nat rules loaded with
iptables-restore into a private network namespace, one connection attempt made there, and the CLI — run inside the
namespace, talking to a LocalAPI over fixed proxy status — shows the rules with their counts."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

from kubelet.server.api import StaticView
from kubelet.cli.testing import ServerThread
from proxy import ProxyStatus, ServicePortStatus

pytestmark = [pytest.mark.root, pytest.mark.netns]

RULES = """\
*nat
:NODELET-SERVICES - [0:0]
:NODELET-MARK-MASQ - [0:0]
:NODELET-SVC-TESTAAAA - [0:0]
:NODELET-SEP-TESTE1 - [0:0]
-A OUTPUT -m comment --comment "nodelet service portals" -j NODELET-SERVICES
-A NODELET-MARK-MASQ -j MARK --or-mark 0x4000
-A NODELET-SERVICES -m comment --comment "shop/web:http cluster IP" -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j NODELET-SVC-TESTAAAA
-A NODELET-SVC-TESTAAAA -m comment --comment "shop/web:http -> 10.244.1.10:8080" -j NODELET-SEP-TESTE1
-A NODELET-SEP-TESTE1 -p tcp -m tcp -j DNAT --to-destination 10.244.1.10:8080
COMMIT
"""


NFT = """\
table ip nodelet {
    chain nat-output {
        type nat hook output priority -100; policy accept;
        ip daddr 10.96.0.10 tcp dport 80 counter goto svc-AAAA-shop/web/tcp/http
    }
    chain svc-AAAA-shop/web/tcp/http {
        meta l4proto tcp counter dnat to 10.244.1.10:8080
    }
}
"""


@pytest.fixture
def netns():  # type: ignore[no-untyped-def]
    name = f"nlt8-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                    ["ip", "link", "set", "d0", "up"], ["ip", "addr", "add", "10.244.1.1/24", "dev", "d0"],
                    ["ip", "route", "add", "10.96.0.0/12", "dev", "d0"]):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True)
        subprocess.run(["ip", "netns", "exec", name, "iptables-restore"], input=RULES, text=True, check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def syn_and_describe(netns: str, status: dict) -> subprocess.CompletedProcess[str]:
    subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c",
                    "import socket; s = socket.socket(); s.settimeout(0.3)\ntry: s.connect(('10.96.0.10', 80))\nexcept OSError: pass"],
                   check=True, timeout=30)
    d = tempfile.mkdtemp(prefix=f"nlt8-svc-{os.getpid()}-")
    try:
        sock = os.path.join(d, "api.sock")
        with ServerThread(StaticView(extras={"services": status}), sock):
            return subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m", "kubelet.cli.main", "describe", "service", "web",
                                   "-n", "shop", "--socket", sock], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_nft_rules_with_live_counters(netns: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "iptables", "-t", "nat", "-F", "OUTPUT"], check=True)
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=NFT, text=True, check=True)
    status = dataclasses.asdict(ProxyStatus(mode="nftables", errors=(), last_sync=None, last_sync_kind=None, last_error=None, ports=(
        ServicePortStatus(name="shop/web:http", protocol="TCP", cluster_ip="10.96.0.10", port=80, node_port=None,
                          endpoints=("10.244.1.10:8080",), chains=("svc-AAAA-shop/web/tcp/http",)),)))
    p = syn_and_describe(netns, status)
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    tail = p.stdout[p.stdout.index("Rules (nftables, table ip nodelet):\n"):].splitlines()[1:]
    assert tail == [
        "  nat-output: ip daddr 10.96.0.10 tcp dport 80 counter packets 1 bytes 60 goto svc-AAAA-shop/web/tcp/http",
        "  svc-AAAA-shop/web/tcp/http: meta l4proto tcp counter packets 1 bytes 60 dnat to 10.244.1.10:8080",
    ], p.stdout


def test_rules_with_live_counters(netns: str) -> None:
    # one SYN to the cluster IP: the OUTPUT nat chain DNATs it (out of a veth whose peer is down: it goes nowhere)
    subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c",
                    "import socket; s = socket.socket(); s.settimeout(0.3)\ntry: s.connect(('10.96.0.10', 80))\nexcept OSError: pass"],
                   check=True, timeout=30)
    status = dataclasses.asdict(ProxyStatus(mode="iptables", errors=(), last_sync=None, last_sync_kind=None, last_error=None, ports=(
        ServicePortStatus(name="shop/web:http", protocol="TCP", cluster_ip="10.96.0.10", port=80, node_port=None,
                          endpoints=("10.244.1.10:8080",), chains=("NODELET-SVC-TESTAAAA",)),)))
    d = tempfile.mkdtemp(prefix=f"nlt8-svc-{os.getpid()}-")
    try:
        sock = os.path.join(d, "api.sock")
        with ServerThread(StaticView(extras={"services": status}), sock):
            p = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m", "kubelet.cli.main", "describe", "service", "web",
                                "-n", "shop", "--socket", sock], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    lines = p.stdout.splitlines()
    assert lines[:5] == ["Name:       web", "Namespace:  shop", "Type:       ClusterIP", "IP:         10.96.0.10", "Port:       http  80/TCP"]
    assert "Rules (iptables, nat):" in lines
    rules = [ln.split(None, 2) for ln in lines[lines.index("Rules (iptables, nat):") + 2:]]
    assert [(r[0], r[2]) for r in rules] == [
        ("1", '-A NODELET-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "shop/web:http cluster IP" -m tcp --dport 80 -j NODELET-SVC-TESTAAAA'),
        ("1", '-A NODELET-SVC-TESTAAAA -m comment --comment "shop/web:http -> 10.244.1.10:8080" -j NODELET-SEP-TESTE1'),
        ("1", "-A NODELET-SEP-TESTE1 -p tcp -m tcp -j DNAT --to-destination 10.244.1.10:8080"),
    ], p.stdout
