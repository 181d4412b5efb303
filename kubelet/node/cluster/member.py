"""This node as a member of an etcd-backed cluster: registration with a lease, its pod subnet, host-gw routes from
a watch, cluster-wide Services, EndpointSlices and mirror pods. See keys.py for the layout.

Loops (all in `run`), each retrying with backoff while etcd is unreachable — the data plane keeps its last state:
- lease: keeps the node lease alive (every TTL/3, like clientv3) and the subnet lease (hourly; 24 h TTL);
  a lost node lease is replaced and everything this node owns is written again under the new one;
- watch: lists the prefix, then watches from list revision + 1; on ErrCompacted or a broken stream it re-lists.
  Every change recomputes the view (pure `compute_view`) and hands it on (`on_change`, the route loop);
- publish: writes this node's Node (on change and every `status_interval`), its EndpointSlices and mirror pods
  (only what changed, batched into transactions), and reconciles the Services its manifest directory declares;
- routes: makes the kernel's proto-201 routes match the live nodes.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelet.clock import rfc3339
from kubelet.lifecycle.nodestatus import NodeFacts, NodeHealth, compute_node_object
from kubelet.node import etcd
from kubelet.node.etcd import Compare, EtcdClient, Op
from proxy.errors import ServiceSpecError
from proxy.model import ManifestDoc, Service, parse_service

from .allocate import AllocationError, compute_cluster_ip_candidates, compute_subnet_candidates
from .endpoints import compute_slice_pods, render_endpoint_slices, render_mirror_pod
from .keys import ClusterError, Entry, Keys
from .routes import RouteTable, compute_routes
from .view import (ANN_DECLARED_BY, ClusterView, compute_spec_difference, compute_view, parse_all,
                   render_declared_service)

log = logging.getLogger(__name__)

SUBNET_LEASE_TTL = 24 * 3600  # flannel's subnetTTL: a subnet outlives its node's liveness by a day
SUBNET_RENEW_INTERVAL = 3600.0
STATE_FILE = "cluster-state.json"
TXN_MAX_OPS = 128  # etcd's --max-txn-ops default


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    endpoints: tuple[str, ...]
    tls: etcd.TLSFiles = etcd.TLSFiles()
    prefix: str = "/nodelet"
    node_name: str
    node_ip: str
    pod_cidr: str = ""  # configured; empty: allocate from cluster_cidr
    cluster_cidr: str = ""
    subnet_size: int = 24
    lease_ttl: int = 10
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    state_dir: str = "/var/lib/nodelet"
    status_interval: float = 10.0  # the kubelet's nodeStatusUpdateFrequency
    netns: str | None = None  # routes in this named netns (tests); None: our own
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class LocalState:
    """What survives a restart (written atomically to <rootDir>/cluster-state.json)."""

    node_lease: int = 0
    subnet_lease: int = 0
    pod_cidr: str = ""
    node_uid: str = ""
    created: str = ""
    prefix: str = ""

    @classmethod
    def load(cls, path: Path) -> "LocalState":
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as e:
            log.warning("cluster: ignoring unreadable state file path=%s err=%s", path, e)
            return cls()
        return cls(node_lease=int(raw.get("nodeLease", 0)), subnet_lease=int(raw.get("subnetLease", 0)),
                   pod_cidr=str(raw.get("podCIDR", "")), node_uid=str(raw.get("nodeUID", "")),
                   created=str(raw.get("created", "")), prefix=str(raw.get("prefix", "")))

    def save(self, path: Path) -> None:
        from kubelet.node.install import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"nodeLease": self.node_lease, "subnetLease": self.subnet_lease, "podCIDR": self.pod_cidr,
               "nodeUID": self.node_uid, "created": self.created, "prefix": self.prefix}
        write_atomic(path, (json.dumps(doc, indent=1) + "\n").encode(), 0o600)


class Backoff:
    def __init__(self, initial: float = 0.2, maximum: float = 5.0) -> None:
        self.initial, self.maximum, self.current = initial, maximum, initial

    def next(self) -> float:
        d = self.current
        self.current = min(self.maximum, self.current * 2)
        return d * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.current = self.initial


def _encode(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class ClusterMember:
    def __init__(
        self,
        config: ClusterConfig,
        *,
        client: EtcdClient,
        facts: Callable[[], NodeFacts],
        health: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
        pods: Callable[[], list[dict[str, Any]]] = lambda: [],
        declared_services: Callable[[], Sequence[ManifestDoc] | None] | None = None,
        on_change: Callable[[], Any] | None = None,
        on_event: Callable[[str, str, str], None] = lambda reason, message, type_: None,
        routes: RouteTable | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.keys = Keys(prefix=config.prefix)
        self._facts, self._health, self._pods = facts, health, pods
        self._declared = declared_services  # None: this node declares no Services (sources not ready yet: also None)
        self._on_change = on_change
        self._event = on_event
        self.routes = routes or RouteTable(netns=config.netns)
        self.state_path = Path(config.state_dir) / STATE_FILE
        self.state = LocalState.load(self.state_path)
        if self.state.prefix and self.state.prefix != config.prefix:
            self.state = LocalState()  # another cluster: its leases mean nothing here
        self.pod_cidr = config.pod_cidr
        # cluster state, from the watch
        self.entries: dict[str, Entry] = {}
        self.bad: dict[str, ClusterError] = {}
        self.revision = 0
        self.view = ClusterView()
        self.synced = asyncio.Event()  # the first list is in
        self.changed = asyncio.Event()  # set on every view change (tests, bench)
        # etcd reachability
        self.connected = False
        self.last_error = ""
        self.down_since: float | None = None
        # what this node last wrote: key -> (value, lease)
        self._written: dict[str, tuple[bytes, int]] = {}
        self._written_loaded = False
        self._wake = asyncio.Event()
        self._routes_wake = asyncio.Event()
        self._node_written_at = 0.0
        self._published_health: tuple[bool, str] | None = None
        self._ready_since: tuple[bool, str] | None = None
        self.route_errors: list[str] = []
        self.service_errors: dict[str, str] = {}  # ns/name -> error (declared here, refused)
        self._reported: set[str] = set()
        self.lease_ttl = config.lease_ttl
        self._reported_now: set[str] = set()
        self.resyncs = 0  # re-lists forced by compaction

    # ------------------------------------------------------------------------------------------ views for the API

    def nodes(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.view.node_docs]

    def pods(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.view.pods]

    def endpoint_slices(self) -> list[dict[str, Any]]:
        return [dict(s) for s in self.view.endpoint_slices]

    def services(self) -> list[ManifestDoc]:
        return list(self.view.services)

    def endpoint_docs(self) -> list[ManifestDoc]:
        return list(self.view.endpoint_docs)

    def health_detail(self) -> str:
        if self.connected:
            return f"etcd ok ({self.client.endpoint}, revision {self.revision}, {len(self.view.nodes)} nodes)"
        since = f" for {time.monotonic() - self.down_since:.0f}s" if self.down_since is not None else ""
        return f"etcd unreachable{since}: {self.last_error or 'not connected yet'}; serving the last known cluster state"

    def snapshot(self) -> dict[str, Any]:
        return {
            "endpoints": list(self.config.endpoints), "prefix": self.config.prefix, "connected": self.connected,
            "endpoint": self.client.endpoint, "lastError": self.last_error, "revision": self.revision,
            "nodeLease": f"{self.state.node_lease:x}", "leaseTTL": self.lease_ttl, "podCIDR": self.pod_cidr,
            "nodes": [{"name": n.name, "internalIP": n.internal_ip, "podCIDR": n.pod_cidr} for n in self.view.nodes],
            "services": [d.source for d in self.view.services],
            "errors": [str(e) for e in self.view.errors] + self.route_errors + list(self.service_errors.values()),
            "detail": self.health_detail(),
        }

    def poke(self) -> None:
        """Local pods or declarations changed: publish soon."""
        self._wake.set()

    # ------------------------------------------------------------------------------------------ reachability

    def _down(self, err: BaseException) -> None:
        msg = str(err)
        self.last_error = msg
        if self.connected or self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("cluster: etcd unavailable, keeping the last known state err=%s", msg)
            self._event("EtcdUnavailable", f"etcd unavailable, pods and rules keep their last known state: {msg}", "Warning")
        self.connected = False

    def _up(self) -> None:
        if not self.connected:
            if self.down_since is not None:
                log.info("cluster: etcd reachable again endpoint=%s", self.client.endpoint)
                self._event("EtcdConnected", f"etcd reachable again at {self.client.endpoint}", "Normal")
            self.connected = True
            self.down_since = None
            self.last_error = ""

    def _save_state(self) -> None:
        self.state.prefix = self.config.prefix
        self.state.pod_cidr = self.pod_cidr
        self.state.save(self.state_path)

    # ------------------------------------------------------------------------------------------ subnet

    async def acquire_subnet(self) -> str:
        """This node's podCIDR: the configured one, else the one it holds in etcd (or held before: the state file),
        else a free one taken by a create-if-absent transaction. Retries with backoff while etcd is down; when a
        podCIDR was saved before it is returned at once and confirmed in the background (the `lease` loop)."""
        if not self.state.node_uid:
            self.state.node_uid = str(uuid.uuid4())
            self.state.created = rfc3339(time.time())
        if not self.config.cluster_cidr and not self.config.pod_cidr:
            return ""
        backoff = Backoff()
        while True:
            try:
                cidr = await self._claim_subnet()
                self._up()
                return cidr
            except etcd.EtcdError as e:
                if not e.retryable:
                    raise
                self._down(e)
                if self.state.pod_cidr and not self.config.pod_cidr:
                    self.pod_cidr = self.state.pod_cidr
                    log.warning("cluster: etcd unreachable, using the saved podCIDR=%s (confirmed when etcd is back)", self.pod_cidr)
                    return self.pod_cidr
                if self.config.pod_cidr:
                    self.pod_cidr = self.config.pod_cidr
                    return self.pod_cidr
                await asyncio.sleep(backoff.next())

    def _subnet_value(self, cidr: str) -> bytes:
        return _encode({"node": self.config.node_name, "podCIDR": cidr, "internalIP": self.config.node_ip})

    async def _subnet_lease(self) -> int:
        if self.state.subnet_lease and await self.client.lease_time_to_live(self.state.subnet_lease) > 0:
            await self.client.lease_keepalive_once(self.state.subnet_lease)
            return self.state.subnet_lease
        lease, _ = await self.client.lease_grant(SUBNET_LEASE_TTL)
        self.state.subnet_lease = lease
        self._save_state()
        return lease

    async def _claim_subnet(self) -> str:
        me = self.config.node_name
        kvs, _ = await self.client.range(self.keys.root + "subnets/", prefix=True)
        held: dict[str, str] = {}
        for kv in kvs:
            try:
                held[kv.key] = json.loads(kv.value).get("node", "")
            except (ValueError, AttributeError):
                held[kv.key] = "?"
        lease = await self._subnet_lease()
        wanted = [self.config.pod_cidr] if self.config.pod_cidr else []
        if not wanted:
            mine = [k for k, n in held.items() if n == me]
            if mine:
                wanted = [mine[0][len(self.keys.root + "subnets/"):].replace("-", "/")]
            elif self.state.pod_cidr:
                wanted = [self.state.pod_cidr]
        for cidr in wanted:
            key = self.keys.subnet(cidr)
            owner = held.get(key)
            if owner not in (None, me):
                if self.config.pod_cidr:
                    raise etcd.RequestRejected(f"podCIDR {cidr} is held by node {owner} in etcd ({key})")
                log.warning("cluster: saved podCIDR=%s is now held by node=%s; taking another", cidr, owner)
                continue
            if await self._put_subnet(key, cidr, lease, create=owner is None):
                return self._took(cidr)
        if self.config.pod_cidr:
            raise etcd.RequestRejected(f"podCIDR {self.config.pod_cidr} was taken by another node while claiming it")
        taken = {k[len(self.keys.root + "subnets/"):].replace("-", "/") for k in held}
        for _ in range(50):
            cands = compute_subnet_candidates(self.config.cluster_cidr, self.config.subnet_size, taken=taken, name=me)
            if not cands:
                raise AllocationError(f"clusterCIDR {self.config.cluster_cidr} has no free /{self.config.subnet_size} left")
            for cidr in cands[:1]:
                if await self._put_subnet(self.keys.subnet(cidr), cidr, lease, create=True):
                    return self._took(cidr)
                taken.add(cidr)
        raise AllocationError("could not take a free subnet after 50 tries")

    async def _put_subnet(self, key: str, cidr: str, lease: int, *, create: bool) -> bool:
        value = self._subnet_value(cidr)
        if create:
            res = await self.client.txn([Compare(key=key, target="version", value=0)], [Op(kind="put", key=key, value=value, lease=lease)])
            return res.succeeded
        await self.client.put(key, value, lease=lease)
        return True

    def _took(self, cidr: str) -> str:
        if cidr != self.pod_cidr:
            log.info("cluster: podCIDR=%s node=%s", cidr, self.config.node_name)
        self.pod_cidr = cidr
        self._save_state()
        return cidr

    # ------------------------------------------------------------------------------------------ leases

    async def _ensure_node_lease(self) -> int:
        lid = self.state.node_lease
        if lid:
            ttl = await self.client.lease_time_to_live(lid)
            if ttl > 0:
                await self.client.lease_keepalive_once(lid)
                return lid
            log.info("cluster: node lease %x expired; granting a new one", lid)
        lid, ttl = await self.client.lease_grant(self.config.lease_ttl)
        self.lease_ttl = ttl
        self.state.node_lease = lid
        self._save_state()
        self._written = {k: v for k, v in self._written.items() if v[1] != lid}  # rewrite everything under it
        self._wake.set()
        log.info("cluster: node lease granted id=%x ttl=%ds", lid, ttl)
        return lid

    async def _lease_loop(self) -> None:
        backoff = Backoff()
        last_subnet = time.monotonic()
        while True:
            try:
                if not self.state.node_lease:
                    await self._ensure_node_lease()
                try:
                    await self.client.lease_keepalive_once(self.state.node_lease)
                except etcd.LeaseNotFound:
                    self._event("NodeLeaseLost", f"node lease {self.state.node_lease:x} expired; registering again", "Warning")
                    self.state.node_lease = 0
                    await self._ensure_node_lease()
                if self.pod_cidr and (self.config.cluster_cidr or self.config.pod_cidr) and \
                        (time.monotonic() - last_subnet > SUBNET_RENEW_INTERVAL or self.state.pod_cidr != self.pod_cidr or not self.state.subnet_lease):
                    await self._claim_subnet_keep()
                    last_subnet = time.monotonic()
                self._up()
                backoff.reset()
                await asyncio.sleep(max(0.5, self.lease_ttl / 3))
            except etcd.EtcdError as e:
                self._down(e)
                await asyncio.sleep(backoff.next())

    async def _claim_subnet_keep(self) -> None:
        """Renew the subnet lease; re-put the subnet key if it went (its lease expired while we were away)."""
        key = self.keys.subnet(self.pod_cidr)
        kv = await self.client.get(key)
        if kv is not None:
            try:
                owner = json.loads(kv.value).get("node")
            except (ValueError, AttributeError):
                owner = None
            if owner != self.config.node_name:
                msg = f"podCIDR {self.pod_cidr} is held by node {owner} in etcd; this node keeps using it until restarted"
                if msg not in self._reported:
                    self._reported.add(msg)
                    log.error("cluster: %s", msg)
                    self._event("PodCIDRConflict", msg, "Warning")
                return
        lease = await self._subnet_lease()
        if kv is None or kv.lease != lease:
            await self._put_subnet(key, self.pod_cidr, lease, create=kv is None)
        self._save_state()

    # ------------------------------------------------------------------------------------------ watch

    def _apply(self, kvs: Iterable[Any], *, replace: bool, deleted: Iterable[str] = ()) -> None:
        if replace:
            self.entries, self.bad = parse_all(self.keys, kvs)
        else:
            new, bad = parse_all(self.keys, kvs)
            for k in deleted:
                self.entries.pop(k, None)
                self.bad.pop(k, None)
            for k in new:
                self.bad.pop(k, None)
            for k in bad:
                self.entries.pop(k, None)
            self.entries.update(new)
            self.bad.update(bad)
        old = self.view
        self.view = compute_view(self.entries, self.bad, self_name=self.config.node_name)
        for e in self.view.errors:
            if str(e) not in self._reported:
                self._reported.add(str(e))
                log.error("cluster: %s", e)
                self._event("InvalidClusterData", str(e), "Warning")
        if (old.services, old.endpoint_docs) != (self.view.services, self.view.endpoint_docs):
            if self._on_change is not None:
                self._on_change()
        if old.nodes != self.view.nodes:
            self._routes_wake.set()
        if old.services != self.view.services:
            self._wake.set()  # our slices follow the Services
        self.changed.set()

    async def _watch_loop(self) -> None:
        """List, then watch from the list's revision + 1. After a broken stream the watch resumes from the last
        revision seen (nothing is missed, nothing re-read); if that revision was compacted meanwhile (ErrCompacted)
        it lists again — flannel's resyncWatch."""
        backoff = Backoff()
        root = self.keys.root
        resume = 0
        while True:
            try:
                if not resume:
                    kvs, rev = await self.client.range(root, prefix=True)
                    self.revision = rev
                    self._apply(kvs, replace=True)
                    if not self._written_loaded:
                        self._load_written()
                    self.synced.set()
                self._up()
                backoff.reset()
                resume = self.revision
                async for batch in self.client.watch(root, prefix=True, start_revision=self.revision + 1):
                    if batch.events:
                        puts = [e.kv for e in batch.events if e.type == "PUT"]
                        dels = [e.kv.key for e in batch.events if e.type == "DELETE"]
                        self._apply(puts, replace=False, deleted=dels)
                    # clientv3's rule: resume after the last event seen; a progress notification (no events, not
                    # the creation) vouches for its header revision
                    if batch.events:
                        self.revision = max(self.revision, max(e.kv.mod_revision for e in batch.events))
                    elif not batch.created:
                        self.revision = max(self.revision, batch.revision)
                    resume = self.revision
            except etcd.Compacted as e:
                resume = 0
                self.resyncs += 1
                log.warning("cluster: revision %d was compacted (to %d); re-listing", self.revision, e.compact_revision)
                self._event("ClusterResync", f"etcd history compacted to revision {e.compact_revision}: re-listed", "Normal")
            except etcd.EtcdError as e:
                self._down(e)
                await asyncio.sleep(backoff.next())

    def _load_written(self) -> None:
        """After the first list: what this node owns in etcd is what it 'wrote' (a restart rewrites nothing that
        is still right, and deletes what is no longer wanted)."""
        mine = self.keys.owned_prefixes(self.config.node_name)
        for key, e in self.entries.items():
            if key.startswith(mine) or key == self.keys.node(self.config.node_name):
                self._written[key] = (_encode(e.doc), e.lease)
        for key in self.bad:
            if key.startswith(mine):
                self._written[key] = (b"", 0)  # ours but garbage: the next publish replaces or deletes it
        self._written_loaded = True

    # ------------------------------------------------------------------------------------------ publish

    def _node_object(self) -> dict[str, Any]:
        facts = self._facts()
        import dataclasses

        facts = dataclasses.replace(facts, pod_cidr=self.pod_cidr, uid=self.state.node_uid,
                                    creation_timestamp=self.state.created, labels={**facts.labels, **self.config.labels})
        ok, reason = self._health()
        now = rfc3339(time.time())
        if self._ready_since is None or self._ready_since[0] != ok:
            self._ready_since = (ok, now)
        health = NodeHealth(ready=ok, not_ready_message=reason if not ok else "", transitions={"Ready": self._ready_since[1]})
        return compute_node_object(facts, health, heartbeat=now)

    def _cluster_services(self) -> list[Service]:
        out = []
        for d in self.view.services:
            try:
                out.append(parse_service(d.doc, source=d.source, node_port_range=self.config.node_port_range))
            except ServiceSpecError:
                continue  # the proxy reports it
        return out

    def compute_desired(self, lease: int, *, node_due: bool) -> dict[str, tuple[bytes, int]]:
        me = self.config.node_name
        desired: dict[str, tuple[bytes, int]] = {}
        node_key = self.keys.node(me)
        if node_due or node_key not in self._written:
            desired[node_key] = (_encode(self._node_object()), lease)
        else:
            desired[node_key] = self._written[node_key]
        pod_objects = self._pods()
        for s in render_endpoint_slices(node_name=me, services=self._cluster_services(), pods=compute_slice_pods(pod_objects, node_name=me)):
            m = s["metadata"]
            desired[self.keys.endpoint_slice(me, m["namespace"], m["name"])] = (_encode(s), lease)
        for p in pod_objects:
            m = p.get("metadata", {})
            mirror = render_mirror_pod(p, node_name=me, node_uid=self.state.node_uid)
            desired[self.keys.pod(me, m.get("namespace", "default"), m.get("name", ""))] = (_encode(mirror), lease)
        return desired

    async def publish_once(self) -> int:
        """Write what changed of what this node owns; returns the number of keys written or deleted."""
        if not self.state.node_lease:
            await self._ensure_node_lease()
        lease = self.state.node_lease
        health = self._health()
        # a Ready flip goes out at once (within the publish loop's 1 s tick), a heartbeat every status_interval
        node_due = time.monotonic() - self._node_written_at >= self.config.status_interval or health != self._published_health
        desired = self.compute_desired(lease, node_due=node_due)
        mine = self.keys.owned_prefixes(self.config.node_name)
        ops: list[Op] = []
        for key, (value, lid) in desired.items():
            if self._written.get(key) != (value, lid):
                ops.append(Op(kind="put", key=key, value=value, lease=lid))
        for key in self._written:
            if key not in desired and key.startswith(mine):
                ops.append(Op(kind="delete", key=key))
        for i in range(0, len(ops), TXN_MAX_OPS):
            chunk = ops[i:i + TXN_MAX_OPS]
            await self.client.txn([], chunk)
            for op in chunk:
                if op.kind == "put":
                    self._written[op.key] = (op.value, op.lease)
                else:
                    self._written.pop(op.key, None)
        if node_due or any(op.key == self.keys.node(self.config.node_name) for op in ops):
            self._node_written_at = time.monotonic()
            self._published_health = health
        await self.reconcile_services()
        return len(ops)

    async def _publish_loop(self) -> None:
        """Publish on a poke (pods, declarations, Services changed), on a Ready flip (checked every second) and
        for the heartbeat every status_interval; nothing is rendered on the idle ticks in between."""
        backoff = Backoff()
        await self.synced.wait()
        due = True
        while True:
            if due:
                self._wake.clear()
                try:
                    await self.publish_once()
                    self._up()
                    backoff.reset()
                except etcd.LeaseNotFound:
                    self.state.node_lease = 0
                    continue
                except etcd.EtcdError as e:
                    self._down(e)
                    await asyncio.sleep(backoff.next())
                    self._wake.set()
            wait = min(1.0, max(0.05, self.config.status_interval - (time.monotonic() - self._node_written_at)))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
                due = True
            except asyncio.TimeoutError:
                due = (time.monotonic() - self._node_written_at >= self.config.status_interval
                       or self._health() != self._published_health)

    # ------------------------------------------------------------------------------------------ services

    def _report_service(self, key: str, msg: str | None) -> None:
        self._reported_now.add(key)
        if msg is None:
            self.service_errors.pop(key, None)
            return
        if self.service_errors.get(key) != msg:
            log.error("cluster: %s", msg)
            self._event("FailedService", msg, "Warning")
        self.service_errors[key] = msg

    async def reconcile_services(self) -> None:
        """Publish the Services this node's manifest directory declares; withdraw those it no longer declares."""
        if self._declared is None:
            return
        declared = self._declared()
        if declared is None:
            return  # the manifest source has not listed yet: withdrawing now would remove everything
        me = self.config.node_name
        seen: set[str] = set()
        self._reported_now = set()
        for d in declared:
            try:
                svc = parse_service(d.doc, source=d.source, node_port_range=self.config.node_port_range)
            except ServiceSpecError as e:
                self._report_service(f"{d.source}", str(e))
                continue
            key = self.keys.service(svc.namespace, svc.name)
            seen.add(key)
            want = render_declared_service(d.doc, node_name=me, source=d.source)
            have = self.entries.get(key)
            if have is None:
                if key in self.bad:
                    self._report_service(svc.key, f"{d.source}: Service {svc.key}: etcd holds an invalid value at {key} ({self.bad[key].reason}); not replaced")
                    continue
                self._report_service(svc.key, await self._create_service(key, svc, want, source=d.source))
                continue
            owner = ((have.doc.get("metadata") or {}).get("annotations") or {}).get(ANN_DECLARED_BY, "")
            diff = compute_spec_difference(want, have.doc)
            if diff is None:
                self._report_service(svc.key, None)
                continue
            path, here, there = diff
            if owner == me:
                if path.startswith("spec.clusterIP"):
                    self._report_service(svc.key, f"{d.source}: {path}: field is immutable (allocated {there!r}, declared {here!r}); remove the Service and declare it again to change it")
                    continue
                spec = dict(want["spec"])
                spec["clusterIP"] = (have.doc.get("spec") or {}).get("clusterIP", "")
                spec["clusterIPs"] = [spec["clusterIP"]] if spec["clusterIP"] and spec["clusterIP"] != "None" else spec.get("clusterIPs", [])
                doc = {**want, "spec": spec}
                res = await self.client.txn([Compare(key=key, target="mod", value=have.mod_revision)],
                                            [Op(kind="put", key=key, value=_encode(doc))])
                self._report_service(svc.key, None)
                if not res.succeeded:
                    self._wake.set()
                continue
            src = ((have.doc.get("metadata") or {}).get("annotations") or {}).get("nodelet.io/source", "?")
            self._report_service(svc.key, f"{d.source}: {path}: Service {svc.key} is already declared differently by node {owner} "
                                          f"({src}): {json.dumps(here)} here, {json.dumps(there)} there; that one stays in force")
        for key, ent in list(self.entries.items()):
            if ent.kind != "service" or key in seen:
                continue
            owner = ((ent.doc.get("metadata") or {}).get("annotations") or {}).get(ANN_DECLARED_BY, "")
            if owner != me:
                continue
            ip = (ent.doc.get("spec") or {}).get("clusterIP", "")
            ops = [Op(kind="delete", key=key)]
            cmp = [Compare(key=key, target="mod", value=ent.mod_revision)]
            if ip and ip != "None" and self.view.cluster_ips.get(ip) == f"{ent.namespace}/{ent.name}":
                ops.append(Op(kind="delete", key=self.keys.cluster_ip(ip)))
            await self.client.txn(cmp, ops)
            self.service_errors.pop(f"{ent.namespace}/{ent.name}", None)
            log.info("cluster: Service withdrawn service=%s/%s", ent.namespace, ent.name)
        for k in [k for k in self.service_errors if k not in self._reported_now]:
            self.service_errors.pop(k, None)  # no longer declared here

    async def _create_service(self, key: str, svc: Service, want: dict[str, Any], *, source: str) -> str | None:
        """Create the Service with its ClusterIP in one transaction (IP key absent and Service key absent)."""
        spec = want["spec"]
        explicit = spec.get("clusterIP", "")
        if explicit == "None" or (svc.type == "ExternalName"):
            res = await self.client.txn([Compare(key=key, target="version", value=0)], [Op(kind="put", key=key, value=_encode(want))])
            if not res.succeeded:
                self._wake.set()
            return None
        taken = set(self.view.cluster_ips)
        for _ in range(20):
            if explicit:
                ip = explicit
                holder = self.view.cluster_ips.get(ip)
                if holder and holder != svc.key:
                    return f"{source}: spec.clusterIP: Invalid value: {ip!r}: provided IP is already allocated (to Service {holder})"
            else:
                cands = compute_cluster_ip_candidates(self.config.service_cidr, taken=taken, key=svc.key, limit=1)
                if not cands:
                    return f"{source}: spec.clusterIP: serviceCIDR {self.config.service_cidr} is full"
                ip = cands[0]
            doc = {**want, "spec": {**spec, "clusterIP": ip, "clusterIPs": [ip]}}
            ipkey = self.keys.cluster_ip(ip)
            res = await self.client.txn(
                [Compare(key=key, target="version", value=0), Compare(key=ipkey, target="version", value=0)],
                [Op(kind="put", key=ipkey, value=_encode(svc.key)), Op(kind="put", key=key, value=_encode(doc))],
                [Op(kind="get", key=key), Op(kind="get", key=ipkey)])
            if res.succeeded:
                log.info("cluster: Service published service=%s clusterIP=%s", svc.key, ip)
                return None
            svc_now, ip_now = res.ranges
            if svc_now:
                self._wake.set()  # someone else created it: compared on the next pass (the watch brings it)
                return None
            if explicit:
                holder = json.loads(ip_now[0].value) if ip_now else "?"
                return f"{source}: spec.clusterIP: Invalid value: {ip!r}: provided IP is already allocated (to Service {holder})"
            taken.add(ip)
        return f"{source}: spec.clusterIP: could not allocate an address after 20 tries"

    # ------------------------------------------------------------------------------------------ routes

    async def _route_loop(self) -> None:
        while True:
            self._routes_wake.clear()
            nodes = [(n.name, n.internal_ip, n.pod_cidr) for n in self.view.nodes]
            routes, problems = compute_routes(nodes, self_name=self.config.node_name, self_pod_cidr=self.pod_cidr)
            if self.synced.is_set():
                try:
                    _, errs = await self.routes.apply_routes(routes)
                except Exception as e:  # noqa: BLE001 - `ip` missing or failing: report, retry on the next change
                    errs = [str(e)]
                for p in problems + errs:
                    if p not in self.route_errors:
                        log.error("cluster: %s", p)
                self.route_errors = problems + errs
            try:
                await asyncio.wait_for(self._routes_wake.wait(), timeout=30.0)
            except asyncio.TimeoutError:
                pass

    # ------------------------------------------------------------------------------------------ run / leave

    async def run(self) -> None:
        tasks = [asyncio.create_task(fn(), name=f"cluster-{fn.__name__.strip('_')}")
                 for fn in (self._watch_loop, self._lease_loop, self._publish_loop, self._route_loop)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def leave(self) -> dict[str, Any]:
        """Leave the cluster on purpose: revoke the node lease (its Node, EndpointSlices and mirror pods go at
        once), free the subnet, withdraw the Services only this node declared, forget the saved state."""
        me = self.config.node_name
        out: dict[str, Any] = {"node": me, "revokedLeases": [], "deleted": 0}
        for lid in (self.state.node_lease, self.state.subnet_lease):
            if lid:
                try:
                    await self.client.lease_revoke(lid)
                    out["revokedLeases"].append(f"{lid:x}")
                except etcd.LeaseNotFound:
                    pass
        kvs, _ = await self.client.range(self.keys.root, prefix=True)
        entries, _bad = parse_all(self.keys, kvs)
        for key, e in entries.items():
            mine = (e.kind in ("node", "endpointslice", "pod") and e.node == me) or (e.kind == "subnet" and e.node == me)
            if e.kind == "service":
                mine = ((e.doc.get("metadata") or {}).get("annotations") or {}).get(ANN_DECLARED_BY) == me
            if mine:
                out["deleted"] += await self.client.delete(key)
                ip = (e.doc.get("spec") or {}).get("clusterIP", "") if e.kind == "service" else ""
                if ip and ip != "None":
                    out["deleted"] += await self.client.delete(self.keys.cluster_ip(ip))
        self.state_path.unlink(missing_ok=True)
        return out


__all__ = ["ClusterConfig", "ClusterMember", "LocalState", "STATE_FILE", "SUBNET_LEASE_TTL"]
