"""`nodelet run`: wires the agent, the manifest source, pod networking (CNI), the service proxy, probes and the
local API, and supervises them — the first root task to fail stops the rest; SIGTERM stops everything cleanly
(pods keep running in the runtime; the next start adopts them)."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from collections import Counter as Tally
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Callable, Coroutine

import cri
from kubelet.clock import Clock, RealClock
from kubelet.kuberuntime.imagegc import ImageGCManager
from kubelet.kuberuntime.logrotate import ContainerLogManager
from kubelet.kuberuntime.manager import KubeRuntime
from kubelet.kuberuntime.podconfig import NodeInfo, read_node_memory_capacity
from kubelet.node.resolvconf import compute_resolv_conf
from kubelet.kuberuntime.view import RuntimeView
from kubelet.lifecycle import events as ev
from kubelet.lifecycle.agent import VERSION, Agent, SyncDoneFn, WorkersFactory, detect_host_ip
from kubelet.lifecycle.backoff import Backoff
from kubelet.lifecycle.pod_workers import PodWorkers
from kubelet.server.api import LocalAPI
from kubelet.config import NodeletConfig
from kubelet.server.metrics import AgentMetrics
from kubelet.server.streaming import streaming_route_table
from kubelet.lifecycle.probing import AgentProbes
from kubelet.node.sdnotify import Notifier
from kubelet.manifest.source import ManifestSource

log = logging.getLogger(__name__)

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def _operation(rpc: str) -> str:
    """CRI RPC name → the kubelet's runtime operation_type label (RunPodSandbox → run_podsandbox)."""
    return _SNAKE.sub("_", rpc.replace("PodSandbox", "Podsandbox")).lower()


