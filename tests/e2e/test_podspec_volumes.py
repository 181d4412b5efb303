"""Volumes on real containerd, observed from inside the containers: emptyDir (shared, survives restarts, removed
with the pod, tmpfs with sizeLimit), hostPath types and checks, readOnly, subPath, mountPropagation, bad input."""
from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.testing import AgentProcess, cstatus, runtime_pods, wait_until
from kubelet.testing_podspec import BUSYBOX, events_for, module_agent, pod_yaml, sh, teardown_pod, wait_pod, wait_running

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("vol"))


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    return [line.split()[4] for line in open("/proc/self/mountinfo") if line.split()[4].startswith(prefix)]


def test_empty_dir_shared_survives_restart_tmpfs_size_readonly_subpath(agent: AgentProcess, containerd: Any) -> None:
    agent.write("ed.yaml", pod_yaml("ed", f"""  volumes:
  - {{name: scratch, emptyDir: {{}}}}
  - {{name: mem, emptyDir: {{medium: Memory, sizeLimit: 4Mi}}}}
  containers:
  - name: writer
    image: {BUSYBOX}
    # exits 1 on its first run: the restarted instance must find the file the first one wrote
    command: ["sh", "-c", "n=$(cat /scratch/n 2>/dev/null || echo 0); echo $((n+1)) > /scratch/n; [ $n -ge 1 ] || exit 1; exec sleep 3600"]
    volumeMounts:
    - {{name: scratch, mountPath: /scratch}}
    - {{name: mem, mountPath: /mem}}
  - name: reader
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: scratch, mountPath: /shared, readOnly: true}}
    - {{name: scratch, mountPath: /sub, subPath: deep/dir}}
"""))
    pod = wait_pod(agent, "ed", lambda p: cstatus(p, "writer")["restartCount"] >= 1 and "running" in cstatus(p, "writer")["state"]
                   and "running" in cstatus(p, "reader")["state"], what="writer restarted once")
    uid = pod["metadata"]["uid"]
    assert sh(containerd, pod, "reader", "cat /shared/n") == (0, "2\n")  # shared, and kept across the restart
    code, out = sh(containerd, pod, "reader", "touch /shared/x")
    assert code != 0 and "Read-only file system" in out
    assert sh(containerd, pod, "reader", "echo deep > /sub/f")[0] == 0
    assert sh(containerd, pod, "writer", "cat /scratch/deep/dir/f") == (0, "deep\n")
    code, out = sh(containerd, pod, "writer", "grep ' /mem ' /proc/mounts")
    assert code == 0 and out.startswith("tmpfs /mem tmpfs") and "size=4096k" in out, out
    code, out = sh(containerd, pod, "writer", "dd if=/dev/zero of=/mem/big bs=1M count=8")
    assert code != 0 and "No space left on device" in out
    vol_dir = Path(agent.config["rootDir"]) / "pods" / uid / "volumes"
    assert (vol_dir / "kubernetes.io~empty-dir" / "scratch" / "n").read_text() == "2\n"
    assert _mounts_under(vol_dir)  # the tmpfs, mounted by the agent
    assert _mounts_under(vol_dir.parent / "volume-subpaths")  # while running: the safe subPath bind mount
    teardown_pod(agent, containerd, "ed.yaml", uid)
    wait_until(lambda: not vol_dir.parent.exists(), timeout=30, what="pod dir removed")
    assert not _mounts_under(vol_dir.parent)  # tmpfs and subPath binds unmounted


