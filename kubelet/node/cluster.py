"""A multi-node cluster without an API server: one shared directory (`clusterDir`, e.g. Vagrant's synced /vagrant).

Layout (every file YAML or JSON; a file may hold several documents or a `v1 List`):

    <clusterDir>/nodes/<name>.yaml       kind: Node — metadata.name, spec.podCIDR, status.addresses[InternalIP]
    <clusterDir>/services/*.yaml         kind: Service (cluster-wide; selector services get endpoints from every node)
                                         (Endpoints/EndpointSlice documents written by hand are read too)
    <clusterDir>/endpoints/<node>.yaml   written by the agent on <node> only: a v1 List of EndpointSlices, one per
                                         cluster Service with pods on that node, replaced atomically (temp + rename)

Documents may also sit at the top level or in any other first-level directory; `endpoints/` is reserved.

Each agent:
- registers itself at start (writes `nodes/<nodeName>.yaml` when it has a podCIDR and an IP and the file differs),
  like the kubelet's self-registration; after that the file is the operator's: deleting it removes the node;
- programs host-gw routes to every other node's podCIDR via its InternalIP (`ip route replace <cidr> via <ip>
  proto 201`). Routes are marked with route protocol 201 ("nodelet"): only those are ever listed, replaced or
  deleted, so a route someone else made is never touched. A node removed from the directory loses its route;
- publishes its own pods that the cluster's selector Services select (with their readiness) into
  `endpoints/<nodeName>.yaml`;
- merges the slices of every *registered* node other than itself into the endpoints it hands to the service proxy
  (its own pods reach the proxy directly); the slices of a node whose document is gone are ignored.

The directory is polled (names, sizes, mtimes every `poll_interval`, 1 s) rather than watched with inotify: shared
folders (vboxsf, NFS, 9p) do not deliver inotify events for writes made by the other machines.

Pure parts: `parse_node`, `compute_cluster_view`, `compute_routes`, `compute_pod_infos`, `render_endpoint_slices`.
Side effects: `ensure_node_registered`, `ensure_endpoints_published`, `RouteTable.apply_routes`, `ClusterSync`.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NewType

import yaml

from proxy.errors import ServiceSpecError
from proxy.model import ContainerPort, ManifestDoc, PodInfo, Protocol, Service, parse_service

log = logging.getLogger(__name__)

NodeName = NewType("NodeName", str)
ROUTE_PROTO = 201  # `ip route ... proto 201`: nodelet's host-gw routes, and only those, are ever changed
ENDPOINTS_DIR = "endpoints"
NODES_DIR = "nodes"
MANAGED_BY = "nodelet.io/cluster"
SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE = 10 << 20
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ClusterError(Exception):
    """One bad input (file, field, reason) or a failed side effect; the rest of the cluster is still served."""

    def __init__(self, source: str, field_path: str, reason: str) -> None:
        super().__init__(f"{source}: {field_path}: {reason}" if field_path else f"{source}: {reason}")
        self.source, self.field, self.reason = source, field_path, reason


@dataclass(frozen=True, kw_only=True)
class ClusterNode:
    name: NodeName
    internal_ip: str
    pod_cidr: str
    source: str


@dataclass(frozen=True, kw_only=True)
class ClusterView:
    """What the directory says, minus what is invalid (each problem is one entry in `errors`)."""

    nodes: tuple[ClusterNode, ...] = ()
    services: tuple[ManifestDoc, ...] = ()
    endpoint_docs: tuple[ManifestDoc, ...] = ()  # hand-written ones plus the slices published by other live nodes
    errors: tuple[ClusterError, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ClusterState:
    view: ClusterView
    routes: Mapping[str, str]  # pod CIDR -> gateway (the other node's InternalIP)
    route_errors: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------------ parsing (pure)


def _ipv4(source: str, path: str, value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except (ValueError, TypeError):
        raise ClusterError(source, path, f"must be an IPv4 address, got {value!r}") from None


def parse_node(doc: Mapping[str, Any], *, source: str) -> ClusterNode:
    """A `kind: Node` document: name, InternalIP (status.addresses) and podCIDR (spec.podCIDR or spec.podCIDRs[0])."""
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping):
        raise ClusterError(source, "metadata", "required")
    name = meta.get("name")
    if not isinstance(name, str) or not name or len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        raise ClusterError(source, "metadata.name", f"must be a lowercase RFC 1123 subdomain, got {name!r}")
    src = f"{source} (Node {name})"
    spec = doc.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise ClusterError(src, "spec", "must be a mapping")
    cidr = spec.get("podCIDR")
    path = "spec.podCIDR"
    if cidr is None and isinstance(spec.get("podCIDRs"), list) and spec["podCIDRs"]:
        cidr, path = spec["podCIDRs"][0], "spec.podCIDRs[0]"
    if cidr is None:
        raise ClusterError(src, "spec.podCIDR", "required (the node's pod network, e.g. 10.244.1.0/24)")
    try:
        net = ipaddress.IPv4Network(cidr, strict=True)
    except (ValueError, TypeError) as e:
        raise ClusterError(src, path, f"must be an IPv4 CIDR with no host bits set, got {cidr!r} ({e})") from None
    status = doc.get("status") or {}
    addrs = status.get("addresses") if isinstance(status, Mapping) else None
    if not isinstance(addrs, list):
        raise ClusterError(src, "status.addresses", "required: a list with an InternalIP entry")
    ip = None
    for i, a in enumerate(addrs):
        if isinstance(a, Mapping) and a.get("type") == "InternalIP":
            ip = _ipv4(src, f"status.addresses[{i}].address", a.get("address"))
            break
    if ip is None:
        raise ClusterError(src, "status.addresses", "no entry with type: InternalIP")
    return ClusterNode(name=NodeName(name), internal_ip=ip, pod_cidr=str(net), source=source)


def _documents(path: Path) -> list[Any]:
    if path.stat().st_size > MAX_FILE:
        raise ClusterError(str(path), "", "file larger than 10 MiB")
    text = path.read_text()
    try:
        docs = [json.loads(text)] if path.suffix == ".json" else [d for d in yaml.safe_load_all(text) if d is not None]
    except (ValueError, yaml.YAMLError) as e:
        raise ClusterError(str(path), "", f"invalid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}".replace("\n", " ")) from None
    out: list[Any] = []
    for d in docs:
        if isinstance(d, Mapping) and d.get("kind") == "List" and isinstance(d.get("items"), list):
            out.extend(d["items"])
        else:
            out.append(d)
    return out


def list_cluster_files(cluster_dir: Path) -> list[Path]:
    """Document files at the top level and one level down, `endpoints/` excepted; dotfiles skipped; name order.

    A directory that cannot be listed (a shared folder gone away) raises: that is "don't know", never "no nodes",
    so the caller keeps its routes and endpoints instead of withdrawing the whole cluster."""
    out: list[Path] = []
    try:
        entries = sorted(cluster_dir.iterdir())
    except OSError as e:
        raise ClusterError(str(cluster_dir), "", f"cannot list the cluster directory: {e.strerror or e}") from None
    for p in entries:
        if p.name.startswith("."):
            continue
        if p.is_dir() and p.name != ENDPOINTS_DIR:
            try:
                out += [q for q in sorted(p.iterdir()) if q.is_file() and not q.name.startswith(".") and q.suffix in SUFFIXES]
            except OSError:
                continue
        elif p.is_file() and p.suffix in SUFFIXES:
            out.append(p)
    return out


def compute_cluster_view(files: Mapping[str, Sequence[Any] | ClusterError], published: Mapping[str, Sequence[Any] | ClusterError], *, self_name: str) -> ClusterView:
    """Documents by file (or the file's error) and published slices by node → the valid cluster view."""
    errors: list[ClusterError] = []
    nodes: dict[str, ClusterNode] = {}
    services: list[ManifestDoc] = []
    endpoint_docs: list[ManifestDoc] = []
    for source, docs in files.items():
        if isinstance(docs, ClusterError):
            errors.append(docs)
            continue
        for i, doc in enumerate(docs):
            where = source if len(docs) == 1 else f"{source}#{i}"
            kind = doc.get("kind") if isinstance(doc, Mapping) else None
            if kind == "Node":
                try:
                    node = parse_node(doc, source=where)
                except ClusterError as e:
                    errors.append(e)
                    continue
                if node.name in nodes:
                    errors.append(ClusterError(where, "metadata.name", f"Duplicate value: {node.name!r}: already declared in {nodes[node.name].source}"))
                    continue
                clash = next((n for n in nodes.values() if ipaddress.ip_network(n.pod_cidr).overlaps(ipaddress.ip_network(node.pod_cidr))), None)
                if clash is not None:
                    errors.append(ClusterError(where, "spec.podCIDR", f"{node.pod_cidr} overlaps {clash.pod_cidr} of node {clash.name} ({clash.source})"))
                    continue
                nodes[node.name] = node
            elif kind == "Service":
                services.append(ManifestDoc(source=where, doc=doc))
            elif kind in ("Endpoints", "EndpointSlice"):
                endpoint_docs.append(ManifestDoc(source=where, doc=doc))
            else:
                errors.append(ClusterError(where, "kind", f"{kind!r} is not read from the cluster directory (Node, Service, Endpoints, EndpointSlice)"))
    for node_name, docs in sorted(published.items()):
        if node_name == self_name or node_name not in nodes:
            continue  # our own pods reach the proxy directly; a node whose document is gone has no endpoints
        if isinstance(docs, ClusterError):
            errors.append(docs)
            continue
        for i, doc in enumerate(docs):
            endpoint_docs.append(ManifestDoc(source=f"{ENDPOINTS_DIR}/{node_name}#{i}", doc=doc))
    return ClusterView(nodes=tuple(sorted(nodes.values(), key=lambda n: n.name)), services=tuple(services),
                       endpoint_docs=tuple(endpoint_docs), errors=tuple(errors))


def compute_routes(nodes: Iterable[ClusterNode], *, self_name: str, self_pod_cidr: str = "") -> tuple[dict[str, str], list[str]]:
    """Other nodes' pod CIDRs → their InternalIPs (host-gw). A CIDR overlapping our own is refused (second value)."""
    routes: dict[str, str] = {}
    problems: list[str] = []
    own = ipaddress.ip_network(self_pod_cidr, strict=False) if self_pod_cidr else None
    for n in nodes:
        if n.name == self_name:
            continue
        if own is not None and own.overlaps(ipaddress.ip_network(n.pod_cidr)):
            problems.append(f"{n.source}: spec.podCIDR: {n.pod_cidr} of node {n.name} overlaps this node's podCIDR {own}: no route")
            continue
        routes[n.pod_cidr] = n.internal_ip
    return routes, problems


def compute_pod_infos(pod_objects: Iterable[Mapping[str, Any]], *, node_name: str) -> list[PodInfo]:
    """The agent's v1 Pod objects → what the proxy and the published slices need (IP, labels, readiness, ports)."""
    out = []
    for p in pod_objects:
        meta, spec, status = p.get("metadata", {}), p.get("spec", {}), p.get("status", {})
        ip = status.get("podIP") or ""
        if not ip:
            continue
        ready = not meta.get("deletionTimestamp") and any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
        ports = tuple(
            ContainerPort(name=cp.get("name", ""), port=int(cp["containerPort"]), protocol=Protocol(cp.get("protocol", "TCP")))
            for c in spec.get("containers", []) for cp in c.get("ports", []) or [] if "containerPort" in cp
        )
        out.append(PodInfo(namespace=meta.get("namespace", "default"), name=meta.get("name", ""), labels=dict(meta.get("labels") or {}),
                           ip=ip, ready=ready, ports=ports, node_name=node_name))
    return out


def _selected(svc: Service, pod: PodInfo) -> bool:
    return svc.selector is not None and bool(svc.selector) and pod.namespace == svc.namespace and all(pod.labels.get(k) == v for k, v in svc.selector)


def render_endpoint_slices(*, node_name: str, services: Iterable[ManifestDoc], pods: Iterable[PodInfo]) -> list[dict[str, Any]]:
    """EndpointSlices (discovery.k8s.io/v1) of this node's pods for the cluster's selector Services. Pure, sorted.

    As the EndpointSlice controller does, pods whose named targetPorts resolve to different numbers go to
    different slices (a slice has one port list)."""
    parsed: list[Service] = []
    for d in services:
        try:
            parsed.append(parse_service(d.doc, source=d.source))
        except ServiceSpecError:
            continue  # reported by the proxy, which gets the same documents
    pods = sorted(pods, key=lambda p: (p.namespace, p.name))
    slices: list[dict[str, Any]] = []
    for svc in sorted(parsed, key=lambda s: s.key):
        groups: dict[tuple[tuple[str, int, str], ...], list[PodInfo]] = {}
        for pod in pods:
            if not _selected(svc, pod):
                continue
            ports = []
            for sp in svc.ports:
                if isinstance(sp.target_port, int):
                    ports.append((sp.name, sp.target_port, sp.protocol))
                else:
                    num = next((c.port for c in pod.ports if c.name == sp.target_port and c.protocol == sp.protocol), None)
                    if num is not None:
                        ports.append((sp.name, num, sp.protocol))
            if ports:
                groups.setdefault(tuple(ports), []).append(pod)
        for i, (ports_key, members) in enumerate(sorted(groups.items())):
            name = f"{svc.name}-{node_name}" + (f"-{i}" if i else "")
            slices.append({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": name[:253], "namespace": svc.namespace,
                             "labels": {"kubernetes.io/service-name": svc.name, "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
                "addressType": "IPv4",
                "ports": [{"name": n, "port": port, "protocol": proto} for n, port, proto in ports_key],
                "endpoints": [
                    {"addresses": [p.ip], "conditions": {"ready": p.ready}, "nodeName": node_name,
                     "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name}}
                    for p in members
                ],
            })
    return slices


def render_node(*, name: str, internal_ip: str, pod_cidr: str) -> str:
    doc = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
           "status": {"addresses": [{"type": "InternalIP", "address": internal_ip}, {"type": "Hostname", "address": name}]}}
    return "# registered by nodelet on this node at start; delete the file to remove the node from the cluster\n" + yaml.safe_dump(doc, sort_keys=False)


def render_published(node_name: str, slices: list[dict[str, Any]]) -> str:
    doc = {"apiVersion": "v1", "kind": "List", "items": slices}
    return f"# written by nodelet on {node_name} (do not edit): its pods' endpoints for the cluster's Services\n" + yaml.safe_dump(doc, sort_keys=False)


# ------------------------------------------------------------------------------------------------ side effects


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace `path` (temp file in the same dir + fsync + rename) unless it already holds `text`."""
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def ensure_node_registered(cluster_dir: str | os.PathLike[str], *, name: str, internal_ip: str, pod_cidr: str) -> bool:
    return write_if_changed(Path(cluster_dir) / NODES_DIR / f"{name}.yaml", render_node(name=name, internal_ip=internal_ip, pod_cidr=pod_cidr))


def ensure_endpoints_published(cluster_dir: str | os.PathLike[str], *, node_name: str, slices: list[dict[str, Any]]) -> bool:
    return write_if_changed(Path(cluster_dir) / ENDPOINTS_DIR / f"{node_name}.yaml", render_published(node_name, slices))


class RouteError(Exception):
    pass


class RouteTable:
    """nodelet's host-gw routes (protocol 201) in the main table of this netns or of a named one (`ip -n NAME`)."""

    def __init__(self, *, netns: str | None = None, proto: int = ROUTE_PROTO) -> None:
        self.netns, self.proto = netns, proto

    async def _ip(self, *args: str) -> str:
        argv = ["ip", *(["-n", self.netns] if self.netns else []), *args]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RouteError(f"`{' '.join(argv)}` failed: {err.decode().strip()}")
        return out.decode()

    async def list_routes(self) -> dict[str, str]:
        raw = await self._ip("-j", "-4", "route", "show", "proto", str(self.proto))
        out = {}
        for r in json.loads(raw or "[]"):
            if "gateway" in r:
                dst = r["dst"] if "/" in r["dst"] else f"{r['dst']}/32"
                out[dst] = r["gateway"]
        return out

    async def apply_routes(self, desired: Mapping[str, str]) -> tuple[int, list[str]]:
        """Make our routes exactly `desired` (cidr -> gateway). Returns (routes changed, per-route errors)."""
        current = await self.list_routes()
        changed, problems = 0, []
        for dst in sorted(set(current) - set(desired)):
            try:
                await self._ip("route", "del", dst, "proto", str(self.proto))
                changed += 1
                log.info("host-gw route removed dst=%s", dst)
            except RouteError as e:
                problems.append(str(e))
        for dst, gw in sorted(desired.items()):
            if current.get(dst) == gw:
                continue
            try:
                await self._ip("route", "replace", dst, "via", gw, "proto", str(self.proto))
                changed += 1
                log.info("host-gw route set dst=%s via=%s", dst, gw)
            except RouteError as e:
                problems.append(f"{e} (host-gw needs {gw} on a directly connected network)")
        return changed, problems


def read_directory(cluster_dir: Path) -> tuple[dict[str, Sequence[Any] | ClusterError], dict[str, Sequence[Any] | ClusterError]]:
    files: dict[str, Sequence[Any] | ClusterError] = {}
    for p in list_cluster_files(cluster_dir):
        try:
            files[str(p)] = _documents(p)
        except ClusterError as e:
            files[str(p)] = e
        except OSError as e:
            files[str(p)] = ClusterError(str(p), "", f"unreadable: {e.strerror or e}")
    published: dict[str, Sequence[Any] | ClusterError] = {}
    ep = cluster_dir / ENDPOINTS_DIR
    if ep.is_dir():
        for p in sorted(ep.iterdir()):
            if p.is_file() and not p.name.startswith(".") and p.suffix in SUFFIXES:
                try:
                    published[p.stem] = _documents(p)
                except ClusterError as e:
                    published[p.stem] = e
                except OSError as e:
                    published[p.stem] = ClusterError(str(p), "", f"unreadable: {e.strerror or e}")
    return files, published


def _signature(cluster_dir: Path, *, exclude: Path | None = None) -> tuple[Any, ...]:
    """Names, sizes, mtimes and inodes of every file the sync reads (our own published file excepted)."""
    sig: list[Any] = []
    for d in (cluster_dir, *(p for p in sorted(cluster_dir.iterdir()) if p.is_dir())) if cluster_dir.is_dir() else ():
        try:
            for p in sorted(d.iterdir()):
                if p.is_file() and p != exclude:
                    st = p.stat()
                    sig.append((str(p), st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            continue
    return tuple(sig)


class ClusterSync:
    """Keeps routes, published endpoints and the proxy's cluster input in step with the shared directory."""

    def __init__(
        self,
        *,
        cluster_dir: str | os.PathLike[str],
        node_name: str,
        node_ip: str = "",
        pod_cidr: str = "",
        pods: Callable[[], Iterable[PodInfo]] = lambda: (),
        on_change: Callable[[ClusterState], Any] | None = None,
        netns: str | None = None,
        register: bool = True,
        poll_interval: float = 1.0,
        resync_interval: float = 30.0,
    ) -> None:
        self.dir = Path(cluster_dir)
        self.node_name, self.node_ip, self.pod_cidr = node_name, node_ip, pod_cidr
        self._pods = pods
        self._on_change = on_change
        self.routes = RouteTable(netns=netns)
        self.register = register
        self.poll_interval, self.resync_interval = poll_interval, resync_interval
        self.state: ClusterState | None = None
        self._wake = asyncio.Event()
        self._reported: set[str] = set()
        self.synced = asyncio.Event()  # set after every completed sync (tests and callers can wait on it)
        self.sync_count = 0

    def poke(self) -> None:
        """Local pods changed (the agent's on_pods_changed): publish and re-merge soon."""
        self._wake.set()

    async def sync_once(self, *, notify: bool = False) -> ClusterState:
        """One pass: read, route, publish, merge. `on_change` runs when the view or routes changed, or `notify`."""
        files, published = await asyncio.to_thread(read_directory, self.dir)
        view = compute_cluster_view(files, published, self_name=self.node_name)
        routes, problems = compute_routes(view.nodes, self_name=self.node_name, self_pod_cidr=self.pod_cidr)
        _, route_errors = await self.routes.apply_routes(routes)
        slices = render_endpoint_slices(node_name=self.node_name, services=view.services, pods=self._pods())
        await asyncio.to_thread(ensure_endpoints_published, self.dir, node_name=self.node_name, slices=slices)
        state = ClusterState(view=view, routes=routes, route_errors=tuple(problems + route_errors))
        for msg in [str(e) for e in view.errors] + list(state.route_errors):
            if msg not in self._reported:
                log.error("cluster: %s", msg)
        self._reported = {str(e) for e in view.errors} | set(state.route_errors)
        changed = self.state is None or self.state.view != state.view or self.state.routes != state.routes
        self.state = state
        if (changed or notify) and self._on_change is not None:
            r = self._on_change(state)
            if asyncio.iscoroutine(r):
                await r
        self.sync_count += 1
        self.synced.set()
        return state

    async def _register(self) -> bool:
        """Write our Node document once per start. The cluster dir itself must exist (it is never created here: a
        shared folder that is not mounted yet must not be replaced by a local directory nobody else sees)."""
        if not (self.register and self.pod_cidr and self.node_ip):
            return True
        if not self.dir.is_dir():
            return False
        if await asyncio.to_thread(ensure_node_registered, self.dir, name=self.node_name, internal_ip=self.node_ip, pod_cidr=self.pod_cidr):
            log.info("cluster: registered node=%s ip=%s podCIDR=%s dir=%s", self.node_name, self.node_ip, self.pod_cidr, self.dir)
        return True

    async def run(self) -> None:
        registered = warned = False
        own = self.dir / ENDPOINTS_DIR / f"{self.node_name}.yaml"
        last_sig: tuple[Any, ...] | None = None
        last_sync = 0.0
        while True:
            if not registered:
                try:
                    registered = await self._register()
                except OSError as e:
                    log.error("cluster: cannot register node=%s dir=%s err=%s", self.node_name, self.dir, e)
                if not registered and not warned:
                    log.warning("cluster: waiting for the cluster directory (not created here) dir=%s", self.dir)
                    warned = True
            sig = await asyncio.to_thread(_signature, self.dir, exclude=own)
            poked = self._wake.is_set()
            if sig != last_sig or poked or time.monotonic() - last_sync >= self.resync_interval:
                self._wake.clear()
                try:
                    await self.sync_once(notify=poked)
                except Exception as e:  # noqa: BLE001 - one failed pass is logged; the next poll retries
                    log.error("cluster sync failed dir=%s err=%s", self.dir, e)
                last_sig = sig  # taken before the read: whatever changed since is seen at the next poll
                last_sync = time.monotonic()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            except asyncio.TimeoutError:
                pass

    def snapshot(self) -> dict[str, Any]:
        """For the local API (`/api/v1/extra/cluster`)."""
        s = self.state
        if s is None:
            return {"dir": str(self.dir), "synced": False}
        return {
            "dir": str(self.dir),
            "synced": True,
            "nodes": [{"name": n.name, "internalIP": n.internal_ip, "podCIDR": n.pod_cidr} for n in s.view.nodes],
            "routes": dict(s.routes),
            "services": [d.source for d in s.view.services],
            "endpointSources": [d.source for d in s.view.endpoint_docs],
            "errors": [str(e) for e in s.view.errors] + list(s.route_errors),
        }
