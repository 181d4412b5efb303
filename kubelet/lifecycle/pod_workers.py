"""One asyncio worker per pod UID; the newest request wins; failures retry with the kubelet's delays.

A request is "sync" or "terminate"; a worker runs one at a time, and requests arriving meanwhile collapse into
the next run (events say "look again", they carry no state). Terminate is final for a UID.
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import cri
from kubelet.errors import NodeletError

log = logging.getLogger(__name__)

SyncFn = Callable[[str], Awaitable[float | None]]  # returns "sync me again after N s" or None
TerminateFn = Callable[[str], Awaitable[None]]

TRANSIENT_RETRY = 1.0  # runtime unreachable and the like
ERROR_RETRY = 10.0  # the kubelet's backOffPeriod after a failed sync, ±50 % jitter


@dataclass
class _Worker:
    uid: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pending: str = ""  # "" | "sync" | "terminate"
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    terminating: bool = False
    syncs: int = 0
    errors: int = 0
    last_error: str = ""


class PodWorkers:
    def __init__(
        self,
        *,
        sync: SyncFn,
        terminate: TerminateFn,
        on_terminated: Callable[[str], None] = lambda uid: None,
        on_sync_done: Callable[[str, float, BaseException | None], None] = lambda uid, secs, err: None,
    ) -> None:
        self._sync = sync
        self._terminate = terminate
        self._on_terminated = on_terminated
        self._on_sync_done = on_sync_done
        self._workers: dict[str, _Worker] = {}

    def uids(self) -> set[str]:
        return set(self._workers)

    def is_terminating(self, uid: str) -> bool:
        w = self._workers.get(uid)
        return bool(w and w.terminating)

    def last_error(self, uid: str) -> str:
        w = self._workers.get(uid)
        return w.last_error if w else ""

    def sync(self, uid: str) -> None:
        w = self._worker(uid)
        if w.terminating:
            return
        if w.pending != "terminate":
            w.pending = "sync"
        w.wake.set()

    def terminate(self, uid: str) -> None:
        w = self._worker(uid)
        w.terminating = True
        w.pending = "terminate"
        w.wake.set()

    def sync_later(self, uid: str, delay: float) -> None:
        w = self._workers.get(uid)
        if w is None or w.terminating:
            return
        loop = asyncio.get_running_loop()
        if w.timer is not None:
            if w.timer.when() <= loop.time() + delay:
                return  # an earlier wake-up is already due
            w.timer.cancel()
        w.timer = loop.call_later(delay, self.sync, uid)

    def _worker(self, uid: str) -> _Worker:
        w = self._workers.get(uid)
        if w is None:
            w = _Worker(uid=uid)
            w.task = asyncio.get_running_loop().create_task(self._run(w), name=f"pod-worker-{uid[:8]}")
            self._workers[uid] = w
        return w

    async def _run(self, w: _Worker) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await w.wake.wait()
            w.wake.clear()
            kind, w.pending = w.pending, ""
            if not kind:
                continue
            t0 = loop.time()
            err: BaseException | None = None
            again: float | None = None
            try:
                if kind == "terminate":
                    await self._terminate(w.uid)
                else:
                    again = await self._sync(w.uid)
                w.last_error = ""
            except asyncio.CancelledError:
                raise
            except (cri.CRIError, NodeletError) as e:  # both say whether the same call may pass later
                err = e
                again = TRANSIENT_RETRY if e.retryable else ERROR_RETRY * random.uniform(0.5, 1.5)
            except Exception as e:  # a bug must not kill the worker: log it, retry later
                err = e
                log.exception("pod worker failed uid=%s kind=%s", w.uid, kind)
                again = ERROR_RETRY * random.uniform(0.5, 1.5)
            if err is not None:
                w.errors += 1
                w.last_error = str(err)
                log.warning("pod sync failed uid=%s kind=%s err=%s retry_in=%.1fs", w.uid, kind, err, again or 0)
            w.syncs += 1
            self._on_sync_done(w.uid, loop.time() - t0, err)
            if kind == "terminate" and err is None:
                if w.timer is not None:
                    w.timer.cancel()
                del self._workers[w.uid]
                self._on_terminated(w.uid)
                return
            if kind == "terminate":
                loop.call_later(again or TRANSIENT_RETRY, self._retry_terminate, w.uid)
            elif again is not None:
                self.sync_later(w.uid, again)

    def _retry_terminate(self, uid: str) -> None:
        w = self._workers.get(uid)
        if w is not None:
            w.pending = "terminate"
            w.wake.set()

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for w in self._workers.values():
            if w.timer is not None:
                w.timer.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