def test_host_path_types_and_checks(agent: AgentProcess, containerd: Any, tmp_path: Path) -> None:
    existing_dir = tmp_path / "dir"
    existing_dir.mkdir()
    (existing_dir / "hello").write_text("from the host\n")
    existing_file = tmp_path / "file"
    existing_file.write_text("file content\n")
    sock_path = tmp_path / "s.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock_path))
    block = next(f"/dev/{d}" for d in ("loop0", "vda", "sda") if os.path.exists(f"/dev/{d}"))
    new_dir, new_file = tmp_path / "made" / "dir", tmp_path / "made2" / "file"
    agent.write("hp.yaml", pod_yaml("hp", f"""  volumes:
  - {{name: any, hostPath: {{path: {existing_dir}}}}}
  - {{name: doc, hostPath: {{path: {new_dir}, type: DirectoryOrCreate}}}}
  - {{name: d, hostPath: {{path: {existing_dir}, type: Directory}}}}
  - {{name: foc, hostPath: {{path: {new_file}, type: FileOrCreate}}}}
  - {{name: f, hostPath: {{path: {existing_file}, type: File}}}}
  - {{name: s, hostPath: {{path: {sock_path}, type: Socket}}}}
  - {{name: c, hostPath: {{path: /dev/null, type: CharDevice}}}}
  - {{name: b, hostPath: {{path: {block}, type: BlockDevice}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: any, mountPath: /any}}
    - {{name: doc, mountPath: /doc}}
    - {{name: d, mountPath: /d, readOnly: true}}
    - {{name: foc, mountPath: /foc}}
    - {{name: f, mountPath: /f}}
    - {{name: s, mountPath: /s}}
    - {{name: c, mountPath: /c}}
    - {{name: b, mountPath: /b}}
"""))
    pod = wait_running(agent, "hp")
    uid = pod["metadata"]["uid"]
    assert new_dir.is_dir() and new_file.is_file()  # created on the host
    assert sh(containerd, pod, "c", "cat /any/hello /f") == (0, "from the host\nfile content\n")
    assert sh(containerd, pod, "c", "test -d /doc && test -f /foc && test -S /s && test -c /c && test -b /b")[0] == 0
    assert sh(containerd, pod, "c", "echo x > /doc/y")[0] == 0 and (new_dir / "y").read_text() == "x\n"
    assert "Read-only file system" in sh(containerd, pod, "c", "touch /d/z")[1]
    teardown_pod(agent, containerd, "hp.yaml", uid)
    assert (existing_dir / "hello").exists() and (new_dir / "y").exists()  # hostPaths are never cleaned
    srv.close()


