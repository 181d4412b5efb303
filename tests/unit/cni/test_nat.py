"""ipMasq rules rendered for nft: our own table, one element per pod commented with its owner; GC plan."""
from __future__ import annotations

import ipaddress

from cni.config import Attachment, ContainerId
from cni.nat import compute_chain_ok, compute_gc, compute_net_hash, render_add, render_chain, render_del

A = Attachment(container_id=ContainerId("c1"), ifname="eth0")
B = Attachment(container_id=ContainerId("c2"), ifname="eth0")
H = compute_net_hash("net")


def test_render_add_only_adds_golden() -> None:
    got = render_add(network="net", addresses=[ipaddress.ip_address("10.1.0.5")], owner=A)
    assert got == (
        "add table ip nodelet-cni\n"
        f'add set ip nodelet-cni pods-{H} {{ type ipv4_addr; comment "nodelet-cni network=net"; }}\n'
        f'add element ip nodelet-cni pods-{H} {{ 10.1.0.5 comment "id=c1 if=eth0" }}\n')
    assert "delete" not in got and "flush" not in got


def test_render_chain_golden_and_verification() -> None:
    nets = [ipaddress.ip_network("10.1.0.0/24")]
    got = render_chain(network="net", version=4, subnets=nets)
    assert got.splitlines()[2:] == [
        f"add chain ip nodelet-cni masq-{H} {{ type nat hook postrouting priority srcnat; policy accept; }}",
        f"flush chain ip nodelet-cni masq-{H}",
        f"add rule ip nodelet-cni masq-{H} ip saddr @pods-{H} ip daddr != {{ 10.1.0.0/24, 224.0.0.0/4 }} "
        'masquerade comment "nodelet-cni network=net nomasq=10.1.0.0/24,224.0.0.0/4"']
    rule = {"rule": {"comment": "nodelet-cni network=net nomasq=10.1.0.0/24,224.0.0.0/4", "expr": []}}
    listed = {"nftables": [{"metainfo": {}}, {"chain": {"name": f"masq-{H}"}}, rule]}
    assert compute_chain_ok(listed, network="net", version=4, subnets=nets)
    assert not compute_chain_ok(listed, network="net", version=4, subnets=[ipaddress.ip_network("10.2.0.0/24")])
    assert not compute_chain_ok({"nftables": [rule, rule]}, network="net", version=4, subnets=nets)
    assert not compute_chain_ok(None, network="net", version=4, subnets=nets)
    v6 = render_chain(network="net", version=6, subnets=[ipaddress.ip_network("fd00::/64"), *nets])
    assert "ip6 daddr != { fd00::/64, ff00::/8 }" in v6


def test_render_del_is_add_then_delete_so_absent_is_fine() -> None:
    got = render_del(network="net", addresses=[ipaddress.ip_address("10.1.0.5")])
    assert got.splitlines()[-2:] == [f"add element ip nodelet-cni pods-{H} {{ 10.1.0.5 }}",
                                     f"delete element ip nodelet-cni pods-{H} {{ 10.1.0.5 }}"]
    assert render_del(network="net", addresses=[]) == ""


def _ruleset(elems: list[dict[str, object]], other_chain: bool = False) -> dict[str, object]:
    items: list[dict[str, object]] = [
        {"metainfo": {}}, {"table": {"family": "ip", "name": "nodelet-cni"}},
        {"set": {"family": "ip", "name": f"pods-{H}", "table": "nodelet-cni", "elem": elems}},
        {"chain": {"family": "ip", "table": "nodelet-cni", "name": f"masq-{H}"}}]
    if other_chain:
        items.append({"chain": {"family": "ip", "table": "nodelet-cni", "name": "masq-other"}})
    return {"nftables": items}


def test_gc_keeps_valid_removes_rest() -> None:
    rs = _ruleset([{"elem": {"val": "10.1.0.5", "comment": "id=c1 if=eth0"}},
                   {"elem": {"val": "10.1.0.6", "comment": "id=c2 if=eth0"}}, "10.1.0.7"])
    script, removed = compute_gc(rs, network="net", version=4, valid={A})
    assert script == (f"delete element ip nodelet-cni pods-{H} {{ 10.1.0.6 }}\n"
                      f"delete element ip nodelet-cni pods-{H} {{ 10.1.0.7 }}\n")
    assert [str(ip) for ip, _ in removed] == ["10.1.0.6", "10.1.0.7"]


def test_gc_with_nothing_valid_drops_the_table_or_just_our_chain() -> None:
    rs = _ruleset([{"elem": {"val": "10.1.0.5", "comment": "id=c1 if=eth0"}}])
    assert compute_gc(rs, network="net", version=4, valid=set())[0] == "delete table ip nodelet-cni\n"
    script, _ = compute_gc(_ruleset([], other_chain=True), network="net", version=4, valid=set())
    assert script == f"delete chain ip nodelet-cni masq-{H}\ndelete set ip nodelet-cni pods-{H}\n"
    assert compute_gc({"nftables": []}, network="net", version=4, valid=set()) == ("", [])
