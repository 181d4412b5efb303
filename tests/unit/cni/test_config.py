"""Env and stdin-config validation: exact spec codes and messages naming the field."""
from __future__ import annotations

import ipaddress
import json
import os

import pytest

from cni.config import (CONFLIST_NAME, compute_conflist_name, ensure_conflist, parse_env, parse_netconf,
                        render_conflist)
from cni.errors import CNIError

BASE = {"cniVersion": "1.0.0", "name": "net", "type": "nodelet-cni", "bridge": "nodelet0",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}]]}}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
       "CNI_PATH": "/opt/cni/bin"}


def conf(**changes: object) -> bytes:
    c = json.loads(json.dumps(BASE))
    for k, v in changes.items():
        if k.startswith("ipam_"):
            c["ipam"][k[5:]] = v
        elif v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return json.dumps(c).encode()


@pytest.mark.parametrize("env,code,msg", [
    ({}, 4, "required env variables [CNI_COMMAND] missing"),
    ({"CNI_COMMAND": "FOO"}, 4, "CNI_COMMAND: unknown command 'FOO' (expected one of ADD, DEL, CHECK, VERSION, GC, STATUS)"),
    ({"CNI_COMMAND": "ADD"}, 4, "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"),
    ({**ENV, "CNI_NETNS": ""}, 4, "required env variables [CNI_NETNS] missing"),
    ({**ENV, "CNI_CONTAINERID": "a b"}, 4, "CNI_CONTAINERID: invalid characters in container id 'a b'"),
    ({**ENV, "CNI_IFNAME": "a" * 16}, 4, f"CNI_IFNAME {'a' * 16!r} is longer than 15 characters"),
    ({**ENV, "CNI_IFNAME": "e/0"}, 4, "CNI_IFNAME 'e/0' contains '/', ':' or whitespace"),
    ({**ENV, "CNI_ARGS": "FOO=1"}, 4, "CNI_ARGS: unknown key(s) FOO (set IgnoreUnknown=1 to ignore)"),
    ({**ENV, "CNI_ARGS": "junk"}, 4, "CNI_ARGS: invalid pair 'junk', expected KEY=VALUE"),
])
def test_env_errors(env: dict[str, str], code: int, msg: str) -> None:
    with pytest.raises(CNIError) as ei:
        parse_env(env)
    assert (ei.value.code, ei.value.msg) == (code, msg)


def test_env_ok_del_without_netns_and_ignore_unknown() -> None:
    e = parse_env({"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "abc", "CNI_IFNAME": "eth0", "CNI_PATH": "/x",
                   "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=p;FOO=bar;IP=10.1.0.9"})
    assert e.netns == "" and e.args["IP"] == "10.1.0.9" and e.args["FOO"] == "bar"
    assert parse_env({"CNI_COMMAND": "VERSION"}).command == "VERSION"


