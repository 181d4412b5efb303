"""Pure parts of the pod-spec features: resources → LinuxResources/QoS/oom_score_adj, security contexts → CRI,
runAsNonRoot checks, validation messages, termination-message log tails, unimplemented-field reporting."""
from __future__ import annotations

from typing import Any

import pytest

from cri import api
from kubelet.manifest.defaults import compute_pod
from kubelet.kuberuntime.podconfig import NodeInfo, compute_container_config, compute_sandbox_config
from kubelet.kuberuntime.resources import (
    compute_cgroup_parent, compute_linux_resources, compute_oom_score_adj, compute_qos_class, milli_cpu, parse_quantity,
    parse_resource_requirements,
)
from kubelet.kuberuntime.security import DEFAULT_MASKED_PATHS, compute_container_security, verify_run_as_non_root
from kubelet.lifecycle.termination import parse_cri_log_tail
from kubelet.types import Pod
from kubelet.manifest.validation import render_path, validate_pod
from kubelet.manifest.validation_spec import compute_unimplemented_fields

GiB = 1 << 30


def make_pod(spec: dict[str, Any]) -> Pod:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    assert validate_pod(obj) == []
    return compute_pod(obj, file="/m/p.yaml", node_name="n1")


def ctr(**kw: Any) -> dict[str, Any]:
    return {"name": kw.pop("name", "c"), "image": "busybox:1.35", **kw}


def problems(spec: dict[str, Any]) -> list[str]:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    return [f"{render_path(p.path)}: {p.reason}" for p in validate_pod(obj)]


@pytest.mark.parametrize("text,value", [("500m", "0.5"), ("1", "1"), (2, "2"), ("1.5", "1.5"), ("128Mi", str(128 << 20)),
                                        ("1e3", "1000"), ("1G", "1000000000"), ("100u", "0.0001")])
def test_parse_quantity(text: Any, value: str) -> None:
    assert parse_quantity(text) == parse_quantity(value)


def test_milli_cpu_rounds_up() -> None:
    assert milli_cpu("0.0001") == 1 and milli_cpu("250m") == 250 and milli_cpu(2) == 2000


@pytest.mark.parametrize("resources,shares,quota,period,memory", [
    ({}, 2, 0, 0, 0),
    ({"requests": {"cpu": "250m"}}, 256, 0, 0, 0),
    ({"limits": {"cpu": "500m", "memory": "64Mi"}}, 512, 50000, 100000, 64 << 20),  # request defaults to the limit
    ({"requests": {"cpu": "100m"}, "limits": {"cpu": "2"}}, 102, 200000, 100000, 0),
    ({"limits": {"cpu": "1m"}}, 2, 1000, 100000, 0),  # shares and quota floors
])
def test_linux_resources(resources: dict[str, Any], shares: int, quota: int, period: int, memory: int) -> None:
    r = compute_linux_resources(parse_resource_requirements(resources), qos="Burstable", memory_capacity=8 * GiB, node_critical=False)
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes) == (shares, quota, period, memory)


