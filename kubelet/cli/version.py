"""`nodelet version`: the client's, the daemon's and the runtime's versions (each line says where it came from)."""
from __future__ import annotations

from typing import Any

import click

from kubelet.server.apiclient import APIClientError
from kubelet.cli.common import cri_options, target_from

__all__ = ["CLIENT_VERSION", "version_cmd"]

CLIENT_VERSION = "0.1.0"  # kept equal to kubelet.lifecycle.agent.VERSION by a test (importing the agent would slow the CLI)


@click.command("version")
@cri_options
@click.option("--client", "client_only", is_flag=True, help="the client's version only")
@click.option("-o", "--output", type=click.Choice(("json", "yaml")), default=None, help="output format")
def version_cmd(socket_path: str | None, config_path: str | None, runtime_endpoint: str | None, client_only: bool, output: str | None) -> None:
    """Print the versions of this client, the running daemon and the container runtime."""
    info: dict[str, Any] = {"clientVersion": {"nodeletVersion": CLIENT_VERSION}}
    errors: list[str] = []
    if not client_only:
        target = target_from(socket_path, config_path, runtime_endpoint)
        try:
            node = target.client.get("/api/v1/node")
            if isinstance(node, dict):
                info["daemonVersion"] = {"nodeletVersion": node.get("nodeletVersion", ""), "nodeName": node.get("name", ""),
                                         "socket": target.socket_path}
        except APIClientError as e:
            errors.append(str(e))
        endpoint = target.runtime_endpoint()
        info["runtimeVersion"] = _runtime_version(endpoint, errors)
    if output:
        from kubelet.server.printers import render_object

        click.echo(render_object(info, output), nl=False)
    else:
        click.echo(f"Client Version: nodelet {CLIENT_VERSION}")
        if "daemonVersion" in info:
            d = info["daemonVersion"]
            click.echo(f"Daemon Version: nodelet {d['nodeletVersion']} (node {d['nodeName']}, {d['socket']})")
        elif not client_only:
            click.echo("Daemon Version: not running")
        rv = info.get("runtimeVersion")
        if rv:
            click.echo(f"Runtime Version: {rv['runtimeName']} {rv['runtimeVersion']} (CRI {rv['runtimeApiVersion']}, {rv['endpoint']})")
        elif not client_only:
            click.echo("Runtime Version: unreachable")
    for err in errors:
        click.echo(f"nodelet: {err}", err=True)
    if errors:
        raise click.exceptions.Exit(1)


def _runtime_version(endpoint: str, errors: list[str]) -> dict[str, Any] | None:
    import asyncio

    import cri

    async def go() -> Any:
        async with cri.RuntimeClient(endpoint, timeout=5) as c:
            return await c.version()

    from kubelet.cli.common import missing_socket

    reason = missing_socket(endpoint)
    if reason:
        errors.append(f"cannot reach the container runtime at {endpoint}: {reason} (try --runtime-endpoint)")
        return None
    try:
        v = asyncio.run(go())
    except cri.CRIError as e:
        errors.append(f"cannot reach the container runtime at {endpoint}: {e.message} (try --runtime-endpoint)")
        return None
    return {"runtimeName": v.runtime_name, "runtimeVersion": v.runtime_version, "runtimeApiVersion": v.runtime_api_version,
            "endpoint": endpoint}
