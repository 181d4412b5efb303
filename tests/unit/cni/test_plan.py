"""Pure parts of the bridge plugin: routes, result shape per cniVersion, host veth names, link labels."""
from __future__ import annotations

import json
import re

from cni.bridge import compute_host_veth_name, compute_routes, parse_alias, render_alias, render_result
from cni.config import Attachment, ContainerId, parse_env, parse_netconf
from cni.ipam import compute_allocations


def setup(**conf: object):  # type: ignore[no-untyped-def]
    raw = {"cniVersion": "1.0.0", "name": "net", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}]],
                                                          "routes": [{"dst": "192.168.0.0/16"}]}}
    raw.update(conf)
    c = parse_netconf(json.dumps(raw).encode())
    assert c.ipam is not None
    return c, compute_allocations(c.ipam, reserved=set(), last_reserved=[None])


def test_routes_default_gateway_first_and_gw_defaulted() -> None:
    c, allocs = setup(isDefaultGateway=True)
    assert [(str(d), str(g), shown) for d, g, shown in compute_routes(c, allocs)] == [
        ("0.0.0.0/0", "10.1.0.1", True), ("192.168.0.0/16", "10.1.0.1", False)]
    c, allocs = setup()
    assert [str(d) for d, _, _ in compute_routes(c, allocs)] == ["192.168.0.0/16"]


def test_result_shapes() -> None:
    env = parse_env({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/p", "CNI_IFNAME": "eth0",
                     "CNI_PATH": "/x"})
    for version, has_version in (("1.0.0", False), ("0.4.0", True), ("0.3.1", True)):
        c, allocs = setup(cniVersion=version, isDefaultGateway=True, mtu=1400, dns={"nameservers": ["10.96.0.10"]})
        r = render_result(c, env=env, allocs=allocs, bridge=("br", "aa:aa:aa:aa:aa:aa"),
                          host=("veth0", "bb:bb:bb:bb:bb:bb"), container="cc:cc:cc:cc:cc:cc")
        ip = {"address": "10.1.0.2/24", "gateway": "10.1.0.1", "interface": 2}
        assert r == {
            "cniVersion": version,
            "interfaces": [{"name": "br", "mac": "aa:aa:aa:aa:aa:aa"}, {"name": "veth0", "mac": "bb:bb:bb:bb:bb:bb"},
                           {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/netns/p", "mtu": 1400}],
            "ips": [{"version": "4", **ip} if has_version else ip],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "192.168.0.0/16"}],
            "dns": {"nameservers": ["10.96.0.10"]}}


def test_host_veth_names_are_reference_shaped_and_per_attachment() -> None:
    a = compute_host_veth_name("net", "c1", "eth0")
    assert re.fullmatch(r"veth[0-9a-f]{8}", a)
    assert a == compute_host_veth_name("net", "c1", "eth0")
    assert len({a, compute_host_veth_name("net", "c1", "eth1"), compute_host_veth_name("other", "c1", "eth0"),
                compute_host_veth_name("net", "c2", "eth0")}) == 4


def test_alias_round_trip_and_foreign_aliases() -> None:
    owner = Attachment(container_id=ContainerId("c1"), ifname="eth0")
    assert parse_alias(render_alias("net", owner)) == ("net", owner)
    assert parse_alias("") is None and parse_alias("uplink to rack 3") is None
    assert parse_alias("nodelet-cni garbage") is None
