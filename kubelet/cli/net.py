"""`nodelet net`: the pod network as the node has it — the bridge, each pod's veth ↔ sandbox ↔ IP, the IPAM
allocations in the CNI data dir — and the problems found: leaked IPs, orphan veths, pods without a veth, a missing
route to the pod CIDR. Read-only: `ip -j` for links and routes, the host-local files, the CRI for sandboxes.

`compute_net_report` is pure (unit-tested on hand-made facts); `gather_net_facts` reads the host."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from kubelet.cli.common import cri_options, run_cri, style, target_from
from kubelet.server.printers import render_table

__all__ = ["NetFacts", "NetReport", "compute_net_report", "gather_net_facts", "net_cmd", "render_net_report"]

ALIAS_PREFIX = "nodelet-cni "
DEFAULT_DATA_DIR = "/var/lib/cni/networks"


@dataclass(frozen=True, kw_only=True)
class NetFacts:
    bridge: str
    pod_cidr: str
    network: str  # the CNI network name (conflist "name")
    conflist: str  # its path ("" when none)
    data_dir: str  # <dataDir>/<network>
    links: Sequence[Mapping[str, Any]]  # `ip -j -d link show`
    bridge_addrs: Sequence[str]  # CIDRs on the bridge
    routes: Sequence[Mapping[str, Any]]  # `ip -j route show`
    allocations: Mapping[str, str | None]  # ip → sandbox id (None: unreadable file)
    sandboxes: Sequence[Mapping[str, Any]]  # {"id", "ready", "namespace", "name", "ip", "hostNetwork"}


@dataclass(frozen=True, kw_only=True)
class NetReport:
    bridge_line: str
    network_line: str
    rows: list[list[str]] = field(default_factory=list)  # NAMESPACE POD IP VETH SANDBOX
    problems: list[tuple[str, str]] = field(default_factory=list)  # (problem, fix)


def _alias(link: Mapping[str, Any]) -> dict[str, str] | None:
    alias = str(link.get("ifalias") or "")
    if not alias.startswith(ALIAS_PREFIX):
        return None
    return dict(p.split("=", 1) for p in alias.split()[1:] if "=" in p)


def compute_net_report(f: NetFacts) -> NetReport:
    sandboxes = {s["id"]: s for s in f.sandboxes}
    ready = {sid for sid, s in sandboxes.items() if s.get("ready")}
    br = next((ln for ln in f.links if ln.get("ifname") == f.bridge), None)
    problems: list[tuple[str, str]] = []
    if br is None:
        bridge_line = f"bridge {f.bridge}: missing"
        if f.pod_cidr:
            problems.append((f"bridge {f.bridge} does not exist", "the first pod's CNI ADD creates it; if pods run, check the CNI config's bridge"))
    else:
        state = "up" if "UP" in (br.get("flags") or ()) else "down"
        bridge_line = f"bridge {f.bridge}: {state}, {', '.join(f.bridge_addrs) or 'no address'}, mtu {br.get('mtu')}"
    if f.pod_cidr:
        try:
            cidr = ipaddress.ip_network(f.pod_cidr, strict=False)
        except ValueError:
            cidr = None
        routed = cidr is not None and any(
            r.get("dev") == f.bridge and r.get("dst") not in (None, "default")
            and ipaddress.ip_network(str(r["dst"]), strict=False) == cidr for r in f.routes)
        bridge_line += f"; podCIDR {f.pod_cidr} " + ("routed via the bridge" if routed else "NOT routed via the bridge")
        if not routed and br is not None:
            problems.append((f"no route to podCIDR {f.pod_cidr} via {f.bridge}",
                             f"the bridge needs the gateway address of {f.pod_cidr} (the next pod ADD sets it with forceAddress), "
                             f"or: ip addr add <gateway>/{f.pod_cidr.split('/')[-1]} dev {f.bridge}"))
    used = len([ip for ip in f.allocations])
    network_line = (f"network {f.network or '?'}: conf {f.conflist or 'none found'}; ipam {f.data_dir} ({used} allocated)")

    veths: dict[str, Mapping[str, Any]] = {}  # sandbox id → host veth
    for ln in f.links:
        a = _alias(ln)
        if a is not None and a.get("net") == f.network:
            veths[a.get("id", "")] = ln
            if a.get("id") not in ready:
                gone = "is gone" if a.get("id") not in sandboxes else "is not ready"
                problems.append((f"orphan veth {ln.get('ifname')}: its sandbox {a.get('id', '')[:13]} {gone}",
                                 f"ip link del {ln.get('ifname')} (or let the runtime's CNI DEL/GC remove it)"))
        elif (ln.get("master") == f.bridge and str(ln.get("ifname", "")).startswith("veth") and not ln.get("ifalias")):
            problems.append((f"unlabelled veth {ln.get('ifname')} on {f.bridge}: an ADD killed half-way, or not nodelet's",
                             f"ip link del {ln.get('ifname')} if no pod uses it"))

    by_sandbox: dict[str, list[str]] = {}
    for ip, owner in sorted(f.allocations.items(), key=lambda kv: ipaddress.ip_address(kv[0])):
        if owner is None:
            problems.append((f"unreadable allocation {ip} in {f.data_dir}", f"rm {os.path.join(f.data_dir, ip)} if no pod has {ip}"))
            continue
        by_sandbox.setdefault(owner, []).append(ip)
        if owner not in ready:
            problems.append((f"leaked IP {ip}: allocated to sandbox {owner[:13]}, which the runtime "
                             + ("does not have" if owner not in sandboxes else "has stopped"),
                             "the runtime's CNI GC (containerd ≥ 2.0) or a DEL for it frees it; else "
                             f"rm {os.path.join(f.data_dir, ip)}"))
    rows = []
    for sid in sorted(ready, key=lambda s: (sandboxes[s].get("namespace", ""), sandboxes[s].get("name", ""))):
        s = sandboxes[sid]
        if s.get("hostNetwork"):
            continue
        ips = by_sandbox.get(sid) or ([s["ip"]] if s.get("ip") else [])
        veth = veths.get(sid)
        rows.append([s.get("namespace", ""), s.get("name", ""), ",".join(ips) or "<none>",
                     str(veth.get("ifname")) if veth else "<none>", sid[:13]])
        if veth is None and by_sandbox.get(sid):
            problems.append((f"pod {s.get('namespace')}/{s.get('name')} has {','.join(by_sandbox[sid])} but no veth on this host",
                             "its network was torn down under it: delete the pod's sandbox (crictl rmp) so the agent recreates it"))
    return NetReport(bridge_line=bridge_line, network_line=network_line, rows=rows, problems=problems)


def render_net_report(r: NetReport, *, colour: bool = False) -> str:
    out = [r.bridge_line, r.network_line, ""]
    if r.rows:
        out.append(render_table(["NAMESPACE", "POD", "IP", "VETH", "SANDBOX"], r.rows).rstrip("\n"))
    else:
        out.append("no pods on the pod network")
    out.append("")
    if r.problems:
        out.append(f"{len(r.problems)} problem{'s' if len(r.problems) != 1 else ''}:")
        for problem, fix in r.problems:
            out.append(f"  {style('✗', 'red') if colour else '-'} {problem}")
            out.append(f"      fix: {fix}")
    else:
        out.append("no problems found")
    return "\n".join(out) + "\n"


# --- gathering ---------------------------------------------------------------------------------------------------------

def _ip_json(*args: str) -> list[dict[str, Any]]:
    try:
        text = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=10).stdout
        data = json.loads(text or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    return data if isinstance(data, list) else []


def _find_conflist(conf_dirs: Sequence[str]) -> tuple[str, dict[str, Any]]:
    for d in conf_dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if n.endswith("nodelet.conflist"):
                path = os.path.join(d, n)
                try:
                    with open(path, encoding="utf-8") as fh:
                        return path, json.load(fh)
                except (OSError, ValueError):
                    continue
    return "", {}


def _read_allocations(directory: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for n in names:
        try:
            ipaddress.ip_address(n)
        except ValueError:
            continue
        try:
            with open(os.path.join(directory, n), "rb") as fh:
                owner = fh.read().decode(errors="replace").replace("\r\n", "\n").split("\n")[0].strip()
        except OSError:
            continue
        out[n] = owner or None
    return out


async def _sandboxes(client: Any) -> list[dict[str, Any]]:
    import cri

    out = []
    for s in await client.list_pod_sandboxes():
        d = {"id": s.id, "ready": s.state.name == "READY", "namespace": s.metadata.namespace, "name": s.metadata.name,
             "ip": "", "hostNetwork": False}
        if d["ready"]:
            try:
                st = await client.pod_sandbox_status(s.id)
                d["ip"] = st.ip
                d["hostNetwork"] = st.network_mode.name == "NODE"
            except cri.NotFound:
                d["ready"] = False
        out.append(d)
    return out


def gather_net_facts(*, endpoint: str, bridge: str, pod_cidr: str, conf_dirs: Sequence[str]) -> NetFacts:
    conflist_path, conflist = _find_conflist(conf_dirs)
    network = str(conflist.get("name") or "")
    plugin: dict[str, Any] = next((p for p in conflist.get("plugins") or () if p.get("type") == "nodelet-cni"), {})
    bridge = str(plugin.get("bridge") or bridge)
    data_dir = os.path.join(str((plugin.get("ipam") or {}).get("dataDir") or DEFAULT_DATA_DIR), network or "nodelet")
    addrs = []
    for link in _ip_json("addr", "show", "dev", bridge):
        for a in link.get("addr_info") or ():
            if a.get("scope") != "link":
                addrs.append(f"{a.get('local')}/{a.get('prefixlen')}")
    return NetFacts(
        bridge=bridge, pod_cidr=pod_cidr, network=network, conflist=conflist_path, data_dir=data_dir,
        links=_ip_json("-d", "link", "show"), bridge_addrs=addrs, routes=_ip_json("route", "show") + _ip_json("-6", "route", "show"),
        allocations=_read_allocations(data_dir), sandboxes=run_cri(endpoint, _sandboxes))


@click.command("net")
@cri_options
@click.option("-o", "--output", type=click.Choice(("json",)), default=None, help="output format")
def net_cmd(socket_path: str | None, config_path: str | None, runtime_endpoint: str | None, output: str | None) -> None:
    """The pod network: bridge, pods' veths and IPs, IPAM allocations, and problems (leaked IPs, orphan veths,
    missing routes). Exit 1 when problems are found."""
    t = target_from(socket_path, config_path, runtime_endpoint)
    endpoint = t.runtime_endpoint()
    conf_dirs = [t.setting("cniConfDir", "cni_conf_dir")]

    async def runtime_conf_dir(client: Any) -> str:
        st = await client.status(verbose=True)
        try:
            return str((json.loads(st.info.get("config") or "{}").get("cni") or {}).get("confDir") or "")
        except ValueError:
            return ""

    rt_dir = run_cri(endpoint, runtime_conf_dir)
    if rt_dir and rt_dir not in conf_dirs:
        conf_dirs.insert(0, rt_dir)  # the directory the runtime really reads comes first
    facts = gather_net_facts(endpoint=endpoint, bridge=t.setting("cniBridge", "cni_bridge"),
                             pod_cidr=t.setting("podCIDR", "pod_cidr"), conf_dirs=conf_dirs)
    report = compute_net_report(facts)
    if output == "json":
        from dataclasses import asdict

        body = asdict(report) | {"problems": [{"problem": p, "fix": f} for p, f in report.problems],
                                 "rows": [dict(zip(("namespace", "pod", "ip", "veth", "sandbox"), r)) for r in report.rows]}
        click.echo(json.dumps(body, indent=2))
    else:
        click.echo(render_net_report(report, colour=style("x", "red") != "x"), nl=False)
    if report.problems:
        raise click.exceptions.Exit(1)
