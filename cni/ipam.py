"""host-local compatible IP allocation, pure: which address to hand out given what is reserved.

Round-robin like host-local: the search starts right after the last reserved address of the range set (if that
address still lies in the set) and wraps around; a range's gateway is never handed out.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from .config import IPAddress, IpamConf, Range
from .errors import AddressUnavailable, InvalidConfig, NoAddressesAvailable


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """One address to reserve: the range set it belongs to (for last_reserved_ip.<n>) and its range."""

    range_set: int
    address: IPAddress
    range: Range

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.range.subnet.prefixlen}"


def compute_range_set_name(rs: Sequence[Range]) -> str:
    return ",".join(f"{r.start}-{r.end}" for r in rs)


def _iter_from(rs: Sequence[Range], last: IPAddress | None) -> Iterator[tuple[Range, IPAddress]]:
    """Every (range, address) of the set once, starting after `last` when it is inside the set."""
    start_range, start_ip = 0, None
    if last is not None:
        for i, r in enumerate(rs):
            if last.version == r.start.version and r.start <= last <= r.end:
                start_range, start_ip = i, last
                break
    n = len(rs)
    for k in range(n + 1):
        r = rs[(start_range + k) % n]
        lo, hi = int(r.start), int(r.end)
        if k == 0 and start_ip is not None:
            lo = int(start_ip) + 1
        if k == n:  # wrapped: finish the first range up to (and including) the last reserved address
            if start_ip is None:
                return
            lo, hi = int(r.start), int(start_ip)
        cls = ipaddress.ip_address
        for v in range(lo, hi + 1):
            yield r, cls(v)


def compute_next_address(rs: Sequence[Range], *, reserved: Collection[IPAddress],
                         last_reserved: IPAddress | None, set_index: int = 0) -> Allocation:
    for r, ip in _iter_from(rs, last_reserved):
        if ip == r.gateway or ip in reserved:
            continue
        return Allocation(range_set=set_index, address=ip, range=r)
    raise NoAddressesAvailable(f"no IP addresses available in range set: {compute_range_set_name(rs)}")


def parse_requested_ips(cni_args_ip: str, runtime_ips: Sequence[str]) -> list[IPAddress]:
    """CNI_ARGS IP=a,b and runtimeConfig.ips ["a/24", ...] → addresses (prefix lengths are ignored)."""
    out: list[IPAddress] = []
    for raw in [p for p in cni_args_ip.split(",") if p] + list(runtime_ips):
        try:
            out.append(ipaddress.ip_interface(raw.strip()).ip)
        except ValueError:
            raise InvalidConfig(f"requested IP {raw!r} (CNI_ARGS IP= or runtimeConfig.ips) is not an IP address") \
                from None
    return out


def compute_requested(ipam: IpamConf, ip: IPAddress, *, reserved: Collection[IPAddress]) -> Allocation:
    for i, rs in enumerate(ipam.range_sets):
        for r in rs:
            if ip.version == r.start.version and r.start <= ip <= r.end:
                if ip == r.gateway:
                    raise AddressUnavailable(f"requested IP {ip} is the gateway of subnet {r.subnet}")
                if ip in reserved:
                    raise AddressUnavailable(f"requested IP {ip} is not available in range set "
                                             f"{compute_range_set_name(rs)}: already allocated")
                return Allocation(range_set=i, address=ip, range=r)
    raise AddressUnavailable(f"requested IP {ip} is not in any configured range")


def compute_allocations(ipam: IpamConf, *, reserved: Collection[IPAddress],
                        last_reserved: Sequence[IPAddress | None],
                        requested: Sequence[IPAddress] = ()) -> list[Allocation]:
    """One address per range set: requested ones where given, round-robin for the rest."""
    out: list[Allocation] = []
    taken = set(reserved)
    for ip in requested:
        a = compute_requested(ipam, ip, reserved=taken)
        if any(o.range_set == a.range_set for o in out):
            raise AddressUnavailable(f"requested IPs {ip} and {out[-1].address} fall in the same range set")
        out.append(a)
        taken.add(ip)
    done = {a.range_set for a in out}
    for i, rs in enumerate(ipam.range_sets):
        if i not in done:
            out.append(compute_next_address(rs, reserved=taken, last_reserved=last_reserved[i], set_index=i))
    return sorted(out, key=lambda a: a.range_set)
