"""Security contexts on real containerd, observed from inside the containers: ids and groups, fsGroup on an
emptyDir, read-only root, no_new_privs, capabilities, privileged, seccomp, sysctls, host/shared namespaces,
runAsNonRoot refusal."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.testing import AgentProcess, cstatus, runtime_pods, wait_until
from kubelet.testing_podspec import BUSYBOX, events_for, module_agent, pod_yaml, sh, teardown_pod, wait_pod, wait_running

pytestmark = [pytest.mark.root, pytest.mark.containerd]

SLEEP = '["sleep", "3600"]'


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("sec"))


def status_field(text: str, key: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(key + ":"))


def test_users_groups_fsgroup_readonly_root_no_new_privs_caps_seccomp(agent: AgentProcess, containerd: Any) -> None:
    agent.write("sec.yaml", pod_yaml("sec", f"""  nodeSelector: {{disk: ssd}}
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
    fsGroup: 2000
    seccompProfile: {{type: RuntimeDefault}}
  volumes: [{{name: data, emptyDir: {{}}}}]
  containers:
  - name: hardened
    image: {BUSYBOX}
    command: {SLEEP}
    volumeMounts: [{{name: data, mountPath: /data}}]
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {{drop: [ALL], add: [NET_ADMIN]}}
  - name: override
    image: {BUSYBOX}
    command: {SLEEP}
    securityContext:
      runAsUser: 0
      seccompProfile: {{type: Unconfined}}
"""))
    pod = wait_running(agent, "sec")
    warned = events_for(agent, pod["metadata"]["uid"], "UnsupportedFields")
    assert len(warned) == 1 and warned[0]["type"] == "Warning" and warned[0].get("count", 1) == 1
    assert warned[0]["message"] == "nodelet ignores these fields of the pod spec: spec.nodeSelector"
    code, out = sh(containerd, pod, "hardened", "id")
    assert code == 0
    ids = dict(part.split("=", 1) for part in out.split())
    assert ids["uid"].startswith("1000") and ids["gid"].startswith("3000")
    assert {g.split("(")[0] for g in ids["groups"].split(",")} == {"3000", "2000", "4000"}
    assert sh(containerd, pod, "hardened", "echo hi > /data/f && stat -c %g /data/f")[1] == "2000\n"  # fsGroup, setgid dir
    assert sh(containerd, pod, "hardened", "stat -c %g:%A /data")[1].startswith("2000:drwxrws")
    code, out = sh(containerd, pod, "hardened", "touch /rootfs-write")
    assert code != 0 and "Read-only file system" in out
    status = sh(containerd, pod, "hardened", "cat /proc/self/status")[1]
    assert status_field(status, "NoNewPrivs") == "1"
    # CAP_NET_ADMIN only in the bounding set (a non-root user's effective set is empty, as with any runtime)
    assert int(status_field(status, "CapBnd"), 16) == 1 << 12
    assert status_field(status, "Seccomp") == "2"  # filter mode: the runtime's default profile
    # container fields win over the pod's
    assert sh(containerd, pod, "override", "id -u")[1] == "0\n"
    status = sh(containerd, pod, "override", "cat /proc/self/status")[1]
    assert status_field(status, "Seccomp") == "0" and status_field(status, "NoNewPrivs") == "0"
    assert int(status_field(status, "CapEff"), 16) != 0 and int(status_field(status, "CapEff"), 16) & (1 << 21) == 0  # no SYS_ADMIN by default
    # default masked paths (kubelet's DefaultProcMount)
    assert Path("/proc/timer_list").stat().st_size or Path("/proc/timer_list").read_text()  # non-empty on the host
    assert sh(containerd, pod, "override", "cat /proc/timer_list | wc -c")[1].strip() == "0"  # /dev/null over it
    assert sh(containerd, pod, "override", "grep ' /proc/sys ' /proc/mounts")[1].split()[3].startswith("ro,")
    teardown_pod(agent, containerd, "sec.yaml", pod["metadata"]["uid"])


def test_privileged_sysctls_and_namespaces(agent: AgentProcess, containerd: Any) -> None:
    agent.write("ns.yaml", pod_yaml("ns", f"""  shareProcessNamespace: true
  securityContext:
    sysctls:
    - {{name: net.ipv4.ip_unprivileged_port_start, value: "100"}}
    - {{name: kernel.shm_rmid_forced, value: "1"}}
  containers:
  - name: priv
    image: {BUSYBOX}
    command: ["sleep", "3601"]
    securityContext: {{privileged: true}}
  - name: peer
    image: {BUSYBOX}
    command: {SLEEP}
