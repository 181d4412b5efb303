"""Resources on real containerd: cgroup limits and oom_score_adj as the container sees them, the pod cgroup parent
(created with the pod, removed with it), and an OOM kill reported as OOMKilled with the restart policy applied."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.kuberuntime.resources import compute_oom_score_adj
from kubelet.testing import AgentProcess, cstatus, wait_until
from kubelet.testing_podspec import (
    BUSYBOX, containerd_oom_score_adj, module_agent, pod_yaml, sh, teardown_pod, wait_pod, wait_running,
)

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("res"))


def mem_total() -> int:
    line = next(x for x in open("/proc/meminfo") if x.startswith("MemTotal:"))
    return int(line.split()[1]) * 1024


def test_cgroup_limits_oom_score_adj_and_pod_cgroup(agent: AgentProcess, containerd: Any) -> None:
    agent.write("res.yaml", pod_yaml("res", f"""  containers:
  - name: burstable
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources:
      requests: {{cpu: 250m, memory: 32Mi}}
      limits: {{cpu: 500m, memory: 64Mi}}
  - name: nolimits
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"""))
    pod = wait_running(agent, "res")
    uid = pod["metadata"]["uid"]
    assert pod["status"]["qosClass"] == "Burstable"
    read = lambda c, f: sh(containerd, pod, c, f"cat {f}")[1].strip()  # noqa: E731
    assert read("burstable", "/sys/fs/cgroup/cpu/cpu.shares") == "256"  # 250m × 1024 / 1000
    assert read("burstable", "/sys/fs/cgroup/cpu/cpu.cfs_period_us") == "100000"
    assert read("burstable", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "50000"  # 500m of a 100 ms period
    assert read("burstable", "/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(64 * 1024 * 1024)
    assert read("nolimits", "/sys/fs/cgroup/cpu/cpu.shares") == "2"  # no request: the minimum
    assert read("nolimits", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "-1"
    # oom_score_adj by QoS; containerd's restrict_oom_score_adj (no CAP_SYS_RESOURCE here) never lets a container
    # go below containerd's own value, so that is what the process sees when the wanted value is lower.
    floor = containerd_oom_score_adj(containerd)
    want = compute_oom_score_adj(qos="Burstable", memory_request=32 * 1024 * 1024, memory_capacity=mem_total(),
                                 node_critical=False)
    assert 2 <= want <= 999
    assert int(read("burstable", "/proc/self/oom_score_adj")) == max(want, floor)
    assert int(read("nolimits", "/proc/self/oom_score_adj")) == max(want, floor)  # same pod, same QoS
    # the pod cgroup parent, as the kubelet names it under cgroupfs
    assert f"/kubepods/burstable/pod{uid}/" in sh(containerd, pod, "burstable", "cat /proc/self/cgroup")[1]
    pod_cg = Path(f"/sys/fs/cgroup/memory/kubepods/burstable/pod{uid}")
    assert pod_cg.is_dir()
    # not every container has a memory limit: no pod memory limit; shares from the summed requests (250m + 0)
    assert int((pod_cg / "memory.limit_in_bytes").read_text()) > 1 << 40
    assert Path(f"/sys/fs/cgroup/cpu/kubepods/burstable/pod{uid}/cpu.shares").read_text().strip() == "256"
    teardown_pod(agent, containerd, "res.yaml", uid)
    wait_until(lambda: not pod_cg.exists(), timeout=30, what="pod cgroup removed")

    agent.write("be.yaml", pod_yaml("be", f"""  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"""))
    pod = wait_running(agent, "be")
    assert pod["status"]["qosClass"] == "BestEffort"
    assert int(sh(containerd, pod, "c", "cat /proc/self/oom_score_adj")[1]) == max(1000, floor)
    assert f"/kubepods/besteffort/pod{pod['metadata']['uid']}/" in sh(containerd, pod, "c", "cat /proc/self/cgroup")[1]
    teardown_pod(agent, containerd, "be.yaml", pod["metadata"]["uid"])


def test_guaranteed_pod_cgroup_and_limits(agent: AgentProcess, containerd: Any) -> None:
    agent.write("g.yaml", pod_yaml("g", f"""  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources: {{limits: {{cpu: "1", memory: 48Mi}}}}
"""))
    pod = wait_running(agent, "g")
    assert pod["status"]["qosClass"] == "Guaranteed"
    assert sh(containerd, pod, "c", "cat /sys/fs/cgroup/cpu/cpu.shares")[1].strip() == "1024"  # request = limit
    assert sh(containerd, pod, "c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us")[1].strip() == "100000"
    assert int(sh(containerd, pod, "c", "cat /proc/self/oom_score_adj")[1]) == max(-997, containerd_oom_score_adj(containerd))
    uid = pod["metadata"]["uid"]
    assert f":/kubepods/pod{uid}/" in sh(containerd, pod, "c", "cat /proc/self/cgroup")[1]
    # pod-level limits on the pod cgroup (sum of the containers' limits)
    assert Path(f"/sys/fs/cgroup/memory/kubepods/pod{uid}/memory.limit_in_bytes").read_text().strip() == str(48 << 20)
    assert Path(f"/sys/fs/cgroup/cpu/kubepods/pod{uid}/cpu.cfs_quota_us").read_text().strip() == "100000"
    assert Path(f"/sys/fs/cgroup/cpu/kubepods/pod{uid}/cpu.shares").read_text().strip() == "1024"
    teardown_pod(agent, containerd, "g.yaml", pod["metadata"]["uid"])


def test_memory_limit_exceeded_is_oomkilled_and_restarted(agent: AgentProcess, containerd: Any) -> None:
    agent.write("oom.yaml", pod_yaml("oom", f"""  containers:
  - name: hog
    image: {BUSYBOX}
    # a 64 MiB dd buffer in a 16 MiB cgroup (dd is the container's process: its OOM kill ends the container)
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
    resources: {{limits: {{memory: 16Mi}}}}
""", restart="OnFailure"))
    pod = wait_pod(agent, "oom", lambda p: cstatus(p, "hog")["restartCount"] >= 1
                   and cstatus(p, "hog").get("lastState", {}).get("terminated"), timeout=90, what="OOM kill and restart")
    last = cstatus(pod, "hog")["lastState"]["terminated"]
    assert last["reason"] == "OOMKilled" and last["exitCode"] == 137
    teardown_pod(agent, containerd, "oom.yaml", pod["metadata"]["uid"])

    agent.write("oom2.yaml", pod_yaml("oom2", f"""  containers:
  - name: hog
    image: {BUSYBOX}
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
    resources: {{limits: {{memory: 16Mi}}}}
""", restart="Never"))
    pod = wait_pod(agent, "oom2", lambda p: p["status"]["phase"] == "Failed", what="Failed")
    term = cstatus(pod, "hog")["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137 and cstatus(pod, "hog")["restartCount"] == 0
    teardown_pod(agent, containerd, "oom2.yaml", pod["metadata"]["uid"])
