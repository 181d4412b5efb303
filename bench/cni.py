"""ADD/DEL latency of nodelet-cni against the reference bridge + host-local plugins from /usr/lib/cni, in the
same run, alternating, ipMasq off and on. nodelet-cni variants:
  fast-c   compiled client -> server (the default install when a C compiler is present)
  fast-py  python -IS client script -> server
  fallback no server answering: VERSION is answered by the client, DEL runs the import-light cni.lightdel
           (python -I -S), everything else execs the full Python plugin
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

VARIANTS = ("reference", "fast-c", "fast-py", "fallback")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    opts = ap.parse_args()
    if not is_root():
        print("bench/cni.py needs root (network namespaces)", file=sys.stderr)
        return 2
    results: dict[tuple[str, str, bool], list[float]] = {}
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ncni-bench-"))
        host = stack.enter_context(netns("bhost"))
        sock = os.path.join(tmp, "cni.sock")
        c_client = str(ensure_plugin_installed(os.path.join(tmp, "bin-c"), socket_path=sock, client="c"))
        py_client = str(ensure_plugin_installed(os.path.join(tmp, "bin-py"), socket_path=sock, client="python"))
        stack.enter_context(cni_server(sock, host_netns=host))
        no_server = {"NODELET_CNI_SOCKET": os.path.join(tmp, "no-server.sock")}
        # name -> (argv, plugin type, bridge, subnet, extra env)
        variants = {
            "reference": ([f"{REFERENCE_DIR}/bridge"], "bridge", "bref0", "10.201.0.0/24", {}),
            "fast-c": ([c_client], "nodelet-cni", "bfastc0", "10.202.0.0/24", {}),
            "fast-py": ([py_client], "nodelet-cni", "bfastp0", "10.203.0.0/24", {}),
            "fallback": ([c_client], "nodelet-cni", "bfall0", "10.204.0.0/24", no_server),
        }
        ns = {name: stack.enter_context(netns(f"b{i}")) for i, name in enumerate(variants)}
        order = list(variants)
        for it in range(opts.warmup + opts.iterations):
            order = order[1:] + order[:1]  # rotate who goes first
            for masq in (False, True):  # interleaved, so machine load hits every variant and mode alike
                for op in ("ADD", "DEL", "VERSION"):
                    for name in order:
                        argv, ptype, br, subnet, extra = variants[name]
                        conf = bridge_conf(name=f"bench-{name}-{int(masq)}", bridge=br, subnet=subnet, ip_masq=masq,
                                           data_dir=os.path.join(tmp, "data"), plugin_type=ptype,
                                           cni_version="1.0.0")
                        env = plugin_env(op, container_id=f"bench{it}", netns=ns[name], extra=extra)
                        r = exec_plugin(argv, env, conf, host_netns=host, setns_in_child=True)
                        if r.rc != 0:
                            print(f"{name} {op} failed rc={r.rc}: {r.stdout.decode()} {r.stderr.decode()[-2000:]}",
                                  file=sys.stderr)
                            return 1
                        if it >= opts.warmup:
                            results.setdefault((name, op, masq), []).append(r.seconds * 1000)
    print(f"nodelet-cni vs reference bridge+host-local ({REFERENCE_DIR}): median of {opts.iterations} runs, ms "
          "(ratio to the reference of the same op/mode)")
    print(f"{'op':<4} {'ipMasq':<7} {'reference':>10} " + " ".join(f"{v:>17}" for v in VARIANTS[1:]))
    worst = 0.0
    for op in ("ADD", "DEL", "VERSION"):
        for masq in (False, True):
            ref = statistics.median(results[("reference", op, masq)])
            cells = []
            for v in VARIANTS[1:]:
                m = statistics.median(results[(v, op, masq)])
                if v == "fast-c" and op != "VERSION":
                    worst = max(worst, m / ref)
                cells.append(f"{m:>8.1f} ({m / ref:4.2f}x)")
            print(f"{op:<4} {'on' if masq else 'off':<7} {ref:>10.1f} " + " ".join(f"{c:>17}" for c in cells))
    print(f"worst fast-c ratio: {worst:.2f}x (target <= 1.5x)")
    for op in ("ADD", "DEL", "VERSION"):
        r = max(statistics.median(results[("fallback", op, m)]) / statistics.median(results[("reference", op, m)])
                for m in (False, True))
        print(f"fallback {op}: worst {r:.2f}x the reference (target <= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
