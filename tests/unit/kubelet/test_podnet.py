from __future__ import annotations

from kubelet.node.podnet import compute_cni_network, compute_young_owners


def test_default_agent_keeps_the_established_network() -> None:
    net = compute_cni_network(root_dir="/var/lib/nodelet/")
    assert (net.name, net.data_dir) == ("nodelet", None)


def test_every_other_root_dir_gets_its_own_network_and_ipam_dir() -> None:
    a = compute_cni_network(root_dir="/tmp/a/root")
    b = compute_cni_network(root_dir="/tmp/b/root")
    assert a.name != b.name and a.name.startswith("nodelet-") and len(a.name) == len("nodelet-") + 8
    assert a.data_dir == "/tmp/a/root/cni/networks" and b.data_dir == "/tmp/b/root/cni/networks"
    assert compute_cni_network(root_dir="/tmp/a/root/") == a  # same dir, same network


def test_young_allocations_are_kept_by_gc() -> None:
    entries = [(b"c1\r\neth0", 1000.0), (b"c2\r\neth0", 800.0), (b"garbage\nx\ny", 1000.0)]
    assert compute_young_owners(entries, now=1010.0, grace=120.0) == {("c1", "eth0")}
