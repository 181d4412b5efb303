"""`nodelet run`: wires the agent, the manifest source, pod networking (CNI), the service proxy, probes and the
local API, and supervises them — the first root task to fail stops the rest; SIGTERM stops everything cleanly
(pods keep running in the runtime; the next start adopts them)."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections import Counter as Tally
from pathlib import Path
from typing import Any, Awaitable, Callable

import cri
from kubelet.lifecycle.agent import VERSION, Agent
from kubelet.server.api import LocalAPI
from kubelet.config import NodeletConfig
from kubelet.server.metrics import AgentMetrics
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


class AgentAPIView:
    """What the local API shows, read from the agent (and, when wired, probes and the proxy)."""

    def __init__(self, app: "NodeletApp") -> None:
        self.app = app

    def pods(self) -> list[dict[str, Any]]:
        return self.app.agent.pod_objects()

    def events(self) -> list[dict[str, Any]]:
        return self.app.agent.recorder.list()

    def health(self) -> tuple[bool, str]:
        return self.app.agent.health()

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
        }

    def extra(self, name: str) -> Any | None:
        provider = self.app.extras.get(name)
        return provider() if provider else None


class NodeletApp:
    def __init__(self, config: NodeletConfig, *, client: cri.RuntimeClient | None = None, notifier: Notifier | None = None) -> None:
        self.config = config
        self.metrics = AgentMetrics(node_name=config.node_name)
        self.agent = Agent(config, client=client)
        self.agent.client.observer = self._observe_runtime_call
        self.notifier = notifier or Notifier()
        self.probes = AgentProbes(client=self.agent.client, recorder=self.agent.recorder, on_kill=self.agent.on_probe_kill, on_status=self.agent.on_probe_status)
        self.agent.attach_probes(self.probes)
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
        self.extras: dict[str, Callable[[], Any]] = {"probes": self.probes.snapshot}
        self.cni_socket = str(Path(config.api_socket).parent / "cni.sock")
        self.cni_plugin_conf: dict[str, Any] = {}  # our conflist's nodelet-cni entry (for the daemon's own CNI GC)
        self.cni_gc: Any = None  # kubelet.node.podnet.CNIGarbageCollector when podCIDR is set
        self.proxier: Any = None  # proxy.Proxier when proxyMode is not none
        self._proxy_errors: set[str] = set()
        self.cluster: Any = None  # kubelet.node.cluster.ClusterSync when clusterDir is set (issue 9)
        self.on_cluster_change: list[Callable[[], None]] = []  # e.g. the service proxy's update (issue 9)
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    def _observe_runtime_call(self, rpc: str, seconds: float, failed: bool) -> None:
        self.metrics.observe_runtime_call(_operation(rpc), seconds, error=failed)

    def refresh_metrics(self) -> None:
        a = self.agent
        self.metrics.set_pod_phases(Tally(st.get("phase", "Pending") for st in a.statuses.values()))
        states: Tally[str] = Tally()
        for rt in a.runtime_pods.values():
            for c in rt.containers:
                states[c.state.name.lower()] += 1
        self.metrics.set_containers(states)
        self.metrics.running_pods.set(sum(1 for rt in a.runtime_pods.values() if any(s.ready for s in rt.sandboxes)))
        self.metrics.manifest_errors.set(len(a.manifests.errors))
        self.metrics.pleg_last_seen.set(a.pleg.last_relist)

    def _on_sync_done(self, uid: str, seconds: float, err: BaseException | None) -> None:
        self.metrics.pod_sync_duration.labels(operation_type="sync").observe(seconds)
        if err is not None:
            self.metrics.pod_worker_sync_errors.inc()

    async def _supervise(self, coros: dict[str, Callable[[], Awaitable[Any]]]) -> None:
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
        """READY=1 after the first full sync; STATUS= with pod counts; WATCHDOG=1 while the sync loop is alive."""
        await self.agent.first_sync_done.wait()
        self.notifier.notify(READY="1", STATUS=self._status_line())
        interval = self.notifier.watchdog_seconds / 2 if self.notifier.watchdog_seconds else 5.0
        while True:
            await asyncio.sleep(interval)
            healthy, _ = self.agent.health()
            fields = {"STATUS": self._status_line()}
            if healthy and self.notifier.watchdog_seconds:
                fields["WATCHDOG"] = "1"
            self.notifier.notify(**fields)

    def _status_line(self) -> str:
        phases = Tally(st.get("phase", "Pending") for st in self.agent.statuses.values())
        parts = ", ".join(f"{n} {p.lower()}" for p, n in sorted(phases.items()))
        return f"{len(self.agent.desired)} pods" + (f" ({parts})" if parts else "")

    async def run(self) -> None:
        self.agent.workers._on_sync_done = self._chain_sync_done(self.agent.workers._on_sync_done)
        await self.api.start()
        try:
            await self.agent.start_runtime()
            Path(self.config.root_dir).mkdir(parents=True, exist_ok=True)
            coros: dict[str, Callable[[], Awaitable[Any]]] = {"manifests": self.source.run, "notify": self._notify_loop}
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
            # ---- issue 9 (kubelet/node/cluster.py): multi-node through clusterDir — register this node, host-gw routes to
            # the other nodes' pod CIDRs, publish this node's endpoints, merge every node's for the service proxy.
            if self.config.cluster_dir:
                coros["cluster"] = self._start_cluster()
            # ---- end issue 9
            await self._supervise(coros)
        finally:
            await self.agent.stop()
            await self.probes.aclose()
            await self.api.stop()
            await self.agent.client.close()

    # ---- issue 9 (kubelet/node/cluster.py) ----
    def _start_cluster(self) -> Callable[[], Awaitable[Any]]:
        """The cluster-dir loop; its state (`self.cluster.state.view.services` / `.endpoint_docs`) is what the service
        proxy adds to this node's own Services and pods. `on_cluster_change` callbacks run on every change."""
        from kubelet.node.cluster import ClusterSync, compute_pod_infos

        c = self.config
        self.cluster = ClusterSync(
            cluster_dir=c.cluster_dir,
            node_name=c.node_name,
            node_ip=self.agent.host_ip,
            pod_cidr=c.pod_cidr,
            pods=lambda: compute_pod_infos(self.agent.pod_objects(), node_name=c.node_name),
            on_change=lambda state: [cb() for cb in self.on_cluster_change],
        )
        self.agent.on_pods_changed.append(self.cluster.poke)
        self.extras["cluster"] = self.cluster.snapshot
        return self.cluster.run

    # ---- end issue 9

    # ---- service proxy ----
    def _start_proxy(self) -> Callable[[], Awaitable[Any]]:
        """kube-proxy-style rules for the Services of the manifest dir (and clusterDir), endpoints from ready pods."""
        from proxy.proxier import Proxier, ProxyConfig

        c = self.config
        self.proxier = Proxier(
            ProxyConfig(
                mode=c.proxy_mode,
                cluster_cidr=c.pod_cidr or None,
                service_cidr=c.service_cidr,
                node_port_range=c.node_port_range,
                state_dir=str(Path(c.root_dir) / "proxy"),
                node_name=c.node_name,
            )
        )
        self.agent.on_pods_changed.append(self.update_proxy)
        self.on_cluster_change.append(self.update_proxy)
        self.extras["services"] = self._services_extra
        self.update_proxy()
        return self.proxier.run

    def update_proxy(self) -> None:
        """Hand the proxier the full current set: Services/Endpoints(Slices) + this node's pods (cheap; coalesced)."""
        from kubelet.node.cluster import compute_pod_infos
        from proxy.model import ManifestDoc

        others = self.agent.manifests.others
        services = [ManifestDoc(source=o.source, doc=o.body) for o in others if o.kind == "Service"]
        endpoint_docs = [ManifestDoc(source=o.source, doc=o.body) for o in others if o.kind in ("Endpoints", "EndpointSlice")]
        if self.cluster is not None and self.cluster.state is not None:
            services += list(self.cluster.state.view.services)
            endpoint_docs += list(self.cluster.state.view.endpoint_docs)
        errors = self.proxier.update(
            services=services,
            endpoint_docs=endpoint_docs,
            pods=compute_pod_infos(self.agent.pod_objects(), node_name=self.config.node_name),
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
                                   name=net.name, data_dir=net.data_dir)
        conf = ensure_conflist(self.config.cni_conf_dir, conflist)
        self.cni_plugin_conf = {**conflist["plugins"][0], "cniVersion": "1.1.0", "name": conflist["name"]}
        log.info("pod network configured podCIDR=%s network=%s conflist=%s plugin=%s", self.config.pod_cidr, net.name, conf, plugin)

    def _cni_gc(self) -> Callable[[], Awaitable[Any]]:
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

    def _chain_sync_done(self, first: Callable[[str, float, BaseException | None], None]) -> Callable[[str, float, BaseException | None], None]:
        def both(uid: str, secs: float, err: BaseException | None) -> None:
            first(uid, secs, err)
            self._on_sync_done(uid, secs, err)

        return both


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