def test_qos_classes() -> None:
    def qos(*ctrs: dict[str, Any]) -> str:
        return compute_qos_class([parse_resource_requirements(c.get("resources")) for c in ctrs])

    assert qos({}) == "BestEffort"
    assert qos({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}) == "Guaranteed"
    assert qos({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m"}}}) == "Guaranteed"
    assert qos({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}, {}) == "Burstable"
    assert qos({"resources": {"requests": {"memory": "1Gi"}}}) == "Burstable"


def test_oom_score_adj_by_qos() -> None:
    assert compute_oom_score_adj(qos="Guaranteed", memory_request=0, memory_capacity=GiB, node_critical=False) == -997
    assert compute_oom_score_adj(qos="BestEffort", memory_request=0, memory_capacity=GiB, node_critical=False) == 1000
    assert compute_oom_score_adj(qos="Burstable", memory_request=GiB // 4, memory_capacity=GiB, node_critical=False) == 750
    assert compute_oom_score_adj(qos="Burstable", memory_request=0, memory_capacity=GiB, node_critical=False) == 999
    assert compute_oom_score_adj(qos="Burstable", memory_request=GiB, memory_capacity=GiB, node_critical=False) == 2
    assert compute_oom_score_adj(qos="BestEffort", memory_request=0, memory_capacity=GiB, node_critical=True) == -997


def test_cgroup_parent_names() -> None:
    assert compute_cgroup_parent("u1", "Guaranteed") == "/kubepods/podu1"
    assert compute_cgroup_parent("u1", "Burstable") == "/kubepods/burstable/podu1"
    assert compute_cgroup_parent("u1", "BestEffort") == "/kubepods/besteffort/podu1"


def test_container_security_container_wins_and_defaults() -> None:
    pod = make_pod({"securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000], "fsGroup": 2000,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [ctr(securityContext={"runAsUser": 0, "allowPrivilegeEscalation": False,
                                                        "capabilities": {"add": ["net_admin"], "drop": ["ALL"]},
                                                        "seccompProfile": {"type": "Localhost", "localhostProfile": "a/b.json"}}),
                                   ctr(name="d", securityContext={"privileged": True})]})
    sec = compute_container_security(pod, pod.spec.containers[0], seccomp_root="/r/seccomp")
    assert sec.run_as_user == 0 and sec.run_as_group == 3000
    assert sec.supplemental_groups == (4000, 2000)
    assert sec.no_new_privs and sec.capabilities == api.Capabilities(add=("NET_ADMIN",), drop=("ALL",))
    assert sec.seccomp == api.SecurityProfile(type="Localhost", localhost_ref="/r/seccomp/a/b.json")
    assert sec.masked_paths == DEFAULT_MASKED_PATHS
    priv = compute_container_security(pod, pod.spec.containers[1], seccomp_root="/r/seccomp")
    assert priv.privileged and priv.seccomp is None and priv.masked_paths == () and not priv.no_new_privs
    sconf = compute_sandbox_config(pod, NodeInfo(node_name="n1", host_ip="10.0.0.1"), attempt=0, host_resolv=api.DNSConfig())
    assert sconf.linux.security.privileged  # a privileged container needs a privileged sandbox
    assert sconf.linux.security.run_as_user == 1000 and sconf.linux.cgroup_parent == f"/kubepods/besteffort/pod{pod.uid}"


