"""nodelet-cni in real network namespaces: ADD/CHECK/DEL/GC/STATUS, errors, reachability, ipMasq.

Each test gets a private "host" netns (bridge, veths and nft table live there) and pod netns of its own.
"""
from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Iterator

import pytest

from cni.testing import CniHarness, is_root, netns, ping, run_in

pytestmark = [pytest.mark.root, pytest.mark.netns,
              pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")]


@pytest.fixture
def host() -> Iterator[str]:
    with netns("host") as h:
        yield h


@pytest.fixture
def cni(host: str, tmp_path) -> Iterator[CniHarness]:  # type: ignore[no-untyped-def]
    yield CniHarness(host=host, workdir=str(tmp_path))


@pytest.fixture
def served(cni: CniHarness) -> Iterator[CniHarness]:
    from cni.testing import cni_server
    with cni_server(cni.socket, host_netns=cni.host):
        yield cni


@pytest.fixture
def pod() -> Iterator[str]:
    with netns("pod") as p:
        yield p


def wait_for(cond, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def ok(r):  # type: ignore[no-untyped-def]
    assert r.rc == 0, (r.stdout.decode(), r.stderr.decode()[-3000:])
    return r.json


def err(r):  # type: ignore[no-untyped-def]
    assert r.rc != 0, r.stdout.decode()
    return r.json


@pytest.mark.parametrize("fast,client", [(True, "c"), (False, "c"), (True, "python"), (False, "python")],
                         ids=["server-c", "fallback-c", "server-py", "fallback-py"])
def test_add_check_del(host: str, tmp_path, pod: str, fast: bool, client: str) -> None:  # type: ignore[no-untyped-def]
    from cni.testing import cni_server
    cni = CniHarness(host=host, workdir=str(tmp_path), client=client)
    with cni_server(cni.socket, host_netns=host):
        _add_check_del(cni, pod, fast)


def _add_check_del(cni: CniHarness, pod: str, fast: bool) -> None:
    conf = cni.conf(ipMasq=True)
    res = ok(cni.call("ADD", conf=conf, container_id="c1", netns=pod, fast=fast))
    bridge, hostif, podif = res["interfaces"]
    assert bridge["name"] == "ncnibr0" and re.fullmatch(r"veth[0-9a-f]{8}", hostif["name"])
    assert podif == {"name": "eth0", "mac": podif["mac"], "sandbox": pod}
    (ipc,) = res["ips"]
    addr = ipaddress.ip_interface(ipc["address"])
    assert addr.network == ipaddress.ip_network("10.88.0.0/24") and ipc["gateway"] == "10.88.0.1"
    assert ipc["interface"] == 2 and res["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}]
    assert res["cniVersion"] == "1.1.0" and res["dns"] == {}
    # the kernel agrees with the result
    link = json.loads(run_in(pod, "ip", "-j", "addr", "show", "eth0").stdout)[0]
    assert link["address"] == podif["mac"] and link["operstate"] in ("UP", "LOWERLAYERDOWN", "UNKNOWN")
    assert any(a["local"] == str(addr.ip) and a["prefixlen"] == 24 for a in link["addr_info"])
    assert "default via 10.88.0.1 dev eth0" in run_in(pod, "ip", "route").stdout
    assert "10.88.0.1/24" in run_in(cni.host, "ip", "addr", "show", "ncnibr0").stdout
    port = run_in(cni.host, "ip", "-d", "link", "show", hostif["name"]).stdout
    assert "master ncnibr0" in port and "hairpin on" in port and "alias nodelet-cni net=ncnitest id=c1 if=eth0" in port
    assert cni.allocations() == [str(addr.ip)]
    with open(f"{cni.data_dir}/ncnitest/{addr.ip}", "rb") as f:
        assert f.read() == b"c1\r\neth0"
    assert f'{addr.ip} comment "id=c1 if=eth0"' in cni.masq_elements()
    assert run_in(cni.host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    # CHECK against prevResult: fine, then broken by removing the address
    assert ok(cni.call("CHECK", conf={**conf, "prevResult": res}, container_id="c1", netns=pod, fast=fast)) is None
    # DEL, twice (idempotent)
    for _ in range(2):
        assert ok(cni.call("DEL", conf={**conf, "prevResult": res}, container_id="c1", netns=pod, fast=fast)) is None
        assert cni.allocations() == [] and cni.veths() == [] and str(addr.ip) not in cni.masq_elements()
    assert run_in(pod, "ip", "-o", "link").stdout.count("eth0") == 0


def test_check_detects_drift(served: CniHarness, pod: str) -> None:
    conf = served.conf()
    res = ok(served.call("ADD", conf=conf, container_id="c1", netns=pod))
    run_in(pod, "ip", "addr", "flush", "dev", "eth0")
    out = err(served.call("CHECK", conf={**conf, "prevResult": res}, container_id="c1", netns=pod))
    assert out["code"] == 105 and out["msg"] == f"interface eth0 in netns {pod} lacks address {res['ips'][0]['address']}"
    out = err(served.call("CHECK", conf=conf, container_id="c1", netns=pod))
    assert (out["code"], out["msg"]) == (7, "prevResult: required for CHECK")


def test_old_cni_version_result_shape(served: CniHarness, pod: str) -> None:
    res = ok(served.call("ADD", conf=served.conf(cniVersion="0.4.0"), container_id="c1", netns=pod))
    assert res["cniVersion"] == "0.4.0" and res["ips"][0]["version"] == "4"


def test_del_when_netns_and_link_are_already_gone(served: CniHarness) -> None:
    with netns("gone") as p:
        ok(served.call("ADD", container_id="c1", netns=p))
    wait_for(lambda: served.veths() == [], "the veth pair to die with its netns (nothing may pin the netns)")
    assert ok(served.call("DEL", container_id="c1", netns=p)) is None
    assert ok(served.call("DEL", container_id="c1", netns="")) is None
    assert served.allocations() == []


def test_add_errors_leave_nothing_behind(served: CniHarness, pod: str) -> None:
    cni = served
    out = err(cni.call("ADD", container_id="c1", netns="/run/netns/ncni-does-not-exist"))
    assert out["code"] == 4 and out["msg"].startswith("CNI_NETNS: cannot open netns '/run/netns/ncni-does-not-exist'")
    assert cni.allocations() == []
    run_in(pod, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other0")
    out = err(cni.call("ADD", container_id="c2", netns=pod))
    assert (out["code"], out["msg"]) == (102, "CNI_IFNAME: interface 'eth0' already exists in the container netns")
    assert cni.allocations() == [] and cni.veths() == []
    out = err(cni.call("ADD", conf=cni.conf(ipam={"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/31"}]]}),
                       container_id="c3", netns=pod, ifname="eth1"))
    assert out["code"] == 7 and "too small to allocate from" in out["msg"]


def test_exhausted_range(served: CniHarness) -> None:
    conf = served.conf(ipam={"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/30"}]],
                             "dataDir": served.data_dir})
    with netns("p1") as p1, netns("p2") as p2:
        assert ok(served.call("ADD", conf=conf, container_id="c1", netns=p1))["ips"][0]["address"] == "10.88.0.2/30"
        out = err(served.call("ADD", conf=conf, container_id="c2", netns=p2))
        assert (out["code"], out["msg"]) == (100, "no IP addresses available in range set: 10.88.0.1-10.88.0.2")
        assert len(served.veths()) == 1 and served.allocations() == ["10.88.0.2"]


