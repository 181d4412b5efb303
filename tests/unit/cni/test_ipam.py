"""The pure allocator: round-robin from the last reserved address, gateway never handed out, requested IPs."""
from __future__ import annotations

import ipaddress
import json

import pytest

from cni.config import parse_netconf
from cni.errors import CNIError
from cni.ipam import compute_allocations, compute_next_address, parse_requested_ips

ip = ipaddress.ip_address


def ipam(ranges: list[list[dict[str, str]]]):  # type: ignore[no-untyped-def]
    c = parse_netconf(json.dumps({"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "host-local",
                                                                                "ranges": ranges}}).encode())
    assert c.ipam is not None
    return c.ipam


def test_first_address_skips_gateway() -> None:
    (rs,) = ipam([[{"subnet": "10.0.0.0/29"}]]).range_sets
    assert compute_next_address(rs, reserved=set(), last_reserved=None).address == ip("10.0.0.2")


def test_round_robin_continues_after_last_reserved_and_wraps() -> None:
    (rs,) = ipam([[{"subnet": "10.0.0.0/29"}]]).range_sets  # usable .1-.6, gateway .1
    assert compute_next_address(rs, reserved=set(), last_reserved=ip("10.0.0.4")).address == ip("10.0.0.5")
    # .6 is last; after it the search wraps to .2 (gateway skipped), skipping reserved ones
    a = compute_next_address(rs, reserved={ip("10.0.0.2")}, last_reserved=ip("10.0.0.6"))
    assert a.address == ip("10.0.0.3")
    # a last_reserved outside the set (config changed) restarts at rangeStart
    assert compute_next_address(rs, reserved=set(), last_reserved=ip("192.168.0.1")).address == ip("10.0.0.2")


def test_released_last_address_is_handed_out_again_only_after_a_full_round() -> None:
    (rs,) = ipam([[{"subnet": "10.0.0.0/29"}]]).range_sets
    reserved = {ip(f"10.0.0.{i}") for i in (2, 3, 5, 6)}
    assert compute_next_address(rs, reserved=reserved, last_reserved=ip("10.0.0.4")).address == ip("10.0.0.4")


def test_exhausted_range_set_error() -> None:
    (rs,) = ipam([[{"subnet": "10.0.0.0/30"}]]).range_sets  # .1 gateway, .2 only
    with pytest.raises(CNIError) as ei:
        compute_next_address(rs, reserved={ip("10.0.0.2")}, last_reserved=None)
    assert ei.value.code == 100
    assert ei.value.msg == "no IP addresses available in range set: 10.0.0.1-10.0.0.2"


def test_multiple_ranges_in_a_set_are_walked_in_order() -> None:
    (rs,) = ipam([[{"subnet": "10.0.0.0/30"}, {"subnet": "10.0.1.0/30"}]]).range_sets
    a = compute_next_address(rs, reserved={ip("10.0.0.2")}, last_reserved=ip("10.0.0.2"))
    assert a.address == ip("10.0.1.2") and a.cidr == "10.0.1.2/30"


def test_dual_stack_one_address_per_range_set() -> None:
    conf = ipam([[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/120"}]])
    allocs = compute_allocations(conf, reserved=set(), last_reserved=[None, None])
    assert [a.cidr for a in allocs] == ["10.0.0.2/24", "fd00::2/120"]


def test_requested_ip() -> None:
    conf = ipam([[{"subnet": "10.0.0.0/24"}]])
    reqs = parse_requested_ips("10.0.0.77", [])
    assert [a.address for a in compute_allocations(conf, reserved=set(), last_reserved=[None],
                                                   requested=reqs)] == [ip("10.0.0.77")]
    for requested, msg in [
        ("10.0.0.77", "requested IP 10.0.0.77 is not available in range set 10.0.0.1-10.0.0.254: already allocated"),
        ("10.0.0.1", "requested IP 10.0.0.1 is the gateway of subnet 10.0.0.0/24"),
        ("10.9.0.1", "requested IP 10.9.0.1 is not in any configured range"),
    ]:
        with pytest.raises(CNIError) as ei:
            compute_allocations(conf, reserved={ip("10.0.0.77")}, last_reserved=[None],
                                requested=parse_requested_ips(requested, []))
        assert (ei.value.code, ei.value.msg) == (101, msg)
    assert parse_requested_ips("", ["10.0.0.5/24"]) == [ip("10.0.0.5")]
    with pytest.raises(CNIError) as ei:
        parse_requested_ips("x.y", [])
    assert ei.value.code == 7
