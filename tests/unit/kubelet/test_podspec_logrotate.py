"""Log rotation steps on real files with a stub runtime (the real runtime path is tests/e2e/test_podspec_logs.py)."""
from __future__ import annotations

import gzip
from pathlib import Path


import cri
from kubelet.kuberuntime.logrotate import ContainerLogManager, rotated_logs


class StubRuntime:
    def __init__(self, fail: bool = False) -> None:
        self.reopened: list[str] = []
        self.fail = fail

    async def reopen_container_log(self, cid: str) -> None:
        if self.fail:
            raise cri.RuntimeFailure("boom", rpc="ReopenContainerLog")
        self.reopened.append(cid)


async def test_rotation_limits_files_and_compresses(tmp_path: Path) -> None:
    live = tmp_path / "0.log"
    rt = StubRuntime()
    m = ContainerLogManager(rt, max_size=10, max_files=3)  # type: ignore[arg-type]
    for i, name in enumerate(["0.log.20200101-000000", "0.log.20200101-000001.gz", "0.log.20200101-000002", "0.log.x.tmp"]):
        (tmp_path / name).write_bytes(gzip.compress(b"old\n") if name.endswith(".gz") else b"old%d\n" % i)
    live.write_text("x" * 9)
    assert await m.rotate([("c1", str(live))]) == 0  # under the limit
    live.write_text("y" * 20)
    assert await m.rotate([("c1", str(live))]) == 1 and rt.reopened == ["c1"]
    names = sorted(p.name for p in tmp_path.iterdir())
    rotated = [Path(p).name for p in rotated_logs(str(live))]
    assert len(rotated) == 2 and rotated[0] == "0.log.20200101-000002.gz" and not rotated[1].endswith(".gz")
    assert "0.log" not in names and "0.log.x.tmp" not in names  # the runtime recreates 0.log on reopen
    assert gzip.decompress((tmp_path / "0.log.20200101-000002.gz").read_bytes()) == b"old2\n"
    assert (tmp_path / rotated[1]).read_text() == "y" * 20


async def test_failed_reopen_puts_the_log_back(tmp_path: Path) -> None:
    live = tmp_path / "0.log"
    live.write_text("z" * 20)
    m = ContainerLogManager(StubRuntime(fail=True), max_size=10, max_files=5)  # type: ignore[arg-type]
    assert await m.rotate([("c1", str(live))]) == 0
    assert live.read_text() == "z" * 20 and rotated_logs(str(live)) == []
