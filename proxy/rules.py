"""Rendering service ports into iptables-restore input (pure). The nftables renderer lives in ``rules_nft``.

Layout is kube-proxy's (``pkg/proxy/iptables/proxier.go``) with the ``NODELET-`` prefix, so it never clashes with a
kube-proxy on the same host: ``NODELET-SERVICES`` → ``NODELET-SVC-<hash>`` (``SVL-`` local policy, ``EXT-`` for
NodePort / external IPs) → ``NODELET-SEP-<hash>`` per endpoint; masquerade by mark via ``NODELET-MARK-MASQ`` and
``NODELET-POSTROUTING``; services without (local) endpoints get REJECT (DROP) in the filter table. Every rule carries
a comment naming its service port.

``render_iptables`` writes everything in a full sync; in a partial sync only the chains of the service ports that
changed (``:CHAIN - [0:0]`` flushes a chain in ``iptables-restore --noflush``) and their own lines in the shared chains
(``-D`` old, ``-I`` new); chains that disappeared are declared and deleted with ``-X``.
"""
from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from proxy.model import Endpoint, ServicePortInfo, ServicePortName

PREFIX = "NODELET-"
SERVICES = "NODELET-SERVICES"
EXTERNAL_SERVICES = "NODELET-EXTERNAL-SERVICES"
NODEPORTS = "NODELET-NODEPORTS"
POSTROUTING = "NODELET-POSTROUTING"
MARK_MASQ = "NODELET-MARK-MASQ"
FORWARD = "NODELET-FORWARD"
CANARY = "NODELET-PROXY-CANARY"
FIXED_NAT_CHAINS = (SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ, CANARY)
FIXED_FILTER_CHAINS = (SERVICES, EXTERNAL_SERVICES, FORWARD, CANARY)


@dataclass(frozen=True, kw_only=True)
class RuleConfig:
    cluster_cidr: str | None = None  # pod CIDR: traffic to a ClusterIP from outside it is masqueraded
    masquerade_mark: int = 0x4000


@functools.lru_cache(maxsize=1 << 17)
def _hash16(text: str) -> str:
    # base32 encodes 5-byte groups independently: the first 10 bytes give exactly the first 16 characters
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:10]).decode()


def port_proto_hash(name: ServicePortName, protocol: str) -> str:
    """kube-proxy's ``portProtoHash``: base32(sha256("ns/svc:port" + protocol lowercased))[:16]."""
    return _hash16(str(name) + protocol.lower())


def endpoint_hash(name: ServicePortName, protocol: str, endpoint: str) -> str:
    """kube-proxy's ``servicePortEndpointChainName`` hash: sha256("ns/svc:port" + protocol + "ip:port")."""
    return _hash16(str(name) + protocol.lower() + endpoint)


def svc_chain(sp: ServicePortInfo) -> str:
    return f"{PREFIX}SVC-{port_proto_hash(sp.name, sp.protocol)}"


def svl_chain(sp: ServicePortInfo) -> str:
    return f"{PREFIX}SVL-{port_proto_hash(sp.name, sp.protocol)}"


def ext_chain(sp: ServicePortInfo) -> str:
    return f"{PREFIX}EXT-{port_proto_hash(sp.name, sp.protocol)}"


def sep_chain(sp: ServicePortInfo, ep: Endpoint) -> str:
    return f"{PREFIX}SEP-{endpoint_hash(sp.name, sp.protocol, ep.addr)}"


