"""`nodelet doctor`: preflight and live checks of this node, one PASS/WARN/FAIL line each with the fix; exit 1 on FAIL."""
from __future__ import annotations

from typing import Any

import click

from kubelet.cli.common import cri_options, style, target_from

__all__ = ["doctor_cmd"]


@click.command("doctor")
@cri_options
@click.option("-o", "--output", type=click.Choice(("json",)), default=None, help="output format")
def doctor_cmd(socket_path: str | None, config_path: str | None, runtime_endpoint: str | None, output: str | None) -> None:
    """Check this node: runtime, cgroups, sysctls, iptables backends, CNI config, pod CIDR routes, sandbox image,
    oom_score_adj, manifest dir permissions, disk space, the clock and the pods' host DNS. Settings come from --config, else from the
    running daemon, else the defaults."""
    from kubelet.node.doctor import FAIL, compute_checks, gather_facts, render_checks, render_checks_json

    t = target_from(socket_path, config_path, runtime_endpoint)
    facts = gather_facts(
        endpoint=t.runtime_endpoint(), pod_cidr=t.setting("podCIDR", "pod_cidr"), cni_bridge=t.setting("cniBridge", "cni_bridge"),
        cni_conf_dir=t.setting("cniConfDir", "cni_conf_dir"), manifest_dir=t.setting("staticPodPath", "static_pod_path"),
        pod_logs_dir=t.setting("podLogsDir", "pod_logs_dir"), cgroup_driver=t.setting("cgroupDriver", "cgroup_driver"),
        resolv_conf=t.setting("resolvConf", "resolv_conf"))
    import dataclasses

    facts = dataclasses.replace(facts, cluster=_cluster_facts(t))
    checks = compute_checks(facts)
    if output == "json":
        click.echo(render_checks_json(checks), nl=False)
    else:
        click.echo(render_checks(checks, colour=lambda s, fg: style(s, fg)), nl=False)
    if any(c.status == FAIL for c in checks):
        raise click.exceptions.Exit(1)


def _cluster_facts(t: object) -> dict[str, Any] | None:
    """The daemon's cluster view; with the daemon down, a direct probe of the configured etcd; None: single node."""
    from kubelet.server.apiclient import APIClient

    try:
        return APIClient(t.socket_path, timeout=5).get("/api/v1/extra/cluster")  # type: ignore[attr-defined, return-value]
    except Exception:  # noqa: BLE001 - daemon down or not in cluster mode: look at the config
        pass
    try:
        c = t.config()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return None
    if c is None or not getattr(c, "etcd_endpoints", ()):
        return None
    import asyncio

    from kubelet.app import client_tls
    from kubelet.node.etcd import EtcdClient, EtcdError

    async def probe() -> dict[str, Any]:
        try:
            async with EtcdClient(c.etcd_endpoints, tls=client_tls(c), timeout=3) as cl:
                await cl.range(c.etcd_prefix + "/", prefix=True, limit=1)
                return {"connected": True, "endpoints": list(c.etcd_endpoints), "detail": f"etcd ok at {cl.endpoint} (daemon not running)"}
        except EtcdError as e:
            return {"connected": False, "endpoints": list(c.etcd_endpoints), "lastError": str(e)}

    return asyncio.run(probe())
