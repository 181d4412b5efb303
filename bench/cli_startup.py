"""Wall time of `nodelet` diagnostics commands, each a fresh process (as a person types them), next to references
measured in the same run: the bare interpreter (`python -c pass`, the floor for any Python CLI) and
`kubectl version --client` (a Go CLI people compare with). The daemon is a LocalAPI over 50 fixed pods.
Run:  python bench/cli_startup.py [--iterations 15]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubelet.server.api import StaticView  # noqa: E402
from kubelet.cli.testing import ServerThread, write_cri_log  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=15)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix=f"nodelet-bench-cli-{os.getpid()}-")
    try:
        logs = Path(d) / "pods"
        write_cri_log(str(logs / "default_web-0_u0" / "app" / "0.log"),
                      [("2026-01-10T12:00:00.000000001Z", "stdout", "F", f"line {i}") for i in range(2000)])
        pods = [{"metadata": {"name": f"web-{i}", "namespace": "default", "uid": f"u{i}", "creationTimestamp": "2026-01-10T11:00:00Z"},
                 "spec": {"containers": [{"name": "app"}]},
                 "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0,
                                                                       "state": {"running": {}}}]}} for i in range(50)]
        sock = os.path.join(d, "api.sock")
        env = {**os.environ, "NODELET_SOCKET": sock}
        py = sys.executable
        cases = {
            "python -c pass (floor)": [py, "-c", "pass"],
            "nodelet --help": [py, "-m", "kubelet.cli.main", "--help"],
            "nodelet get pods (50)": [py, "-m", "kubelet.cli.main", "get", "pods"],
            "nodelet logs (2000 lines)": [py, "-m", "kubelet.cli.main", "logs", "web-0"],
            "nodelet describe pod": [py, "-m", "kubelet.cli.main", "describe", "pod", "web-0"],
        }
        if shutil.which("kubectl"):
            cases["kubectl version --client (reference)"] = ["kubectl", "version", "--client"]
        with ServerThread(StaticView(pod_list=pods, node_info={"name": "n1", "podLogsDir": str(logs)}), sock):
            for cmd in cases.values():  # warm the page cache
                timed(cmd, env)
            results = {name: [timed(cmd, env) for _ in range(args.iterations)] for name, cmd in cases.items()}
        print(f"{'command':40} {'median ms':>10} {'p90 ms':>8}")
        for name, xs in results.items():
            xs.sort()
            print(f"{name:40} {statistics.median(xs) * 1000:10.0f} {xs[int(len(xs) * 0.9) - 1] * 1000:8.0f}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
