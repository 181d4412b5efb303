"""kubelet.lifecycle.nodestatus: the v1 Node object, as the kubelet's setters build it."""
from __future__ import annotations

from kubelet.lifecycle.nodestatus import NodeFacts, NodeHealth, collect_node_facts, compute_node_object

FACTS = NodeFacts(name="n1", internal_ip="192.168.56.11", pod_cidr="10.244.1.0/24", cpu_millis=2000,
                  memory_bytes=4 * 2**30, ephemeral_storage_bytes=20 * 2**30, max_pods=110, kernel_version="6.1.0",
                  os_image="Debian GNU/Linux 12 (bookworm)", architecture="amd64", boot_id="b", machine_id="m",
                  container_runtime_version="containerd://1.6.20", kubelet_version="v0.1.0", labels={"role": "web"},
                  uid="u1", creation_timestamp="2026-01-01T00:00:00Z")
T = "2026-01-01T00:00:10Z"


def test_node_object_shape() -> None:
    node = compute_node_object(FACTS, NodeHealth(ready=True), heartbeat=T)
    assert node["apiVersion"] == "v1" and node["kind"] == "Node"
    assert node["metadata"]["name"] == "n1" and node["metadata"]["uid"] == "u1"
    assert node["metadata"]["labels"] == {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "role": "web"}
    assert node["spec"] == {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}
    st = node["status"]
    assert st["addresses"] == [{"type": "InternalIP", "address": "192.168.56.11"}, {"type": "Hostname", "address": "n1"}]
    assert st["capacity"] == {"cpu": "2", "ephemeral-storage": "20971520Ki", "memory": "4194304Ki", "pods": "110"}
    assert st["allocatable"] == st["capacity"]
    assert st["nodeInfo"]["containerRuntimeVersion"] == "containerd://1.6.20"
    assert st["nodeInfo"]["bootID"] == "b" and st["nodeInfo"]["kubeletVersion"] == "v0.1.0"
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    conds = {c["type"]: c for c in st["conditions"]}
    assert [c["type"] for c in st["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    assert conds["Ready"] == {"type": "Ready", "status": "True", "lastHeartbeatTime": T, "lastTransitionTime": T,
                              "reason": "KubeletReady", "message": "kubelet is posting ready status"}
    assert conds["MemoryPressure"]["reason"] == "KubeletHasSufficientMemory"
    assert conds["DiskPressure"]["reason"] == "KubeletHasNoDiskPressure"
    assert conds["PIDPressure"]["reason"] == "KubeletHasSufficientPID"


def test_not_ready_and_pressure() -> None:
    h = NodeHealth(ready=False, not_ready_message="container runtime is down", disk_pressure=True,
                   transitions={"Ready": "2026-01-01T00:00:05Z"})
    conds = {c["type"]: c for c in compute_node_object(FACTS, h, heartbeat=T)["status"]["conditions"]}
    assert (conds["Ready"]["status"], conds["Ready"]["reason"], conds["Ready"]["message"]) == ("False", "KubeletNotReady", "container runtime is down")
    assert conds["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:05Z" and conds["Ready"]["lastHeartbeatTime"] == T
    assert (conds["DiskPressure"]["status"], conds["DiskPressure"]["reason"]) == ("True", "KubeletHasDiskPressure")


def test_no_pod_cidr_no_spec_and_fractional_cpu() -> None:
    import dataclasses

    node = compute_node_object(dataclasses.replace(FACTS, pod_cidr="", cpu_millis=1500), NodeHealth(ready=True), heartbeat=T)
    assert node["spec"] == {} and node["status"]["capacity"]["cpu"] == "1500m"


def test_collect_reads_this_machine(tmp_path) -> None:
    f = collect_node_facts(name="x", internal_ip="10.0.0.1", root_dir=str(tmp_path), container_runtime_version="containerd://2")
    assert f.cpu_millis >= 1000 and f.memory_bytes > 0 and f.ephemeral_storage_bytes > 0 and f.kernel_version
    assert f.architecture in ("amd64", "arm64") and len(f.boot_id) == 36