@pytest.mark.parametrize("stdin,code,msg", [
    (b"{not json", 6, "failed to decode network config from stdin: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (b"[]", 6, "network config on stdin must be a JSON object, got list"),
    (conf(cniVersion=None), 7, "cniVersion: missing"),
    (conf(cniVersion="0.2.0"), 1, "cniVersion: incompatible CNI version '0.2.0'; plugin supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"),
    (conf(cniVersion="9.9.9"), 1, "cniVersion: incompatible CNI version '9.9.9'; plugin supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"),
    (conf(name="bad name"), 7, "name: missing or invalid network name 'bad name'"),
    (conf(bridge="x" * 16), 7, f"bridge {'x' * 16!r} is longer than 15 characters"),
    (conf(isGateway="yes"), 7, "isGateway: expected true or false, got 'yes'"),
    (conf(mtu=20), 7, "mtu: expected 0 (kernel default) or an integer 68-65535, got 20"),
    (conf(vlan=100), 2, "vlan: 100 is not supported by nodelet-cni"),
    (conf(ipam=None), 7, 'ipam: missing (nodelet-cni needs {"type": "host-local", "ranges": ...})'),
    (conf(ipam={"type": "dhcp"}), 2, "ipam.type: 'dhcp' is not supported; nodelet-cni has host-local built in (use \"type\": \"host-local\")"),
    (conf(ipam_ranges=[[{"subnet": "10.1.0.0/31"}]]), 7, "ipam.ranges[0][0].subnet: network 10.1.0.0/31 too small to allocate from (needs /30 or larger)"),
    (conf(ipam_ranges=[[{"subnet": "10.1.0.0/33"}]]), 7, "ipam.ranges[0][0].subnet: invalid CIDR '10.1.0.0/33': '10.1.0.0/33' does not appear to be an IPv4 or IPv6 network"),
    (conf(ipam_ranges=[[{}]]), 7, "ipam.ranges[0][0].subnet: missing"),
    (conf(ipam_ranges=[]), 7, "ipam.ranges: expected a non-empty list of range sets, got []"),
    (conf(ipam_ranges=[[{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}]]), 7, "ipam.ranges[0][0].rangeStart: 10.2.0.5 is not in subnet 10.1.0.0/24"),
    (conf(ipam_ranges=[[{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.50", "rangeEnd": "10.1.0.10"}]]), 7, "ipam.ranges[0]: rangeStart 10.1.0.50 is after rangeEnd 10.1.0.10".replace("ranges[0]", "ranges[0][0]")),
    (conf(ipam_ranges=[[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.1.0.0/25"}]]), 7, "ipam.ranges[1][0]: overlaps ipam.ranges[0][0]"),
    (conf(ipam_ranges=[[{"subnet": "10.1.0.0/24", "gateway": "10.9.0.1"}]]), 7, "ipam.ranges[0][0].gateway: 10.9.0.1 is not in subnet 10.1.0.0/24"),
    (conf(ipam_routes=[{"dst": "nope"}]), 7, "ipam.routes[0].dst: invalid CIDR 'nope': 'nope' does not appear to be an IPv4 or IPv6 network"),
    (conf(ipam_dataDir="relative/dir"), 7, "ipam.dataDir: 'relative/dir' is not an absolute path"),
])
def test_config_errors(stdin: bytes, code: int, msg: str) -> None:
    with pytest.raises(CNIError) as ei:
        parse_netconf(stdin)
    assert (ei.value.code, ei.value.msg) == (code, msg)


def test_config_defaults_like_host_local() -> None:
    c = parse_netconf(conf(ipMasq=True))
    assert c.bridge == "nodelet0" and c.ip_masq and not c.is_gateway
    assert c.ipam is not None
    (r,), = c.ipam.range_sets
    assert (str(r.start), str(r.end), str(r.gateway)) == ("10.1.0.1", "10.1.0.254", "10.1.0.1")
    assert c.store_dir == "/var/lib/cni/networks/net"
    legacy = parse_netconf(conf(ipam={"type": "host-local", "subnet": "10.5.0.0/30", "dataDir": "/tmp/x"}))
    (r2,), = legacy.ipam.range_sets  # type: ignore[union-attr]
    assert (str(r2.start), str(r2.end)) == ("10.5.0.1", "10.5.0.2") and legacy.store_dir == "/tmp/x/net"
    v6 = parse_netconf(conf(ipam_ranges=[[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/120"}]]))
    assert v6.ipam is not None and v6.ipam.range_sets[1][0].end == ipaddress.ip_address("fd00::ff")


def test_gc_valid_attachments_parsed() -> None:
    c = parse_netconf(conf(**{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]}),
                      command="GC")
    assert c.valid_attachments is not None and c.valid_attachments[0].container_id == "a"
    with pytest.raises(CNIError) as ei:
        parse_netconf(conf(**{"cni.dev/valid-attachments": [{"containerID": 1}]}), command="GC")
    assert ei.value.code == 7 and ei.value.msg.startswith("cni.dev/valid-attachments[0]: expected")
    with pytest.raises(CNIError) as ei:
        parse_netconf(conf(), command="GC")
    assert (ei.value.code, ei.value.msg) == (7, "cni.dev/valid-attachments: required for GC")
    assert parse_netconf(conf(**{"cni.dev/valid-attachments": []}), command="GC").valid_attachments == ()


def test_render_conflist_is_valid_and_chains_portmap() -> None:
    c = render_conflist(pod_cidr="10.244.1.0/24")
    assert c["name"] == "nodelet" and c["cniVersion"] == "1.0.0"
    first, second = c["plugins"]
    assert first["type"] == "nodelet-cni" and first["bridge"] == "nodelet0" and first["ipMasq"] is True
    assert first["isGateway"] and first["isDefaultGateway"] and first["forceAddress"] and first["hairpinMode"]
    assert first["ipam"] == {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]],
                             "routes": [{"dst": "0.0.0.0/0"}]}
    assert second == {"type": "portmap", "capabilities": {"portMappings": True}}
    assert len(render_conflist(pod_cidr="10.244.1.0/24", portmap=False)["plugins"]) == 1
    with pytest.raises(ValueError):
        render_conflist(pod_cidr="not-a-cidr")


def test_conflist_name_sorts_first() -> None:
    assert compute_conflist_name([]) == CONFLIST_NAME
    assert compute_conflist_name(["10-containerd-net.conflist", "README"]) == CONFLIST_NAME
    name = compute_conflist_name(["00-aaa.conflist"])
    assert name < "00-aaa.conflist"
    assert compute_conflist_name(["00-aaa.bak"]) == CONFLIST_NAME  # not a config file for the runtime


def test_ensure_conflist_atomic_idempotent_and_polite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "10-containerd-net.conflist"
    other.write_text("{}")
    c = render_conflist(pod_cidr="10.244.1.0/24")
    p = ensure_conflist(tmp_path, c)
    assert p.name == CONFLIST_NAME and json.loads(p.read_text()) == c
    assert sorted(x.name for x in tmp_path.iterdir() if x.suffix in (".conf", ".conflist", ".json"))[0] == p.name
    mtime = os.stat(p).st_mtime_ns
    assert ensure_conflist(tmp_path, c) == p and os.stat(p).st_mtime_ns == mtime  # unchanged → not rewritten
    assert other.read_text() == "{}"
    assert not [x for x in tmp_path.iterdir() if x.name.endswith(".tmp")]
    (tmp_path / "00-aaa.conflist").write_text("{}")
    p2 = ensure_conflist(tmp_path, c)
    assert p2.name < "00-aaa.conflist" and not p.exists() and other.exists()


def test_container_mac_runtime_config_over_cni_args() -> None:
    import json as _json

    from cni.config import Env, compute_container_mac, parse_netconf
    from cni.errors import InvalidConfig

    base = {"cniVersion": "1.0.0", "name": "n", "type": "nodelet-cni",
            "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}}
    plain = parse_netconf(_json.dumps(base).encode())
    with_rc = parse_netconf(_json.dumps({**base, "runtimeConfig": {"mac": "0A-58-00-00-00-01"}}).encode())
    env = Env(command="ADD", args={"MAC": "0a:58:00:00:00:02"})
    assert compute_container_mac(Env(command="ADD"), plain) == ""
    assert compute_container_mac(env, plain) == "0a:58:00:00:00:02"
    assert compute_container_mac(env, with_rc) == "0a:58:00:00:00:01"
    with pytest.raises(InvalidConfig, match="runtimeConfig.mac"):
        parse_netconf(_json.dumps({**base, "runtimeConfig": {"mac": "03:00:00:00:00:01"}}).encode())
    with pytest.raises(InvalidConfig, match="CNI_ARGS MAC"):
        compute_container_mac(Env(command="ADD", args={"MAC": "0a:58:00:00:00"}), plain)