def test_container_config_carries_mounts_resources_security() -> None:
    pod = make_pod({"containers": [ctr(resources={"limits": {"cpu": "1", "memory": "1Gi"}})],
                    "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}})
    node = NodeInfo(node_name="n1", host_ip="10.0.0.1", memory_capacity=8 * GiB)
    mount = api.Mount(container_path="/v", host_path="/h")
    cfg = compute_container_config(pod, pod.spec.containers[0], restart_count=0, init=False, pod_ip="", host_ip="10.0.0.1",
                                   image="busybox:1.35", node=node, mounts=(mount,))
    assert cfg.mounts == (mount,)
    assert cfg.resources is not None and cfg.resources.oom_score_adj == -997 and cfg.resources.cpu_quota == 100000
    sconf = compute_sandbox_config(pod, node, attempt=0, host_resolv=api.DNSConfig())
    assert dict(sconf.linux.sysctls) == {"net.ipv4.tcp_syncookies": "1"}
    assert sconf.linux.cgroup_parent == f"/kubepods/pod{pod.uid}"


@pytest.mark.parametrize("sc,image,msg", [
    ({}, api.Image(id="i", repo_tags=(), repo_digests=(), size=0, uid=0), None),
    ({"runAsNonRoot": True}, api.Image(id="i", repo_tags=(), repo_digests=(), size=0, uid=0), "image will run as root"),
    ({"runAsNonRoot": True}, api.Image(id="i", repo_tags=(), repo_digests=(), size=0), "image will run as root"),
    ({"runAsNonRoot": True}, api.Image(id="i", repo_tags=(), repo_digests=(), size=0, uid=1000), None),
    ({"runAsNonRoot": True}, api.Image(id="i", repo_tags=(), repo_digests=(), size=0, username="nginx"), "non-numeric user (nginx)"),
    ({"runAsNonRoot": True, "runAsUser": 0}, None, "container's runAsUser breaks non-root policy"),
    ({"runAsNonRoot": True, "runAsUser": 5}, api.Image(id="i", repo_tags=(), repo_digests=(), size=0, uid=0), None),
])
def test_verify_run_as_non_root(sc: dict[str, Any], image: api.Image | None, msg: str | None) -> None:
    pod = make_pod({"containers": [ctr(securityContext=sc)]})
    got = verify_run_as_non_root(pod, pod.spec.containers[0], image)
    if msg is None:
        assert got is None
    else:
        assert got is not None and msg in got and got.endswith(f'(pod: "p-n1_default({pod.uid})", container: c)')


def test_validation_messages() -> None:
    got = problems({
        "volumes": [{"name": "a", "emptyDir": {"medium": "Disk"}}, {"name": "a", "hostPath": {"path": "rel", "type": "Pipe"}},
                    {"name": "cm", "nfs": {"server": "x", "path": "/"}}, {"name": "two", "emptyDir": {}, "hostPath": {"path": "/x"}}],
        "securityContext": {"runAsUser": -1, "sysctls": [{"name": "net.core.somaxconn", "value": "1"}],
                            "seccompProfile": {"type": "Localhost"}},
        "hostNetwork": True,
        "containers": [ctr(volumeMounts=[{"name": "a", "mountPath": "/a", "subPath": "/abs"},
                                         {"name": "a", "mountPath": "/a", "mountPropagation": "Sideways"}],
                           resources={"limits": {"cpu": "lots"}, "requests": {"gpu": "1"}},
                           lifecycle={"postStart": {}, "preStop": {"sleep": {"seconds": 99}}})],
    })
    want = [
        'spec.volumes[0].emptyDir.medium: Unsupported value: "Disk": supported values: "", "Memory", "HugePages"',
        'spec.volumes[1].name: Duplicate value: "a"',
        'spec.volumes[1].hostPath.path: Invalid value: "rel": must be an absolute path',
        'spec.volumes[1].hostPath.type: Unsupported value: "Pipe": supported values: "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"',
        "spec.volumes[2].nfs: Forbidden: nfs volumes are not supported by nodelet (emptyDir, hostPath, downwardAPI, and configMap/secret/projected from documents in the manifest directory are)",
        "spec.volumes[3].hostPath: Forbidden: may not specify more than 1 volume type",
        "spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
        "spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost",
        'spec.securityContext.sysctls[0].name: Invalid value: "net.core.somaxconn": sysctl not allowed with hostNetwork: it would change the node\'s network namespace',
        'spec.containers[0].volumeMounts[0].subPath: Invalid value: "/abs": must be a relative path',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/a": must be unique',
        'spec.containers[0].volumeMounts[1].mountPropagation: Unsupported value: "Sideways": supported values: "None", "HostToContainer", "Bidirectional"',
        'spec.containers[0].resources.limits.cpu: Invalid value: "lots": must match the regular expression',
        'spec.containers[0].resources.requests.gpu: Invalid value: "gpu": must be a standard resource type',
        "spec.containers[0].lifecycle.postStart: Required value: must specify a handler type",
        "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 99: must be less than or equal to terminationGracePeriodSeconds (30)",
    ]
    for w in want:
        assert any(g.startswith(w) for g in got), (w, got)


def test_valid_rich_spec_has_no_problems() -> None:
    assert problems({
        "volumes": [{"name": "d", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}, {"name": "h", "hostPath": {"path": "/var/log", "type": "Directory"}}],
        "securityContext": {"runAsUser": 1, "fsGroup": 2, "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"}]},
        "containers": [ctr(volumeMounts=[{"name": "d", "mountPath": "/d", "subPathExpr": "$(POD)"}, {"name": "h", "mountPath": "/h", "readOnly": True, "mountPropagation": "HostToContainer"}],
                           resources={"requests": {"cpu": "100m", "memory": "10Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
                           securityContext={"capabilities": {"add": ["NET_ADMIN", "sys_time"], "drop": ["ALL"]}, "readOnlyRootFilesystem": True},
                           lifecycle={"postStart": {"exec": {"command": ["true"]}}, "preStop": {"httpGet": {"port": 80, "path": "/q"}}})],
    }) == []


def test_cri_log_tail() -> None:
    log = (b"2024-01-01T00:00:00.1Z stdout F one\n2024-01-01T00:00:00.2Z stderr P tw\n2024-01-01T00:00:00.3Z stderr F o\n"
           b"2024-01-01T00:00:00.4Z stdout F three\n")
    assert parse_cri_log_tail(log, max_lines=80, max_bytes=2048) == "one\ntwo\nthree\n"
    assert parse_cri_log_tail(log, max_lines=2, max_bytes=2048) == "two\nthree\n"
    assert parse_cri_log_tail(log, max_lines=80, max_bytes=4) == "ree\n"


def test_unimplemented_fields_are_listed() -> None:
    pod = make_pod({"nodeSelector": {"a": "b"}, "securityContext": {"fsGroupChangePolicy": "Always"},
                    "containers": [ctr(resources={"limits": {"ephemeral-storage": "1Gi", "cpu": "1"}})]})
    assert compute_unimplemented_fields(pod.manifest) == [
        "spec.nodeSelector", "spec.containers[0].resources.ephemeral-storage"]


def test_pod_level_resources() -> None:
    from kubelet.kuberuntime.resources import compute_pod_resources

    a = parse_resource_requirements({"requests": {"cpu": "100m"}, "limits": {"cpu": "200m", "memory": "64Mi"}})
    b = parse_resource_requirements({"limits": {"cpu": "300m", "memory": "32Mi"}})
    r = compute_pod_resources([a, b])
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes) == (409, 50000, 96 << 20)  # 100m + 300m requested
    big_init = parse_resource_requirements({"limits": {"cpu": "2", "memory": "1Gi"}})
    r = compute_pod_resources([a, b], [big_init])
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes) == (2048, 200000, 1 << 30)  # the init container is larger
    r = compute_pod_resources([a, parse_resource_requirements({})])
    assert (r.cpu_quota, r.memory_limit_in_bytes) == (0, 0)  # a container without limits: no pod limit


