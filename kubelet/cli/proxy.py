"""`nodelet proxy …`: the service proxy's maintenance commands."""
from __future__ import annotations

import click


@click.group("proxy")
def proxy_group() -> None:
    """Service proxy maintenance (rules nodelet programs for Services)."""


@proxy_group.command("cleanup")
@click.option("--mode", type=click.Choice(["iptables", "nftables", "all"]), default="all", show_default=True, help="which backend's rules to remove")
def cleanup_cmd(mode: str) -> None:
    """Remove every rule, chain and table nodelet created for Services — and nothing else."""
    from proxy.cleanup import cleanup_sync
    from proxy.errors import ProxyError

    try:
        summary = cleanup_sync(None if mode == "all" else mode)
    except ProxyError as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(summary))
