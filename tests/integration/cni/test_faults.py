"""Concurrency and crashes: 50 concurrent ADDs get 50 distinct IPs and 50 DELs leave nothing; a plugin killed
with SIGKILL at any ADD step leaves nothing GC does not clean; chaining in front of the reference portmap."""
from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from collections.abc import Iterator

import pytest

from cni.testing import (REFERENCE_DIR, CniHarness, cni_server, exec_plugin, in_ns, is_root, netns, ping,
                         plugin_env, run_in)

pytestmark = [pytest.mark.root, pytest.mark.netns,
              pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")]


@pytest.fixture
def cni(tmp_path) -> Iterator[CniHarness]:  # type: ignore[no-untyped-def]
    with netns("host") as h:
        yield CniHarness(host=h, workdir=str(tmp_path))


def ok(r):  # type: ignore[no-untyped-def]
    assert r.rc == 0, (r.stdout.decode(), r.stderr.decode()[-3000:])
    return r.json


def wait_for(cond, what: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_50_concurrent_adds_then_50_dels(cni: CniHarness) -> None:
    """45 through the server plus 5 fallback processes at the same time: the flock spans both paths."""
    conf = cni.conf(ipMasq=True)
    n = 50
    with ExitStack() as stack:
        stack.enter_context(cni_server(cni.socket, host_netns=cni.host))
        pods = [stack.enter_context(netns(f"p{i}")) for i in range(n)]
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(lambda i: cni.call("ADD", conf=conf, container_id=f"c{i}", netns=pods[i],
                                                       fast=i % 10 != 0), range(n)))
        ips = [ipaddress.ip_interface(ok(r)["ips"][0]["address"]).ip for r in results]
        assert len(set(ips)) == n
        assert sorted(cni.allocations()) == sorted(map(str, ips))
        assert len(cni.veths()) == n
        elems = cni.masq_elements()
        assert all(f"id=c{i} if=eth0" in elems for i in range(n))
        assert ping(pods[0], str(ips[n - 1]))
        with ThreadPoolExecutor(max_workers=n) as pool:
            dels = list(pool.map(lambda i: cni.call("DEL", conf=conf, container_id=f"c{i}", netns=pods[i],
                                                    fast=i % 10 != 5), range(n)))
        for r in dels:
            ok(r)
        assert cni.allocations() == [] and cni.veths() == []
        assert "id=" not in cni.masq_elements()
        leftovers = [f for f in os.listdir(f"{cni.data_dir}/{cni.network}") if f != "lock"
                     and not f.startswith("last_reserved_ip.")]
        assert leftovers == []


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


@pytest.mark.parametrize("cleanup", ["GC", "DEL"])
@pytest.mark.parametrize("step", ["allocated", "veth", "masq"])
def test_sigkill_mid_add_then_gc_or_del_cleans(cni: CniHarness, step: str, cleanup: str) -> None:
    conf = cni.conf(ipMasq=True)
    with netns("live") as live, netns("victim") as victim:
        ok(cni.call("ADD", conf=conf, container_id="live", netns=live, fast=False))
        env = plugin_env("ADD", container_id="victim", netns=victim,
                         extra={"NODELET_CNI_SOCKET": "/nonexistent", "NODELET_CNI_TEST_STOP_AT": step})
        proc = subprocess.Popen([cni.client], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, preexec_fn=in_ns(cni.host))
        import json
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(conf).encode())
        proc.stdin.close()
        wait_for(lambda: _state(proc.pid) == "T", f"the plugin to stop at step {step}", timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert len(cni.allocations()) == 2  # the victim's allocation exists: this is mid-ADD
        if cleanup == "GC":
            ok(cni.call("GC", conf={**conf, "cni.dev/valid-attachments": [{"containerID": "live", "ifname": "eth0"}]}))
        else:  # the runtime's DEL after a failed ADD (no prevResult: the ADD never answered)
            ok(cni.call("DEL", conf=conf, container_id="victim", netns=victim))
        assert len(cni.allocations()) == 1 and len(cni.veths()) == 1
        elems = cni.masq_elements()
        assert "id=live" in elems and "id=victim" not in elems
        if cleanup == "GC":
            assert not [f for f in os.listdir(f"{cni.data_dir}/{cni.network}") if f.startswith(".tmp")]
        assert run_in(victim, "ip", "-o", "link").stdout.count("eth0") == 0
        assert ping(live, "10.88.0.1")
        # the runtime's retry after the crash works
        ok(cni.call("ADD", conf=conf, container_id="victim", netns=victim, fast=False))


def test_chained_in_front_of_reference_portmap(cni: CniHarness) -> None:
    """conflist [nodelet-cni, portmap]: ADD in order with prevResult, DEL in reverse; hostPort works."""
    base = {"cniVersion": "1.0.0", "name": cni.network}
    ours = {**cni.conf(ipMasq=True), **base}
    portmap = {**base, "type": "portmap", "capabilities": {"portMappings": True}, "snat": True,
               "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}}
    with cni_server(cni.socket, host_netns=cni.host), netns("web") as web:
        res = ok(cni.call("ADD", conf=ours, container_id="web", netns=web))
        env = plugin_env("ADD", container_id="web", netns=web, cni_path=REFERENCE_DIR)
        res2 = ok(exec_plugin(f"{REFERENCE_DIR}/portmap", env, {**portmap, "prevResult": res}, host_netns=cni.host))
        assert res2["ips"] == res["ips"]  # portmap passes our result through
        pod_ip = res["ips"][0]["address"].split("/")[0]
        assert "CNI-HOSTPORT-DNAT" in run_in(cni.host, "iptables", "-t", "nat", "-S").stdout
        httpd = subprocess.Popen(["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"], preexec_fn=in_ns(web))
        try:
            wait_for(lambda: run_in(web, "busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/hostname",
                                    check=False).returncode == 0, "httpd in the pod")
            out = run_in(cni.host, "busybox", "wget", "-q", "-O", "-", "http://10.88.0.1:18080/hostname",
                         check=False)
            assert out.returncode == 0 and out.stdout.strip(), out.stderr
            del_env = plugin_env("DEL", container_id="web", netns=web, cni_path=REFERENCE_DIR)
            ok(exec_plugin(f"{REFERENCE_DIR}/portmap", del_env, {**portmap, "prevResult": res2}, host_netns=cni.host))
            ok(cni.call("DEL", conf={**ours, "prevResult": res2}, container_id="web", netns=web))
        finally:
            httpd.kill()
            httpd.wait()
        assert "CNI-DN-" not in run_in(cni.host, "iptables", "-t", "nat", "-S").stdout
        assert cni.allocations() == [] and cni.veths() == [] and pod_ip not in cni.masq_elements()


def test_chained_in_front_of_reference_bandwidth(cni: CniHarness) -> None:
    """The reference bandwidth plugin finds our host veth in prevResult and shapes it; DEL in reverse."""
    base = {"cniVersion": "1.0.0", "name": cni.network}
    bw = {**base, "type": "bandwidth", "capabilities": {"bandwidth": True},
          "runtimeConfig": {"bandwidth": {"ingressRate": 1000000, "ingressBurst": 100000,
                                          "egressRate": 2000000, "egressBurst": 100000}}}
    with cni_server(cni.socket, host_netns=cni.host), netns("p") as p:
        res = ok(cni.call("ADD", conf={**cni.conf(), **base}, container_id="c1", netns=p))
        hostif = res["interfaces"][1]["name"]
        ok(exec_plugin(f"{REFERENCE_DIR}/bandwidth", plugin_env("ADD", container_id="c1", netns=p),
                       {**bw, "prevResult": res}, host_netns=cni.host))
        assert "tbf" in run_in(cni.host, "tc", "qdisc", "show", "dev", hostif).stdout
        ok(exec_plugin(f"{REFERENCE_DIR}/bandwidth", plugin_env("DEL", container_id="c1", netns=p),
                       {**bw, "prevResult": res}, host_netns=cni.host))
        ok(cni.call("DEL", conf={**cni.conf(), **base, "prevResult": res}, container_id="c1", netns=p))
        assert cni.veths() == [] and cni.allocations() == []
        assert "bwp" not in run_in(cni.host, "ip", "-o", "link").stdout
