"""ManifestSource on real files and real inotify (no root): changes arrive within 1 s with a 60 s relist period."""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kubelet.manifest.source import ManifestSource
from kubelet.types import ManifestSet

NO_POLL = 60.0  # relist period far beyond every deadline below: only inotify can be fast enough


def pod_yaml(name: str, image: str = "busybox:1.36") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n"
            f"spec:\n  containers:\n  - {{name: c, image: '{image}'}}\n")


class Watch:
    def __init__(self, source: ManifestSource, calls: list[ManifestSet]) -> None:
        self.source, self.calls = source, calls

    def pods(self) -> list[tuple[str, str]]:
        """(name, image of the first container) of the last set sent."""
        return [(p.name, p.spec.containers[0].image) for p in self.calls[-1].pods] if self.calls else []

    async def until(self, pred: Callable[[], bool], timeout: float = 1.0) -> float:
        """Poll ``pred`` until true; the time it took. Fails after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not pred():
            if loop.time() - start > timeout:
                raise AssertionError(f"not within {timeout}s; last set: {self.pods()} errors: "
                                     f"{[str(e) for e in self.calls[-1].errors] if self.calls else None}")
            await asyncio.sleep(0.005)
        return loop.time() - start

    async def until_pods(self, expected: list[tuple[str, str]], timeout: float = 1.0) -> float:
        return await self.until(lambda: self.pods() == expected, timeout)


@pytest.fixture
async def watch() -> AsyncIterator[Callable[..., Any]]:
    tasks: list[asyncio.Task[None]] = []

    async def start(path: Path, check_frequency: float = NO_POLL, on_change: Any = None) -> Watch:
        calls: list[ManifestSet] = []

        def record(s: ManifestSet) -> None:
            calls.append(s)
            if on_change is not None:
                on_change(s)

        source = ManifestSource(path=str(path), node_name="n", check_frequency=check_frequency, on_change=record)
        tasks.append(asyncio.create_task(source.run()))
        w = Watch(source, calls)
        await w.until(lambda: bool(calls))  # the first list is always sent
        return w

    yield start
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_first_list_is_sent_even_if_empty_and_unchanged_sets_are_not(tmp_path: Path, watch: Any) -> None:
    w = await watch(tmp_path)
    assert w.calls == [ManifestSet()]
    (tmp_path / "a.yaml").write_text(pod_yaml("a"))
    await w.until_pods([("a-n", "busybox:1.36")])
    relists, sent = w.source.relists, len(w.calls)
    os.utime(tmp_path / "a.yaml")  # an event, a relist, but nothing changed
    await w.until(lambda: w.source.relists > relists)
    assert len(w.calls) == sent
    assert w.source.current() is w.calls[-1]


async def test_create_reaches_on_change_within_1s_by_inotify(tmp_path: Path, watch: Any) -> None:
    w = await watch(tmp_path)
    (tmp_path / "web.yaml").write_text(pod_yaml("web"))
    took = await w.until_pods([("web-n", "busybox:1.36")], timeout=1.0)
    assert took < 1.0
    assert w.source.watching


async def test_write_in_place_ends_in_final_state(tmp_path: Path, watch: Any) -> None:
    f = tmp_path / "web.yaml"
    f.write_text(pod_yaml("web"))
    w = await watch(tmp_path)
    assert w.pods() == [("web-n", "busybox:1.36")]
    text = pod_yaml("web", image="nginx:1.25")
    with open(f, "w") as out:  # truncate, then two writes: a reader may see the empty and the half file
        out.write(text[:40])
        out.flush()
        out.write(text[40:])
    await w.until_pods([("web-n", "nginx:1.25")])
    assert w.calls[-1].errors == ()


async def test_write_temp_then_rename_ends_in_final_state(tmp_path: Path, watch: Any) -> None:
    f = tmp_path / "web.yaml"
    f.write_text(pod_yaml("web"))
    w = await watch(tmp_path)
    tmp = tmp_path / ".web.yaml.tmp"
    tmp.write_text(pod_yaml("web", image="nginx:1.25"))
    os.rename(tmp, f)
    await w.until_pods([("web-n", "nginx:1.25")])
    # vim's pattern: rename the original away (backup~), write a new file, delete the backup
    os.rename(f, tmp_path / "web.yaml~")
    f.write_text(pod_yaml("web", image="nginx:1.26"))
    os.unlink(tmp_path / "web.yaml~")
    await w.until_pods([("web-n", "nginx:1.26")])


async def test_delete_then_create_and_delete(tmp_path: Path, watch: Any) -> None:
    f = tmp_path / "web.yaml"
    f.write_text(pod_yaml("web"))
    (tmp_path / "db.yaml").write_text(pod_yaml("db"))
    w = await watch(tmp_path)
    f.unlink()
    f.write_text(pod_yaml("web", image="nginx:1.25"))
    await w.until_pods([("db-n", "busybox:1.36"), ("web-n", "nginx:1.25")])
    f.unlink()
    await w.until_pods([("db-n", "busybox:1.36")])
    os.rename(tmp_path / "db.yaml", tmp_path / "db.yaml.disabled")  # renamed to an ignored name: gone
    await w.until_pods([])


async def test_burst_of_writes_ends_in_the_last_one(tmp_path: Path, watch: Any) -> None:
    w = await watch(tmp_path)
    for i in range(30):
        (tmp_path / f"p{i % 3}.yaml").write_text(pod_yaml(f"p{i % 3}", image=f"img:{i}"))
    await w.until_pods([("p0-n", "img:27"), ("p1-n", "img:28"), ("p2-n", "img:29")])
    assert len(w.calls) < 10  # coalesced, not one relist per write


async def test_broken_file_is_reported_and_fixed(tmp_path: Path, watch: Any) -> None:
    f = tmp_path / "web.yaml"
    f.write_text(pod_yaml("web"))
    w = await watch(tmp_path)
    f.write_text(pod_yaml("web").replace("image: 'busybox:1.36'", "image: ''"))
    await w.until(lambda: w.calls[-1].broken_files == frozenset({str(f)}))
    assert w.pods() == []
    assert [str(e) for e in w.calls[-1].errors] == [f"{f}:6: spec.containers[0].image: Required value"]
    f.write_text(pod_yaml("web", image="nginx:1.25"))
    await w.until_pods([("web-n", "nginx:1.25")])
    assert w.calls[-1].broken_files == frozenset() and w.calls[-1].errors == ()


async def test_ignored_names_cause_no_relist(tmp_path: Path, watch: Any) -> None:
    w = await watch(tmp_path)
    relists = w.source.relists
    (tmp_path / ".web.yaml.swp").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".a.yaml.tmp").write_text(pod_yaml("a"))
    os.rename(tmp_path / ".a.yaml.tmp", tmp_path / "a.yaml")  # one relevant event after the irrelevant ones
    await w.until_pods([("a-n", "busybox:1.36")])
    assert w.source.relists == relists + 1


async def test_missing_dir_appears_later(tmp_path: Path, watch: Any) -> None:
    d = tmp_path / "manifests"
    w = await watch(d)
    assert w.calls == [ManifestSet()] and not w.source.watching
    d.mkdir()
    (d / "web.yaml").write_text(pod_yaml("web"))
    await w.until_pods([("web-n", "busybox:1.36")], timeout=3.0)  # first retry after 1 s
    assert w.source.watching
    (d / "db.yaml").write_text(pod_yaml("db"))  # and now inotify works there
    await w.until_pods([("db-n", "busybox:1.36"), ("web-n", "busybox:1.36")])


async def test_dir_removed_and_recreated(tmp_path: Path, watch: Any) -> None:
    d = tmp_path / "manifests"
    d.mkdir()
    (d / "web.yaml").write_text(pod_yaml("web"))
    w = await watch(d)
    (d / "web.yaml").unlink()
    d.rmdir()
    await w.until_pods([])
    d.mkdir()
    (d / "db.yaml").write_text(pod_yaml("db"))
    await w.until_pods([("db-n", "busybox:1.36")], timeout=3.0)
    assert w.source.watching


async def test_single_file_path(tmp_path: Path, watch: Any) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(pod_yaml("web"))
    (tmp_path / "other.yaml").write_text(pod_yaml("other"))
    w = await watch(f)
    assert w.pods() == [("web-n", "busybox:1.36")]
    tmp = tmp_path / "pod.yaml.new"
    tmp.write_text(pod_yaml("web", image="nginx:1.25"))
    os.rename(tmp, f)
    await w.until_pods([("web-n", "nginx:1.25")])
    relists = w.source.relists
    (tmp_path / "other.yaml").write_text(pod_yaml("other", image="x:2"))  # a sibling: no relist
    f.unlink()
    await w.until_pods([])
    assert w.source.relists == relists + 1


async def test_periodic_relist_catches_what_inotify_cannot_see(tmp_path: Path, watch: Any) -> None:
    d = tmp_path / "manifests"
    d.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (d / "web.yaml").write_text(pod_yaml("web"))
    os.link(d / "web.yaml", elsewhere / "web.yaml")  # a write through this name raises no event in d
    w = await watch(d, check_frequency=0.3)
    with open(elsewhere / "web.yaml", "r+") as f:
        f.write(pod_yaml("web", image="nginx:1.25"))
        f.truncate()
    await w.until_pods([("web-n", "nginx:1.25")], timeout=2.0)


async def test_failing_consumer_does_not_stop_the_source(tmp_path: Path, watch: Any) -> None:
    def boom(s: ManifestSet) -> None:
        raise RuntimeError("consumer bug")

    w = await watch(tmp_path, on_change=boom)
    (tmp_path / "a.yaml").write_text(pod_yaml("a"))
    await w.until_pods([("a-n", "busybox:1.36")])
    (tmp_path / "b.yaml").write_text(pod_yaml("b"))
    await w.until_pods([("a-n", "busybox:1.36"), ("b-n", "busybox:1.36")])


async def test_config_seen_stable_across_relists(tmp_path: Path, watch: Any) -> None:
    (tmp_path / "a.yaml").write_text(pod_yaml("a"))
    w = await watch(tmp_path)
    seen = w.calls[-1].pods[0].annotations["kubernetes.io/config.seen"]
    (tmp_path / "b.yaml").write_text(pod_yaml("b"))
    await w.until(lambda: len(w.calls[-1].pods) == 2)
    assert w.calls[-1].pods[0].annotations["kubernetes.io/config.seen"] == seen
