"""Issue 15 on real containerd: the downward API in env (resourceFieldRef with divisors, a missing limit as the
node's allocatable, status.podIPs/hostIPs, spec.serviceAccountName), a volume without a source as an emptyDir; and
pods whose settings nodelet cannot honour (hostUsers: false, image volumes, SELinux options, API references) are
refused with a precise manifest error and never started."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from kubelet.kuberuntime.podconfig import node_memory_capacity
from kubelet.testing import AgentProcess, runtime_pods, wait_until
from kubelet.testing_podspec import BUSYBOX, module_agent, pod_yaml, sh, teardown_pod, wait_running

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("downward"))


def test_downward_api_env_and_sourceless_volume(agent: AgentProcess, containerd: Any) -> None:
    agent.write("dapi.yaml", f"""apiVersion: v1
kind: Pod
metadata: {{name: dapi, labels: {{zone: us-east, app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: scratch}}
  - name: info
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}, mode: 0600}}
      - {{path: sub/cpu_m, resourceFieldRef: {{containerName: c, resource: limits.cpu, divisor: 1m}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sh", "-c", "echo ok > /scratch/f; sleep 3600"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}, {{name: info, mountPath: /info, readOnly: true}}]
    resources: {{limits: {{cpu: 1500m, memory: 64Mi}}, requests: {{cpu: 250m}}}}
    env:
    - {{name: CPU_LIMIT, valueFrom: {{resourceFieldRef: {{resource: limits.cpu}}}}}}
    - {{name: CPU_REQUEST_M, valueFrom: {{resourceFieldRef: {{resource: requests.cpu, divisor: 1m}}}}}}
    - {{name: MEM_MI, valueFrom: {{resourceFieldRef: {{containerName: c, resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: OTHER_MEM, valueFrom: {{resourceFieldRef: {{containerName: other, resource: limits.memory}}}}}}
    - {{name: POD_IPS, valueFrom: {{fieldRef: {{fieldPath: status.podIPs}}}}}}
    - {{name: HOST_IPS, valueFrom: {{fieldRef: {{fieldPath: status.hostIPs}}}}}}
    - {{name: SA, valueFrom: {{fieldRef: {{fieldPath: spec.serviceAccountName}}}}}}
  - name: other
    image: {BUSYBOX}
    command: ["sleep", "3600"]
""")
    pod = wait_running(agent, "dapi")
    code, out = sh(containerd, pod, "c", 'echo "$CPU_LIMIT $CPU_REQUEST_M $MEM_MI $OTHER_MEM [$POD_IPS] [$HOST_IPS] '
                                         '[$SA]"; cat /scratch/f')
    pod_ip = pod["status"]["podIP"]
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"2 250 64 {node_memory_capacity()} [{pod_ip}] [127.0.0.1] []"
    assert lines[1] == "ok"  # the bare volume is a writable emptyDir, as the API defaults it
    name = f"dapi-{agent.config['nodeName']}"
    assert sh(containerd, pod, "c", "cat /info/labels; echo; cat /info/name; echo; cat /info/sub/cpu_m") == (
        0, f'app="web"\nzone="us-east"\n{name}\n1500')
    # laid out like the kubelet's AtomicWriter: files are symlinks through ..data into a timestamped directory
    code, out = sh(containerd, pod, "c", "readlink /info/name; readlink /info/..data; stat -L -c %a /info/name")
    assert code == 0 and out.split("\n")[0] == "..data/name" and out.split("\n")[1].startswith("..20")
    assert out.split("\n")[2] == "600"
    teardown_pod(agent, containerd, "dapi.yaml", pod["metadata"]["uid"])


def test_unhonourable_settings_are_refused_not_ignored(agent: AgentProcess, containerd: Any) -> None:
    agent.write("refused.yaml", pod_yaml("refused", f"""  hostUsers: false
  serviceAccountName: default
  securityContext: {{seLinuxOptions: {{level: "s0:c1,c2"}}}}
  volumes: [{{name: img, image: {{reference: {BUSYBOX}}}}}]
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources: {{limits: {{cpu: 1e99999999999}}}}
"""))
    want = ["refused.yaml:7: spec.hostUsers: Forbidden: user namespaces are not supported by nodelet's runtime",
            "refused.yaml:8: spec.serviceAccountName: Forbidden: static pods may not reference serviceaccounts",
            "refused.yaml:9: spec.securityContext.seLinuxOptions: Forbidden: SELinux labels are not applied",
            "refused.yaml:10: spec.volumes[0].image: Forbidden: image volumes are not supported by nodelet's runtime",
            "refused.yaml:15: spec.containers[0].resources.limits.cpu: Invalid value: \"1e99999999999\": unable to "
            "parse quantity's suffix"]
    got = wait_until(lambda: (m := [e["message"] for e in agent.events()
                                    if e["reason"] == "FailedManifest" and "refused.yaml" in e["message"]])
                     and len(m) >= len(want) and m, timeout=30, what="manifest errors")
    for w in want:
        assert any(w in m for m in got), (w, got)
    assert not any("internal error" in m for m in got)
    assert agent.pod(f"refused-{agent.config['nodeName']}") is None
    assert not runtime_pods(containerd.endpoint, agent.config["nodeName"])  # nothing started, not even a sandbox
    (agent.manifests / "refused.yaml").unlink()