def test_requested_ip_via_cni_args_and_runtime_config(served: CniHarness) -> None:
    with netns("p1") as p1, netns("p2") as p2:
        r = ok(served.call("ADD", container_id="c1", netns=p1, args="IgnoreUnknown=1;IP=10.88.0.77"))
        assert r["ips"][0]["address"] == "10.88.0.77/24"
        r = ok(served.call("ADD", conf=served.conf(runtimeConfig={"ips": ["10.88.0.78/24"]}), container_id="c2",
                           netns=p2))
        assert r["ips"][0]["address"] == "10.88.0.78/24"


def test_reachability_pod_to_pod_and_host(served: CniHarness) -> None:
    with netns("a") as a, netns("b") as b:
        ra = ok(served.call("ADD", container_id="ca", netns=a))
        rb = ok(served.call("ADD", container_id="cb", netns=b))
        ip_a = ra["ips"][0]["address"].split("/")[0]
        ip_b = rb["ips"][0]["address"].split("/")[0]
        assert ping(a, ip_b) and ping(b, ip_a)  # pod to pod across the bridge
        assert ping(a, "10.88.0.1")  # pod to host
        assert ping(served.host, ip_a)  # host to pod


def _vip_to(host: str, pod_ip: str) -> None:
    """A kube-proxy-like VIP 10.99.99.99 DNATed to `pod_ip` (masqueraded when the pod talks to itself)."""
    import subprocess
    from cni.testing import in_ns
    script = ("table ip ncnitest-vip {\n chain pre { type nat hook prerouting priority dstnat;\n"
              f"  ip daddr 10.99.99.99 dnat to {pod_ip}\n }}\n chain post {{ type nat hook postrouting priority srcnat;\n"
              f"  ip saddr {pod_ip} ip daddr {pod_ip} masquerade\n }}\n}}\n")
    subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True, preexec_fn=in_ns(host))


