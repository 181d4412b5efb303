"""Cluster mode from any node: `nodelet get nodes`, `nodelet cluster pods|status|leave`."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import click

from kubelet.cli.common import fail, socket_option, target_from
from kubelet.server.printers import _since, render_list, render_table, render_yaml

OUTPUTS = ("wide", "json", "yaml")


def compute_node_row(node: Mapping[str, Any], *, now: datetime, wide: bool = False) -> list[str]:
    """kubectl's node columns: NAME STATUS ROLES AGE VERSION [INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION
    CONTAINER-RUNTIME] — nodelet shows INTERNAL-IP always and adds POD-CIDR in wide."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady" if ready and ready.get("status") == "False" else "Unknown"
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (meta.get("labels") or {}) if k.startswith("node-role.kubernetes.io/"))
    ip = next((a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "<none>")
    info = status.get("nodeInfo") or {}
    row = [meta.get("name", ""), state, ",".join(roles) or "<none>", _since(meta.get("creationTimestamp"), now),
           info.get("kubeletVersion", ""), ip]
    if wide:
        row += [spec.get("podCIDR") or "<none>", info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
                info.get("containerRuntimeVersion") or "<unknown>"]
    return row


def render_nodes_table(nodes: Sequence[Mapping[str, Any]], *, now: datetime, wide: bool = False) -> str:
    header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    if wide:
        header += ["POD-CIDR", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = [compute_node_row(n, now=now, wide=wide) for n in sorted(nodes, key=lambda n: n.get("metadata", {}).get("name", ""))]
    return render_table(header, rows)


def _get(socket_path: str | None, config_path: str | None, path: str) -> Any:
    from kubelet.server.apiclient import APIClient, APIClientError

    target = target_from(socket_path, config_path)
    try:
        return APIClient(target.socket_path, timeout=10).get(path)
    except APIClientError as e:
        fail(str(e))


def _print(items: list[dict[str, Any]], output: str | None, table: Any) -> None:
    if output in ("json", "yaml"):
        click.echo(render_list(items, "List", output), nl=False)
    else:
        click.echo(table(items), nl=False)


@click.command("nodes")
@click.argument("names", nargs=-1)
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default=None, help="output format")
@click.option("--config", "config_path", default=None, metavar="FILE", help="the daemon's configuration file")
@socket_option
def nodes_cmd(names: tuple[str, ...], output: str | None, config_path: str | None, socket_path: str | None) -> None:
    """List the cluster's live nodes (alias: node, no) — every node's, from any node in cluster mode."""
    items = _get(socket_path, config_path, "/api/v1/extra/nodes") or []
    if names:
        missing = [n for n in names if n not in {i["metadata"]["name"] for i in items}]
        if missing:
            fail(f'nodes "{missing[0]}" not found')
        items = [i for i in items if i["metadata"]["name"] in names]
    now = datetime.now(timezone.utc)
    _print(items, output, lambda objs: render_nodes_table(objs, now=now, wide=output == "wide"))


@click.group("cluster")
def cluster_group() -> None:
    """Cluster mode (etcd): every node's pods, this node's membership, leaving on purpose."""


@cluster_group.command("pods")
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default=None, help="output format")
@click.option("--config", "config_path", default=None, metavar="FILE", help="the daemon's configuration file")
@socket_option
def cluster_pods_cmd(output: str | None, config_path: str | None, socket_path: str | None) -> None:
    """Every live node's pods (their mirror pods in etcd), with the node each runs on."""
    from kubelet.server.printers import compute_pods_rows

    items = _get(socket_path, config_path, "/api/v1/extra/clusterpods") or []
    now = datetime.now(timezone.utc)

    def table(objs: list[dict[str, Any]]) -> str:
        objs = sorted(objs, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
        header, rows = compute_pods_rows(objs, wide=True, now=now, all_namespaces=True)
        return render_table(header, rows)

    _print(items, output, table)


@cluster_group.command("status")
@click.option("--config", "config_path", default=None, metavar="FILE", help="the daemon's configuration file")
@socket_option
def cluster_status_cmd(config_path: str | None, socket_path: str | None) -> None:
    """This node's view of the cluster: etcd reachability, lease, podCIDR, nodes, errors (YAML)."""
    st = _get(socket_path, config_path, "/api/v1/extra/cluster")
    if st is None:
        fail("this agent is not in cluster mode (etcdEndpoints is empty)")
    click.echo(render_yaml(st), nl=False)


@cluster_group.command("leave")
@click.option("--config", "config_path", default="/etc/nodelet/config.yaml", show_default=True, metavar="FILE",
              help="the node's configuration file (etcd endpoints, TLS files, prefix, rootDir, nodeName)")
@click.option("--force", is_flag=True, help="leave even though the agent's API socket answers")
def cluster_leave_cmd(config_path: str, force: bool) -> None:
    """Leave the cluster on purpose: this node's Node, endpoints and mirror pods go at once, its podCIDR is freed
    for other nodes, the Services it declared are withdrawn. Stop the agent first (it would join again)."""
    import os

    from kubelet.config import ConfigError, load_config

    try:
        c = load_config(config_path)
    except ConfigError as e:
        fail(str(e))
    if not c.etcd_endpoints:
        fail(f"{config_path}: etcdEndpoints: empty: this node is not in cluster mode")
    if os.path.exists(c.api_socket) and not force:
        from kubelet.server.apiclient import APIClient

        try:
            APIClient(c.api_socket, timeout=2).get("/healthz")
            fail("the agent is running (it would join again): stop it first (systemctl stop nodelet), or pass --force")
        except Exception as e:  # noqa: BLE001 - not answering: fine to go on
            if isinstance(e, click.exceptions.Exit):
                raise
    import asyncio  # only here: the CLI's fast path stays free of asyncio

    out = asyncio.run(_leave(c))
    click.echo(f"node {out['node']} left the cluster: leases revoked {', '.join(out['revokedLeases']) or '-'}, "
               f"{out['deleted']} keys deleted")


async def _leave(c: Any) -> dict[str, Any]:
    from kubelet.app import client_tls
    from kubelet.lifecycle.nodestatus import NodeFacts
    from kubelet.node.cluster import ClusterConfig, ClusterMember
    from kubelet.node.etcd import EtcdClient, EtcdError

    try:
        async with EtcdClient(c.etcd_endpoints, tls=client_tls(c)) as client:
            member = ClusterMember(ClusterConfig(endpoints=c.etcd_endpoints, tls=client_tls(c), prefix=c.etcd_prefix,
                                                 node_name=c.node_name, node_ip=c.node_ip, state_dir=c.root_dir),
                                   client=client, facts=lambda: NodeFacts(name=c.node_name, internal_ip=c.node_ip))
            return await member.leave()
    except EtcdError as e:
        fail(str(e))


__all__ = ["cluster_group", "compute_node_row", "nodes_cmd", "render_nodes_table"]
