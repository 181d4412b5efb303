"""The test suite leaves the host as it found it: snapshot host objects at session start, compare at the end.

"What the tests created" is made precise in two ways, so a machine shared with other users is not blamed on us:
- only objects carrying the names/prefixes our tests and harnesses use are looked at (`ncni-…`/`cni-…` netns,
  `veth<8 hex>`/`nlt…`/`ncni…`/`bref…`/`b…0` links, routes and rules on those links or our test subnets, nft tables
  `nodelet…`/`ncni…` and the sets inside `nodelet-cni`, iptables chains `NODELET…`/`KUBE-…`/`NCNI…`, mounts under
  our roots and the session's temp dir, processes whose command line names our roots or the session's temp dir);
- only objects that are new since the session started count (everything root-level runs under the global lock
  `/work/tools/rootlock`, so nothing else creates such objects meanwhile).
`compute_leaks` is pure (tested in tables); `snapshot` reads the host (root only; cheap: a few `ip -j`/`nft -j`).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

NETNS_RE = re.compile(r"^(ncni-|cni-|nlt)")
LINK_RE = re.compile(r"^(veth[0-9a-f]{8}|nlt|ncni|bref|bfast|bfall|nodelet)")
NFT_TABLE_RE = re.compile(r"^(nodelet|ncni)")
CHAIN_RE = re.compile(r"^(NODELET|KUBE-|NCNI)")
SUBNET_RE = re.compile(r"\b10\.(244|88|201|202|203|204)\.")
ROOTS = ("/var/lib/nodelet-test", "/run/nodelet-test", "/run/netns/ncni-")


@dataclass(frozen=True, kw_only=True)
class HostSnapshot:
    netns: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()
    routes: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    nft: frozenset[str] = frozenset()  # "family table", "family table set NAME", "family table chain NAME"
    chains: frozenset[str] = frozenset()  # iptables "table CHAIN" (legacy and nft backends alike)
    mounts: frozenset[str] = frozenset()
    processes: Mapping[int, str] = field(default_factory=dict)  # pid -> cmdline


def compute_leaks(before: HostSnapshot, after: HostSnapshot) -> list[str]:
    """Objects present at the end that were not there at the start, one line each (sorted)."""
    out: list[str] = []
    for kind in ("netns", "links", "routes", "rules", "nft", "chains", "mounts"):
        for item in sorted(getattr(after, kind) - getattr(before, kind)):
            out.append(f"{kind}: {item}")
    # by command line, not pid: a test that restarts the test containerd leaves it as found (same command)
    have = Counter(before.processes.values())
    for pid, cmd in sorted(after.processes.items()):
        if have[cmd] > 0:
            have[cmd] -= 1
        else:
            out.append(f"process: {pid} {cmd}")
    return out


def _run(*argv: str) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return p.stdout if p.returncode == 0 else ""


def _json(*argv: str) -> list[dict]:  # type: ignore[type-arg]
    text = _run(*argv)
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def _ours_route(r: dict, links: set[str]) -> bool:  # type: ignore[type-arg]
    return r.get("dev") in links or bool(SUBNET_RE.search(str(r.get("dst", ""))))


def snapshot(*, temp_roots: tuple[str, ...] = (), exclude_pids: frozenset[int] = frozenset()) -> HostSnapshot:
    try:
        netns = frozenset(n for n in os.listdir("/run/netns") if NETNS_RE.match(n))
    except FileNotFoundError:
        netns = frozenset()
    link_objs = _json("ip", "-j", "-d", "link", "show")
    links = {str(l.get("ifname")) for l in link_objs if LINK_RE.match(str(l.get("ifname", "")))}
    routes = set()
    for fam in ("-4", "-6"):
        for r in _json("ip", fam, "-j", "route", "show", "table", "all"):
            if _ours_route(r, links):
                routes.add(f"{r.get('dst')} dev {r.get('dev')} table {r.get('table', 'main')}")
    rules = set()
    for fam in ("-4", "-6"):
        for r in _json("ip", fam, "-j", "rule", "show"):
            text = json.dumps(r, sort_keys=True)
            if SUBNET_RE.search(text) or any(str(r.get(k, "")) in links for k in ("iif", "oif")):
                rules.add(text)
    nft: set[str] = set()
    ruleset = _json_obj(_run("nft", "-j", "list", "tables"))
    for o in ruleset:
        t = o.get("table")
        if isinstance(t, dict) and NFT_TABLE_RE.match(str(t.get("name", ""))):
            fam, name = str(t.get("family")), str(t.get("name"))
            nft.add(f"{fam} {name}")
            for item in _json_obj(_run("nft", "-j", "list", "table", str(fam), str(name))):
                for kind in ("set", "chain", "map"):
                    v = item.get(kind)
                    if isinstance(v, dict):
                        nft.add(f"{fam} {name} {kind} {v.get('name')}")
    chains = set()
    for tool in ("iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save"):
        table = ""
        for line in _run(tool).splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":") and CHAIN_RE.match(line[1:]):
                chains.add(f"{tool.split('-')[0]} {table} {line[1:].split()[0]}")
    roots = (*ROOTS, *temp_roots)
    mounts = set()
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 1 and any(parts[1].startswith(r) for r in roots):
                    mounts.add(parts[1])
    except OSError:
        pass
    procs: dict[int, str] = {}
    markers = (*roots, "/var/lib/nodelet-test")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude_pids:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmd and any(m in cmd for m in markers):
            procs[int(entry)] = cmd[:300]
    return HostSnapshot(netns=netns, links=frozenset(links), routes=frozenset(routes), rules=frozenset(rules),
                        nft=frozenset(nft), chains=frozenset(chains), mounts=frozenset(mounts), processes=procs)


def _json_obj(text: str) -> list[dict]:  # type: ignore[type-arg]
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return []
    items = data.get("nftables", []) if isinstance(data, dict) else []
    return [i for i in items if isinstance(i, dict)]
