"""Proxy sync benchmark: nodelet's full and one-service partial sync next to the raw load of the same text.

For each mode and size (services × endpoints), inside a throwaway network namespace:

- fresh full (start-up): ``Proxier.sync()`` render + apply, next to the raw floor: the exact text nodelet generated,
  loaded by ``iptables-nft-restore -w --noflush`` / ``nft -f`` into an empty namespace;
- periodic full (rules already in place): render + apply, next to reloading that same (idempotent) text;
- partial: one service's endpoint replaced: render + apply, next to the same text loaded into the same prior state
  (the change is reverted first); "whole sync" adds the canary check and the rest of ``sync()``.
Figures are the best of ``--repeat`` runs (both columns alike). Times include one ``ip netns exec`` (shown).

Run as root:  python bench/proxy.py [--sizes 100,1000,5000] [--modes iptables,nftables] [--endpoints 10]
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.model import ManifestDoc  # noqa: E402
from proxy.proxier import Proxier, ProxyConfig  # noqa: E402


def docs(n: int, eps: int, *, shift: int = -1) -> tuple[list[ManifestDoc], list[ManifestDoc]]:
    services, slices = [], []
    for i in range(n):
        name = f"svc-{i}"
        cip = str(ipaddress.ip_address(int(ipaddress.ip_address("10.96.0.0")) + i + 1))
        services.append(ManifestDoc(source=f"bench/{name}.yaml", doc={
            "kind": "Service", "metadata": {"name": name, "namespace": "bench"},
            "spec": {"clusterIP": cip, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
        addrs = [str(ipaddress.ip_address(int(ipaddress.ip_address("10.128.0.0")) + i * eps + j + 1))
                 for j in range(eps)]
        if i == shift:
            addrs[0] = "10.250.0.1"
        slices.append(ManifestDoc(source=f"bench/{name}-slice.yaml", doc={
            "kind": "EndpointSlice", "metadata": {"name": f"{name}-1", "namespace": "bench",
                                                  "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addrs]}))
    return services, slices


def netns(name: str, op: str) -> None:
    subprocess.run(["ip", "netns", op, name], check=op == "add", capture_output=True)


def raw_load(ns: str, mode: str, text: str) -> float:
    argv = ["iptables-nft-restore", "-w", "--noflush"] if mode == "iptables" else ["nft", "-f", "-"]
    start = time.perf_counter()
    res = subprocess.run(["ip", "netns", "exec", ns, *argv], input=text, text=True, capture_output=True)
    took = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"raw load failed: {res.stderr[:2000]}")
    return took


def exec_floor(ns: str) -> float:
    """What one `ip netns exec <ns> true` costs: part of every apply, shown so the floor is read correctly."""
    start = time.perf_counter()
    subprocess.run(["ip", "netns", "exec", ns, "true"], check=True)
    return time.perf_counter() - start


async def bench(mode: str, n: int, eps: int, repeat: int) -> None:
    tag = f"pxbench-{os.getpid()}"
    ns, raw_ns = f"{tag}-a", f"{tag}-b"
    for x in (ns, raw_ns):
        netns(x, "add")
    slow = mode == "iptables" and n >= 5000  # one raw iptables-restore of this size takes minutes here
    reps = 1 if slow else repeat
    try:
        with tempfile.TemporaryDirectory(prefix="pxbench-") as state:
            p = Proxier(ProxyConfig(mode=mode, cluster_cidr="10.128.0.0/9", service_cidr="10.96.0.0/12",
                                    command_prefix=("ip", "netns", "exec", ns), state_dir=state,
                                    iptables_flavor="nft", keep_last_ruleset=True))
            svcs, slices = docs(n, eps)
            t = time.perf_counter()
            errors = p.update(services=svcs, endpoint_docs=slices)
            assert errors == (), errors[:3]
            t_update = time.perf_counter() - t
            # 1. fresh full sync (start-up) vs the same text into an empty namespace
            fresh = await p.sync()
            assert fresh.error is None and fresh.kind == "fresh", fresh
            fresh_text = p.last_ruleset or ""
            raw_fresh = raw_load(raw_ns, mode, fresh_text)
            # 2. periodic full sync (rules in place) vs reloading that same text (it is idempotent)
            full_ra, raw_full = [], []
            for _ in range(0 if slow else reps):
                r = await p.sync(full=True)
                assert r.error is None and r.kind == "full", r
                full_ra.append(r.render_seconds + r.apply_seconds)
                raw_full.append(raw_load(ns, mode, p.last_ruleset or ""))
            # 3. one service's endpoint replaced: partial sync vs the same text into the same prior state
            svcs2, slices2 = docs(n, eps, shift=n // 2)
            part_ra, part_render, part_total, raw_part = [], [], [], []
            for _ in range(reps):
                p.update(services=svcs2, endpoint_docs=slices2)
                t = time.perf_counter()
                r = await p.sync()
                part_total.append(time.perf_counter() - t)
                assert r.error is None and r.kind == "partial", r
                part_ra.append(r.render_seconds + r.apply_seconds)
                part_render.append(r.render_seconds)
                fwd = p.last_ruleset or ""
                p.update(services=svcs, endpoint_docs=slices)
                r = await p.sync()
                assert r.error is None and r.kind == "partial", r
                rev = p.last_ruleset or ""
                raw_part.append(raw_load(ns, mode, fwd))
                raw_load(ns, mode, rev)  # back to the state the proxier knows
        ex = exec_floor(ns)
        f_ra = fresh.render_seconds + fresh.apply_seconds
        full = (f"periodic full: nodelet {min(full_ra):7.3f}s raw {min(raw_full):7.3f}s "
                f"ratio {min(full_ra) / min(raw_full):4.2f}" if full_ra else "periodic full: (skipped)")
        print(
            f"{mode:8s} {n:5d}x{eps:<2d} | fresh full: nodelet {f_ra:7.3f}s (render {fresh.render_seconds:5.3f}) "
            f"raw {raw_fresh:7.3f}s ratio {f_ra / raw_fresh:4.2f} [{len(fresh_text.splitlines())} lines] | {full} | "
            f"partial: nodelet {min(part_ra) * 1000:6.1f}ms (render {min(part_render) * 1000:4.1f}) "
            f"raw {min(raw_part) * 1000:6.1f}ms ratio {min(part_ra) / min(raw_part):4.2f} "
            f"[{len(fwd.splitlines())} lines], whole sync {min(part_total) * 1000:6.1f}ms | "
            f"update() {t_update:5.2f}s, netns exec {ex * 1000:3.1f}ms, best of {reps}",
            flush=True,
        )
    finally:
        for x in (ns, raw_ns):
            netns(x, "del")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--modes", default="iptables,nftables")
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="best of N (iptables at >= 5,000: 1)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/proxy.py needs root (network namespaces)")
    for mode in args.modes.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            asyncio.run(bench(mode, n, args.endpoints, args.repeat))


if __name__ == "__main__":
    main()
