"""Container resources → CRI LinuxContainerResources, QoS class, oom_score_adj and the pod cgroup parent (pure).

Upstream: ``pkg/kubelet/kuberuntime/manager/kuberuntime_container_linux.go`` (``calculateLinuxResources``),
``pkg/kubelet/cm/helpers_linux.go`` (``MilliCPUToShares``, ``MilliCPUToQuota``), ``pkg/kubelet/qos/policy.go``
(``GetContainerOOMScoreAdjust``) and ``pkg/kubelet/cm/pod_container_manager_linux.go`` (pod cgroup names).
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Sequence

from cri import api
from kubelet.errors import PermanentError
from kubelet.types import ResourceRequirements

__all__ = [
    "parse_quantity", "QuantityError", "milli_cpu", "memory_bytes", "compute_qos_class", "compute_linux_resources",
    "compute_oom_score_adj", "compute_cgroup_parent", "compute_pod_resources", "effective_requests",
    "parse_resource_requirements",
    "MIN_SHARES", "MAX_SHARES", "QUOTA_PERIOD", "MIN_QUOTA_PERIOD",
]

MIN_SHARES = 2
MAX_SHARES = 262144
SHARES_PER_CPU = 1024
QUOTA_PERIOD = 100_000  # 100 ms, the CFS default period (µs)
MIN_QUOTA_PERIOD = 1000
GUARANTEED_OOM_SCORE_ADJ = -997
BEST_EFFORT_OOM_SCORE_ADJ = 1000
NODE_CRITICAL_PRIORITY_CLASS = "system-node-critical"

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$")
_SUFFIX = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
MAX_QUANTITY = 2**63 - 1
QUANTITY_HINT = "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


class QuantityError(PermanentError, ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(value: Any) -> Decimal:
    """A Kubernetes resource.Quantity (``500m``, ``1.5``, ``128Mi``, ``1e3``, or a YAML number) as a Decimal."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise QuantityError(QUANTITY_HINT)
    text = str(value).strip() if not isinstance(value, str) else value
    m = _QUANTITY.match(text)
    if not m:
        raise QuantityError(QUANTITY_HINT)
    if m.group(2):
        exponent = int(m.group(2)[1:])
        if not -2**31 <= exponent < 2**31:  # upstream parses the exponent as an int32
            raise QuantityError("unable to parse quantity's suffix (the exponent must fit in 32 bits)")
        # built from text, never by arithmetic: exact for any exponent (1e99999999999 must not overflow)
        number = Decimal(f"{m.group(1)}E{exponent}")
    else:
        try:
            number = Decimal(m.group(1))
        except InvalidOperation:
            raise QuantityError(QUANTITY_HINT) from None
        number = number * _SUFFIX[m.group(3) or ""]
    if abs(number) > MAX_QUANTITY:
        raise QuantityError(f"must be less than or equal to {MAX_QUANTITY} in its base unit (2^63-1: the kubelet "
                            "and the runtime hold quantities as 64-bit integers)")
    return number


def milli_cpu(value: Any) -> int:
    """CPU in millicores, rounded up as ``Quantity.MilliValue`` does."""
    q = parse_quantity(value) * 1000
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: Any) -> int:
    q = parse_quantity(value)
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


def parse_resource_requirements(resources: Mapping[str, Any] | None) -> ResourceRequirements:
    """A (validated) ``resources`` object as the typed value."""
    resources = resources or {}
    return ResourceRequirements(requests=dict(resources.get("requests") or {}), limits=dict(resources.get("limits") or {}))


def effective_requests(res: ResourceRequirements) -> dict[str, Any]:
    """API defaulting: a resource with a limit and no request requests its limit."""
    requests = dict(res.requests)
    for k, v in res.limits.items():
        requests.setdefault(k, v)
    return requests


def compute_qos_class(containers: Sequence[ResourceRequirements]) -> str:
    """``GetPodQOS`` over cpu and memory of all containers (init included)."""
    requests_seen = limits_seen = False
    guaranteed = True
    for res in containers:
        lim = {k: v for k, v in res.limits.items() if k in ("cpu", "memory")}
        req = {k: v for k, v in effective_requests(res).items() if k in ("cpu", "memory")}
        requests_seen |= any(parse_quantity(v) != 0 for v in req.values())
        limits_seen |= any(parse_quantity(v) != 0 for v in lim.values())
        for k in ("cpu", "memory"):
            if k not in lim or k not in req or parse_quantity(req[k]) != parse_quantity(lim[k]):
                guaranteed = False
    if not requests_seen and not limits_seen:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def compute_oom_score_adj(*, qos: str, memory_request: int, memory_capacity: int, node_critical: bool) -> int:
    """``GetContainerOOMScoreAdjust``: -997 Guaranteed (and node-critical), 1000 BestEffort, Burstable scaled by the
    share of node memory requested, kept within [2, 999] (so Burstable is always above Guaranteed and below
    BestEffort)."""
    if node_critical or qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort":
        return BEST_EFFORT_OOM_SCORE_ADJ
    if memory_capacity <= 0:
        return 999
    adj = 1000 - (1000 * memory_request) // memory_capacity
    if adj < 2:
        return 2
    if adj >= 1000:
        return 999
    return int(adj)


def _shares(milli: int) -> int:
    if milli == 0:
        return MIN_SHARES
    shares = milli * SHARES_PER_CPU // 1000
    return max(MIN_SHARES, min(MAX_SHARES, shares))


