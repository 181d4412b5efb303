"""`nodelet completion bash|zsh|fish`: the shell completion script (click's own), and completion of pod names for the
commands that take a POD (asked of the daemon; nothing when it is down)."""
from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem

__all__ = ["complete_pods", "completion_cmd"]


def complete_pods(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Pod names in the namespace given so far (-n), from the daemon's API (quick timeout)."""
    from kubelet.server.apiclient import DEFAULT_SOCKET_PATH, APIClient, APIClientError

    ns = ctx.params.get("namespace") or "default"
    sock = ctx.params.get("socket_path") or os.environ.get("NODELET_SOCKET") or DEFAULT_SOCKET_PATH
    try:
        body = APIClient(sock, timeout=2).get(f"/api/v1/namespaces/{ns}/pods")
    except APIClientError:
        return []
    items: Any = body.get("items") if isinstance(body, dict) else None
    names = sorted(str((p.get("metadata") or {}).get("name", "")) for p in items or ())
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


@click.command("completion")
@click.argument("shell", type=click.Choice(("bash", "zsh", "fish")))
def completion_cmd(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  source <(nodelet completion bash)      # or save it in /etc/bash_completion.d/nodelet
    zsh:   source <(nodelet completion zsh)
    fish:  nodelet completion fish > ~/.config/fish/completions/nodelet.fish"""
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root().command
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(root, {}, "nodelet", "_NODELET_COMPLETE").source())
