"""ADD/DEL latency of nodelet-cni (fast path through the server, and the exec-only fallback) against the
reference bridge + host-local plugins from /usr/lib/cni, in the same run, alternating, ipMasq off and on.

Everything runs inside a bench-created "host" netns (bridges, veths, NAT rules never touch the real host).
Run as root:  python bench/cni.py [--iterations 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cni.install import ensure_plugin_installed  # noqa: E402
from cni.testing import REFERENCE_DIR, bridge_conf, cni_server, exec_plugin, is_root, netns, plugin_env  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    opts = ap.parse_args()
    if not is_root():
        print("bench/cni.py needs root (network namespaces)", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ncni-bench-"))
        host = stack.enter_context(netns("bhost"))
        sock = os.path.join(tmp, "cni.sock")
        client = str(ensure_plugin_installed(os.path.join(tmp, "bin"), socket_path=sock))
        stack.enter_context(cni_server(sock, host_netns=host))
        # name -> (executable, container netns, extra env, plugin type, bridge, subnet)
        variants = {
            "reference": ([f"{REFERENCE_DIR}/bridge"], "bridge", "bref0", "10.201.0.0/24", {}),
            "fast": ([client], "nodelet-cni", "bfast0", "10.202.0.0/24", {}),
            "fallback": ([client], "nodelet-cni", "bfall0", "10.203.0.0/24",
                         {"NODELET_CNI_SOCKET": os.path.join(tmp, "no-server.sock")}),
        }
        ns = {name: stack.enter_context(netns(f"b{name[:4]}")) for name in variants}
        results: dict[tuple[str, str, bool], list[float]] = {}
        for masq in (False, True):
            order = list(variants)
            for it in range(opts.warmup + opts.iterations):
                order = order[1:] + order[:1]  # rotate who goes first
                for op in ("ADD", "DEL"):
                    for name in order:
                        argv, ptype, br, subnet, extra = variants[name]
                        conf = bridge_conf(name=f"bench-{name}", bridge=br, subnet=subnet, ip_masq=masq,
                                           data_dir=os.path.join(tmp, "data"), plugin_type=ptype,
                                           cni_version="1.0.0")
                        env = plugin_env(op, container_id=f"bench{it}", netns=ns[name], extra=extra)
                        r = exec_plugin(argv, env, conf, host_netns=host)
                        if r.rc != 0:
                            print(f"{name} {op} failed rc={r.rc}: {r.stdout.decode()} {r.stderr.decode()[-2000:]}",
                                  file=sys.stderr)
                            return 1
                        if it >= opts.warmup:
                            results.setdefault((name, op, masq), []).append(r.seconds * 1000)
    n = opts.iterations
    print(f"nodelet-cni vs reference bridge+host-local ({REFERENCE_DIR}), median of {n} runs each, ms")
    print(f"{'op':<4} {'ipMasq':<7} {'reference':>10} {'fast':>8} {'fast/ref':>9} {'fallback':>9} {'fallback/ref':>13}")
    worst = 0.0
    for op in ("ADD", "DEL"):
        for masq in (False, True):
            ref = statistics.median(results[("reference", op, masq)])
            fast = statistics.median(results[("fast", op, masq)])
            fb = statistics.median(results[("fallback", op, masq)])
            worst = max(worst, fast / ref)
            print(f"{op:<4} {'on' if masq else 'off':<7} {ref:>10.1f} {fast:>8.1f} {fast / ref:>8.2f}x "
                  f"{fb:>9.1f} {fb / ref:>12.2f}x")
    print(f"worst fast-path ratio: {worst:.2f}x (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