def json_safe(value: Any) -> Any:
    """Dataclass dicts → JSON: enums by value, tuples as lists."""
    import enum

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def default_route_mtu(route_table: str = "/proc/net/route") -> int:
    """MTU of the uplink (the IPv4 default route's device), so pods never send frames the uplink drops; 0 if unknown."""
    try:
        with open(route_table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    return int(Path(f"/sys/class/net/{fields[0]}/mtu").read_text())
    except (OSError, ValueError, StopIteration):
        pass
    return 0


@dataclass(frozen=True, kw_only=True)
class AgentGraph:
    """The agent and the collaborators it was built with (what the daemon and the agent's unit tests hold)."""

    agent: Agent
    probes: AgentProbes
    client: cri.RuntimeClient
    runtime: KubeRuntime
    recorder: ev.EventRecorder


def build_agent(
    config: NodeletConfig,
    *,
    client: cri.RuntimeClient,
    clock: Clock | None = None,
    host_ip: str | None = None,
    workers: WorkersFactory = PodWorkers,
    on_sync_done: tuple[SyncDoneFn, ...] = (),
    on_probe_attempt: Callable[[Any], None] | None = None,
    pleg_period: float = 1.0,
) -> AgentGraph:
    """The one place the agent's object graph is built. Cycles (probes and the runtime call back into the agent)
    are closed with callbacks bound to `agent` once it exists, never by patching attributes afterwards."""
    clock = clock or RealClock()
    host_ip = host_ip or config.node_ip or detect_host_ip()
    root = Path(config.root_dir)
    node = NodeInfo(
        node_name=config.node_name,
        host_ip=host_ip,
        cluster_dns=tuple(config.cluster_dns),
        cluster_domain=config.cluster_domain,
        pod_logs_dir=config.pod_logs_dir,
        memory_capacity=read_node_memory_capacity(),
        host_resolv_conf=compute_resolv_conf(config.resolv_conf),  # unset: kubeadm's systemd-resolved rule
        cgroup_driver=config.cgroup_driver,
    )
    recorder = ev.EventRecorder(host=config.node_name, clock=clock)
    view = RuntimeView(client, node_name=config.node_name)
    backoff = Backoff(clock=clock, path=root / "state" / "backoff.json")
    agent: Agent
    runtime = KubeRuntime(
        client=client,
        view=view,
        node=node,
        recorder=recorder,
        backoff=backoff,
        image_backoff=Backoff(clock=clock),
        clock=clock,
        root_dir=root,
        objects=lambda: agent.manifests.others,  # configMap/secret volumes from the manifest dir's documents
    )
    probes = AgentProbes(client=client, recorder=recorder, on_kill=lambda uid: agent.on_probe_kill(uid),
                         on_status=lambda uid: agent.on_probe_status(uid), on_attempt=on_probe_attempt)
    agent = Agent(
        config,
        client=client,
        runtime=runtime,
        view=view,
        recorder=recorder,
        backoff=backoff,
        clock=clock,
        host_ip=host_ip,
        # containerLogMaxSize / containerLogMaxFiles; image GC by disk thresholds
        log_manager=ContainerLogManager(client, max_size=config.container_log_max_size, max_files=config.container_log_max_files),
        image_gc=ImageGCManager(client, high=config.image_gc_high_threshold_percent, low=config.image_gc_low_threshold_percent),
        probes=probes,
        workers=workers,
        on_sync_done=on_sync_done,
        pleg_period=pleg_period,
    )
    return AgentGraph(agent=agent, probes=probes, client=client, runtime=runtime, recorder=recorder)


def client_tls(c: NodeletConfig) -> Any:
    from kubelet.node.etcd import TLSFiles

    return TLSFiles(ca_file=c.etcd_ca_file, cert_file=c.etcd_cert_file, key_file=c.etcd_key_file)


class AgentAPIView:
    """What the local API shows, read from the agent (and, when wired, probes and the proxy)."""

    def __init__(self, app: "NodeletApp") -> None:
        self.app = app

    def pods(self) -> list[dict[str, Any]]:
        return self.app.agent.pod_objects()

    def events(self) -> list[dict[str, Any]]:
        return self.app.agent.recorder.list()

    def health(self) -> tuple[bool, str]:
        ok, reason = self.app.agent.health()
        if ok and self.app.cluster is not None:  # etcd down is not an outage: still healthy, with the detail
            return ok, self.app.cluster.health_detail()
        return ok, reason

    def metrics_text(self) -> str:
        self.app.refresh_metrics()
        return self.app.metrics.render()

    def node(self) -> dict[str, Any]:
        a, c = self.app.agent, self.app.config
        return {
            "name": c.node_name,
            "hostIP": a.host_ip,
            "nodeletVersion": VERSION,
            "runtimeVersion": a.runtime_version,
            "runtimeEndpoint": c.container_runtime_endpoint,
            "podCIDR": c.pod_cidr,
            "staticPodPath": c.static_pod_path,
            "proxyMode": c.proxy_mode,
            "manifestErrors": [str(e) for e in a.manifests.errors],
            # where things live, for `nodelet logs|net|doctor` run without --config
            "podLogsDir": c.pod_logs_dir, "rootDir": c.root_dir, "cniConfDir": c.cni_conf_dir, "cniBinDir": c.cni_bin_dir,
            "cniBridge": c.cni_bridge,
            "cgroupDriver": c.cgroup_driver, "resolvConf": a.runtime.node.host_resolv_conf,
        }

    def extra(self, name: str) -> Any | None:
        provider = self.app.extras.get(name)
        return provider() if provider else None


class KubeAPIView:
    """What the Kubernetes API (kubelet/server/apiserver) shows, read from the agent. In cluster mode nodes(),
    services() and endpoint_slices() come from the cluster store (every live node's); pods() stay this node's (the
    ones logs/exec/port-forward can reach; `nodelet cluster pods` lists every node's mirror pods)."""

    def __init__(self, app: "NodeletApp") -> None:
        self.app = app
        c = app.config
        self.node_name = c.node_name
        self.static_pod_path = c.static_pod_path
        self.pod_logs_dir = c.pod_logs_dir
        self._facts: Any = None
        self._created: dict[str, str] = {}
        self._started = _rfc3339_now()
        self._metrics: Any = None

    def health(self) -> tuple[bool, str]:
        return self.app.agent.health()

    def pods(self) -> list[dict[str, Any]]:
        return self.app.agent.pod_objects()

    def events(self) -> list[dict[str, Any]]:
        return self.app.agent.recorder.list()

    def events_v1(self) -> list[dict[str, Any]]:
        from kubelet.server.apiserver.objects import compute_event_v1

        return [compute_event_v1(e) for e in self.events()]

    def nodes(self) -> list[dict[str, Any]]:
        if self.app.cluster is not None and self.app.cluster.nodes():
            return list(self.app.cluster.nodes())
        import time as _time

        from kubelet.lifecycle.nodestatus import NodeHealth, collect_node_facts, compute_node_object

        a, c = self.app.agent, self.app.config
        if self._facts is None or self._facts.container_runtime_version != a.runtime_version:
            self._facts = collect_node_facts(
                name=c.node_name, internal_ip=a.host_ip, pod_cidr=c.pod_cidr, max_pods=c.max_pods, root_dir=c.root_dir,
                container_runtime_version=a.runtime_version, kubelet_version=f"v1.32.4-nodelet.{VERSION}",
                uid=f"nodelet-node-{c.node_name}", creation_timestamp=self._started)
        ok, reason = a.health()
        beat = int(_time.time()) // 10 * 10  # a heartbeat every 10 s (nodeStatusUpdateFrequency), not every read
        heartbeat = _rfc3339_now(beat)
        return [compute_node_object(self._facts, NodeHealth(ready=ok, not_ready_message=reason), heartbeat=heartbeat)]

    def namespaces(self) -> list[dict[str, Any]]:
        from kubelet.server.apiserver.objects import compute_namespaces

        return compute_namespaces(self, self._started)

    def _others(self, *kinds: str) -> list[dict[str, Any]]:
        out = []
        for o in self.app.agent.manifests.others:
            if o.kind not in kinds:
                continue
            body = dict(o.body)
            meta = dict(body.get("metadata") or {})
            meta.setdefault("namespace", o.namespace)
            meta.setdefault("creationTimestamp", self._created_at(o.source))
            meta.setdefault("uid", f"nodelet-{o.kind.lower()}-{o.namespace}-{o.name}")
            body["metadata"] = meta
            out.append(body)
        return out

    def _created_at(self, source: str) -> str:
        if source not in self._created:
            try:
                self._created[source] = _rfc3339_now(int(os.stat(source).st_mtime))
            except OSError:
                self._created[source] = self._started
        return self._created[source]

    def services(self) -> list[dict[str, Any]]:
        if self.app.cluster is not None:  # cluster-wide, with the ClusterIPs allocated in etcd
            return [dict(d.doc) for d in self.app.cluster.services()]
        return self._others("Service")

    def endpoint_slices(self) -> list[dict[str, Any]]:
        from kubelet.server.apiserver.objects import compute_endpoint_slices

        if self.app.cluster is not None:  # every node's slices, as published under its lease
            return self._others("EndpointSlice") + list(self.app.cluster.endpoint_slices())
        return self._others("EndpointSlice") + compute_endpoint_slices(self.services(), self.pods(), node_name=self.node_name)

    def configmaps(self) -> list[dict[str, Any]]:
        return self._others("ConfigMap")

    def secrets(self) -> list[dict[str, Any]]:
        return self._others("Secret")

    def _sampler(self) -> Any:
        if self._metrics is None:
            from kubelet.server.apiserver.metricsapi import MetricsSampler

            self._metrics = MetricsSampler(client=self.app.agent.client, node_name=self.node_name)
        return self._metrics

    async def pod_metrics(self) -> list[dict[str, Any]]:
        return await self._sampler().pod_metrics()

    async def node_metrics(self) -> list[dict[str, Any]]:
        return await self._sampler().node_metrics()

    def object_source(self, kind: str, namespace: str, name: str) -> str | None:
        m = self.app.agent.manifests
        if kind == "Pod":
            for p in m.pods:
                if p.namespace == namespace and p.name == name:
                    return p.source
            for p in self.app.agent.desired.values():  # a pod from a file that turned invalid keeps running
                if p.namespace == namespace and p.name == name:
                    return p.source
            return None
        for o in m.others:
            if o.kind == kind and o.namespace == namespace and o.name == name:
                return o.source
        return None


def _rfc3339_now(ts: int | None = None) -> str:
    import datetime as _dt

    t = _dt.datetime.now(_dt.timezone.utc) if ts is None else _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeletApp:
    def __init__(self, config: NodeletConfig, *, client: cri.RuntimeClient | None = None, notifier: Notifier | None = None) -> None:
        self.config = config
        self.metrics = AgentMetrics(node_name=config.node_name)
        client = client or cri.RuntimeClient(config.container_runtime_endpoint, observer=self._observe_runtime_call)
        graph = build_agent(config, client=client, on_sync_done=(self._on_sync_done,), on_probe_attempt=self._observe_probe)
        self.agent = graph.agent
        for warning in config.warnings:  # upstream KubeletConfiguration fields nodelet ignores: log + node event, once
            self.agent.recorder.node(reason="IgnoredConfigFields", message=warning, type="Warning")
        self.notifier = notifier or Notifier()
        self.probes = graph.probes
        self.source = ManifestSource(
            path=config.static_pod_path,
            node_name=config.node_name,
            check_frequency=config.file_check_frequency,
            on_change=self.agent.on_manifests,
        )
        self.api = LocalAPI(
            AgentAPIView(self),
            socket_path=config.api_socket,
            healthz_address=config.healthz_bind_address,
            healthz_port=config.healthz_port or None,
        )
        self.metrics_server: Any = None  # plain-HTTP /metrics, /metrics/probes, /metrics/resource (metricsBindAddress)
        if config.metrics_bind_address:
            from kubelet.server.metrics_http import MetricsServer, make_metrics_app

            self.metrics_server = MetricsServer(make_metrics_app(
                metrics=AgentAPIView(self).metrics_text, probes=self.metrics.render_probes,
                resource=self.resource_metrics), bind_address=config.metrics_bind_address)
        self.extras: dict[str, Callable[[], Any]] = {"probes": self.probes.snapshot, "nodes": self._nodes_extra}
        # The Kubernetes API. More routes (the streaming verbs) go into api_routes before run():
        # (method, path, handler) — see kubelet/server/apiserver/__init__.py for the handler contract.
        self.api_routes: list[tuple[str, str, Callable[..., Any]]] = list(streaming_route_table())
        self.kube_api_view = KubeAPIView(self)
        self.kube_api: Any = None  # kubelet.server.apiserver.ApiServer while running
        self.cni_socket = str(Path(config.api_socket).parent / "cni.sock")
        self.cni_plugin_conf: dict[str, Any] = {}  # our conflist's nodelet-cni entry (for the daemon's own CNI GC)
        self.cni_gc: Any = None  # kubelet.node.podnet.CNIGarbageCollector when podCIDR is set
        self.proxier: Any = None  # proxy.Proxier when proxyMode is not none
        self._proxy_errors: set[str] = set()
        self.cluster: Any = None  # kubelet.node.cluster.ClusterMember when etcdEndpoints is set
        self.on_cluster_change: list[Callable[[], None]] = []  # e.g. the service proxy's update
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    def _observe_runtime_call(self, rpc: str, seconds: float, failed: bool) -> None:
        self.metrics.observe_runtime_call(_operation(rpc), seconds, error=failed)

    def _observe_probe(self, attempt: Any) -> None:  # probes.manager.ProbeAttempt
        namespace, _, pod = str(attempt.pod_key).partition("/")
        self.metrics.observe_probe(probe_type=attempt.kind.title, result=attempt.result.value,
                                   container=attempt.container_name, pod=pod, namespace=namespace,
                                   pod_uid=str(attempt.pod_uid), seconds=attempt.seconds)

    def _observe_proxy_sync(self, result: Any) -> None:  # proxy.proxier.SyncResult
        self.metrics.observe_proxy_sync(kind=result.kind, seconds=result.render_seconds + result.apply_seconds,
                                        error=result.error, mode=self.config.proxy_mode, wall=time.time())

    async def resource_metrics(self) -> str:
        """/metrics/resource: CRI container stats of this node's containers and the node's /proc, read per scrape."""
        from kubelet.server.metrics import ContainerUsage, ResourceSnapshot, read_node_usage, render_resource_metrics

        cpu, working = read_node_usage()
        containers, error = [], False
        try:
            for st in await self.agent.client.list_container_stats(labels={"io.nodelet.node": self.config.node_name}):
                containers.append(ContainerUsage(
                    namespace=st.labels.get("io.kubernetes.pod.namespace", ""),
                    pod=st.labels.get("io.kubernetes.pod.name", ""),
                    container=st.labels.get("io.kubernetes.container.name", st.name),
                    cpu_seconds=(st.cpu_usage_core_nanoseconds or 0) / 1e9,
                    working_set_bytes=st.memory_working_set_bytes or 0, start_time=0))
        except Exception as err:  # noqa: BLE001 - the runtime's error is the scrape's, shown as scrape_error 1
            log.warning("resource metrics: container stats failed err=%s", err)
            error = True
        return render_resource_metrics(ResourceSnapshot(node_cpu_seconds=cpu, node_working_set_bytes=working,
                                                        containers=containers, error=error))

    def refresh_metrics(self) -> None:
        a = self.agent
        self.metrics.set_pod_phases(Tally(st.phase for st in a.statuses.values()))
        states: Tally[str] = Tally()
        for rt in a.runtime_pods.values():
            for c in rt.containers:
                states[c.state.name.lower()] += 1
        self.metrics.set_containers(states)
        self.metrics.running_pods.set(sum(1 for rt in a.runtime_pods.values() if any(s.ready for s in rt.sandboxes)))
        self.metrics.manifest_errors.set(len(a.manifests.errors))
        if a.pleg.last_relist:  # a monotonic reading; the metric is a wall-clock timestamp
            self.metrics.pleg_last_seen.set(time.time() - (time.monotonic() - a.pleg.last_relist))

    def _on_sync_done(self, uid: str, seconds: float, err: BaseException | None) -> None:
        self.metrics.pod_sync_duration.labels(operation_type="sync").observe(seconds)
        if err is not None:
            self.metrics.pod_worker_sync_errors.inc()

    async def _supervise(self, coros: dict[str, Callable[[], Coroutine[Any, Any, Any]]]) -> None:
        self.tasks = [asyncio.create_task(fn(), name=name) for name, fn in coros.items()]
        stop = asyncio.create_task(self.stopping.wait(), name="stop")
        done, _ = await asyncio.wait([*self.tasks, stop], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stop and not task.cancelled() and task.exception() is not None:
                log.error("root task failed, stopping task=%s err=%r", task.get_name(), task.exception())
        for task in self.tasks:
            task.cancel()
        stop.cancel()
        await asyncio.gather(*self.tasks, stop, return_exceptions=True)
        for task in done:
            if task is not stop and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _notify_loop(self) -> None:
        """READY=1 once the agent serves: the runtime answered, the API is up, the manifests are read and every pod is
        handed to its worker. Not after the pods' first syncs: a slow first image pull must never run into the unit's
        TimeoutStartSec (systemd would kill and restart the agent in a loop). STATUS= says what it waits for;
        WATCHDOG=1 while the sync loop is alive."""
        self.notifier.notify(STATUS=f"reading static pods from {self.config.static_pod_path}")
        await self.agent.sources_ready.wait()
        self.notifier.notify(READY="1", STATUS=self._status_line())
        interval = self.notifier.watchdog_seconds / 2 if self.notifier.watchdog_seconds else 5.0
        while True:
            await asyncio.sleep(min(interval, 5.0))
            healthy, _ = self.agent.health()
            fields = {"STATUS": self._status_line()}
            if healthy and self.notifier.watchdog_seconds:
                fields["WATCHDOG"] = "1"
            self.notifier.notify(**fields)

    def _status_line(self) -> str:
        return compute_status_line(
            desired=len(self.agent.desired),
            phases=Tally(st.phase for st in self.agent.statuses.values()),
            unsynced=sum(1 for uid in self.agent.desired if uid not in self.agent.statuses),
            pulling=dict(self.agent.runtime.pulling))

    async def run(self) -> None:
        self.notifier.notify(STATUS=f"waiting for the container runtime at {self.config.container_runtime_endpoint}")
        await self.api.start()
        if self.metrics_server is not None:
            await self.metrics_server.start()
        try:
            await self._start_kube_api()
            await self.agent.start_runtime()
            Path(self.config.root_dir).mkdir(parents=True, exist_ok=True)
            coros: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {"manifests": self.source.run, "notify": self._notify_loop}
            if self.config.etcd_endpoints:  # join first, the podCIDR may come from etcd
                coros["cluster"] = await self._join_cluster()
            if self.config.pod_cidr:
                try:
                    self.ensure_pod_network()
                    coros["cni-server"] = self._cni_server
                    coros["cni-gc"] = self._cni_gc()
                except Exception as err:  # pod networking is broken, hostNetwork pods can still run: say so, go on
                    log.error("pod network setup failed podCIDR=%s err=%s", self.config.pod_cidr, err)
                    self.agent.recorder.node(reason="NetworkSetupFailed", message=f"pod network setup failed: {err}", type="Warning")
            for fn in self.agent.tasks():
                coros[fn.__name__.strip("_")] = fn
            if self.config.proxy_mode != "none":
                coros["proxy"] = self._start_proxy()
            await self._supervise(coros)
        finally:
            await self.agent.stop()
            await self.probes.aclose()
            if self.metrics_server is not None:
                await self.metrics_server.stop()
            if self.kube_api is not None:
                await self.kube_api.stop()
            await self.api.stop()
            await self.agent.client.close()

    # ---- the Kubernetes API ----
    async def _start_kube_api(self) -> None:
        """HTTPS on apiBindAddress:apiPort with the PKI under rootDir/pki (made on first start) and the admin
        kubeconfig written 0600 at adminKubeconfig."""
        c = self.config
        if not c.api_port:
            return
        from kubelet.server.apiserver import ApiServer, make_api_app
        from kubelet.server.apiserver.app import STORE_KEY, compute_ssl_context
        from kubelet.server.apiserver.certs import ensure_pki, render_kubeconfig, write_private_file

        pki = ensure_pki(Path(c.root_dir) / "pki", node_name=c.node_name, node_ips=[self.agent.host_ip, c.api_bind_address]
                         if c.api_bind_address not in ("0.0.0.0", "::") else [self.agent.host_ip])
        app = make_api_app(self.kube_api_view, runtime=self.agent.client, nodelet_version=VERSION, extra_routes=self.api_routes)
        self.agent.on_pods_changed.append(app[STORE_KEY].poke)
        ssl_context = compute_ssl_context(cert=str(pki.serving_cert), key=str(pki.serving_key), client_ca=str(pki.ca_cert))
        self.kube_api = ApiServer(app, address=c.api_bind_address, port=c.api_port, ssl_context=ssl_context)
        await self.kube_api.start()
        if c.admin_kubeconfig:
            text = render_kubeconfig(pki, server=compute_api_url(c), node_name=c.node_name)
            write_private_file(Path(c.admin_kubeconfig), text.encode(), 0o600)
            log.info("admin kubeconfig written path=%s", c.admin_kubeconfig)

    # ---- cluster mode on etcd (kubelet/node/cluster/) ----
    async def _join_cluster(self) -> Callable[[], Coroutine[Any, Any, Any]]:
        """Build the cluster member, take this node's podCIDR (configured, held, or a free one from clusterCIDR),
        and return its loop. Its Services and other nodes' EndpointSlices are what the service proxy serves."""
        import dataclasses

        from kubelet.lifecycle.nodestatus import collect_node_facts
        from kubelet.node.cluster import ClusterConfig, ClusterMember
        from kubelet.node.etcd import EtcdClient

        c = self.config
        client = EtcdClient(c.etcd_endpoints, tls=client_tls(c))
        facts = collect_node_facts(name=c.node_name, internal_ip=self.agent.host_ip, max_pods=c.max_pods, root_dir=c.root_dir,
                                   container_runtime_version=self.agent.runtime_version, kubelet_version=f"v{VERSION}")
        self.cluster = ClusterMember(
            ClusterConfig(endpoints=c.etcd_endpoints, tls=client_tls(c), prefix=c.etcd_prefix, node_name=c.node_name,
                          node_ip=self.agent.host_ip, pod_cidr=c.pod_cidr, cluster_cidr=c.cluster_cidr,
                          subnet_size=c.node_cidr_mask_size, lease_ttl=c.node_lease_duration_seconds,
                          service_cidr=c.service_cidr, node_port_range=c.node_port_range, state_dir=c.root_dir),
            client=client, facts=lambda: facts, health=self.agent.health, pods=self.agent.pod_objects,
            declared_services=self._declared_services, on_change=lambda: [cb() for cb in self.on_cluster_change],
            on_event=lambda reason, message, type_: self.agent.recorder.node(reason=reason, message=message, type=type_),
        )
        cidr = await self.cluster.acquire_subnet()
        if cidr and cidr != c.pod_cidr:
            self.config = dataclasses.replace(c, pod_cidr=cidr)
        self.agent.on_pods_changed.append(self.cluster.poke)
        self.extras["cluster"] = self.cluster.snapshot
        self.extras["clusterpods"] = self.cluster.pods
        return self.cluster.run

    def _nodes_extra(self) -> list[dict[str, Any]]:
        """Every live node's v1 Node in cluster mode; this node's alone otherwise."""
        if self.cluster is not None:
            return self.cluster.nodes()
        from kubelet.clock import rfc3339
        from kubelet.lifecycle.nodestatus import NodeHealth, collect_node_facts, compute_node_object

        c, a = self.config, self.agent
        facts = collect_node_facts(name=c.node_name, internal_ip=a.host_ip, pod_cidr=c.pod_cidr, max_pods=c.max_pods,
                                   root_dir=c.root_dir, container_runtime_version=a.runtime_version, kubelet_version=f"v{VERSION}")
        ok, reason = a.health()
        import time

        return [compute_node_object(facts, NodeHealth(ready=ok, not_ready_message="" if ok else reason), heartbeat=rfc3339(time.time()))]

    def _declared_services(self) -> list[Any] | None:
        """The manifest directory's Services (published cluster-wide); None until the directory was listed."""
        from proxy.model import ManifestDoc

        if not self.agent.sources_ready.is_set():
            return None
        return [ManifestDoc(source=o.source, doc=o.body) for o in self.agent.manifests.others if o.kind == "Service"]

    # ---- service proxy ----
    def _start_proxy(self) -> Callable[[], Coroutine[Any, Any, Any]]:
        """kube-proxy-style rules for the Services of the manifest dir (or of the cluster), endpoints from ready pods."""
        from proxy.proxier import Proxier, ProxyConfig

        c = self.config
        self.proxier = Proxier(
            ProxyConfig(
                mode=c.proxy_mode,
                cluster_cidr=c.cluster_cidr or c.pod_cidr or None,
                service_cidr=c.service_cidr,
                node_port_range=c.node_port_range,
                state_dir=str(Path(c.root_dir) / "proxy"),
                node_name=c.node_name,
            ),
            on_sync=self._observe_proxy_sync,
        )
        self.agent.on_pods_changed.append(self.update_proxy)
        self.on_cluster_change.append(self.update_proxy)
        self.extras["services"] = self._services_extra
        self.update_proxy()
        return self.proxier.run

    def update_proxy(self) -> None:
        """Hand the proxier the full current set: Services/Endpoints(Slices) + this node's pods (cheap; coalesced)."""
        from proxy.model import ManifestDoc

        others = self.agent.manifests.others
        services = [ManifestDoc(source=o.source, doc=o.body, parsed=o.parsed) for o in others if o.kind == "Service"]
        endpoint_docs = [ManifestDoc(source=o.source, doc=o.body, parsed=o.parsed) for o in others if o.kind in ("Endpoints", "EndpointSlice")]
        if self.cluster is not None:  # cluster mode: the manifest dir's Services come back from etcd, IPs allocated
            services = self.cluster.services()
            endpoint_docs += self.cluster.endpoint_docs()
        errors = self.proxier.update(
            services=services,
            endpoint_docs=endpoint_docs,
            pods=self.agent.pod_infos(),
        )
        for err in errors:
            text = str(err)
            if text not in self._proxy_errors:
                self.agent.recorder.node(reason="FailedService", message=text, type="Warning")
        self._proxy_errors = {str(e) for e in errors}

    def _services_extra(self) -> Any:
        import dataclasses

        st = self.proxier.status()
        return json_safe(dataclasses.asdict(st))

    def ensure_pod_network(self) -> None:
        """Write our conflist as the first file of the runtime's CNI conf dir and install nodelet-cni where the
        runtime looks for plugins. Idempotent; other files in those dirs are never touched."""
        from cni.config import ensure_conflist, render_conflist
        from cni.install import ensure_plugin_installed

        from kubelet.node.podnet import compute_cni_network

        plugin = ensure_plugin_installed(self.config.cni_bin_dir, socket_path=self.cni_socket)
        mtu = default_route_mtu()
        net = compute_cni_network(root_dir=self.config.root_dir)  # per agent: name, IPAM dir
        conflist = render_conflist(pod_cidr=self.config.pod_cidr, bridge=self.config.cni_bridge, mtu=mtu if mtu and mtu < 1500 else 0,
                                   name=net.name, data_dir=net.data_dir,
                                   ip_masq_exempt=(self.config.cluster_cidr,) if self.config.cluster_cidr else ())
        conf = ensure_conflist(self.config.cni_conf_dir, conflist)
        self.cni_plugin_conf = {**conflist["plugins"][0], "cniVersion": "1.1.0", "name": conflist["name"]}
        log.info("pod network configured podCIDR=%s network=%s conflist=%s plugin=%s", self.config.pod_cidr, net.name, conf, plugin)

    def _cni_gc(self) -> Callable[[], Coroutine[Any, Any, Any]]:
        """CNI GC in-process at start and every few minutes (containerd 1.6 never calls it), valid set = the runtime's sandboxes."""
        from kubelet.node.podnet import CNIGarbageCollector

        async def sandbox_ids() -> list[str]:
            return [s.id for s in await self.agent.client.list_pod_sandboxes()]

        self.cni_gc = CNIGarbageCollector(plugin_conf=self.cni_plugin_conf, list_sandbox_ids=sandbox_ids,
                                          interval=self.config.cni_gc_period)
        self.extras["cniGC"] = lambda: self.cni_gc.last_result
        return self.cni_gc.run

    async def _cni_server(self) -> None:
        """Serve CNI requests in-process (warm netlink), so a pod's network costs milliseconds, not an interpreter."""
        from cni.server import serve

        await serve(self.cni_socket)


def compute_status_line(*, desired: int, phases: Mapping[str, int], unsynced: int, pulling: Mapping[str, str]) -> str:
    """systemd's STATUS=: pod counts, then what the agent still waits for (first syncs, image pulls)."""
    parts = ", ".join(f"{n} {p.lower()}" for p, n in sorted(phases.items()))
    line = f"{desired} pods" + (f" ({parts})" if parts else "")
    waits = [f"pulling {image} for {key}" for image, key in sorted(pulling.items())]
    if unsynced:
        waits.append(f"first sync of {unsynced} pod{'s' if unsynced != 1 else ''}")
    return line + ("; waiting for: " + ", ".join(waits) if waits else "")


def compute_api_url(config: NodeletConfig) -> str:
    """The URL kubeconfigs point at: the bind address, loopback when it binds every address."""
    host = config.api_bind_address
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{config.api_port}"


SHUTDOWN_TIMEOUT = 10.0


def _bounded_shutdown(timeout: float = SHUTDOWN_TIMEOUT) -> None:
    """After SIGTERM the agent has `timeout` seconds to stop cleanly; past that every thread's stack goes to the log
    and the process exits. Nothing is lost by exiting: pods run in containerd's shims, state is on disk, and the
    next start adopts everything — but a stop must never hang (systemd, `demo.sh stop`, tests wait on it)."""
    import faulthandler
    import sys
    import threading

    def expire() -> None:
        log.error("shutdown did not finish within %.0fs; stacks follow, exiting anyway (pods keep running)", timeout)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(0)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()


async def run(config: NodeletConfig) -> None:
    app = NodeletApp(config)
    loop = asyncio.get_running_loop()

    started = False

    def on_signal(signum: int, frame: object) -> None:
        # A plain handler (not loop.add_signal_handler): it runs even if the event loop is stuck in a blocking call,
        # so the bounded-shutdown timer starts in every case.
        nonlocal started
        if not started:
            started = True
            _bounded_shutdown()
        loop.call_soon_threadsafe(app.stopping.set)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    log.info("nodelet %s starting node=%s pid=%d manifests=%s runtime=%s", VERSION, config.node_name, os.getpid(), config.static_pod_path, config.container_runtime_endpoint)
    await app.run()
    log.info("nodelet stopped (pods keep running in the runtime)")