@pytest.mark.parametrize("hairpin", [True, False], ids=["hairpin", "no-hairpin"])
def test_pod_reaches_itself_through_a_service_vip(served: CniHarness, hairpin: bool) -> None:
    """With br_netfilter active the DNATed frame is bridged straight back out of the pod's own port, which only
    hairpinMode allows (the reason kubelet's kubenet and the reference plugin turn it on)."""
    br_nf = run_in(served.host, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables", check=False).stdout.strip()
    with netns("a") as a:
        r = ok(served.call("ADD", conf=served.conf(hairpinMode=hairpin), container_id="ca", netns=a))
        ip_a = r["ips"][0]["address"].split("/")[0]
        _vip_to(served.host, ip_a)
        if br_nf == "1":  # bridged path: hairpin decides
            assert ping(a, "10.99.99.99") == hairpin
        else:  # without br_netfilter the reply is routed through the host and works either way
            assert ping(a, "10.99.99.99")


def test_ipmasq_hides_pod_addresses_from_the_outside(cni: CniHarness) -> None:
    """An "outside" netns with no route back to the pod subnet answers only masqueraded traffic."""
    with netns("out") as out, netns("p") as p:
        run_in(cni.host, "ip", "link", "add", "ncniup0", "type", "veth", "peer", "name", "ncniout0",
               "netns", out.rsplit("/", 1)[1])
        run_in(cni.host, "ip", "addr", "add", "10.250.0.1/24", "dev", "ncniup0")
        run_in(cni.host, "ip", "link", "set", "ncniup0", "up")
        run_in(out, "ip", "addr", "add", "10.250.0.2/24", "dev", "ncniout0")
        run_in(out, "ip", "link", "set", "ncniout0", "up")
        ok(cni.call("ADD", conf=cni.conf(ipMasq=False), container_id="c1", netns=p, fast=False))
        assert not ping(p, "10.250.0.2", timeout=1)
        ok(cni.call("DEL", conf=cni.conf(ipMasq=False), container_id="c1", netns=p, fast=False))
        ok(cni.call("ADD", conf=cni.conf(ipMasq=True), container_id="c1", netns=p, fast=False))
        assert ping(p, "10.250.0.2")
        ok(cni.call("DEL", conf=cni.conf(ipMasq=True), container_id="c1", netns=p, fast=False))
        assert "id=c1" not in cni.masq_elements()


def test_gc_keeps_valid_attachments_and_removes_the_rest(served: CniHarness) -> None:
    conf = served.conf(ipMasq=True)
    with netns("keep") as keep, netns("drop") as drop:
        rk = ok(served.call("ADD", conf=conf, container_id="keep", netns=keep))
        ok(served.call("ADD", conf=conf, container_id="drop", netns=drop))
        assert len(served.allocations()) == 2 and len(served.veths()) == 2
        gc = {**conf, "cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]}
        assert ok(served.call("GC", conf=gc)) is None
        ip_keep = rk["ips"][0]["address"].split("/")[0]
        assert served.allocations() == [ip_keep]
        assert served.veths() == [rk["interfaces"][1]["name"]]
        elems = served.masq_elements()
        assert "id=keep" in elems and "id=drop" not in elems
        assert ping(keep, "10.88.0.1")
        assert run_in(drop, "ip", "-o", "link").stdout.count("eth0") == 0
        assert ok(served.call("GC", conf={**conf, "cni.dev/valid-attachments": []})) is None
        assert served.allocations() == [] and served.veths() == [] and served.masq_elements() == ""


def test_gc_reports_and_removes_a_corrupted_allocation_file(served: CniHarness) -> None:
    with netns("p") as p:
        ok(served.call("ADD", container_id="c1", netns=p))
        with open(f"{served.data_dir}/ncnitest/10.88.0.200", "wb") as f:
            f.write(b"\x00\xff junk\n\n\n")
        r = ok(served.call("ADD", container_id="c2", netns=p, ifname="eth1"))
        assert r["ips"][0]["address"] != "10.88.0.200/24"
        ok(served.call("GC", conf={**served.conf(), "cni.dev/valid-attachments": [
            {"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "eth1"}]}))
        assert "10.88.0.200" not in served.allocations() and len(served.allocations()) == 2


def test_status(served: CniHarness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert ok(served.call("STATUS")) is None
    (tmp_path / "afile").write_text("x")
    out = err(served.call("STATUS", conf=served.conf(ipam={"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/24"}]],
                                                           "dataDir": str(tmp_path / "afile")})))
    assert out["code"] == 50 and "cannot create" in out["msg"]
    run_in(served.host, "ip", "link", "add", "ncnibr9", "type", "veth", "peer", "name", "ncnibr9p")
    out = err(served.call("STATUS", conf=served.conf(bridge="ncnibr9")))
    assert (out["code"], out["msg"]) == (50, "plugin not available: bridge 'ncnibr9' exists and is a veth link")
    with netns("p") as p:
        out = err(served.call("ADD", conf=served.conf(bridge="ncnibr9"), container_id="c1", netns=p))
        assert out["code"] == 106 and served.allocations() == []


def test_dual_stack(served: CniHarness) -> None:
    conf = served.conf(ipMasq=True, ipam={"type": "host-local", "dataDir": served.data_dir,
                                          "ranges": [[{"subnet": "10.88.0.0/24"}], [{"subnet": "fd88::/64"}]]})
    with netns("a") as a, netns("b") as b:
        ra = ok(served.call("ADD", conf=conf, container_id="ca", netns=a))
        rb = ok(served.call("ADD", conf=conf, container_id="cb", netns=b))
        assert [ip["address"] for ip in ra["ips"]] == ["10.88.0.2/24", "fd88::2/64"]
        assert ra["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}, {"dst": "::/0", "gw": "fd88::1"}]
        addrs = run_in(a, "ip", "-6", "addr", "show", "dev", "eth0", "scope", "global").stdout
        assert "fd88::2/64" in addrs and "tentative" not in addrs  # no DAD wait, like the reference
        assert ping(a, rb["ips"][1]["address"].split("/")[0]) and ping(a, "fd88::1")
        assert 'fd88::2 comment "id=ca if=eth0"' in run_in(served.host, "nft", "list", "table", "ip6",
                                                           "nodelet-cni").stdout
        for cid, ns in (("ca", a), ("cb", b)):
            ok(served.call("DEL", conf=conf, container_id=cid, netns=ns))
        assert served.allocations() == [] and served.veths() == []
        ok(served.call("GC", conf={**conf, "cni.dev/valid-attachments": []}))
        assert run_in(served.host, "nft", "list", "ruleset").stdout.strip() == ""


def test_bridge_options_mtu_promisc_no_gateway(served: CniHarness) -> None:
    conf = served.conf(mtu=1400, promiscMode=True, isGateway=False, isDefaultGateway=False, hairpinMode=False)
    with netns("p") as p:
        res = ok(served.call("ADD", conf=conf, container_id="c1", netns=p))
        assert res["interfaces"][2]["mtu"] == 1400 and res["routes"] == []
        assert "mtu 1400" in run_in(p, "ip", "link", "show", "eth0").stdout
        br = run_in(served.host, "ip", "-d", "addr", "show", "ncnibr0").stdout
        assert "PROMISC" in br and "inet " not in br
        port = run_in(served.host, "ip", "-d", "link", "show", res["interfaces"][1]["name"]).stdout
        assert "mtu 1400" in port and "hairpin off" in port
        assert "default" not in run_in(p, "ip", "route").stdout


def test_force_address(served: CniHarness) -> None:
    run_in(served.host, "ip", "link", "add", "ncnibr0", "type", "bridge")
    run_in(served.host, "ip", "addr", "add", "10.88.0.254/24", "dev", "ncnibr0")
    with netns("p") as p, netns("q") as q:
        out = err(served.call("ADD", container_id="c1", netns=p))
        assert (out["code"], out["msg"]) == (106, "bridge 'ncnibr0' already has an IP address 10.88.0.254/24 "
                                                  "different from 10.88.0.1/24 (set forceAddress to replace it)")
        assert served.allocations() == [] and served.veths() == []
        ok(served.call("ADD", conf=served.conf(forceAddress=True), container_id="c2", netns=q))
        br = run_in(served.host, "ip", "addr", "show", "ncnibr0").stdout
        assert "10.88.0.1/24" in br and "10.88.0.254" not in br


def test_stale_del_never_touches_the_next_owner_of_an_address(served: CniHarness) -> None:
    """DEL is retried by runtimes: an old DEL carrying prevResult must not unmasquerade the IP's new owner."""
    conf = served.conf(ipMasq=True, ipam={"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/30"}]],
                                          "dataDir": served.data_dir})
    with netns("old") as old, netns("new") as new:
        r_old = ok(served.call("ADD", conf=conf, container_id="old", netns=old))
        ok(served.call("DEL", conf={**conf, "prevResult": r_old}, container_id="old", netns=old))
        r_new = ok(served.call("ADD", conf=conf, container_id="new", netns=new))
        assert r_new["ips"] == r_old["ips"]  # a /30 has one address: reused
        ok(served.call("DEL", conf={**conf, "prevResult": r_old}, container_id="old", netns=old))
        assert 'comment "id=new if=eth0"' in served.masq_elements()
        assert served.allocations() == ["10.88.0.2"] and len(served.veths()) == 1


def test_mac_from_cni_args_and_runtime_config(served: CniHarness) -> None:
    """podman --mac-address passes CNI_ARGS MAC= (and runtimeConfig.mac with the `mac` capability): honoured,
    runtimeConfig first like the reference; a bad MAC is refused before anything is created."""
    with netns("m1") as m1, netns("m2") as m2, netns("m3") as m3:
        r = ok(served.call("ADD", container_id="m1", netns=m1, args="IgnoreUnknown=1;MAC=0A:58:0A:58:00:99"))
        assert r["interfaces"][2]["mac"] == "0a:58:0a:58:00:99"
        assert "link/ether 0a:58:0a:58:00:99" in run_in(m1, "ip", "-o", "link", "show", "eth0").stdout
        r = ok(served.call("ADD", conf=served.conf(runtimeConfig={"mac": "0a:58:0a:58:00:9a"}), container_id="m2",
                           netns=m2, args="MAC=0a:58:0a:58:00:9b"))
        assert r["interfaces"][2]["mac"] == "0a:58:0a:58:00:9a"
        assert "link/ether 0a:58:0a:58:00:9a" in run_in(m2, "ip", "-o", "link", "show", "eth0").stdout
        e = err(served.call("ADD", container_id="m3", netns=m3, args="MAC=01:00:5e:00:00:01"))
        assert e["code"] == 7 and "multicast" in e["msg"]
        e = err(served.call("ADD", container_id="m3", netns=m3, args="MAC=zz"))
        assert e["code"] == 7 and "CNI_ARGS MAC" in e["msg"]
        assert len(served.allocations()) == 2 and len(served.veths()) == 2


@pytest.mark.parametrize("fast", [True, False], ids=["server", "fallback"])
def test_masquerade_objects_go_with_the_last_attachment(served: CniHarness, fast: bool) -> None:
    conf = served.conf(ipMasq=True)
    with netns("a") as a, netns("b") as b:
        ok(served.call("ADD", conf=conf, container_id="a", netns=a, fast=fast))
        ok(served.call("ADD", conf=conf, container_id="b", netns=b, fast=fast))
        assert "masq-" in served.masq_elements()
        ok(served.call("DEL", conf=conf, container_id="a", netns=a, fast=fast))
        table = served.masq_elements()
        assert "id=b" in table and "masq-" in table  # b still uses them
        ok(served.call("DEL", conf=conf, container_id="b", netns=b, fast=fast))
        assert served.masq_elements() == ""  # chain, set and our (now empty) table are gone
        # and the network works again from scratch
        ok(served.call("ADD", conf=conf, container_id="c", netns=a, fast=fast))
        assert "id=c" in served.masq_elements() and "masq-" in served.masq_elements()
        ok(served.call("DEL", conf=conf, container_id="c", netns=a, fast=fast))