def _quota(milli: int, period: int) -> int:
    if milli == 0:
        return 0
    return min(MAX_QUANTITY, max(MIN_QUOTA_PERIOD, milli * period // 1000))


def compute_linux_resources(res: ResourceRequirements, *, qos: str, memory_capacity: int,
                            node_critical: bool, oom_memory_floor: int = 0) -> api.LinuxResources:
    """``calculateLinuxResources`` + oom_score_adj for one container: cpu shares from the cpu request (2 when none),
    CFS quota/period from the cpu limit, memory limit in bytes. ``oom_memory_floor``: a sidecar's oom_score_adj is
    computed from at least the smallest regular container's memory request (never above theirs, KEP-753)."""
    limits = res.limits
    requests = effective_requests(res)
    cpu_req = milli_cpu(requests["cpu"]) if "cpu" in requests else 0
    cpu_lim = milli_cpu(limits["cpu"]) if "cpu" in limits else 0
    mem_lim = memory_bytes(limits["memory"]) if "memory" in limits else 0
    mem_req = memory_bytes(requests["memory"]) if "memory" in requests else 0
    if cpu_req == 0 and cpu_lim:
        cpu_req = cpu_lim
    return api.LinuxResources(
        cpu_shares=_shares(cpu_req),
        cpu_quota=_quota(cpu_lim, QUOTA_PERIOD) if cpu_lim else 0,
        cpu_period=QUOTA_PERIOD if cpu_lim else 0,
        memory_limit_in_bytes=mem_lim,
        oom_score_adj=compute_oom_score_adj(qos=qos, memory_request=max(mem_req, oom_memory_floor), memory_capacity=memory_capacity,
                                            node_critical=node_critical),
    )


def compute_min_memory_request(containers: Sequence[ResourceRequirements]) -> int:
    """minRegularContainerMemory: the smallest memory request among the (regular) containers, in bytes."""
    reqs = [effective_requests(c).get("memory") for c in containers]
    return min((memory_bytes(r) if r is not None else 0 for r in reqs), default=0)


def compute_pod_resources(containers: Sequence[ResourceRequirements],
                          init_containers: Sequence[ResourceRequirements] = (), *,
                          sidecars: Sequence[bool] = ()) -> api.LinuxResources:
    """The pod cgroup's limits (``ResourceConfigForPod``): cpu shares from the summed cpu requests, CFS quota from
    the summed cpu limits and a memory limit from the summed memory limits — each only when every container has
    that limit. Init containers run one at a time: each counts as max(sum of regular containers, itself).
    Sidecars (``restartPolicy: Always`` init containers, KEP-753; ``sidecars[i]`` marks ``init_containers[i]``) run
    alongside: they add to the regular containers' sum, and a plain init container counts together with the sidecars
    declared before it (AggregateContainerRequests)."""
    def totals(group: Sequence[ResourceRequirements]) -> tuple[int, int | None, int | None]:
        req, cpu_lim, mem_lim = 0, 0, 0
        all_cpu = all_mem = bool(group)
        for res in group:
            limits = res.limits
            req += milli_cpu(effective_requests(res).get("cpu", 0))
            if "cpu" in limits:
                cpu_lim += milli_cpu(limits["cpu"])
            else:
                all_cpu = False
            if "memory" in limits:
                mem_lim += memory_bytes(limits["memory"])
            else:
                all_mem = False
        return req, cpu_lim if all_cpu else None, mem_lim if all_mem else None

    flags = list(sidecars) + [False] * (len(init_containers) - len(sidecars))
    cpu_req, cpu_lim, mem_lim = totals(list(containers) + [c for c, side in zip(init_containers, flags) if side])
    before: list[ResourceRequirements] = []  # sidecars declared so far
    for init, side in zip(init_containers, flags):
        if side:
            before.append(init)
            continue
        r, c, m = totals([init] + before)
        cpu_req = max(cpu_req, r)
        cpu_lim = None if cpu_lim is None or c is None else max(cpu_lim, c)
        mem_lim = None if mem_lim is None or m is None else max(mem_lim, m)
    return api.LinuxResources(
        cpu_shares=_shares(cpu_req),
        cpu_quota=_quota(cpu_lim, QUOTA_PERIOD) if cpu_lim else 0,
        cpu_period=QUOTA_PERIOD if cpu_lim else 0,
        memory_limit_in_bytes=min(mem_lim or 0, MAX_QUANTITY),  # a sum of bounded limits may still overflow
    )


def compute_cgroup_parent(uid: str, qos: str, driver: str = "cgroupfs") -> str:
    """The pod cgroup as the kubelet names it (``CgroupName{"kubepods", qos, "pod"+uid}``). cgroupfs:
    ``/kubepods/pod<uid>`` (Guaranteed), ``/kubepods/burstable/pod<uid>``, ``/kubepods/besteffort/pod<uid>``.
    systemd (``CgroupName.ToSystemd``: '-' in a part becomes '_', parts joined by '-', the slice expanded):
    ``/kubepods.slice/kubepods-pod<uid>.slice``, ``/kubepods.slice/kubepods-burstable.slice/
    kubepods-burstable-pod<uid>.slice``."""
    parts = ["kubepods"] + ([] if qos == "Guaranteed" else [qos.lower()]) + [f"pod{uid}"]
    if driver == "cgroupfs":
        return "/" + "/".join(parts)
    if driver != "systemd":
        raise ValueError(f"unknown cgroup driver {driver!r}")
    escaped = [p.replace("-", "_") for p in parts]
    return "/" + "/".join("-".join(escaped[:i + 1]) + ".slice" for i in range(len(escaped)))