def test_pod_level_resources_with_sidecars() -> None:
    """KEP-753: sidecars add to the regular containers; a plain init container counts with the sidecars before it."""
    from kubelet.kuberuntime.resources import compute_pod_resources

    main = parse_resource_requirements({"limits": {"cpu": "1", "memory": "100Mi"}})
    side = parse_resource_requirements({"limits": {"cpu": "500m", "memory": "50Mi"}})
    init = parse_resource_requirements({"limits": {"cpu": "1200m", "memory": "120Mi"}})
    r = compute_pod_resources([main], [side], sidecars=[True])
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes) == (1536, 150000, 150 << 20)
    r = compute_pod_resources([main], [side, init], sidecars=[True, False])  # init runs beside the sidecar: 1.7 CPU, 170Mi
    assert (r.cpu_quota, r.memory_limit_in_bytes) == (170000, 170 << 20)
    r = compute_pod_resources([main], [init, side], sidecars=[False, True])  # init runs alone, before the sidecar: max(1.2, 1.5)
    assert (r.cpu_quota, r.memory_limit_in_bytes) == (150000, 150 << 20)
    r = compute_pod_resources([main], [parse_resource_requirements({})], sidecars=[True])
    assert (r.cpu_quota, r.memory_limit_in_bytes) == (0, 0)  # a sidecar without limits: no pod limit


def test_sidecar_oom_score_adj_never_above_the_regular_containers() -> None:
    """GetContainerOOMScoreAdjust for sidecars: computed from max(own request, smallest regular request)."""
    from kubelet.kuberuntime.resources import compute_min_memory_request

    rr = parse_resource_requirements
    regular = [rr({"requests": {"memory": "2Gi"}}), rr({"limits": {"memory": "1Gi"}})]
    floor = compute_min_memory_request(regular)
    assert floor == GiB
    small_sidecar = rr({"requests": {"memory": "64Mi"}})
    r = compute_linux_resources(small_sidecar, qos="Burstable", memory_capacity=4 * GiB, node_critical=False, oom_memory_floor=floor)
    assert r.oom_score_adj == 750  # as the 1Gi container, not 985
    big_sidecar = rr({"requests": {"memory": "2Gi"}})
    r = compute_linux_resources(big_sidecar, qos="Burstable", memory_capacity=4 * GiB, node_critical=False, oom_memory_floor=floor)
    assert r.oom_score_adj == 500
    assert compute_min_memory_request([rr({}), rr({"requests": {"memory": "1Gi"}})]) == 0
