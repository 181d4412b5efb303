"""The bounded-frequency runner: updates coalesce, syncs keep min_sync_period apart, a sync_period tick happens
without updates, full syncs every full_sync_period, a failed sync is retried. The sync itself is replaced by a
recorder (the boundary under test is runner → sync); the real sync is covered in tests/integration/proxy."""
from __future__ import annotations

import asyncio
import time

from proxy.proxier import Proxier, ProxyConfig, SyncResult
from proxy.testing import service_doc

SVC = [service_doc("web", cluster_ip="10.96.0.10", ports=[{"name": "http", "port": 80}])]


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[float, bool]] = []
        self.fail_first = fail_first

    async def __call__(self, *, full: bool = False) -> SyncResult:
        self.calls.append((time.monotonic(), full))
        failed = len(self.calls) <= self.fail_first
        return SyncResult(kind="failed" if failed else ("full" if full else "partial"), changed=0,
                          render_seconds=0.0, apply_seconds=0.0, error="boom" if failed else None)


async def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def run_with(p: Proxier, rec: Recorder, body) -> None:  # type: ignore[no-untyped-def]
    p.sync = rec  # type: ignore[method-assign]
    task = asyncio.create_task(p.run())
    try:
        await body()
    finally:
        p.stop()
        await asyncio.wait_for(task, 5)


async def test_updates_coalesce_and_syncs_keep_min_interval() -> None:
    p = Proxier(ProxyConfig(min_sync_period=0.3, sync_period=60, full_sync_period=3600))
    rec = Recorder()

    async def body() -> None:
        await wait_for(lambda: len(rec.calls) == 1)
        for _ in range(20):
            p.update(services=SVC)
            await asyncio.sleep(0.005)
        await wait_for(lambda: len(rec.calls) == 2)
        await asyncio.sleep(0.5)
        assert len(rec.calls) == 2  # 20 updates, one sync
        assert rec.calls[1][0] - rec.calls[0][0] >= 0.3 - 0.01
        assert [full for _, full in rec.calls] == [True, False]

    await run_with(p, rec, body)


async def test_sync_period_tick_and_full_sync_period() -> None:
    p = Proxier(ProxyConfig(min_sync_period=0.05, sync_period=0.2, full_sync_period=0.5))
    rec = Recorder()

    async def body() -> None:
        await wait_for(lambda: len(rec.calls) >= 5)
        gaps = [b[0] - a[0] for a, b in zip(rec.calls, rec.calls[1:])]
        assert all(0.15 <= g <= 0.6 for g in gaps), gaps
        fulls = [full for _, full in rec.calls]
        assert fulls[0] and not fulls[1] and fulls.count(True) >= 2

    await run_with(p, rec, body)


async def test_failed_sync_is_retried_after_min_interval() -> None:
    p = Proxier(ProxyConfig(min_sync_period=0.1, sync_period=60))
    rec = Recorder(fail_first=1)

    async def body() -> None:
        await wait_for(lambda: len(rec.calls) >= 2, timeout=2)
        assert 0.09 <= rec.calls[1][0] - rec.calls[0][0] < 1.0

    await run_with(p, rec, body)
