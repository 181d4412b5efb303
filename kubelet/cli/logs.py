"""`nodelet logs POD [-c C] [-f] [--previous] [--tail N] [--since D] [--timestamps]`: the container's CRI log files
(rotated ones included) read straight from the pod's log dir, as `kubectl logs` shows them."""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from kubelet.kuberuntime.crilogs import compute_log_file
from kubelet.server.apiclient import APIClientError
from kubelet.cli.completion import complete_pods
from kubelet.cli.common import (DEFAULT_NAMESPACE, Target, container_id, container_status, cri_options, fail,
                                fallback_note, find_pod, pick_container, run_cri, target_from)

__all__ = ["compute_log_file", "logs_cmd"]


def _pod_log_dir(target: Target, pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    base = target.setting("podLogsDir", "pod_logs_dir")
    return os.path.join(base, f"{meta['namespace']}_{meta['name']}_{meta['uid']}")


@click.command("logs")
@click.argument("pod_name", metavar="POD", shell_complete=complete_pods)
@click.option("-c", "--container", default=None, metavar="NAME", help="container (default: the only or first one)")
@click.option("-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True, metavar="NS")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines until the container stops")
@click.option("-p", "--previous", is_flag=True, help="the previous instance of the container (before its last restart)")
@click.option("--tail", type=int, default=-1, metavar="N", help="the last N lines only (-1: all)")
@click.option("--since", default=None, metavar="DURATION", help="lines newer than this (5s, 2m, 3h)")
@click.option("--timestamps", is_flag=True, help="prefix every line with its RFC 3339 timestamp")
@cri_options
def logs_cmd(pod_name: str, container: str | None, namespace: str, follow: bool, previous: bool, tail: int,
             since: str | None, timestamps: bool, socket_path: str | None, config_path: str | None,
             runtime_endpoint: str | None) -> None:
    """Print a container's logs from its CRI log files (works without the daemon)."""
    from kubelet.kuberuntime import crilogs
    since_ns = None
    if since is not None:
        from kubelet.config import ConfigError, parse_duration

        try:
            seconds = parse_duration(since)
        except (ConfigError, ValueError):
            raise click.BadParameter(f"{since!r} is not a duration (5s, 2m, 3h)", param_hint="--since") from None
        import time

        since_ns = time.time_ns() - int(seconds * 1e9)
    if previous and follow:
        raise click.UsageError("only one of follow (-f) or previous (-p) is allowed")
    target = target_from(socket_path, config_path, runtime_endpoint)
    pod, from_daemon = find_pod(target, pod_name, namespace)
    if not from_daemon:
        fallback_note("pod and logs")
    name = pick_container(pod, container)
    status = container_status(pod, name) or {}
    if status.get("logPath"):  # rebuilt from the runtime: it knows the file
        files = crilogs.list_container_logs(os.path.dirname(status["logPath"]))
    else:
        files = crilogs.list_container_logs(os.path.join(_pod_log_dir(target, pod), name))
    path = compute_log_file(files, restart_count=int(status.get("restartCount") or 0), previous=previous)
    if path is None:
        if previous:
            fail(f'previous terminated container "{name}" in pod "{pod_name}" not found')
        waiting = ((status.get("state") or {}).get("waiting") or {}).get("reason") or "not started"
        fail(f'container "{name}" in pod "{pod_name}" has no logs yet ({waiting})')
    try:
        limit = os.path.getsize(path) if follow else None
    except OSError:
        limit = 0
    out = sys.stdout.buffer
    try:
        lines = crilogs.read_log(path, tail=None if tail < 0 else tail, since_ns=since_ns, limit=limit)
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror or e} (container logs are root's: try sudo)")
    for line in lines:
        out.write(crilogs.render_line(line, timestamps=timestamps))
    out.flush()
    if not follow:
        return
    cid = container_id(status)

    def running() -> bool:
        return _still_running(target, pod, name, cid, from_daemon)

    try:
        for line in crilogs.follow_log(path, start_offset=limit or 0, still_running=running):
            out.write(crilogs.render_line(line, timestamps=timestamps))
            out.flush()
    except KeyboardInterrupt:
        pass


def _still_running(target: Target, pod: dict[str, Any], name: str, cid: str, from_daemon: bool) -> bool:
    meta = pod["metadata"]
    if from_daemon:
        try:
            fresh = target.client.get(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}")
        except APIClientError:
            return True  # the daemon restarting: keep following
        st = container_status(fresh, name) if isinstance(fresh, dict) else None
        return bool(st and container_id(st) == cid and "running" in (st.get("state") or {}))
    if not cid:
        return False

    async def state(client: Any) -> bool:
        import cri

        try:
            return (await client.container_status(cid)).state.name == "RUNNING"
        except cri.NotFound:
            return False

    return run_cri(target.runtime_endpoint(), state)
