"""resourceVersions and watch events over the view's snapshots (the view is a plain list; this diffs it).

Every refresh of a resource compares each object's JSON with the last one seen: new or changed objects get the next
resourceVersion (one counter for the whole API, as etcd's revision) and an ADDED/MODIFIED event, vanished ones a
DELETED event. The last `history` events per resource are kept; a watch from an older resourceVersion gets
410 Expired (kubectl then re-lists). Refreshes happen on every list/get, when the agent pokes (pods changed) and,
while someone watches, on a 1 s tick — never in a thread, never blocking: a refresh is a few milliseconds.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from kubelet.server.apiserver.resources import Resource
from kubelet.server.apiserver.status import gone

__all__ = ["ObjectStore", "WatchEvent"]

log = logging.getLogger(__name__)

Key = tuple[str, str]  # namespace, name
POKE_DELAY = 0.05


@dataclass(frozen=True, kw_only=True)
class WatchEvent:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    object: dict[str, Any]
    # encoded lines by rendering (JSON / Table…), shared by every watcher of this event: 100 watches cost one encode
    encoded: dict[Any, bytes] = field(default_factory=dict, compare=False, repr=False)


@dataclass(kw_only=True)
class _Kind:
    objects: dict[Key, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # key → (fingerprint, object)
    history: deque[WatchEvent] = field(default_factory=deque)
    since: int = 0  # history is complete after this rv
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    watchers: int = 0
    primed: bool = False


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class ObjectStore:
    def __init__(self, view: Any, *, history: int = 1000, tick: float = 1.0) -> None:
        self.view = view
        self.history = history
        self.tick = tick
        self.rv = int(time.time() * 1000)  # grows across restarts too, so an old client's RV is "too old", not "future"
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._poller: asyncio.Task[None] | None = None
        self._resources: dict[tuple[str, str], Resource] = {}
        self._poke_pending = False

    def _kind(self, r: Resource) -> _Kind:
        k = (r.group, r.name)
        if k not in self._kinds:
            self._kinds[k] = _Kind()
            self._resources[k] = r
        return self._kinds[k]

    async def _items(self, r: Resource) -> list[dict[str, Any]]:
        result = getattr(self.view, r.source)()
        if inspect.isawaitable(result):
            result = await result
        return list(result)

    async def refresh(self, r: Resource) -> _Kind:
        items = await self._items(r)
        return self._apply(r, items)

    def _apply(self, r: Resource, items: list[dict[str, Any]]) -> _Kind:
        kind = self._kind(r)
        seen: dict[Key, tuple[str, dict[str, Any]]] = {}
        events: list[WatchEvent] = []
        for obj in items:
            k = _key(obj)
            if k in seen:
                continue
            fp = json.dumps(obj, separators=(",", ":"), default=str)
            old = kind.objects.get(k)
            if old is not None and old[0] == fp:
                seen[k] = old
                continue
            self.rv += 1
            stored = dict(obj)
            stored.setdefault("apiVersion", r.group_version)
            stored.setdefault("kind", r.kind)
            stored["metadata"] = dict(stored.get("metadata") or {}) | {"resourceVersion": str(self.rv)}
            seen[k] = (fp, stored)
            if kind.primed:
                events.append(WatchEvent(rv=self.rv, type="ADDED" if old is None else "MODIFIED", object=stored))
        if kind.primed:
            for k, (_, obj) in kind.objects.items():
                if k not in seen:
                    self.rv += 1
                    gone_obj = dict(obj)
                    gone_obj["metadata"] = dict(obj.get("metadata") or {}) | {"resourceVersion": str(self.rv)}
                    events.append(WatchEvent(rv=self.rv, type="DELETED", object=gone_obj))
        else:
            kind.primed = True
            kind.since = self.rv
        kind.objects = seen
        if events:
            kind.history.extend(events)
            while len(kind.history) > self.history:
                kind.since = kind.history.popleft().rv
            kind.changed.set()
            kind.changed = asyncio.Event()
        return kind

    async def snapshot(self, r: Resource) -> tuple[int, list[dict[str, Any]]]:
        """(the list's resourceVersion, the objects sorted by namespace/name)."""
        kind = await self.refresh(r)
        return self.rv, [obj for _, (_, obj) in sorted(kind.objects.items())]

    def poke(self) -> None:
        """Something changed (the agent's callback): refresh watched resources soon, coalesced."""
        if self._poke_pending:
            return
        self._poke_pending = True
        try:  # coalesced over POKE_DELAY: a pod start changes the pod several times within a few ms
            asyncio.get_running_loop().call_later(POKE_DELAY, lambda: asyncio.ensure_future(self._refresh_watched()))
        except RuntimeError:
            self._poke_pending = False

    async def _refresh_watched(self) -> None:
        self._poke_pending = False
        for k, kind in list(self._kinds.items()):
            if kind.watchers:
                try:
                    await self.refresh(self._resources[k])
                except Exception:  # the view failed: log, keep the watches
                    log.exception("refresh failed resource=%s", k)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            await self._refresh_watched()

    async def check_watch(self, r: Resource, since: str) -> None:
        """Raise now (400 / 410) what watch() would raise on its first step, so the caller can answer with a
        plain error before it starts streaming."""
        kind = await self.refresh(r)
        if since in ("", "0"):
            return
        try:
            cursor = int(since)
        except ValueError:
            from kubelet.server.apiserver.status import bad_request

            raise bad_request(f"invalid resourceVersion {since!r}") from None
        if cursor < kind.since:
            raise gone(f"too old resource version: {cursor} ({kind.since})")

    async def watch(self, r: Resource, *, since: str, match: Callable[[dict[str, Any]], bool],
                    bookmark_every: float | None = None) -> AsyncIterator[WatchEvent]:
        """Events after `since` ("" or "0": synthetic ADDED for everything first), forever; 410 when too old.
        Yields a BOOKMARK event (object = None-ish metadata) every `bookmark_every` seconds when asked."""
        kind = await self.refresh(r)
        if since in ("", "0"):
            cursor = self.rv
            for _, (_, obj) in sorted(kind.objects.items()):
                if match(obj):
                    yield WatchEvent(rv=cursor, type="ADDED", object=obj)
        else:
            try:
                cursor = int(since)
            except ValueError:
                from kubelet.server.apiserver.status import bad_request

                raise bad_request(f"invalid resourceVersion {since!r}") from None
            if cursor < kind.since:
                raise gone(f"too old resource version: {cursor} ({kind.since})")
        kind.watchers += 1
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())
        try:
            while True:
                kind = self._kind(r)
                if cursor < kind.since:
                    raise gone(f"too old resource version: {cursor} ({kind.since})")
                pending = [e for e in kind.history if e.rv > cursor]
                for e in pending:
                    cursor = e.rv
                    if match(e.object):
                        yield e
                waiter = kind.changed
                try:
                    await asyncio.wait_for(waiter.wait(), bookmark_every)
                except asyncio.TimeoutError:
                    yield WatchEvent(rv=self.rv, type="BOOKMARK", object={"metadata": {"resourceVersion": str(self.rv)}})
        finally:
            kind = self._kind(r)
            kind.watchers -= 1
            if not any(k.watchers for k in self._kinds.values()) and self._poller is not None:
                self._poller.cancel()
                self._poller = None

    def watcher_count(self) -> int:
        return sum(k.watchers for k in self._kinds.values())

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