@pytest.mark.parametrize("volume,expect", [
    ("{path: %(missing)s, type: File}", "hostPath type check failed: %(missing)s does not exist (type File requires a file)"),
    ("{path: %(file)s, type: Directory}", "hostPath type check failed: %(file)s is not a directory"),
    ("{path: %(file)s, type: Socket}", "hostPath type check failed: %(file)s is not a socket file"),
])
def test_host_path_check_failure_is_a_config_error_and_creates_nothing(agent: AgentProcess, containerd: Any, tmp_path: Path, volume: str, expect: str) -> None:
    file = tmp_path / "plain"
    file.write_text("")
    values = {"missing": str(tmp_path / "missing"), "file": str(file)}
    name = f"bad-{uuid.uuid4().hex[:6]}"
    agent.write(f"{name}.yaml", pod_yaml(name, f"""  volumes:
  - {{name: v, hostPath: {volume % values}}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts: [{{name: v, mountPath: /v}}]
"""))
    message = f'volume "v": {expect % values}'
    pod = wait_pod(agent, name, lambda p: cstatus(p, "c")["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError",
                   what="CreateContainerConfigError")
    assert cstatus(pod, "c")["state"]["waiting"]["message"] == message
    uid = pod["metadata"]["uid"]
    assert any(e["message"] == f"Error: {message}" for e in events_for(agent, uid, "Failed"))
    assert runtime_pods(containerd.endpoint, agent.config["nodeName"])[uid]["containers"] == []  # nothing partial
    assert not (tmp_path / "missing").exists()
    teardown_pod(agent, containerd, f"{name}.yaml", uid)


def test_bad_mounts_are_manifest_errors(agent: AgentProcess) -> None:
    agent.write("badm.yaml", pod_yaml("badm", f"""  volumes:
  - {{name: v, emptyDir: {{}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    volumeMounts:
    - {{name: v, mountPath: /a, subPath: ../../etc}}
    - {{name: nope, mountPath: /b}}
    - {{name: v, mountPath: /c, mountPropagation: Bidirectional}}
"""))
    want = [
        "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../../etc\": must not contain '..'",
        'spec.containers[0].volumeMounts[1].name: Not found: "nope"',
        "spec.containers[0].volumeMounts[2].mountPropagation: Forbidden: Bidirectional mount propagation is available only to privileged containers",
    ]
    got = wait_until(lambda: (msgs := [e["message"] for e in agent.events() if e["reason"] == "FailedManifest" and "badm.yaml" in e["message"]])
                     and len(msgs) >= 3 and msgs, timeout=30, what="manifest errors")
    for w in want:
        assert any(m.endswith(w) for m in got), (w, got)
    assert agent.pod(f"badm-{agent.config['nodeName']}") is None
    (agent.manifests / "badm.yaml").unlink()


def test_mount_propagation_host_to_container(agent: AgentProcess, containerd: Any, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    private = tmp_path / "private"
    private.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "nlt-prop", str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        agent.write("prop.yaml", pod_yaml("prop", f"""  volumes:
  - {{name: s, hostPath: {{path: {shared}}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts: [{{name: s, mountPath: /s, mountPropagation: HostToContainer}}]
"""))
        pod = wait_running(agent, "prop")
        inner = shared / "inner"
        inner.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "nlt-prop-inner", str(inner)], check=True)
        (inner / "late").write_text("mounted after the container started\n")
        assert sh(containerd, pod, "c", "cat /s/inner/late") == (0, "mounted after the container started\n")
        teardown_pod(agent, containerd, "prop.yaml", pod["metadata"]["uid"])

        # on a private mount the runtime could not honour it: a precise error, nothing created
        agent.write("prop2.yaml", pod_yaml("prop2", f"""  volumes:
  - {{name: p, hostPath: {{path: {private}}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    volumeMounts: [{{name: p, mountPath: /p, mountPropagation: HostToContainer}}]
"""))
        pod = wait_pod(agent, "prop2", lambda p: cstatus(p, "c")["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError")
        msg = cstatus(pod, "c")["state"]["waiting"]["message"]
        assert msg.startswith('volumeMount "p" (/p): mountPropagation HostToContainer needs the host mount holding') and "it is private" in msg
        teardown_pod(agent, containerd, "prop2.yaml", pod["metadata"]["uid"])
    finally:
        subprocess.run(["umount", "-R", "-l", str(shared)], check=False)


def test_config_map_and_secret_volumes_from_manifest_documents(agent: AgentProcess, containerd: Any) -> None:
    agent.write("cfg.yaml", """apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {app.conf: "level=debug\\n", other: "x"}
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
data: {token: c2VjcmV0LXZhbHVl}
stringData: {plain: hello}
""")
    agent.write("cm.yaml", pod_yaml("cm", f"""  volumes:
  - {{name: cfg, configMap: {{name: app-config}}}}
  - {{name: picked, configMap: {{name: app-config, items: [{{key: app.conf, path: sub/renamed.conf, mode: 0400}}]}}}}
  - {{name: sec, secret: {{secretName: app-secret, defaultMode: 0440}}}}
  - {{name: maybe, configMap: {{name: absent, optional: true}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: cfg, mountPath: /etc/app, readOnly: true}}
    - {{name: picked, mountPath: /picked}}
    - {{name: sec, mountPath: /secret}}
    - {{name: maybe, mountPath: /maybe}}
    - {{name: cfg, mountPath: /one.conf, subPath: app.conf}}
"""))
    pod = wait_running(agent, "cm")
    assert sh(containerd, pod, "c", "cat /etc/app/app.conf /etc/app/other") == (0, "level=debug\nx")
    assert sh(containerd, pod, "c", "cat /picked/sub/renamed.conf; stat -L -c %a /picked/sub/renamed.conf; ls /picked") == (0, "level=debug\n400\nsub\n")
    assert sh(containerd, pod, "c", "cat /secret/token; echo; cat /secret/plain; echo; stat -L -c %a /secret/token") == (0, "secret-value\nhello\n440\n")
    assert sh(containerd, pod, "c", "grep ' /secret ' /proc/mounts")[1].startswith("tmpfs /secret")  # never on disk
    assert sh(containerd, pod, "c", "ls /maybe") == (0, "")  # only the hidden ..data entries
    assert sh(containerd, pod, "c", "cat /one.conf") == (0, "level=debug\n")
    # an edit of the ConfigMap reaches the running container (atomically, at the pod's next sync)
    agent.write("cfg.yaml", (agent.manifests / "cfg.yaml").read_text().replace("level=debug", "level=info"))
    wait_until(lambda: sh(containerd, pod, "c", "cat /etc/app/app.conf")[1] == "level=info\n", timeout=30, what="configmap update")
    uid = pod["metadata"]["uid"]
    teardown_pod(agent, containerd, "cm.yaml", uid)

    agent.write("cm2.yaml", pod_yaml("cm2", f"""  volumes: [{{name: cfg, configMap: {{name: missing}}}}]
  containers:
  - name: c
    image: {BUSYBOX}
    volumeMounts: [{{name: cfg, mountPath: /cfg}}]
"""))
    pod = wait_pod(agent, "cm2", lambda p: cstatus(p, "c")["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError")
    assert cstatus(pod, "c")["state"]["waiting"]["message"].startswith('volume "cfg": configmap "missing" not found')
    teardown_pod(agent, containerd, "cm2.yaml", pod["metadata"]["uid"])
    (agent.manifests / "cfg.yaml").unlink()


def test_agent_kill9_keeps_volumes_and_removal_after_restart_cleans_them(agent: AgentProcess, containerd: Any) -> None:
    agent.write("keep.yaml", pod_yaml("keep", f"""  volumes:
  - {{name: mem, emptyDir: {{medium: Memory, sizeLimit: 1Mi}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sh", "-c", "echo kept > /mem/f; exec sleep 3600"]
    volumeMounts: [{{name: mem, mountPath: /mem}}]
"""))
    pod = wait_running(agent, "keep")
    uid, cid = pod["metadata"]["uid"], cstatus(pod, "c")["containerID"]
    vol_dir = Path(agent.config["rootDir"]) / "pods" / uid / "volumes"
    agent.kill9()
    (agent.manifests / "keep.yaml").unlink()  # removed while the agent is down
    agent.start()
    wait_until(lambda: uid not in runtime_pods(containerd.endpoint, agent.config["nodeName"]), timeout=60, what="pod removed after restart")
    wait_until(lambda: not vol_dir.exists() and not _mounts_under(vol_dir), timeout=30, what="tmpfs unmounted, dir removed")
    assert cid  # the container ran with its tmpfs until the agent came back

    agent.write("keep2.yaml", pod_yaml("keep2", f"""  volumes:
  - {{name: mem, emptyDir: {{medium: Memory, sizeLimit: 1Mi}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sh", "-c", "echo kept > /mem/f; exec sleep 3600"]
    volumeMounts: [{{name: mem, mountPath: /mem}}]
"""))
    pod = wait_running(agent, "keep2")
    cid = cstatus(pod, "c")["containerID"]
    agent.kill9()
    agent.start()
    pod = wait_running(agent, "keep2")
    assert cstatus(pod, "c")["containerID"] == cid and cstatus(pod, "c")["restartCount"] == 0  # adopted, not restarted
    vol = Path(agent.config["rootDir"]) / "pods" / pod["metadata"]["uid"] / "volumes"
    assert len(_mounts_under(vol)) == 1  # the tmpfs was not mounted twice
    assert sh(containerd, pod, "c", "cat /mem/f") == (0, "kept\n")
    teardown_pod(agent, containerd, "keep2.yaml", pod["metadata"]["uid"])
