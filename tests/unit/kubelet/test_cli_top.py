"""`nodelet top`: kubectl top's tables from container usage, and the CPU rate from two counter samples."""
from __future__ import annotations

from kubelet.cli.top import ContainerUsage, compute_cpu_nano_cores, render_node_top, render_pods_top

U = [
    ContainerUsage(namespace="default", pod="web-n1", container="httpd", nano_cores=3_500_000, working_set_bytes=12 * 2**20 + 5),
    ContainerUsage(namespace="default", pod="web-n1", container="side", nano_cores=1_000_000, working_set_bytes=2 * 2**20),
    ContainerUsage(namespace="kube-system", pod="etcd-n1", container="etcd", nano_cores=250_000_000, working_set_bytes=300 * 2**20),
]


def test_pods_summed_per_pod() -> None:
    assert render_pods_top(U[:2], containers=False, all_namespaces=False, sort_by=None) == (
        "NAME     CPU(cores)   MEMORY(bytes)\n"
        "web-n1   4m           14Mi\n")


def test_containers_all_namespaces_sorted_by_cpu() -> None:
    assert render_pods_top(U, containers=True, all_namespaces=True, sort_by="cpu") == (
        "NAMESPACE     POD       NAME    CPU(cores)   MEMORY(bytes)\n"
        "kube-system   etcd-n1   etcd    250m         300Mi\n"
        "default       web-n1    httpd   3m           12Mi\n"
        "default       web-n1    side    1m           2Mi\n")


def test_node() -> None:
    assert render_node_top("n1", nano_cores=500_000_000, cores=2, used_bytes=3 * 2**30, total_bytes=16 * 2**30) == (
        "NAME   CPU(cores)   CPU(%)   MEMORY(bytes)   MEMORY(%)\n"
        "n1     500m         25%      3072Mi          18%\n")


def test_cpu_rate_from_counters() -> None:
    first = {"a": (1_000_000_000, 5_000_000_000), "b": (1_000_000_000, 10), "gone": (1, 1)}
    second = {"a": (3_000_000_000, 5_500_000_000), "b": (1_000_000_000, 20), "new": (5, 5)}
    assert compute_cpu_nano_cores(first, second) == {"a": 250_000_000}  # 0.5 s of CPU in 2 s; b: no time passed
