"""ManifestSource pieces without the run loop: dedup of snapshots, watch retry backoff, event filtering."""
from __future__ import annotations

from pathlib import Path

import pytest

import kubelet.manifest.source as sources
from kubelet.manifest.inotify import IN_CREATE, IN_DELETE_SELF, IN_Q_OVERFLOW, Inotify, InotifyEvent
from kubelet.manifest.source import ManifestSource
from kubelet.types import ManifestSet

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: 'x:1'}]}\n"


def source(path: Path, calls: list[ManifestSet]) -> ManifestSource:
    return ManifestSource(path=str(path), node_name="n", check_frequency=20, on_change=calls.append)


async def test_on_change_only_when_the_set_differs(tmp_path: Path) -> None:
    calls: list[ManifestSet] = []
    src = source(tmp_path, calls)
    await src._relist()
    await src._relist()
    assert calls == [ManifestSet()]  # the first (empty) list is sent, the unchanged second is not
    (tmp_path / "a.yaml").write_text(POD)
    await src._relist()
    await src._relist()
    assert len(calls) == 2 and [p.name for p in calls[1].pods] == ["a-n"]
    assert src.current() is calls[1]
    (tmp_path / "a.yaml").write_text("kind: [")
    await src._relist()
    assert calls[2].pods == () and calls[2].broken_files == frozenset({str(tmp_path / "a.yaml")})


def test_watch_retry_backoff_1s_to_20s(tmp_path: Path) -> None:
    src = source(tmp_path / "missing", [])
    src._inotify = Inotify()
    try:
        delays = []
        for now in range(8):
            src._ensure_watch(float(now))
            delays.append(src._next_retry - now)
        assert delays == [1, 2, 4, 8, 16, 20, 20, 20]
        assert not src.watching
        (tmp_path / "missing").mkdir()
        src._ensure_watch(100.0)
        assert src.watching and src._retry_delay == 1.0  # reset after success
    finally:
        src._inotify.close()


def test_event_filter(tmp_path: Path) -> None:
    src = source(tmp_path, [])
    src._inotify = Inotify()
    try:
        src._ensure_watch(0.0)
        wd = src._wd
        assert wd is not None

        def ev(name: str, mask: int = IN_CREATE, wd_: int | None = None) -> InotifyEvent:
            return InotifyEvent(wd=wd if wd_ is None else wd_, mask=mask, cookie=0, name=name)

        assert src._relevant(ev("a.yaml")) and src._relevant(ev("b.json")) and src._relevant(ev("c.yml"))
        assert not src._relevant(ev(".a.yaml.swp")) and not src._relevant(ev("a.yaml~"))
        assert not src._relevant(ev("4913")) and not src._relevant(ev("x.yaml", wd_=wd + 100))
        assert src._relevant(ev("", IN_Q_OVERFLOW, wd_=-1))
        assert src._relevant(ev("", IN_DELETE_SELF)) and not src.watching  # lost: watch again
    finally:
        src._inotify.close()


async def test_first_seen_forgotten_after_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[ManifestSet] = []
    src = source(tmp_path, calls)
    (tmp_path / "a.yaml").write_text(POD)
    await src._relist()
    uid = calls[-1].pods[0].uid
    assert uid in src._first_seen
    (tmp_path / "a.yaml").unlink()
    await src._relist()
    assert uid in src._first_seen  # kept a while: a file briefly broken or renamed back keeps its seen time
    monkeypatch.setattr(sources, "FIRST_SEEN_TTL_S", -1.0)
    await src._relist()
    assert uid not in src._first_seen


async def test_seeded_first_seen_survives_a_restart(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POD)
    calls: list[ManifestSet] = []
    await source(tmp_path, calls)._relist()
    pod = calls[0].pods[0]
    restarted: list[ManifestSet] = []
    src = ManifestSource(path=str(tmp_path), node_name="n", check_frequency=20, on_change=restarted.append,
                         first_seen={pod.uid: "2020-01-01T00:00:00Z"})
    await src._relist()
    assert restarted[0].pods[0].annotations["kubernetes.io/config.seen"] == "2020-01-01T00:00:00Z"


async def test_unlistable_directory_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubelet.manifest.parse as manifest

    (tmp_path / "a.yaml").write_text(POD)
    calls: list[ManifestSet] = []
    src = source(tmp_path, calls)
    await src._relist()
    assert len(calls[0].pods) == 1

    def denied(path: str) -> list[str]:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(manifest.os, "listdir", denied)
    await src._relist()
    assert len(calls) == 1 and len(src.current().pods) == 1  # not mistaken for "every manifest removed"
    monkeypatch.undo()
    (tmp_path / "a.yaml").unlink()
    await src._relist()
    assert len(calls) == 2 and calls[1].pods == ()


async def test_unlistable_directory_at_start_sends_no_empty_set(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import kubelet.manifest.parse as manifest

    def denied(path: str) -> list[str]:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(manifest.os, "listdir", denied)
    calls: list[ManifestSet] = []
    await source(tmp_path, calls)._relist()
    assert calls == []  # an empty first set would make a restarted agent tear down every adopted pod
