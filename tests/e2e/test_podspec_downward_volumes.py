"""Issue 15 item 2 on real containerd: a downwardAPI volume (pod fields, labels/annotations in the kubelet's format,
resourceFieldRef with divisors, per-item mode and defaultMode, fsGroup) and a projected volume combining downwardAPI,
configMap and secret sources, both in the kubelet's AtomicWriter layout (``..data`` → timestamped directory, each
name a symlink through it), on a tmpfs, mounted read-only; an edit of the ConfigMap swaps ``..data`` in the running
container; an agent restart adopts the pod without mounting its volumes twice, and removal unmounts them."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.testing import AgentProcess, cstatus, wait_until
from kubelet.testing_podspec import BUSYBOX, module_agent, pod_yaml, sh, teardown_pod, wait_running

pytestmark = [pytest.mark.root, pytest.mark.containerd]

DOCS = """apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {app.conf: "level=debug\\n", other: "x"}
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
data: {token: c2VjcmV0LXZhbHVl}
"""


def _mounts_under(path: Path) -> list[str]:
    return [f[4] for f in (line.split() for line in open("/proc/self/mountinfo")) if f[4].startswith(str(path))]


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("downward-volumes"))


def test_downward_api_and_projected_volumes(agent: AgentProcess, containerd: Any) -> None:
    agent.write("docs.yaml", DOCS)
    agent.write("dv.yaml", pod_yaml("dv", f"""  volumes:
  - name: podinfo
    downwardAPI:
      defaultMode: 0440
      items:
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
      - {{path: uid, fieldRef: {{fieldPath: metadata.uid}}}}
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}, mode: 0600}}
      - {{path: annotations, fieldRef: {{fieldPath: metadata.annotations}}}}
      - {{path: sub/app, fieldRef: {{fieldPath: "metadata.labels['app']"}}}}
      - {{path: mem_mi, resourceFieldRef: {{containerName: c, resource: limits.memory, divisor: 1Mi}}}}
      - {{path: cpu_m, resourceFieldRef: {{containerName: c, resource: requests.cpu, divisor: 1m}}}}
  - name: all
    projected:
      defaultMode: 0640
      sources:
      - downwardAPI: {{items: [{{path: pod/namespace, fieldRef: {{fieldPath: metadata.namespace}}}}]}}
      - configMap: {{name: app-config, items: [{{key: app.conf, path: conf/app.conf}}]}}
      - secret: {{name: app-secret, items: [{{key: token, path: token, mode: 0400}}]}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources: {{limits: {{cpu: 500m, memory: 48Mi}}, requests: {{cpu: 250m}}}}
    volumeMounts:
    - {{name: podinfo, mountPath: /etc/podinfo}}
    - {{name: all, mountPath: /etc/all}}
""", grace=1, extra_spec="  securityContext: {fsGroup: 2000}\n").replace("metadata: {name: dv}", "metadata: {name: dv, labels: {app: web, tier: front}, "
                                                 "annotations: {note: 'hello \"you\"'}}"))
    pod = wait_running(agent, "dv")
    uid = pod["metadata"]["uid"]
    code, out = sh(containerd, pod, "c", "cd /etc/podinfo; for f in name uid labels sub/app mem_mi cpu_m; do "
                                         "cat $f; echo; done; cat annotations")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:7] == [pod["metadata"]["name"], uid, 'app="web"', 'tier="front"', "web", "48", "250"]
    annotations = lines[7:]
    assert 'note="hello \\"you\\""' in annotations and f'kubernetes.io/config.hash="{uid}"' in annotations
    assert annotations == sorted(annotations)
    # modes: defaultMode, a per-item mode (fsGroup adds group read, as SetVolumeOwnership); the AtomicWriter layout
    code, out = sh(containerd, pod, "c", "cd /etc/podinfo; stat -L -c '%a %g' name labels sub/app; readlink ..data; "
                                         "readlink labels; readlink sub; ls")
    assert code == 0, out
    modes_and_links = out.splitlines()
    assert modes_and_links[:3] == ["440 2000", "640 2000", "440 2000"]
    assert modes_and_links[3].startswith("..20") and modes_and_links[4:6] == ["..data/labels", "..data/sub"]
    assert modes_and_links[6:] == ["annotations", "cpu_m", "labels", "mem_mi", "name", "sub", "uid"]
    # tmpfs, and read-only whatever the volumeMount says (as the kubelet's mustMountRO)
    assert sh(containerd, pod, "c", "grep ' /etc/podinfo ' /proc/mounts")[1].startswith("tmpfs /etc/podinfo")
    assert sh(containerd, pod, "c", "touch /etc/podinfo/x")[0] != 0
    # the projected volume: three sources in one directory, the volume's defaultMode unless an item sets one
    code, out = sh(containerd, pod, "c", "cd /etc/all; cat pod/namespace; echo; cat conf/app.conf token; echo; "
                                         "stat -L -c %a pod/namespace conf/app.conf token; ls")
    assert code == 0, out
    assert out.splitlines() == ["default", "level=debug", "secret-value", "640", "640", "440", "conf", "pod", "token"]
    before = sh(containerd, pod, "c", "readlink /etc/all/..data")[1]
    # an edit of the ConfigMap: a new timestamped directory, ..data swapped, the old one gone
    agent.write("docs.yaml", DOCS.replace("level=debug", "level=info"))
    wait_until(lambda: sh(containerd, pod, "c", "cat /etc/all/conf/app.conf")[1] == "level=info\n", timeout=30,
               what="projected configMap update")
    code, out = sh(containerd, pod, "c", f"readlink /etc/all/..data; ls -a /etc/all | grep -c '^[.][.]20'; "
                                         f"test -e /etc/all/{before.strip()} || echo gone")
    after, count, gone = out.splitlines()
    assert after != before.strip() and count == "1" and gone == "gone"
    # an agent restart adopts the pod: its tmpfs volumes are not mounted again, and the files keep following the
    # pod's values (config.seen as the restarted agent reports it) at its syncs
    cid = cstatus(pod, "c")["containerID"]
    agent.kill9()
    agent.start()
    pod = wait_running(agent, "dv")
    assert cstatus(pod, "c")["containerID"] == cid and cstatus(pod, "c")["restartCount"] == 0
    vol = Path(agent.config["rootDir"]) / "pods" / uid / "volumes"
    assert len(_mounts_under(vol)) == 2  # one tmpfs per volume
    seen = pod["metadata"]["annotations"]["kubernetes.io/config.seen"]
    wait_until(lambda: f'kubernetes.io/config.seen="{seen}"'
               in sh(containerd, pod, "c", "cat /etc/podinfo/annotations")[1], timeout=30,
               what="annotations file follows the pod")
    teardown_pod(agent, containerd, "dv.yaml", uid)
    wait_until(lambda: not _mounts_under(vol) and not vol.exists(), timeout=30, what="tmpfs volumes unmounted, removed")
    (agent.manifests / "docs.yaml").unlink()
