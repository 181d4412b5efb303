"""Rendering service ports into one ``nft -f`` transaction for table ``ip nodelet`` (pure).

Layout (fewer objects than kube-proxy's nftables mode, same semantics):

- dispatch by verdict maps: ``service-ips`` (daddr . proto . port → ``goto svc-…``/``ext-…``), ``service-nodeports``
  (proto . port, for local destinations), ``no-endpoint-services`` / ``no-endpoint-nodeports`` (→ reject / drop);
- one chain per service port, choosing the endpoint with a single ``dnat to numgen random mod N map {…}`` rule —
  no chain per endpoint. Only ClientIP-affinity services get per-endpoint chains and a timeout set per endpoint
  (the choice must be remembered per client, which a map lookup cannot do);
- hairpin without per-endpoint rules: one set of ``ip . ip`` pairs of endpoint addresses, matched in postrouting
  after DNAT (source == chosen endpoint), exactly kube-proxy's "source is the endpoint itself" condition;
- masquerade by mark, as kube-proxy: traffic to a ClusterIP from outside the pod CIDR, and external traffic.

A partial sync touches only the changed ports' chains, sets and map elements; a full sync re-declares everything,
flushes our chains and maps (dynamic affinity sets are kept) and deletes what is stale; a fresh one (unknown kernel
state) deletes and recreates the table in the same transaction.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping
from dataclasses import dataclass

from proxy.model import Endpoint, ServicePortInfo, ServicePortName
from proxy.rules import RuleConfig, endpoint_hash, port_proto_hash

TABLE = "nodelet"
T = f"ip {TABLE}"
CANARY_CHAIN = "canary"

_FIXED_MAPS = (
    ("service-ips", "type ipv4_addr . inet_proto . inet_service : verdict ;"),
    ("service-nodeports", "type inet_proto . inet_service : verdict ;"),
    ("no-endpoint-services", "type ipv4_addr . inet_proto . inet_service : verdict ;"),
    ("no-endpoint-nodeports", "type inet_proto . inet_service : verdict ;"),
)
_BASE_CHAINS = (
    ("nat-prerouting", "type nat hook prerouting priority dstnat ; policy accept ;"),
    ("nat-output", "type nat hook output priority -100 ; policy accept ;"),
    ("nat-postrouting", "type nat hook postrouting priority srcnat ; policy accept ;"),
    ("filter-input", "type filter hook input priority -110 ; policy accept ;"),
    ("filter-forward", "type filter hook forward priority -110 ; policy accept ;"),
    ("filter-output", "type filter hook output priority -110 ; policy accept ;"),
)
_REGULAR_CHAINS = (CANARY_CHAIN, "services", "endpoints-check", "mark-for-masquerade", "masquerading", "reject-chain")


@dataclass(frozen=True, kw_only=True)
class NftPortObjects:
    """What one service port owns in the table."""

    chains: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sets: tuple[tuple[str, str], ...] = ()  # (name, declaration body) — affinity sets
    elements: tuple[tuple[str, str, str], ...] = ()  # (map, key, verdict)
    endpoint_ips: frozenset[str] = frozenset()  # for the hairpin set


def _suffix(sp: ServicePortInfo) -> str:
    return f"{sp.name.namespace}/{sp.name.name}/{sp.protocol.lower()}/{sp.name.port or '_'}"


def nft_chain(kind: str, sp: ServicePortInfo) -> str:
    return f"{kind}-{port_proto_hash(sp.name, sp.protocol)}-{_suffix(sp)}"


def nft_sep_chain(sp: ServicePortInfo, ep: Endpoint) -> str:
    return f"sep-{endpoint_hash(sp.name, sp.protocol, ep.addr)}-{_suffix(sp)}__{ep.ip}/{ep.port}"


def nft_affinity_set(sp: ServicePortInfo, ep: Endpoint) -> str:
    return f"aff-{endpoint_hash(sp.name, sp.protocol, ep.addr)}"


def _dispatch(sp: ServicePortInfo, eps: tuple[Endpoint, ...], c: str, proto: str) -> list[str]:
    """Endpoint choice: one numgen→dnat map rule; with affinity, set checks then numgen→vmap of endpoint chains."""
    rules: list[str] = []
    n = len(eps)
    if sp.affinity_timeout is None:
        if n == 1:
            rules.append(f'meta l4proto {proto} dnat to {eps[0].addr} comment "{c} -> {eps[0].addr}"')
        else:
            m = ", ".join(f"{i} : {ep.ip} . {ep.port}" for i, ep in enumerate(eps))
            rules.append(f'meta l4proto {proto} dnat to numgen random mod {n} map {{ {m} }} comment "{c}"')
        return rules
    for ep in eps:
        rules.append(f'ip saddr @{nft_affinity_set(sp, ep)} goto {nft_sep_chain(sp, ep)} comment "{c} -> {ep.addr}"')
    if n == 1:
        rules.append(f'goto {nft_sep_chain(sp, eps[0])} comment "{c}"')
    else:
        m = ", ".join(f"{i} : goto {nft_sep_chain(sp, ep)}" for i, ep in enumerate(eps))
        rules.append(f'numgen random mod {n} vmap {{ {m} }} comment "{c}"')
    return rules


def compute_nft_port(sp: ServicePortInfo, config: RuleConfig) -> NftPortObjects:
    c = str(sp.name)
    proto = sp.protocol.lower()
    eps, local = sp.endpoints, sp.local_endpoints
    has_ext = sp.node_port is not None or bool(sp.external_ips)
    svc, svl, ext = nft_chain("svc", sp), nft_chain("svl", sp), nft_chain("ext", sp)
    chains: list[tuple[str, tuple[str, ...]]] = []
    sets: list[tuple[str, str]] = []
    elements: list[tuple[str, str, str]] = []
    cip_key = f"{sp.cluster_ip} . {proto} . {sp.port}"

    internal_ok = bool(local) if sp.internal_local else bool(eps)
    external_ok = bool(local) if sp.external_local else bool(eps)
    if internal_ok:
        elements.append(("service-ips", cip_key, f"goto {svl if sp.internal_local else svc}"))
    else:
        elements.append(("no-endpoint-services", cip_key, "drop" if eps else "goto reject-chain"))
    for ip in sp.external_ips:
        key = f"{ip} . {proto} . {sp.port}"
        if eps:
            elements.append(("service-ips", key, f"goto {ext}"))
        if not external_ok:
            elements.append(("no-endpoint-services", key, "drop" if eps else "goto reject-chain"))
    if sp.node_port is not None:
        key = f"{proto} . {sp.node_port}"
        if eps:
            elements.append(("service-nodeports", key, f"goto {ext}"))
        if not external_ok:
            elements.append(("no-endpoint-nodeports", key, "drop" if eps else "goto reject-chain"))
    if not eps:
        return NftPortObjects(elements=tuple(elements))

    masq = (
        f"ip daddr {sp.cluster_ip} {proto} dport {sp.port} ip saddr != {config.cluster_cidr} "
        f'jump mark-for-masquerade comment "{c} cluster IP"'
        if config.cluster_cidr
        else None
    )
    if not sp.internal_local or has_ext:
        rules = _dispatch(sp, eps, c, proto)
        chains.append((svc, tuple(([masq] if masq else []) + rules)))
    if local and (sp.internal_local or (has_ext and sp.external_local)):
        rules = _dispatch(sp, local, c, proto)
        chains.append((svl, tuple(([masq] if masq and sp.internal_local else []) + rules)))
    if has_ext:
        if sp.external_local:
            rules = []
            if config.cluster_cidr:
                rules.append(f'ip saddr {config.cluster_cidr} goto {svc} comment "pod traffic for {c} external destinations"')
            rules.append(f'fib saddr type local jump mark-for-masquerade comment "masquerade LOCAL traffic for {c}"')
            rules.append(f'fib saddr type local goto {svc} comment "route LOCAL traffic for {c} external destinations"')
            if local:
                rules.append(f'goto {svl} comment "{c}"')
        else:
            rules = [
                f'jump mark-for-masquerade comment "masquerade traffic for {c} external destinations"',
                f'goto {svc} comment "{c}"',
            ]
        chains.append((ext, tuple(rules)))
    if sp.affinity_timeout is not None:
        for ep in eps:
            aff = nft_affinity_set(sp, ep)
            sets.append((aff, f"type ipv4_addr ; flags dynamic,timeout ; timeout {sp.affinity_timeout}s ;"))
            chains.append(
                (
                    nft_sep_chain(sp, ep),
                    (
                        f'update @{aff} {{ ip saddr }} comment "{c}"',
                        f'meta l4proto {proto} dnat to {ep.addr} comment "{c} -> {ep.addr}"',
                    ),
                )
            )
    return NftPortObjects(
        chains=tuple(chains),
        sets=tuple(sets),
        elements=tuple(elements),
        endpoint_ips=frozenset(e.ip for e in eps),
    )


def compile_nft(
    ports: Mapping[ServicePortName, ServicePortInfo],
    config: RuleConfig,
    cache: MutableMapping[ServicePortInfo, NftPortObjects] | None = None,
) -> dict[ServicePortName, NftPortObjects]:
    out = {}
    for name, sp in ports.items():
        if cache is None:
            out[name] = compute_nft_port(sp, config)
            continue
        r = cache.get(sp)
        if r is None:
            r = cache[sp] = compute_nft_port(sp, config)
        out[name] = r
    return out


def _fixed(config: RuleConfig, out: list[str]) -> None:
    mark = f"{config.masquerade_mark:#x}"
    for name, body in _FIXED_MAPS:
        out.append(f"add map {T} {name} {{ {body} }}")
    out.append(f"add set {T} hairpin {{ type ipv4_addr . ipv4_addr ; }}")
    for name, body in _BASE_CHAINS:
        out.append(f"add chain {T} {name} {{ {body} }}")
    for name in _REGULAR_CHAINS:
        out.append(f"add chain {T} {name}")
    for name, _ in _BASE_CHAINS:
        out.append(f"flush chain {T} {name}")
    for name in _REGULAR_CHAINS:
        out.append(f"flush chain {T} {name}")
    for name, _ in _FIXED_MAPS:
        out.append(f"flush map {T} {name}")
    out.append(f"flush set {T} hairpin")
    out += [
        f'add rule {T} nat-prerouting jump services comment "nodelet service portals"',
        f'add rule {T} nat-output jump services comment "nodelet service portals"',
        f'add rule {T} nat-postrouting jump masquerading comment "nodelet postrouting rules"',
        f'add rule {T} filter-input ct state new jump endpoints-check comment "nodelet service portals"',
        f'add rule {T} filter-forward ct state new jump endpoints-check comment "nodelet service portals"',
        f'add rule {T} filter-output ct state new jump endpoints-check comment "nodelet service portals"',
        f"add rule {T} endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        f"add rule {T} endpoints-check fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add rule {T} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f'add rule {T} services fib daddr type local meta l4proto . th dport vmap @service-nodeports comment "nodeports"',
        f"add rule {T} mark-for-masquerade meta mark set meta mark | {mark}",
        f'add rule {T} masquerading ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random comment "hairpin"',
        f"add rule {T} masquerading meta mark & {mark} == 0 return",
        f"add rule {T} masquerading meta mark set meta mark ^ {mark}",
        f'add rule {T} masquerading masquerade fully-random comment "nodelet service traffic requiring SNAT"',
        f"add rule {T} reject-chain reject",
    ]


def render_nftables(
    ports: Mapping[ServicePortName, ServicePortInfo],
    *,
    config: RuleConfig,
    previous: Mapping[ServicePortName, NftPortObjects],
    changed: Collection[ServicePortName] | None = None,
    fresh: bool = False,
    cache: MutableMapping[ServicePortInfo, NftPortObjects] | None = None,
) -> tuple[str, dict[ServicePortName, NftPortObjects]]:
    """One ``nft -f`` transaction and the per-port objects it leaves in the kernel.

    ``previous``: what the kernel holds (from the last successful sync). ``changed=None``: full sync; ``fresh``:
    the kernel state is unknown, so the table is deleted and recreated in the same transaction.
    """
    compiled = compile_nft(ports, config, cache)
    out: list[str] = []
    if fresh:
        out += [f"add table {T}", f"delete table {T}"]
        previous = {}
    out.append(f"add table {T}")
    if changed is None:
        _fixed(config, out)
        names = set(compiled) | set(previous)
    else:
        names = set(changed)
    empty = NftPortObjects()
    order = sorted(names)
    prev_of = {n: previous.get(n, empty) for n in order}
    cur_of = {n: compiled.get(n, empty) for n in order}
    full = changed is None

    prev_el = {e for n in order for e in prev_of[n].elements}
    cur_el = {e for n in order for e in cur_of[n].elements}
    if not full:  # in a full sync the maps were flushed
        for m, k, _ in sorted(prev_el - cur_el):
            out.append(f"delete element {T} {m} {{ {k} }}")
    prev_chains = {c for n in order for c, _ in prev_of[n].chains}
    cur_chains = [(c, r) for n in order for c, r in cur_of[n].chains]
    for c, _ in cur_chains:
        out.append(f"add chain {T} {c}")
    for c in sorted(prev_chains):
        out.append(f"flush chain {T} {c}")
    cur_chain_names = {c for c, _ in cur_chains}
    for c, _ in cur_chains:
        if c not in prev_chains and not fresh:
            out.append(f"flush chain {T} {c}")
    for c in sorted(prev_chains - cur_chain_names):
        out.append(f"delete chain {T} {c}")
    prev_sets = {s for n in order for s in prev_of[n].sets}
    cur_sets = {s for n in order for s in cur_of[n].sets}
    for name, _ in sorted(prev_sets - cur_sets):
        out.append(f"delete set {T} {name}")
    for name, body in sorted(cur_sets - prev_sets):
        out.append(f"add set {T} {name} {{ {body} }}")
    for c, rules in cur_chains:
        for r in rules:
            out.append(f"add rule {T} {c} {r}")
    add_el = cur_el if full else cur_el - prev_el
    by_map: dict[str, list[str]] = {}
    for m, k, v in sorted(add_el):
        by_map.setdefault(m, []).append(f"{k} : {v}")
    for m, items in by_map.items():
        out.append(f"add element {T} {m} {{ {', '.join(items)} }}")

    # hairpin pairs: the union over all ports (shared endpoint IPs counted once)
    result = dict(compiled)
    if full:
        ips = sorted({ip for o in compiled.values() for ip in o.endpoint_ips})
        if ips:
            out.append(f"add element {T} hairpin {{ {', '.join(f'{ip} . {ip}' for ip in ips)} }}")
    else:
        before = {ip for o in previous.values() for ip in o.endpoint_ips}
        after = {ip for o in compiled.values() for ip in o.endpoint_ips}
        gone, new = sorted(before - after), sorted(after - before)
        if gone:
            out.append(f"delete element {T} hairpin {{ {', '.join(f'{ip} . {ip}' for ip in gone)} }}")
        if new:
            out.append(f"add element {T} hairpin {{ {', '.join(f'{ip} . {ip}' for ip in new)} }}")
    out.append("")
    return "\n".join(out), result
