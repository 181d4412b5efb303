"""`nodelet get services|endpoints`: the service proxy's view, as kubectl prints Services and Endpoints.

Source: the daemon's `/api/v1/extra/services`, which is `dataclasses.asdict(proxier.status())` (proxy.ProxyStatus:
`mode`, `ports` [{name "ns/svc[:port]", protocol, cluster_ip, port, node_port, endpoints, chains}], `errors`…).
A daemon without the proxy (proxyMode none) has no such extra: the commands say so."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from kubelet.server.apiclient import APIClientError, APIError
from kubelet.cli.common import DEFAULT_NAMESPACE, fail, socket_option, target_from
from kubelet.server.printers import render_table

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



# --- describe service: the rules programmed for it, with their packet counters ----------------------------------------

_IPT_SPECIFIC = ("-SVC-", "-SEP-", "-EXT-", "-SVL-", "-FW-")


def compute_iptables_rules(save_text: str, chains: Sequence[str]) -> list[tuple[int, int, str]]:
    """From `iptables-save -c -t nat`: (packets, bytes, rule) of the service's own chains, the rules that jump into
    them, and the per-endpoint/external chains they jump to — in the order the dump lists them."""
    rules: list[tuple[int, int, str, str, str]] = []  # pkts, bytes, chain, target, text
    for line in save_text.splitlines():
        pk, by = 0, 0
        text = line
        if line.startswith("["):
            counters, _, text = line.partition("] ")
            p, _, b = counters[1:].partition(":")
            pk, by = (int(p), int(b)) if p.isdigit() and b.isdigit() else (0, 0)
        if not text.startswith("-A "):
            continue
        parts = text.split()
        target = parts[parts.index("-j") + 1] if "-j" in parts[:-1] else ""
        rules.append((pk, by, parts[1], target, text))
    order = list(dict.fromkeys(chains))  # the service's chains, then those they jump to, in traversal order
    i = 0
    while i < len(order):  # follow jumps out of the service's chains into its own per-endpoint chains
        for _, _, chain, target, _ in rules:
            if chain == order[i] and target not in order and any(s in target for s in _IPT_SPECIFIC):
                order.append(target)
        i += 1
    rank = {c: n + 1 for n, c in enumerate(order)}
    entry = set(chains)
    picked = [(0 if chain not in rank else rank[chain], n, (pk, by, text))
              for n, (pk, by, chain, target, text) in enumerate(rules) if chain in rank or target in entry]
    return [r for _, _, r in sorted(picked)]


def compute_nft_rules(listing: str, chains: Sequence[str]) -> list[str]:
    """From `nft list table`: the lines of the service's chains and every line elsewhere that names them."""
    out: list[str] = []
    current = ""
    for raw in listing.splitlines():
        line = raw.strip()
        if line.startswith("chain ") and line.endswith("{"):
            current = line.split()[1]
            continue
        if line == "}":
            current = ""
            continue
        if not line or line.startswith(("type ", "policy ")):
            continue
        if current in chains:
            out.append(f"{current}: {line}")
        elif any(c in line.replace('"', " ").split() or f" {c}" in line for c in chains):
            out.append(f"{current or 'map'}: {line}")
    return out


def _run(args: list[str]) -> tuple[str, str]:
    import subprocess

    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "", f"{args[0]}: {e}"
    return p.stdout, p.stderr.strip() if p.returncode else ""


def render_service_description(svc: Mapping[str, Any], *, mode: str, rules: Sequence[tuple[int, int, str]] | None,
                               nft_lines: Sequence[str] | None, rules_error: str = "") -> str:
    from kubelet.server.printers import render_tabwriter

    kind = "NodePort" if any(node for _, _, node, _ in svc["ports"]) else "ClusterIP"
    w = [f"Name:\t{svc['name']}\n", f"Namespace:\t{svc['namespace']}\n", f"Type:\t{kind}\n", f"IP:\t{svc['clusterIP']}\n"]
    for pname, port, node, proto in svc["ports"]:
        w.append(f"Port:\t{pname or '<unset>'}  {port}/{proto}\n")
        if node:
            w.append(f"NodePort:\t{pname or '<unset>'}  {node}/{proto}\n")
        eps = [e for n, e in svc["endpoints"] if n == pname]
        w.append(f"Endpoints:\t{','.join(eps) or '<none>'}\n")
    text = render_tabwriter("".join(w))
    if rules_error:
        return text + f"Rules ({mode}):  <unavailable: {rules_error}>\n"
    if mode == "iptables":
        if not rules:
            return text + "Rules (iptables, nat):  <none>\n"
        return text + "Rules (iptables, nat):\n" + render_table(
            ["  PKTS", "BYTES", "RULE"], [[f"  {pk}", str(by), r] for pk, by, r in rules or ()])
    if not nft_lines:
        return text + f"Rules ({mode}):  <none>\n"
    return text + "Rules (nftables, table ip nodelet):\n" + "".join(f"  {ln}\n" for ln in nft_lines)


@click.command("service")
@click.argument("name")
@click.option("-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True, metavar="NS")
@socket_option
def describe_service(name: str, namespace: str, socket_path: str | None) -> None:
    """Describe a service (alias: svc): ports, endpoints, and the rules programmed for it with their packet counters."""
    status = _fetch(socket_path)
    svc = next((s for s in compute_services(status) if s["name"] == name and s["namespace"] == namespace), None)
    if svc is None:
        fail(f'services "{name}" not found in namespace {namespace}')
    mode = str(status.get("mode") or "")
    rules = nft_lines = None
    err = ""
    if mode == "iptables":
        out, err = _run(["iptables-save", "-c", "-t", "nat"])
        rules = compute_iptables_rules(out, svc["chains"])
    elif mode == "nftables":
        out, err = _run(["nft", "list", "table", "ip", "nodelet"])
        nft_lines = compute_nft_rules(out, svc["chains"])
    click.echo(render_service_description(svc, mode=mode, rules=rules, nft_lines=nft_lines, rules_error=err), nl=False)