# Jumps from the built-in chains; ensured with `iptables -C/-I` (a restore cannot add a rule idempotently).
IPTABLES_JUMPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("nat", "PREROUTING", ("-m", "comment", "--comment", "nodelet service portals", "-j", SERVICES)),
    ("nat", "OUTPUT", ("-m", "comment", "--comment", "nodelet service portals", "-j", SERVICES)),
    ("nat", "POSTROUTING", ("-m", "comment", "--comment", "nodelet postrouting rules", "-j", POSTROUTING)),
    ("filter", "INPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                         "nodelet externally-visible service portals", "-j", EXTERNAL_SERVICES)),
    ("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                           "nodelet service portals", "-j", SERVICES)),
    ("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                           "nodelet externally-visible service portals", "-j", EXTERNAL_SERVICES)),
    ("filter", "FORWARD", ("-m", "comment", "--comment", "nodelet forwarding rules", "-j", FORWARD)),
    ("filter", "OUTPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                          "nodelet service portals", "-j", SERVICES)),
)


@dataclass(frozen=True, kw_only=True)
class IptablesPortRules:
    """What one service port contributes: lines in the shared chains, and its own nat chains."""

    nat_services: tuple[str, ...] = ()
    nat_nodeports: tuple[str, ...] = ()
    filter_services: tuple[str, ...] = ()
    filter_external: tuple[str, ...] = ()
    nat_chains: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def chain_names(self) -> frozenset[str]:
        return frozenset(c for c, _ in self.nat_chains)


def _proto_match(sp: ServicePortInfo, port: int) -> str:
    p = sp.protocol.lower()
    return f"-p {p} -m {p} --dport {port}"


def _dispatch(sp: ServicePortInfo, chain: str, eps: tuple[Endpoint, ...], c: str) -> list[str]:
    """Rules of an SVC/SVL chain: affinity checks first, then random choice (probability 1/(n-i), 10 decimals)."""
    rules = []
    if sp.affinity_timeout is not None:
        for ep in eps:
            sep = sep_chain(sp, ep)
            rules.append(
                f'-A {chain} -m comment --comment "{c} -> {ep.addr}" -m recent --name {sep} --rcheck '
                f"--seconds {sp.affinity_timeout} --reap -j {sep}"
            )
    n = len(eps)
    for i, ep in enumerate(eps):
        sep = sep_chain(sp, ep)
        if i < n - 1:
            rules.append(
                f'-A {chain} -m comment --comment "{c} -> {ep.addr}" -m statistic --mode random '
                f"--probability {1.0 / (n - i):0.10f} -j {sep}"
            )
        else:
            rules.append(f'-A {chain} -m comment --comment "{c} -> {ep.addr}" -j {sep}')
    return rules


def compute_iptables_port(sp: ServicePortInfo, config: RuleConfig) -> IptablesPortRules:
    c = str(sp.name)
    proto = sp.protocol.lower()
    cip = f"-d {sp.cluster_ip}/32 {_proto_match(sp, sp.port)}"
    eps = sp.endpoints
    local = sp.local_endpoints
    has_ext = sp.node_port is not None or bool(sp.external_ips)
    svc, svl, ext = svc_chain(sp), svl_chain(sp), ext_chain(sp)
    # SVC (all endpoints): the ClusterIP under Cluster policy, and every EXT chain (pod/LOCAL traffic under Local).
    need_svc = bool(eps) and (not sp.internal_local or has_ext)
    need_svl = bool(local) and (sp.internal_local or (has_ext and sp.external_local))
    internal = svl if sp.internal_local else svc
    internal_ok = bool(local) if sp.internal_local else bool(eps)

    nat_services: list[str] = []
    nat_nodeports: list[str] = []
    filter_services: list[str] = []
    filter_external: list[str] = []
    chains: list[tuple[str, tuple[str, ...]]] = []

    # ClusterIP
    if internal_ok:
        nat_services.append(f'-A {SERVICES} -m comment --comment "{c} cluster IP" {cip} -j {internal}')
    elif eps:
        filter_services.append(f'-A {SERVICES} -m comment --comment "{c} has no local endpoints" {cip} -j DROP')
    else:
        filter_services.append(f'-A {SERVICES} -m comment --comment "{c} has no endpoints" {cip} -j REJECT')

    # External IPs and NodePort
    external_ok = bool(local) if sp.external_local else bool(eps)
    for ip in sp.external_ips:
        m = f"-d {ip}/32 {_proto_match(sp, sp.port)}"
        if eps:
            nat_services.append(f'-A {SERVICES} -m comment --comment "{c} external IP" {m} -j {ext}')
        if not external_ok:
            why = "has no local endpoints" if eps else "has no endpoints"
            target = "DROP" if eps else "REJECT"
            filter_external.append(f'-A {EXTERNAL_SERVICES} -m comment --comment "{c} {why}" {m} -j {target}')
    if sp.node_port is not None:
        m = _proto_match(sp, sp.node_port)
        if eps:
            nat_nodeports.append(f'-A {NODEPORTS} -m comment --comment "{c}" {m} -j {ext}')
        if not external_ok:
            why = "has no local endpoints" if eps else "has no endpoints"
            target = "DROP" if eps else "REJECT"
            filter_external.append(
                f'-A {EXTERNAL_SERVICES} -m comment --comment "{c} {why}" -m addrtype --dst-type LOCAL {m} -j {target}'
            )

    if not eps:
        return IptablesPortRules(
            filter_services=tuple(filter_services), filter_external=tuple(filter_external)
        )

    masq_rule = (
        f'-A {{chain}} -m comment --comment "{c} cluster IP" ! -s {config.cluster_cidr} {cip} -j {MARK_MASQ}'
        if config.cluster_cidr
        else None
    )
    if need_svc:
        rules = [masq_rule.format(chain=svc)] if masq_rule else []
        chains.append((svc, tuple(rules + _dispatch(sp, svc, eps, c))))
    if need_svl:
        rules = [masq_rule.format(chain=svl)] if masq_rule and sp.internal_local else []
        chains.append((svl, tuple(rules + _dispatch(sp, svl, local, c))))
    if has_ext:
        if sp.external_local:
            rules = []
            if config.cluster_cidr:
                rules.append(
                    f'-A {ext} -m comment --comment "pod traffic for {c} external destinations" '
                    f"-s {config.cluster_cidr} -j {svc}"
                )
            rules.append(
                f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {c} external destinations" '
                f"-m addrtype --src-type LOCAL -j {MARK_MASQ}"
            )
            rules.append(
                f'-A {ext} -m comment --comment "route LOCAL traffic for {c} external destinations" '
                f"-m addrtype --src-type LOCAL -j {svc}"
            )
            if local:
                rules.append(f'-A {ext} -m comment --comment "{c}" -j {svl}')
        else:
            rules = [
                f'-A {ext} -m comment --comment "masquerade traffic for {c} external destinations" -j {MARK_MASQ}',
                f'-A {ext} -m comment --comment "{c}" -j {svc}',
            ]
        chains.append((ext, tuple(rules)))
    for ep in eps:
        sep = sep_chain(sp, ep)
        recent = f"-m recent --name {sep} --set " if sp.affinity_timeout is not None else ""
        chains.append(
            (
                sep,
                (
                    f'-A {sep} -m comment --comment "{c}" -s {ep.ip}/32 -j {MARK_MASQ}',
                    f'-A {sep} -m comment --comment "{c}" -p {proto} {recent}-m {proto} -j DNAT --to-destination {ep.addr}',
                ),
            )
        )
    return IptablesPortRules(
        nat_services=tuple(nat_services),
        nat_nodeports=tuple(nat_nodeports),
        filter_services=tuple(filter_services),
        filter_external=tuple(filter_external),
        nat_chains=tuple(chains),
    )


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def jump_rule(chain: str, args: tuple[str, ...]) -> str:
    """The rule as ``iptables-save`` prints it (and as a restore line takes it), without the ``-A chain``."""
    return " ".join(_quote(a) for a in args)


def missing_jumps(saved: Mapping[str, str]) -> list[int]:
    """Indices into IPTABLES_JUMPS not present in ``iptables-save`` output (table -> text)."""
    out = []
    for i, (table, chain, args) in enumerate(IPTABLES_JUMPS):
        line = f"-A {chain} {jump_rule(chain, args)}"
        if line not in saved.get(table, "").splitlines():
            out.append(i)
    return out


@dataclass(frozen=True, kw_only=True)
class IptablesRender:
    text: str
    compiled: dict[ServicePortName, IptablesPortRules]


def render_iptables(
    ports: Mapping[ServicePortName, ServicePortInfo],
    *,
    config: RuleConfig,
    previous: Mapping[ServicePortName, IptablesPortRules] | None = None,
    changed: Collection[ServicePortName] | None = None,
    existing_chains: Iterable[str] = (),
    insert_jumps: Collection[int] = (),
    replace_jumps: bool = False,
) -> IptablesRender:
    """The ``iptables-restore --noflush`` input, and the per-port rules it leaves in the kernel.

    ``previous``: the per-port rules of the last successful sync (what the kernel holds). ``changed=None``: full
    (every chain written, every stale one deleted); else only the changed ports are compiled and their chains
    written, and their lines in the shared chains (SERVICES, NODEPORTS, filter) edited in place — kube-proxy
    rewrites the shared chains whole; see ``_render_partial`` for why nodelet does not.
    ``existing_chains``: our chains found in the kernel when its state is unknown (deleted unless still wanted).
    ``insert_jumps``: indices of IPTABLES_JUMPS to insert; ``replace_jumps``: delete and re-insert all of them
    (fails the restore — and so forces a fresh sync — if one was removed behind our back).
    """
    previous = previous or {}
    if changed is None:
        compiled = {n: compute_iptables_port(sp, config) for n, sp in ports.items()}
        write = sorted(compiled, key=ServicePortName.sort_key)
        stale_src = {c for r in previous.values() for c in r.chain_names} | set(existing_chains)
    else:
        compiled = dict(previous)  # unchanged ports keep their rules (previous holds nothing else)
        for n in changed:
            if n in ports:
                compiled[n] = compute_iptables_port(ports[n], config)
            else:
                compiled.pop(n, None)
        write = sorted((n for n in changed if n in compiled), key=ServicePortName.sort_key)
        stale_src = {c for n in changed if n in previous for c in previous[n].chain_names} | set(existing_chains)
    if changed is not None:
        return IptablesRender(text=_render_partial(compiled, previous, write, stale_src), compiled=compiled)
    order = sorted(compiled, key=ServicePortName.sort_key)
    mark = f"{config.masquerade_mark:#x}"
    jumps = sorted(set(range(len(IPTABLES_JUMPS))) if replace_jumps else set(insert_jumps), reverse=True)
    out: list[str] = ["*filter"]
    for ch in FIXED_FILTER_CHAINS:
        out.append(f":{ch} - [0:0]")
    out.append(
        f'-A {FORWARD} -m comment --comment "nodelet forwarding rules" -m mark --mark {mark}/{mark} -j ACCEPT'
    )
    out.append(
        f'-A {FORWARD} -m comment --comment "nodelet forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )
    for n in order:
        out.extend(compiled[n].filter_services)
    for n in order:
        out.extend(compiled[n].filter_external)
    _jump_lines(out, "filter", jumps, replace_jumps)
    out.append("COMMIT")

    out.append("*nat")
    for ch in FIXED_NAT_CHAINS:
        out.append(f":{ch} - [0:0]")
    wanted: set[str] = set()
    for n in write:
        for ch, _ in compiled[n].nat_chains:
            out.append(f":{ch} - [0:0]")
            wanted.add(ch)
    still_used = wanted if changed is None else {c for n in order for c in compiled[n].chain_names}
    stale = sorted(stale_src - still_used - set(FIXED_NAT_CHAINS))
    for ch in stale:
        out.append(f":{ch} - [0:0]")
    out.append(
        f'-A {POSTROUTING} -m comment --comment "nodelet: not marked for masquerade" '
        f"-m mark ! --mark {mark}/{mark} -j RETURN"
    )
    out.append(f'-A {POSTROUTING} -m comment --comment "nodelet: clear the masquerade mark" -j MARK --xor-mark {mark}')
    out.append(
        f'-A {POSTROUTING} -m comment --comment "nodelet service traffic requiring SNAT" -j MASQUERADE --random-fully'
    )
    out.append(f'-A {MARK_MASQ} -m comment --comment "nodelet: mark for masquerade" -j MARK --or-mark {mark}')
    for n in order:
        out.extend(compiled[n].nat_services)
    out.append(
        f'-A {SERVICES} -m comment --comment "nodelet service nodeports; NOTE: this must be the last rule in this chain" '
        f"-m addrtype --dst-type LOCAL -j {NODEPORTS}"
    )
    for n in order:
        out.extend(compiled[n].nat_nodeports)
    for n in write:
        for _, rules in compiled[n].nat_chains:
            out.extend(rules)
    for ch in stale:
        out.append(f"-X {ch}")
    _jump_lines(out, "nat", jumps, replace_jumps)
    out.append("COMMIT")
    out.append("")
    return IptablesRender(text="\n".join(out), compiled=compiled)


_SHARED = (
    ("filter", "filter_services"),
    ("filter", "filter_external"),
    ("nat", "nat_services"),
    ("nat", "nat_nodeports"),
)


def _render_partial(
    compiled: Mapping[ServicePortName, IptablesPortRules],
    previous: Mapping[ServicePortName, IptablesPortRules],
    write: list[ServicePortName],
    stale_src: set[str],
) -> str:
    """Only the changed ports: their own chains rewritten, their lines in the shared chains edited in place
    (``-D`` the old rule, ``-I … 1`` the new one — the shared chains are not flushed, so the final NODEPORTS jump
    stays last), stale chains deleted. O(changed ports), not O(services) as a whole-chain rewrite would be: with
    the nf_tables backend the kernel validates the table for every rule added, so 5,000 rewritten SERVICES lines
    cost far more than the one service that changed."""
    empty = IptablesPortRules()
    names = sorted(set(write) | {n for n in previous if n not in compiled}, key=ServicePortName.sort_key)
    edits: dict[str, list[str]] = {"filter": [], "nat": []}
    for table, attr in _SHARED:
        for n in names:
            old: tuple[str, ...] = getattr(previous.get(n, empty), attr)
            new: tuple[str, ...] = getattr(compiled.get(n, empty), attr)
            if old == new:
                continue
            for line in old:
                if line not in new:
                    edits[table].append("-D" + line[2:])
            for line in new:
                if line not in old:
                    chain, spec = line[3:].split(" ", 1)
                    edits[table].append(f"-I {chain} 1 {spec}")
    wanted = {c for n in write for c in compiled[n].chain_names}
    stale = sorted(stale_src - wanted - set(FIXED_NAT_CHAINS))  # chain names are unique to their port (hashed)
    # a chain whose rules did not change is left alone (e.g. the SEP chains of the endpoints that stayed)
    before = {c: r for n in write if n in previous for c, r in previous[n].nat_chains}
    rewrite = [(c, r) for n in write for c, r in compiled[n].nat_chains if before.get(c) != r]
    out = ["*filter", *edits["filter"], "COMMIT", "*nat"]
    for ch, _ in rewrite:
        out.append(f":{ch} - [0:0]")
    out += [f":{ch} - [0:0]" for ch in stale]
    # removals first (they may still jump to chains about to be deleted), then the chains, then additions
    removals = [e for e in edits["nat"] if e.startswith("-D")]
    out += removals
    for _, rules in rewrite:
        out.extend(rules)
    out += [e for e in edits["nat"] if not e.startswith("-D")]
    out += [f"-X {ch}" for ch in stale]
    out += ["COMMIT", ""]
    return "\n".join(out)


def _jump_lines(out: list[str], table: str, jumps: list[int], replace: bool) -> None:
    for i in jumps:
        t, chain, args = IPTABLES_JUMPS[i]
        if t != table:
            continue
        if replace:
            out.append(f"-D {chain} {jump_rule(chain, args)}")
        out.append(f"-I {chain} 1 {jump_rule(chain, args)}")
