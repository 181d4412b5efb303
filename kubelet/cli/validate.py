"""`nodelet validate FILE|DIR…`: the daemon's own manifest parsing, validation and defaulting, offline, with
file:line errors (exit 1 when any)."""
from __future__ import annotations

import os

import click

from kubelet.cli.common import fail

__all__ = ["validate_cmd"]


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, metavar="FILE|DIR…", type=click.Path())
@click.option("--node-name", default=None, metavar="NAME", help="node name static pods are suffixed with (default: --config's or the hostname)")
@click.option("--config", "config_path", default=None, metavar="FILE", help="the daemon's configuration file (for nodeName)")
@click.option("-q", "--quiet", is_flag=True, help="print errors only")
def validate_cmd(paths: tuple[str, ...], node_name: str | None, config_path: str | None, quiet: bool) -> None:
    """Check static pod manifests as the daemon would: every error as FILE:LINE: FIELD: REASON.

    A directory is read as the daemon reads its staticPodPath (*.yaml, *.yml, *.json in name order; a name taken
    twice is an error at the later place)."""
    from kubelet.manifest.parse import compute_manifest_set, list_manifest_files

    from kubelet.config import NodeletConfig

    node_port_range = NodeletConfig.node_port_range
    if config_path:
        from kubelet.cli.common import target_from

        config = target_from(None, config_path).config()
        node_name = node_name or config.node_name
        node_port_range = config.node_port_range
    if node_name is None:
        from kubelet.config import default_node_name

        node_name = default_node_name()
    total_errors = 0
    for path in paths:
        if not os.path.exists(path):
            fail(f"{path}: no such file or directory")
        try:
            files = list_manifest_files(path) or []
        except OSError as e:
            fail(f"{path}: cannot list: {e.strerror or e}")
        result = compute_manifest_set(path, node_name=node_name, node_port_range=node_port_range)
        # a Service (EndpointSlice…) its owner rejects is an error here, though the daemon keeps the file's pods
        errors = sorted(result.errors + result.object_errors, key=lambda e: (e.file, e.document, e.line))
        for err in errors:
            click.echo(str(err))
        total_errors += len(errors)
        if not quiet:
            rejected = {id(o) for o in result.others if o.kind in ("Service", "EndpointSlice", "Endpoints") and o.parsed is None}
            valid = [o for o in result.others if id(o) not in rejected]
            kinds = [f"{len(result.pods)} pod{'s' if len(result.pods) != 1 else ''}"]
            for kind in sorted({o.kind for o in valid}):
                n = sum(1 for o in valid if o.kind == kind)
                kinds.append(f"{n} {kind}{'s' if n != 1 else ''}")
            broken = len(result.broken_files | {e.file for e in result.object_errors})
            nfiles = len(files)
            summary = f"{path}: {nfiles} file{'s' if nfiles != 1 else ''}, {', '.join(kinds)} valid"
            if errors:
                summary += f"; {len(errors)} error{'s' if len(errors) != 1 else ''} in {broken} file{'s' if broken != 1 else ''}"
            click.echo(summary, err=bool(errors))
    if total_errors:
        raise click.exceptions.Exit(1)
