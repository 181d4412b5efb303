"""`nodelet`: the daemon (`nodelet run`) and the node-level CLI."""
from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import click

from kubelet.cli.completion import completion_cmd
from kubelet.cli.describe import describe_group
from kubelet.cli.doctor import doctor_cmd
from kubelet.cli.exec import exec_cmd
from kubelet.cli.get import get_group
from kubelet.cli.kubeconfig import kubeconfig_cmd
from kubelet.cli.logs import logs_cmd
from kubelet.cli.net import net_cmd
from kubelet.cli.proxy import proxy_group
from kubelet.cli.runtime import runtime_group
from kubelet.cli.top import top_group
from kubelet.cli.validate import validate_cmd
from kubelet.cli.version import version_cmd
from kubelet.config import ConfigError, config_keys, load_config

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT)
def cli() -> None:
    """nodelet: a kubelet-style node agent — static pods on containerd, pod networking, service rules, probes."""


def _config_options(fn: Any) -> Any:
    """One --flag per configuration key (flags override the config file)."""
    for key in reversed(config_keys()):
        fn = click.option(key.flag, key.attr, default=None, metavar=key.type.upper().replace(" ", "_"), help=f"{key.help} [config: {key.key}, default {key.default}]")(fn)
    return fn


@cli.command("run")
@click.option("--config", "config_path", default=None, metavar="FILE", help="KubeletConfiguration v1beta1 and/or NodeletConfiguration YAML (flags override it)")
@click.option("-v", "--verbose", count=True, help="more logging (-v info is default; -vv debug)")
@_config_options
def run_cmd(config_path: str | None, verbose: int, **flags: Any) -> None:
    """Run the node agent: keep the pods of the static manifest directory running."""
    overrides = {k.key: flags[k.attr] for k in config_keys() if flags.get(k.attr) is not None}
    try:
        config = load_config(config_path, overrides)
    except ConfigError as err:
        click.echo(f"nodelet: {err}", err=True)
        sys.exit(2)
    logging.basicConfig(
        level=logging.DEBUG if verbose >= 2 else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("grpc").setLevel(logging.WARNING)
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack to the log
    from kubelet import app  # the daemon's imports stay off the CLI's fast path

    try:
        asyncio.run(app.run(config))
    except KeyboardInterrupt:
        pass
    except Exception as err:  # one line, not a traceback, for what the user can fix
        from kubelet.node.etcd import ConfigError as EtcdConfigError
        from kubelet.node.etcd import EtcdError
        from kubelet.server.api import LocalAPIError

        if isinstance(err, (LocalAPIError, EtcdConfigError)) or (isinstance(err, EtcdError) and not err.retryable):
            click.echo(f"nodelet: {err}", err=True)
            sys.exit(1)
        raise


cli.add_command(runtime_group)
cli.add_command(proxy_group)
cli.add_command(get_group)
from kubelet.cli.install import install_cmd  # noqa: E402  (the host installer)
cli.add_command(install_cmd)
cli.add_command(version_cmd)
cli.add_command(validate_cmd)
cli.add_command(logs_cmd)
cli.add_command(describe_group)
cli.add_command(exec_cmd)
cli.add_command(doctor_cmd)
cli.add_command(top_group)
cli.add_command(net_cmd)
cli.add_command(completion_cmd)
cli.add_command(kubeconfig_cmd)
from kubelet.cli.cluster import cluster_group  # noqa: E402
cli.add_command(cluster_group)


def main() -> None:
    cli(prog_name="nodelet")


if __name__ == "__main__":
    main()
