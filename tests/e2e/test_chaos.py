"""bench/chaos.py's short run: 5 kill -9 cycles of the agent at random points (start-up sync, steady state,
teardown with CNI DEL/ADD) with 7 varied pods, then a containerd kill -9; every invariant checked from
containerd's side and nodelet's (duplicates, lost pods, restarts, back-off, IPs, links, NAT set)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.netns, pytest.mark.slow]


def test_short_chaos_soak(containerd, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("chaos", Path(__file__).resolve().parents[2] / "bench" / "chaos.py")
    assert spec is not None and spec.loader is not None
    chaos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chaos)
    rc = chaos.main(["--cycles", "5", "--pods", "7", "--settle-timeout", "60"])
    out = capsys.readouterr()
    summary = [line for line in out.out.splitlines() if line.startswith("chaos: seed=")]
    assert rc == 0 and summary and summary[0].split()[-3] == "OK", out.out + out.err
