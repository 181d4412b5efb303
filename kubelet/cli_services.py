"""`nodelet get services|endpoints`: the service proxy's view, as kubectl prints Services and Endpoints.

Source: the daemon's `/api/v1/extra/services`, which is `dataclasses.asdict(proxier.status())` (proxy.ProxyStatus:
`mode`, `ports` [{name "ns/svc[:port]", protocol, cluster_ip, port, node_port, endpoints, chains}], `errors`…).
Until the daemon registers that extra, both commands say the proxy is not running on this node."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from kubelet.apiclient import APIClientError, APIError
from kubelet.cli_common import DEFAULT_NAMESPACE, fail, socket_option, target_from
from kubelet.printers import render_table

__all__ = ["compute_services", "endpoints_cmd", "render_endpoints_table", "render_services_table", "services_cmd"]


def compute_services(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ProxyStatus ports → one entry per service: namespace, name, clusterIP, ports [(name, port, nodePort, proto)],
    endpoints [(port name, "ip:port")], chains."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for p in status.get("ports") or ():
        full = str(p.get("name", ""))
        svc, _, port_name = full.partition(":")
        ns, _, name = svc.partition("/")
        s = out.setdefault((ns, name), {"namespace": ns, "name": name, "clusterIP": p.get("cluster_ip") or "None",
                                        "ports": [], "endpoints": [], "chains": []})
        s["ports"].append((port_name, int(p.get("port") or 0), p.get("node_port"), str(p.get("protocol", "TCP"))))
        s["endpoints"].extend((port_name, str(e)) for e in p.get("endpoints") or ())
        s["chains"].extend(p.get("chains") or ())
    return [out[k] for k in sorted(out)]


def _ports(s: Mapping[str, Any]) -> str:
    return ",".join(f"{port}:{node}/{proto}" if node else f"{port}/{proto}" for _, port, node, proto in s["ports"]) or "<none>"


def render_services_table(services: Sequence[Mapping[str, Any]], *, all_namespaces: bool) -> str:
    """`kubectl get services`: NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE (the proxy does not know ages)."""
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    rows = []
    for s in services:
        kind = "NodePort" if any(node for _, _, node, _ in s["ports"]) else "ClusterIP"
        rows.append(([s["namespace"]] if all_namespaces else []) + [s["name"], kind, s["clusterIP"], "<none>", _ports(s), "<unknown>"])
    return render_table(header, rows)


def render_endpoints_table(services: Sequence[Mapping[str, Any]], *, all_namespaces: bool) -> str:
    """`kubectl get endpoints`: NAME ENDPOINTS AGE (the first three addresses, then "+ N more...")."""
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "ENDPOINTS", "AGE"]
    rows = []
    for s in services:
        addrs = list(dict.fromkeys(e for _, e in s["endpoints"]))
        text = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "") if addrs else "<none>"
        rows.append(([s["namespace"]] if all_namespaces else []) + [s["name"], text, "<unknown>"])
    return render_table(header, rows)


def _fetch(socket_path: str | None) -> dict[str, Any]:
    target = target_from(socket_path, None)
    try:
        body = target.client.get("/api/v1/extra/services")
    except APIError as e:
        if e.code == 404:
            fail("the service proxy is not running in this daemon (proxyMode none, or a nodelet without the proxy wired)")
        fail(str(e))
    except APIClientError as e:
        fail(str(e))
    if not isinstance(body, dict):
        fail("unexpected answer from the daemon for services")
    return body


def _common(f: Any) -> Any:
    f = click.option("-A", "--all-namespaces", is_flag=True)(f)
    f = click.option("-n", "--namespace", default=None, metavar="NS", help=f"namespace (default: {DEFAULT_NAMESPACE})")(f)
    return socket_option(f)


def _select(status: Mapping[str, Any], names: Sequence[str], namespace: str | None, all_namespaces: bool) -> tuple[list[dict[str, Any]], str | None]:
    ns = None if all_namespaces else (namespace or DEFAULT_NAMESPACE)
    services = [s for s in compute_services(status) if (ns is None or s["namespace"] == ns) and (not names or s["name"] in names)]
    for n in names:
        if not any(s["name"] == n for s in services):
            fail(f'services "{n}" not found')
    if not services:
        click.echo(f"No resources found in {ns} namespace." if ns else "No resources found", err=True)
    return services, ns


@click.command("services")
@click.argument("names", nargs=-1)
@_common
def services_cmd(names: tuple[str, ...], namespace: str | None, all_namespaces: bool, socket_path: str | None) -> None:
    """Services the proxy programs on this node (aliases: service, svc)."""
    services, ns = _select(_fetch(socket_path), names, namespace, all_namespaces)
    if services:
        click.echo(render_services_table(services, all_namespaces=ns is None), nl=False)


@click.command("endpoints")
@click.argument("names", nargs=-1)
@_common
def endpoints_cmd(names: tuple[str, ...], namespace: str | None, all_namespaces: bool, socket_path: str | None) -> None:
    """The endpoints each service's rules send to (alias: ep)."""
    services, ns = _select(_fetch(socket_path), names, namespace, all_namespaces)
    if services:
        click.echo(render_endpoints_table(services, all_namespaces=ns is None), nl=False)