"""))
    pod = wait_running(agent, "ns")
    host_caps = int(status_field(Path("/proc/self/status").read_text(), "CapBnd"), 16)
    status = sh(containerd, pod, "priv", "cat /proc/self/status")[1]
    assert int(status_field(status, "CapEff"), 16) == host_caps
    assert sh(containerd, pod, "priv", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start")[1] == "100\n"
    assert sh(containerd, pod, "peer", "cat /proc/sys/kernel/shm_rmid_forced")[1] == "1\n"
    assert "sleep 3601" in sh(containerd, pod, "peer", "ps")[1]  # shareProcessNamespace: sees the other container
    assert sh(containerd, pod, "peer", "cat /proc/1/cmdline")[1].startswith("/pause")
    host_ipc = os.readlink("/proc/self/ns/ipc")
    assert sh(containerd, pod, "peer", "readlink /proc/self/ns/ipc")[1].strip() != host_ipc
    teardown_pod(agent, containerd, "ns.yaml", pod["metadata"]["uid"])

    agent.write("host.yaml", pod_yaml("host", f"""  hostPID: true
  hostIPC: true
  containers:
  - name: c
    image: {BUSYBOX}
    command: {SLEEP}
"""))
    pod = wait_running(agent, "host")
    assert sh(containerd, pod, "c", "readlink /proc/self/ns/pid")[1].strip() == os.readlink("/proc/self/ns/pid")
    assert sh(containerd, pod, "c", "readlink /proc/self/ns/ipc")[1].strip() == host_ipc
    assert sh(containerd, pod, "c", f"test -d /proc/{os.getpid()}")[0] == 0  # sees this test process
    teardown_pod(agent, containerd, "host.yaml", pod["metadata"]["uid"])


def test_run_as_non_root_refuses_a_root_image_and_says_why(agent: AgentProcess, containerd: Any) -> None:
    agent.write("nonroot.yaml", pod_yaml("nonroot", f"""  securityContext: {{runAsNonRoot: true}}
  containers:
  - name: root-image
    image: {BUSYBOX}
    command: {SLEEP}
  - name: as-user
    image: {BUSYBOX}
    command: {SLEEP}
    securityContext: {{runAsUser: 1234}}
"""))
    pod = wait_pod(agent, "nonroot", lambda p: cstatus(p, "root-image")["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError"
                   and "running" in cstatus(p, "as-user")["state"], what="refused + running")
    uid = pod["metadata"]["uid"]
    msg = f'container has runAsNonRoot and image will run as root (pod: "{pod["metadata"]["name"]}_default({uid})", container: root-image)'
    assert cstatus(pod, "root-image")["state"]["waiting"]["message"] == msg
    assert any(e["message"] == f"Error: {msg}" for e in events_for(agent, uid, "Failed"))
    assert sh(containerd, pod, "as-user", "id -u")[1] == "1234\n"
    names = {c.name for c in runtime_pods(containerd.endpoint, agent.config["nodeName"])[uid]["containers"]}
    assert names == {"as-user"}  # no partial container for the refused one
    teardown_pod(agent, containerd, "nonroot.yaml", uid)


def test_bad_security_values_are_manifest_errors(agent: AgentProcess) -> None:
    agent.write("badsec.yaml", pod_yaml("badsec", f"""  securityContext:
    sysctls: [{{name: kernel.panic, value: "1"}}]
  containers:
  - name: c
    image: {BUSYBOX}
    securityContext:
      capabilities: {{add: [NET_FLY, CAP_NET_ADMIN]}}
      privileged: true
      allowPrivilegeEscalation: false
    resources: {{limits: {{memory: -1Mi, cpu: 100m}}, requests: {{cpu: 200m}}}}
"""))
    want = [
        'spec.securityContext.sysctls[0].name: Forbidden: sysctl "kernel.panic" is not namespaced',
        'spec.containers[0].securityContext.capabilities.add[0]: Invalid value: "NET_FLY": unknown capability',
        'spec.containers[0].securityContext.capabilities.add[1]: Invalid value: "CAP_NET_ADMIN": write capabilities without the CAP_ prefix ("NET_ADMIN")',
        "spec.containers[0].securityContext: Invalid value: \"\": cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        'spec.containers[0].resources.limits.memory: Invalid value: "-1Mi": must be greater than or equal to 0',
        'spec.containers[0].resources.requests.cpu: Invalid value: "200m": must be less than or equal to cpu limit of 100m',
    ]
    got = wait_until(lambda: (msgs := [e["message"] for e in agent.events() if e["reason"] == "FailedManifest" and "badsec.yaml" in e["message"]])
                     and len(msgs) >= len(want) and msgs, timeout=30, what="manifest errors")
    for w in want:
        assert any(w in m for m in got), (w, got)
    (agent.manifests / "badsec.yaml").unlink()
