"""`nodelet top pods|node`: CPU and memory per pod/container from the CRI's ListContainerStats (as the kubelet's
summary API gets them) and for the node from psutil, printed as `kubectl top` prints metrics-server's numbers."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from kubelet.cli.common import DEFAULT_NAMESPACE, AliasedGroup, cri_options, run_cri, target_from
from kubelet.server.printers import render_table

__all__ = ["ContainerUsage", "compute_cpu_nano_cores", "render_node_top", "render_pods_top", "top_group"]

SAMPLE_WINDOW = 1.0  # seconds between two CPU counters when the runtime gives no rate


@dataclass(frozen=True, kw_only=True)
class ContainerUsage:
    namespace: str
    pod: str
    container: str
    nano_cores: int
    working_set_bytes: int


def compute_cpu_nano_cores(first: Mapping[str, tuple[int, int]], second: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """(timestamp ns, cumulative CPU ns) per container at two instants → the CPU rate in nanocores."""
    out = {}
    for cid, (t1, c1) in second.items():
        if cid in first:
            t0, c0 = first[cid]
            if t1 > t0 and c1 >= c0:
                out[cid] = int((c1 - c0) * 1e9 / (t1 - t0))
    return out


def _cpu(nano: int) -> str:
    return f"{nano // 1_000_000}m"


def _mem(b: int) -> str:
    return f"{b // (1024 * 1024)}Mi"


def render_pods_top(usage: Sequence[ContainerUsage], *, containers: bool, all_namespaces: bool, sort_by: str | None) -> str:
    """`kubectl top pod [--containers] [-A]`: NAME CPU(cores) MEMORY(bytes), summed per pod unless --containers."""
    rows: list[tuple[str, str, str, int, int]] = []
    if containers:
        for u in usage:
            rows.append((u.namespace, u.pod, u.container, u.nano_cores, u.working_set_bytes))
    else:
        pods: dict[tuple[str, str], list[int]] = {}
        for u in usage:
            acc = pods.setdefault((u.namespace, u.pod), [0, 0])
            acc[0] += u.nano_cores
            acc[1] += u.working_set_bytes
        rows = [(ns, pod, "", cpu, mem) for (ns, pod), (cpu, mem) in pods.items()]
    if sort_by == "cpu":
        rows.sort(key=lambda r: -r[3])
    elif sort_by == "memory":
        rows.sort(key=lambda r: -r[4])
    else:
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
    header = (["NAMESPACE"] if all_namespaces else []) + (["POD", "NAME"] if containers else ["NAME"]) + ["CPU(cores)", "MEMORY(bytes)"]
    out = []
    for ns, pod, c, cpu, mem in rows:
        cells = ([ns] if all_namespaces else []) + ([pod, c] if containers else [pod]) + [_cpu(cpu), _mem(mem)]
        out.append(cells)
    return render_table(header, out)


def render_node_top(name: str, *, nano_cores: int, cores: int, used_bytes: int, total_bytes: int) -> str:
    """`kubectl top node`: NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)."""
    cpu_pct = nano_cores * 100 // (cores * 1_000_000_000) if cores else 0
    mem_pct = used_bytes * 100 // total_bytes if total_bytes else 0
    return render_table(["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
                        [[name, _cpu(nano_cores), f"{cpu_pct}%", _mem(used_bytes), f"{mem_pct}%"]])


async def _usage(client: Any, node: str) -> list[ContainerUsage]:
    import asyncio

    import cri.api as capi

    sel = {"io.nodelet.node": node}
    running = {c.id for c in await client.list_containers(labels=sel, state=capi.ContainerState.RUNNING)}
    stats = [s for s in await client.list_container_stats(labels=sel) if s.id in running]
    rates = {s.id: s.cpu_usage_nano_cores for s in stats if s.cpu_usage_nano_cores is not None}
    if len(rates) < len(stats):  # the runtime gives counters only: rate over a short window, as metrics-server does
        first = {s.id: (s.timestamp, s.cpu_usage_core_nanoseconds or 0) for s in stats}
        await asyncio.sleep(SAMPLE_WINDOW)
        again = [s for s in await client.list_container_stats(labels=sel) if s.id in running]
        second = {s.id: (s.timestamp, s.cpu_usage_core_nanoseconds or 0) for s in again}
        rates = {**compute_cpu_nano_cores(first, second), **rates}
    out = []
    for s in stats:
        out.append(ContainerUsage(
            namespace=s.labels.get("io.kubernetes.pod.namespace", ""), pod=s.labels.get("io.kubernetes.pod.name", ""),
            container=s.labels.get("io.kubernetes.container.name", s.name), nano_cores=rates.get(s.id, 0),
            working_set_bytes=s.memory_working_set_bytes or 0))
    return out


def _node_name(target: Any) -> str:
    node = target.node()
    return str(node.get("name")) if node and node.get("name") else target.config().node_name


@click.group("top", cls=AliasedGroup, aliases={"pod": "pods", "po": "pods", "nodes": "node", "no": "node"})
def top_group() -> None:
    """CPU and memory of pods (CRI container stats) and of the node (psutil)."""


@top_group.command("pods")
@click.option("-n", "--namespace", default=None, metavar="NS", help=f"namespace (default: {DEFAULT_NAMESPACE})")
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("--containers", is_flag=True, help="one line per container")
@click.option("--sort-by", type=click.Choice(("cpu", "memory")), default=None)
@cri_options
def top_pods(namespace: str | None, all_namespaces: bool, containers: bool, sort_by: str | None, socket_path: str | None,
             config_path: str | None, runtime_endpoint: str | None) -> None:
    """Pods' CPU (millicores) and memory (working set), like kubectl top pod."""
    target = target_from(socket_path, config_path, runtime_endpoint)
    node = _node_name(target)
    usage = run_cri(target.runtime_endpoint(), lambda c: _usage(c, node))
    ns = None if all_namespaces else (namespace or DEFAULT_NAMESPACE)
    usage = [u for u in usage if ns is None or u.namespace == ns]
    if not usage:
        click.echo(f"No resources found in {ns} namespace." if ns else "No resources found", err=True)
        return
    click.echo(render_pods_top(usage, containers=containers, all_namespaces=ns is None, sort_by=sort_by), nl=False)




@top_group.command("node")
@cri_options
def top_node(socket_path: str | None, config_path: str | None, runtime_endpoint: str | None) -> None:
    """The node's CPU and memory (psutil; memory = total - available, like the kubelet's working set)."""
    import psutil

    target = target_from(socket_path, config_path, runtime_endpoint)
    pct = psutil.cpu_percent(interval=SAMPLE_WINDOW)
    cores = psutil.cpu_count() or 1
    vm = psutil.virtual_memory()
    click.echo(render_node_top(_node_name(target), nano_cores=int(pct / 100 * cores * 1e9), cores=cores,
                               used_bytes=vm.total - vm.available, total_bytes=vm.total), nl=False)


