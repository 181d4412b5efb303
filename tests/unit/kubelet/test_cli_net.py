"""`nodelet net`'s report from hand-made facts: pods ↔ veths ↔ IPs, and every kind of problem it finds."""
from __future__ import annotations

import dataclasses

from kubelet.cli.net import NetFacts, compute_net_report, render_net_report

A, B, C, GONE = "a" * 64, "b" * 64, "c" * 64, "d" * 64


def veth(name: str, sid: str, master: str = "nodelet0") -> dict:
    return {"ifname": name, "master": master, "ifalias": f"nodelet-cni net=nodelet id={sid} if=eth0", "flags": ["UP"]}


FACTS = NetFacts(
    bridge="nodelet0", pod_cidr="10.244.0.0/24", network="nodelet", conflist="/etc/cni/net.d/00-nodelet.conflist",
    data_dir="/var/lib/cni/networks/nodelet",
    links=[{"ifname": "nodelet0", "flags": ["BROADCAST", "UP"], "mtu": 1500}, veth("veth00000001", A), veth("veth00000002", B)],
    bridge_addrs=["10.244.0.1/24"],
    routes=[{"dst": "default", "dev": "eth0"}, {"dst": "10.244.0.0/24", "dev": "nodelet0"}],
    allocations={"10.244.0.2": A, "10.244.0.3": B},
    sandboxes=[{"id": A, "ready": True, "namespace": "default", "name": "web-n1", "ip": "10.244.0.2"},
               {"id": B, "ready": True, "namespace": "kube-system", "name": "dns-n1", "ip": "10.244.0.3"},
               {"id": C, "ready": True, "namespace": "default", "name": "host-n1", "ip": "192.168.1.5", "hostNetwork": True}],
)


def test_healthy_network_exact() -> None:
    r = compute_net_report(FACTS)
    assert render_net_report(r) == (
        "bridge nodelet0: up, 10.244.0.1/24, mtu 1500; podCIDR 10.244.0.0/24 routed via the bridge\n"
        "network nodelet: conf /etc/cni/net.d/00-nodelet.conflist; ipam /var/lib/cni/networks/nodelet (2 allocated)\n"
        "\n"
        "NAMESPACE     POD      IP           VETH           SANDBOX\n"
        "default       web-n1   10.244.0.2   veth00000001   aaaaaaaaaaaaa\n"
        "kube-system   dns-n1   10.244.0.3   veth00000002   bbbbbbbbbbbbb\n"
        "\n"
        "no problems found\n")


def test_problems() -> None:
    f = dataclasses.replace(
        FACTS,
        links=[*FACTS.links[:2], veth("veth0000dead", GONE), {"ifname": "veth12345678", "master": "nodelet0", "flags": ["UP"]},
               veth("vethother000", GONE) | {"ifalias": f"nodelet-cni net=othernet id={GONE} if=eth0"}],
        routes=[{"dst": "default", "dev": "eth0"}],
        allocations={"10.244.0.2": A, "10.244.0.3": B, "10.244.0.9": GONE, "10.244.0.10": None},
    )
    r = compute_net_report(f)
    assert "NOT routed via the bridge" in r.bridge_line
    assert [p for p, _ in r.problems] == [
        "no route to podCIDR 10.244.0.0/24 via nodelet0",
        f"orphan veth veth0000dead: its sandbox {GONE[:13]} is gone",
        "unlabelled veth veth12345678 on nodelet0: an ADD killed half-way, or not nodelet's",
        f"leaked IP 10.244.0.9: allocated to sandbox {GONE[:13]}, which the runtime does not have",
        "unreadable allocation 10.244.0.10 in /var/lib/cni/networks/nodelet",
        "pod kube-system/dns-n1 has 10.244.0.3 but no veth on this host",
    ]
    assert r.problems[3][1] == ("the runtime's CNI GC (containerd ≥ 2.0) or a DEL for it frees it; else "
                                "rm /var/lib/cni/networks/nodelet/10.244.0.9")
    text = render_net_report(r)
    assert "6 problems:\n  - no route to podCIDR" in text and "      fix: ip link del veth0000dead" in text


def test_missing_bridge_and_stopped_sandbox() -> None:
    f = dataclasses.replace(FACTS, links=[veth("veth00000001", A, master="")], sandboxes=[{"id": A, "ready": False, "namespace": "default", "name": "web-n1"}],
                            allocations={"10.244.0.2": A})
    r = compute_net_report(f)
    assert r.bridge_line.startswith("bridge nodelet0: missing") and r.rows == []
    assert [p for p, _ in r.problems] == [
        "bridge nodelet0 does not exist", f"orphan veth veth00000001: its sandbox {A[:13]} is not ready",
        f"leaked IP 10.244.0.2: allocated to sandbox {A[:13]}, which the runtime has stopped"]
