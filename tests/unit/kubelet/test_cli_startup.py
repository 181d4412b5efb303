"""The diagnostics commands stay fast to start: none of their modules pulls grpc, asyncio, yaml or the CRI client at
import time (they load them inside the commands that need them)."""
from __future__ import annotations

import subprocess
import sys

MODULES = ("cli.common", "cli.get", "cli.logs", "cli.describe", "cli.exec", "cli.top", "cli.net", "cli.doctor",
           "cli.validate", "cli.version", "cli.completion", "cli.services", "cli.stream", "cli.kubeconfig",
           "kuberuntime.crilogs", "server.printers")


def test_cli_modules_import_light() -> None:
    code = ("import sys\n" + "".join(f"import kubelet.{m}\n" for m in MODULES)
            + "print(sorted(m for m in ('grpc', 'asyncio', 'yaml', 'cri', 'psutil', 'kubelet.config', 'kubelet.node.doctor') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, "[]\n"), out.stderr
