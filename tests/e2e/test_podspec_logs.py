"""Container log rotation on real containerd: a container writing fast never grows its log dir beyond
containerLogMaxFiles files, older rotated files are gzipped, and no line is lost across rotations."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.testing import AgentProcess, wait_until
from kubelet.testing_podspec import BUSYBOX, module_agent, pod_yaml, teardown_pod, wait_running

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("logs"), containerLogMaxSize="16Ki", containerLogMaxFiles=3)


def read_lines(files: list[Path]) -> list[int]:
    out: list[int] = []
    for f in files:
        data = gzip.decompress(f.read_bytes()) if f.name.endswith(".gz") else f.read_bytes()
        for line in data.decode().splitlines():
            parts = line.split(" ", 3)
            if len(parts) == 4 and parts[2] == "F" and parts[3].startswith("n="):
                out.append(int(parts[3][2:]))
    return out


def test_rotation_keeps_max_files_and_loses_no_line(agent: AgentProcess, containerd: Any) -> None:
    agent.write("chatty.yaml", pod_yaml("chatty", f"""  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sh", "-c", "i=0; while true; do echo n=$i; i=$((i+1)); [ $((i % 50)) -eq 0 ] && usleep 10000; done"]
"""))
    pod = wait_running(agent, "chatty")
    uid = pod["metadata"]["uid"]
    log_dir = Path(agent.config["podLogsDir"]) / f"default_{pod['metadata']['name']}_{uid}" / "c"

    def files() -> list[Path]:
        return sorted(log_dir.iterdir(), key=lambda p: (p.name == "0.log", p.name))  # rotated (oldest first), then live

    # two rotations: one gzipped file, one plain rotated file, the live log
    wait_until(lambda: any(p.name.endswith(".gz") for p in log_dir.iterdir()), timeout=45, what="a compressed rotated log")
    for _ in range(3):
        names = [p.name for p in files()]
        assert len(names) <= 3, names  # containerLogMaxFiles
        assert "0.log" in names
    teardown_pod_files = files()
    numbers = read_lines(teardown_pod_files)
    assert numbers, teardown_pod_files
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a line was lost or duplicated at rotation"
    assert len([p for p in teardown_pod_files if p.name != "0.log"]) == 2
    teardown_pod(agent, containerd, "chatty.yaml", uid)
