"""`nodelet install [--uninstall]`: the idempotent host installer (kubelet/node/install.py) as a CLI command."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kubelet.node.install import DEFAULT_CNI_BIN_DIR, DEFAULT_VENV, InstallError, InstallOptions, default_source, render_report, run_install


@click.command("install")
@click.option("--uninstall", is_flag=True, help="remove what the installer installed (edited files are kept)")
@click.option("--root", default="/", show_default=True, help="install under this directory instead of / (tests, images)")
@click.option("--source", default=None, help="nodelet source tree [default: the checkout nodelet runs from]")
@click.option("--venv", default=DEFAULT_VENV, show_default=True, help="virtual environment path on the target")
@click.option("--python", "python", default=sys.executable, help="interpreter that creates the venv [default: this one]")
@click.option("--system-site-packages", is_flag=True, help="the venv reuses the interpreter's installed packages (no dependency downloads)")
@click.option("--no-apt", is_flag=True, help="do not install Debian packages")
@click.option("--no-activate", is_flag=True, help="write files only (no modprobe, sysctl, systemctl)")
@click.option("--dry-run", is_flag=True, help="say what would change, change nothing")
@click.option("--cni-bin-dir", default=DEFAULT_CNI_BIN_DIR, show_default=True)
@click.option("--manifest-dir", default="/etc/kubernetes/manifests", show_default=True)
@click.option("--node-name", default="", help="nodeName written into /etc/nodelet/config.yaml")
@click.option("--node-ip", default="", help="nodeIP written into /etc/nodelet/config.yaml")
@click.option("--pod-cidr", default="", help="podCIDR written into /etc/nodelet/config.yaml")
@click.option("--etcd-endpoints", default="", help="etcdEndpoints (comma-separated URLs) written into /etc/nodelet/config.yaml")
@click.option("--etcd-ca-file", default="", help="etcdCAFile written into /etc/nodelet/config.yaml")
@click.option("--etcd-cert-file", default="", help="etcdCertFile written into /etc/nodelet/config.yaml")
@click.option("--etcd-key-file", default="", help="etcdKeyFile written into /etc/nodelet/config.yaml")
@click.option("--cluster-cidr", default="", help="clusterCIDR written into /etc/nodelet/config.yaml")
@click.option("--cgroup-driver", type=click.Choice(("cgroupfs", "systemd")), default="cgroupfs", show_default=True,
              help="cgroupDriver written into /etc/nodelet/config.yaml; containerd's SystemdCgroup is written to match")
def install_cmd(uninstall: bool, root: str, source: str | None, venv: str, python: str, system_site_packages: bool, no_apt: bool,
                no_activate: bool, dry_run: bool, cni_bin_dir: str, manifest_dir: str, node_name: str, node_ip: str,
                pod_cidr: str, etcd_endpoints: str, etcd_ca_file: str, etcd_cert_file: str, etcd_key_file: str,
                cluster_cidr: str, cgroup_driver: str) -> None:
    """Install nodelet as a systemd service (apt packages, venv, CNI plugin, units, config); re-running changes nothing."""
    if os.geteuid() != 0 and Path(root).resolve() == Path("/") and not dry_run:
        raise click.UsageError("run as root (or pass --root DIR / --dry-run)")
    opts = InstallOptions(
        source=Path(source).resolve() if source else default_source(), root=Path(root).resolve(), venv=venv, python=python,
        system_site_packages=system_site_packages, apt=not no_apt, activate=not no_activate, dry_run=dry_run,
        cni_bin_dir=cni_bin_dir, manifest_dir=manifest_dir, node_name=node_name, node_ip=node_ip, pod_cidr=pod_cidr,
        etcd_endpoints=etcd_endpoints, etcd_ca_file=etcd_ca_file, etcd_cert_file=etcd_cert_file,
        etcd_key_file=etcd_key_file, cluster_cidr=cluster_cidr, cgroup_driver=cgroup_driver,
    )
    from kubelet.node.progress import SILENT, Progress

    progress = SILENT if uninstall else Progress(0)  # the installer sets the step count
    try:
        report = run_install(opts, uninstall=uninstall, progress=progress)
    except InstallError as e:
        if isinstance(progress, Progress):
            progress.finish()
        raise click.ClickException(str(e)) from e
    if isinstance(progress, Progress):
        progress.finish()
    for line in render_report(report, uninstall=uninstall, dry_run=dry_run):
        click.echo(line)
