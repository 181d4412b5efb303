"""Image GC on a containerd of its own (GC here would otherwise race other tests for the shared images):
unused images go, the image a running pod uses and the sandbox image stay."""
from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

import cri
from kubelet.kuberuntime.imagegc import ImageGCManager
from kubelet.node.runtime.images import Entry, ctr, render_layer, render_oci_archive
from kubelet.testing import AgentProcess, runtime_pods, wait_until
from kubelet.testing_podspec import BUSYBOX, pod_yaml, wait_running

pytestmark = [pytest.mark.root, pytest.mark.containerd]

PAUSE = "localhost/nodelet/pause:3.9"


@pytest.fixture(scope="module")
def own_containerd(containerd: Any) -> Iterator[Any]:  # depends on the shared one only for the root/skip policy
    from kubelet.node.runtime.testing import start_test_runtime

    base = Path(f"/tmp/nlt-imggc-{uuid.uuid4().hex[:8]}")
    rt = start_test_runtime(str(base))
    try:
        yield rt
    finally:
        rt.stop()
        shutil.rmtree(base, ignore_errors=True)


def import_image(rt: Any, name: str, tmp: Path) -> None:
    layer = render_layer([Entry(path="marker", kind="file", mode=0o644, data=name.encode())])
    archive = tmp / (name.replace("/", "_").replace(":", "_") + ".tar")
    archive.write_bytes(render_oci_archive(name=name, layer=layer, entrypoint=["/marker"], cmd=None, env=[]))
    ctr(rt, "images", "import", "--all-platforms", str(archive))


def images(endpoint: str) -> set[str]:
    async def go() -> set[str]:
        async with cri.RuntimeClient(endpoint) as c:
            return {t for i in await c.list_images() for t in i.repo_tags}
    return asyncio.run(go())


def test_image_gc_removes_unused_images_only(own_containerd: Any, tmp_path: Path) -> None:
    rt = own_containerd
    for n in ("localhost/nodelet-test/gc-a:1", "localhost/nodelet-test/gc-b:1"):
        import_image(rt, n, tmp_path)
    assert {"localhost/nodelet-test/gc-a:1", "localhost/nodelet-test/gc-b:1", BUSYBOX, PAUSE} <= images(rt.endpoint)
    agent = AgentProcess(tmp_path / "agent", endpoint=rt.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}")
    agent.start()
    try:
        agent.write("user.yaml", pod_yaml("user", f"""  hostNetwork: true
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"""))
        wait_running(agent, "user")

        async def gc(high: int, low: int) -> tuple[int, list[str]]:
            async with cri.RuntimeClient(rt.endpoint) as c:
                m = ImageGCManager(c, high=high, low=low, min_age=0)
                return await m.garbage_collect(), m.removed

        freed, removed = asyncio.run(gc(100, 99))  # a disk that is not full: nothing to do
        assert freed == 0 and removed == []
        freed, removed = asyncio.run(gc(1, 0))  # everything over the threshold: all unused images go
        assert len(removed) == 2 and freed > 0
        left = images(rt.endpoint)
        assert not any(t.startswith("localhost/nodelet-test/gc-") for t in left)
        assert BUSYBOX in left and PAUSE in left  # in use by the pod's container and its sandbox
    finally:
        for f in agent.manifests.iterdir():
            f.unlink()
        try:
            wait_until(lambda: not runtime_pods(rt.endpoint, agent.config["nodeName"]), timeout=60, what="teardown")
        finally:
            agent.stop()
