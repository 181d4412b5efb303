"""`nodelet doctor`'s checks as pure functions over hand-built host facts: every branch, and the rendered report."""
from __future__ import annotations

import dataclasses
import time

import pytest

from kubelet.node import doctor as d
from kubelet.node.doctor import FAIL, PASS, WARN, DiskFacts, HostFacts

GOOD = HostFacts(
    runtime_endpoint="unix:///run/containerd/containerd.sock", runtime_version="containerd 1.7.0",
    runtime_conditions=(("RuntimeReady", True, "", ""), ("NetworkReady", True, "", "")),
    runtime_config={"sandboxImage": "registry.k8s.io/pause:3.9", "restrictOOMScoreAdj": False,
                    "containerd": {"runtimes": {"runc": {"options": {"SystemdCgroup": True}}}}},
    sandbox_image_present=True, cgroup_version=2, init_is_systemd=True, ip_forward="1", br_netfilter_loaded=True,
    bridge_nf_call_iptables="1", iptables_nft_rules=12, iptables_legacy_rules=0, pod_cidr="10.244.0.0/24",
    cni_bridge="nodelet0", cni_conf_dir="/etc/cni/net.d", cni_conf_files=("00-nodelet.conflist", "10-other.conf"),
    host_routes=(("default", "eth0"), ("192.168.1.0/24", "eth0"), ("10.244.0.0/24", "nodelet0")),
    has_cap_sys_resource=True, manifest_dir="/etc/kubernetes/manifests", manifest_dir_mode=0o755, manifest_dir_uid=0,
    disks=(DiskFacts(label="pod logs", path="/var/log/pods", free_bytes=50 * 2**30, total_bytes=100 * 2**30, min_free=0.10),),
    clock_synchronized=True, wall_time=time.mktime((2026, 1, 10, 12, 0, 0, 0, 0, 0)),
    agent_cgroup_driver="systemd", resolv_conf="/run/systemd/resolve/resolv.conf",
    resolv_conf_nameservers=("192.168.1.1",), systemd_resolved_nameservers=("192.168.1.1",),
)


def with_(**kw: object) -> HostFacts:
    return dataclasses.replace(GOOD, **kw)  # type: ignore[arg-type]


def test_healthy_node_passes_everything() -> None:
    checks = d.compute_checks(GOOD)
    assert [(c.name, c.status) for c in checks] == [
        ("runtime", PASS), ("cgroups", PASS), ("ip_forward", PASS), ("br_netfilter", PASS), ("iptables", PASS), ("cni", PASS),
        ("pod-cidr", PASS), ("sandbox-image", PASS), ("oom-score-adj", PASS), ("manifests", PASS), ("disk", PASS), ("clock", PASS),
        ("dns", PASS)]


