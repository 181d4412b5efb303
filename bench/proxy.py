"""Proxy sync benchmark: nodelet's full and one-service partial sync next to the raw load of the same text.

For each mode and size (services × endpoints), inside a throwaway network namespace:

- full: a fresh ``Proxier.sync()`` (render + apply), then the raw floor: the exact text nodelet generated, loaded by
  ``iptables-nft-restore --noflush`` / ``nft -f`` into an empty namespace;
- partial: one service's endpoint replaced, ``sync()`` (render + apply; the canary check is reported apart), then
  the raw floor: that same partial text loaded into the same prior state (the change is reverted first).

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


async def bench(mode: str, n: int, eps: int) -> None:
    tag = f"pxbench-{os.getpid()}"
    ns, raw_ns = f"{tag}-a", f"{tag}-b"
    for x in (ns, raw_ns):
        netns(x, "add")
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
            full = await p.sync()
            assert full.error is None, full.error
            full_text = p.last_ruleset or ""
            raw_full = raw_load(raw_ns, mode, full_text)

            svcs2, slices2 = docs(n, eps, shift=n // 2)
            p.update(services=svcs2, endpoint_docs=slices2)
            t = time.perf_counter()
            part = await p.sync()
            t_part_total = time.perf_counter() - t
            assert part.error is None and part.kind == "partial", part
            part_text = p.last_ruleset or ""
            p.update(services=svcs, endpoint_docs=slices)  # revert, then time the raw load of the same change
            rev = await p.sync()
            assert rev.error is None and rev.kind == "partial", rev
            raw_part = raw_load(ns, mode, part_text)
        ex = exec_floor(ns)
        f_ra, p_ra = full.render_seconds + full.apply_seconds, part.render_seconds + part.apply_seconds
        print(
            f"{mode:9s} {n:5d}x{eps:<3d} "
            f"full: nodelet {f_ra:8.3f}s (render {full.render_seconds:6.3f}) raw {raw_full:8.3f}s ratio {f_ra / raw_full:5.2f} "
            f"[{len(full_text.splitlines())} lines] | "
            f"partial: nodelet {p_ra * 1000:7.1f}ms (render {part.render_seconds * 1000:5.1f}) raw {raw_part * 1000:7.1f}ms "
            f"ratio {p_ra / raw_part:5.2f} sync-total {t_part_total * 1000:7.1f}ms [{len(part_text.splitlines())} lines] | "
            f"update() {t_update:6.3f}s netns-exec {ex * 1000:4.1f}ms",
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
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/proxy.py needs root (network namespaces)")
    for mode in args.modes.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            asyncio.run(bench(mode, n, args.endpoints))


if __name__ == "__main__":
    main()
