"""`nodelet kubeconfig [--user admin|viewer] [--merge [FILE]]`: a kubeconfig for nodelet's Kubernetes API, printed,
or merged into ~/.kube/config (or FILE) so plain `kubectl` talks to this node. Reads the PKI under rootDir/pki
(made by `nodelet run` on first start), so it needs read access there: run it as root and hand the file to the
user, e.g. `sudo nodelet kubeconfig --merge ~alice/.kube/config`, or `sudo nodelet kubeconfig --user viewer`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from kubelet.cli.common import fail

__all__ = ["compute_merged_kubeconfig", "kubeconfig_cmd"]


def compute_merged_kubeconfig(existing: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """`new`'s cluster, user and context replace entries of the same name in `existing`; it becomes current."""
    out = dict(existing or {"apiVersion": "v1", "kind": "Config", "preferences": {}})
    for section in ("clusters", "users", "contexts"):
        names = {e["name"] for e in new.get(section) or []}
        out[section] = [e for e in out.get(section) or [] if e.get("name") not in names] + list(new.get(section) or [])
    out["current-context"] = new["current-context"]
    return out


@click.command("kubeconfig")
@click.option("--config", "config_path", default=None, metavar="FILE", help="the daemon's configuration file")
@click.option("--user", "user", type=click.Choice(("admin", "viewer")), default="admin", show_default=True,
              help="admin (system:masters) or viewer (read-only: 403 on every write)")
@click.option("--merge", "merge", default=None, is_flag=False, flag_value="~/.kube/config", metavar="[FILE]",
              help="merge into FILE (default ~/.kube/config) and make it the current context, instead of printing")
@click.option("--server", default=None, metavar="URL", help="API URL to put in the file (default: from the configuration)")
def kubeconfig_cmd(config_path: str | None, user: str, merge: str | None, server: str | None) -> None:
    """Print (or merge) a kubeconfig for this node's Kubernetes API: `kubectl --kubeconfig FILE get pods`."""
    import yaml

    from kubelet.app import compute_api_url
    from kubelet.config import ConfigError, load_config
    from kubelet.server.apiserver.certs import Pki, render_kubeconfig, write_private_file

    try:
        config = load_config(config_path)
    except ConfigError as e:
        fail(str(e))
    pki = Pki(dir=Path(config.root_dir) / "pki")
    if not pki.ca_cert.exists() or not pki.client_key(user).exists():
        fail(f"no API certificates under {pki.dir}: start `nodelet run` once (it makes them), or run this as root")
    try:
        text = render_kubeconfig(pki, server=server or compute_api_url(config), node_name=config.node_name, user=user)
    except PermissionError as e:
        fail(f"cannot read {e.filename}: {e.strerror} (the API's keys are root's: try sudo)")
    if merge is None:
        click.echo(text, nl=False)
        return
    path = Path(os.path.expanduser(merge))
    existing = None
    if path.exists():
        try:
            existing = yaml.safe_load(path.read_text()) or None
        except (OSError, yaml.YAMLError) as e:
            fail(f"cannot read {path}: {e}")
    merged = compute_merged_kubeconfig(existing, yaml.safe_load(text))
    write_private_file(path, yaml.safe_dump(merged, sort_keys=False).encode(), 0o600)
    click.echo(f"merged context {merged['current-context']!r} into {path} (now the current context)")
