"""A stop never hangs: past the bounded-shutdown timeout the daemon dumps its stacks and exits."""
from __future__ import annotations

import subprocess
import sys
import time


def test_bounded_shutdown_exits_a_stuck_process_and_shows_where_it_was() -> None:
    code = "import logging, time\nlogging.basicConfig()\nfrom kubelet.app import _bounded_shutdown\n_bounded_shutdown(0.3)\ntime.sleep(30)  # stuck\n"
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert time.monotonic() - t0 < 10
    assert p.returncode == 0
    assert "shutdown did not finish within 0s; stacks follow" in p.stderr
    assert 'File "<string>", line 5' in p.stderr  # the stuck frame (time.sleep) is in the dump