@pytest.mark.parametrize(("check", "facts", "status", "needle"), [
    (d.check_runtime, with_(runtime_error="no socket at /x"), FAIL, "cannot reach the CRI runtime"),
    (d.check_runtime, with_(runtime_conditions=(("RuntimeReady", True, "", ""), ("NetworkReady", False, "NetworkPluginNotReady", "cni config uninitialized"))), WARN, "NetworkReady=false (NetworkPluginNotReady: cni config uninitialized)"),
    (d.check_runtime, with_(runtime_conditions=(("RuntimeReady", False, "", ""),)), FAIL, "RuntimeReady=false"),
    (d.check_cgroups, with_(init_is_systemd=False), FAIL, "runtime cgroup driver systemd, init not systemd"),
    (d.check_cgroups, with_(cgroup_version=1), WARN, "cgroup v1"),
    (d.check_cgroups, with_(agent_cgroup_driver="cgroupfs"), FAIL,
     "agent cgroupDriver cgroupfs, runtime cgroup driver systemd, init systemd: they must match"),
    (d.check_cgroups, with_(runtime_config={"systemdCgroup": False}), FAIL,
     "agent cgroupDriver systemd, runtime cgroup driver cgroupfs"),
    (d.check_cgroups, with_(runtime_config={"systemdCgroup": False}, agent_cgroup_driver="cgroupfs"), WARN,
     "agent cgroupDriver cgroupfs, runtime cgroup driver cgroupfs, init systemd"),
    (d.check_cgroups, with_(runtime_config={}, init_is_systemd=False, agent_cgroup_driver="cgroupfs"), PASS,
     "runtime cgroup driver unknown"),
    (d.check_dns, with_(resolv_conf="/etc/resolv.conf", resolv_conf_nameservers=("127.0.0.53",)), FAIL,
     "/etc/resolv.conf names loopback nameserver 127.0.0.53: unreachable from pods"),
    (d.check_dns, with_(resolv_conf="/etc/resolv.conf", resolv_conf_nameservers=("::1", "10.0.0.2"),
                        systemd_resolved_nameservers=None), FAIL, "loopback nameserver ::1"),
    (d.check_dns, with_(resolv_conf_nameservers=None), FAIL, "cannot be read"),
    (d.check_dns, with_(resolv_conf=""), PASS, "pods get no nameservers from the host"),
    (d.check_ip_forward, with_(ip_forward="0"), FAIL, "ip_forward = 0"),
    (d.check_ip_forward, with_(ip_forward="0", pod_cidr=""), WARN, "ip_forward = 0"),
    (d.check_br_netfilter, with_(br_netfilter_loaded=False), FAIL, "not loaded"),
    (d.check_br_netfilter, with_(br_netfilter_loaded=False, pod_cidr=""), WARN, "not loaded"),
    (d.check_br_netfilter, with_(bridge_nf_call_iptables="0"), FAIL, "bridge-nf-call-iptables = 0"),
    (d.check_iptables_backend, with_(iptables_legacy_rules=3), FAIL, "12 nf_tables, 3 legacy"),
    (d.check_iptables_backend, with_(iptables_nft_rules=0, iptables_legacy_rules=3), PASS, "legacy (3 rules)"),
    (d.check_iptables_backend, with_(iptables_nft_rules=None, iptables_legacy_rules=None), WARN, "no iptables tools"),
    (d.check_cni_config, with_(cni_conf_files=()), FAIL, "no CNI config"),
    (d.check_cni_config, with_(cni_conf_files=None), FAIL, "no CNI config"),
    (d.check_cni_config, with_(cni_conf_files=("00-aaa.conf", "00-nodelet.conflist")), FAIL, "00-aaa.conf comes before"),
    (d.check_cni_config, with_(pod_cidr="", cni_conf_files=()), WARN, "only hostNetwork pods"),
    (d.check_cni_config, with_(pod_cidr="", cni_conf_files=("10-flannel.conflist",)), PASS, "10-flannel.conflist"),
    (d.check_pod_cidr_routes, with_(host_routes=(("10.244.0.0/16", "eth1"),)), FAIL, "overlaps host routes: 10.244.0.0/16 dev eth1"),
    (d.check_pod_cidr_routes, with_(host_routes=(("10.244.0.128/25", "wg0"), ("fd00::/8", "eth0"))), FAIL, "10.244.0.128/25 dev wg0"),
    (d.check_pod_cidr_routes, with_(pod_cidr="nonsense"), FAIL, "not a CIDR"),
    (d.check_sandbox_image, with_(sandbox_image_present=False), WARN, "registry.k8s.io/pause:3.9 not present"),
    (d.check_sandbox_image, with_(runtime_config={}), WARN, "does not say"),
    (d.check_sandbox_image, with_(runtime_error="down"), WARN, "not checked"),
    (d.check_oom_score_adj, with_(has_cap_sys_resource=False), FAIL, "restrict_oom_score_adj = false"),
    (d.check_oom_score_adj, with_(has_cap_sys_resource=False, runtime_config={"restrictOOMScoreAdj": True}), PASS, "restrict_oom_score_adj = true"),
    (d.check_oom_score_adj, with_(has_cap_sys_resource=False, runtime_config={}), WARN, "unknown"),
    (d.check_manifest_dir, with_(manifest_dir_mode=0o777), FAIL, "world-writable (mode 0777): anyone on the node can run root pods"),
    (d.check_manifest_dir, with_(manifest_dir_mode=0o1777), FAIL, "world-writable"),
    (d.check_manifest_dir, with_(manifest_files_world_writable=("web.yaml",)), FAIL, "world-writable manifests: web.yaml"),
    (d.check_manifest_dir, with_(manifest_dir_uid=1000), WARN, "owned by uid 1000"),
    (d.check_manifest_dir, with_(manifest_dir_mode=0o775), WARN, "group-writable"),
    (d.check_manifest_dir, with_(manifest_dir_mode=None), WARN, "does not exist"),
    (d.check_disk, with_(disks=(DiskFacts(label="images", path="/var/lib/containerd", free_bytes=10, total_bytes=100, min_free=0.15),)), FAIL, "images /var/lib/containerd: 0.0GiB free (10%)"),
    (d.check_disk, with_(disks=(DiskFacts(label="images", path="/i", free_bytes=25, total_bytes=100, min_free=0.15),)), WARN, "(25%)"),
    (d.check_disk, with_(disks=()), WARN, "no disk facts"),
    (d.check_clock, with_(clock_synchronized=False), WARN, "not synchronized"),
    (d.check_clock, with_(clock_synchronized=None), WARN, "unknown"),
    (d.check_clock, with_(wall_time=0.0), FAIL, "the clock says 1970"),
])
def test_each_branch(check, facts: HostFacts, status: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    c = check(facts)
    assert c.status == status and needle in c.message, c
    if status == FAIL:
        assert c.fix, c  # every FAIL says how to fix it


def test_render_report() -> None:
    checks = [d.Check(name="runtime", status=PASS, message="ok"),
              d.Check(name="manifests", status=FAIL, message="/m is world-writable", fix="chmod o-w /m"),
              d.Check(name="clock", status=WARN, message="unsynced", fix="run NTP")]
    assert d.render_checks(checks) == (
        "PASS  runtime    ok\n"
        "FAIL  manifests  /m is world-writable\n"
        "                 fix: chmod o-w /m\n"
        "WARN  clock      unsynced\n"
        "                 fix: run NTP\n"
        "3 checks: 1 passed, 1 warning, 1 failed\n")
    assert '"status": "FAIL"' in d.render_checks_json(checks)


def test_cgroup_and_dns_fixes_are_the_right_ones() -> None:
    """A mismatch is fixed on the runtime's side to match the agent (never "SystemdCgroup = true" alone, which
    broke cgroupfs agents); a loopback nameserver on a systemd-resolved host points at resolved's upstream file."""
    c = d.check_cgroups(with_(agent_cgroup_driver="cgroupfs"))
    assert c.fix.startswith("set SystemdCgroup = false in containerd's runc options")
    c = d.check_cgroups(with_(runtime_config={"systemdCgroup": False}, agent_cgroup_driver="cgroupfs"))
    assert "set cgroupDriver: systemd and SystemdCgroup = true, together" in c.fix
    c = d.check_dns(with_(resolv_conf="/etc/resolv.conf", resolv_conf_nameservers=("127.0.0.53",)))
    assert c.fix == "set resolvConf: /run/systemd/resolve/resolv.conf (systemd-resolved's upstream servers, as kubeadm does)"
    c = d.check_dns(with_(resolv_conf="/etc/resolv.conf", resolv_conf_nameservers=("127.0.0.53",),
                          systemd_resolved_nameservers=None))
    assert c.fix == "point resolvConf at a file whose nameservers pods can reach"
