"""resolvConf as kubeadm picks it (systemd-resolved detection on a fake layout under a temp root), and loopback
nameservers never reaching a pod (left out, with a DNSConfigForming Warning)."""
from __future__ import annotations

import textwrap
from pathlib import Path

from kubelet.config import load_config
import cri
from kubelet.app import build_agent
from kubelet.lifecycle.agent import Agent
from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.node.resolvconf import (
    SYSTEMD_RESOLVED_RESOLV_CONF, compute_resolv_conf, is_systemd_resolved_active, split_loopback,
)


def layout(root: Path, *, etc: str, resolved: str | None) -> str:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "resolv.conf").write_text(etc)
    if resolved is not None:
        d = root / "run" / "systemd" / "resolve"
        d.mkdir(parents=True)
        (d / "resolv.conf").write_text(resolved)
        (d / "stub-resolv.conf").write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    return str(root)


def no_systemd(unit: str) -> None:
    return None


def detect(root: str) -> bool:
    return is_systemd_resolved_active(root, systemctl=no_systemd)


def test_systemd_resolved_host_uses_its_upstream_file(tmp_path: Path) -> None:
    root = layout(tmp_path, etc="# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
                  resolved="nameserver 192.168.1.1\nsearch lan\n")
    assert detect(root) is True
    assert compute_resolv_conf(None, root=root, resolved_active=detect) == SYSTEMD_RESOLVED_RESOLV_CONF


def test_plain_host_and_explicit_settings(tmp_path: Path) -> None:
    plain = layout(tmp_path / "a", etc="nameserver 10.0.0.2\n", resolved=None)
    assert compute_resolv_conf(None, root=plain, resolved_active=detect) == "/etc/resolv.conf"
    # resolved's files left behind but /etc/resolv.conf managed by something else: not active
    left = layout(tmp_path / "b", etc="nameserver 10.0.0.2\n", resolved="nameserver 192.168.1.1\n")
    assert detect(left) is False
    assert compute_resolv_conf("", resolved_active=lambda r: True) == ""  # "" = no host DNS, as upstream
    assert compute_resolv_conf("/srv/resolv.conf", resolved_active=lambda r: True) == "/srv/resolv.conf"
    # on the real root with systemd as init, systemctl decides (kubeadm's check)
    assert is_systemd_resolved_active("/", systemctl=lambda unit: unit == "systemd-resolved") is True
    assert is_systemd_resolved_active("/", systemctl=lambda unit: False) is False


def test_split_loopback() -> None:
    assert split_loopback(("127.0.0.53", "10.0.0.2", "::1", "fe80::1%eth0", "127.1.2.3")) == (
        ("10.0.0.2", "fe80::1%eth0"), ("127.0.0.53", "::1", "127.1.2.3"))


POD = """
apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  dnsPolicy: %s
  containers: [{name: c, image: localhost/nodelet/busybox:1.35}]
"""


def test_loopback_nameservers_are_never_handed_to_a_pod(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\n")
    config = load_config(None, {"nodeName": "node1", "rootDir": str(tmp_path / "root"), "resolvConf": str(resolv),
                                "clusterDNS": "10.96.0.10"})
    agent = _agent(config)
    host, loopback = agent.runtime._host_resolv()
    assert (host.servers, host.searches, loopback) == (("10.0.0.2",), ("lan",), ("127.0.0.53",))
    pods = {}
    for name, policy in (("dflt", "Default"), ("cf", "ClusterFirst")):
        [pods[name]], _, errors = parse_manifest_bytes(textwrap.dedent(POD % (name, policy)).encode(),
                                                       file=f"/m/{name}.yaml", node_name="node1")
        assert not errors
        agent.runtime._warn_loopback_dns(pods[name], loopback, 0)
    warned = [(e["involvedObject"]["name"], e["reason"], e["message"]) for e in agent.recorder.list()]
    assert warned == [("dflt-node1", "DNSConfigForming",
                       f"Nameserver 127.0.0.53 of {resolv} is a loopback address the pod cannot reach: left out of the "
                       "pod's resolv.conf. On a systemd-resolved host set resolvConf: /run/systemd/resolve/resolv.conf "
                       "(nodelet doctor checks this)")]  # ClusterFirst with clusterDNS never used the host file


def test_empty_resolv_conf_means_no_host_dns(tmp_path: Path) -> None:
    config = load_config(None, {"nodeName": "node1", "rootDir": str(tmp_path), "resolvConf": ""})
    host, loopback = _agent(config).runtime._host_resolv()
    assert (host.servers, host.searches, loopback) == ((), (), ())


def _agent(config) -> Agent:  # type: ignore[no-untyped-def]
    """An agent wired as the daemon wires it; its client is never called here."""
    return build_agent(config, client=cri.RuntimeClient("unix:///nonexistent.sock"), host_ip="192.0.2.10").agent
