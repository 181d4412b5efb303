"""`nodelet runtime …`: install, configure and run a containerd for nodelet, and import the local images."""
from __future__ import annotations

from pathlib import Path

import click

from kubelet.node.runtime.containerd import PrivateContainerd, RuntimeSetupError, ensure_packages, needs_restrict_oom_score_adj, render_config
from kubelet.node.runtime.images import BUSYBOX_IMAGE, PAUSE_IMAGE, ensure_images

DEFAULT_RUNTIME_DIR = "/var/lib/nodelet/runtime"


@click.group("runtime")
def runtime_group() -> None:
    """Set up the container runtime (containerd) nodelet talks to."""


def _instance(runtime_dir: str, cni_bin_dir: str | None, cgroup_driver: str = "cgroupfs") -> PrivateContainerd:
    return PrivateContainerd(runtime_dir, sandbox_image=PAUSE_IMAGE, cni_bin_dir=cni_bin_dir,
                             systemd_cgroup=cgroup_driver == "systemd")


_CGROUP_DRIVER = click.option("--cgroup-driver", type=click.Choice(("cgroupfs", "systemd")), default="cgroupfs",
                              show_default=True, help="the agent's cgroupDriver: containerd's SystemdCgroup is set to match")


@runtime_group.command("setup")
@click.option("--dir", "runtime_dir", default=DEFAULT_RUNTIME_DIR, show_default=True, help="base directory of the private containerd")
@click.option("--cni-bin-dir", default=None, help="where containerd looks for CNI plugins (default: /opt/cni/bin or /usr/lib/cni)")
@click.option("--no-install", is_flag=True, help="do not apt-get install containerd/runc when missing")
@_CGROUP_DRIVER
def setup(runtime_dir: str, cni_bin_dir: str | None, no_install: bool, cgroup_driver: str) -> None:
    """Install containerd and runc if missing, start a private containerd and import the local images. Shows
    progress: steps and image counts (a bar on a terminal, plain lines otherwise)."""
    from kubelet.node.progress import Progress

    progress = Progress(2 if no_install else 3)
    installed: list[str] = []
    try:
        if not no_install:
            progress.step("packages: containerd, runc, busybox-static (apt-get when missing)")
            installed = ensure_packages(("containerd", "runc", "busybox-static"))
        progress.step(f"containerd under {runtime_dir}")
        inst = _instance(runtime_dir, cni_bin_dir, cgroup_driver)
        inst.start()
        progress.step("images")
        imported = ensure_images(inst, cache_dir=Path(runtime_dir) / "images", progress=progress)
    except (RuntimeSetupError, OSError) as e:
        progress.finish()
        raise click.ClickException(str(e)) from e
    progress.finish()
    if installed:
        click.echo(f"installed: {', '.join(installed)}")
    click.echo(f"containerd running: {inst.endpoint} (config {inst.layout.config}, log {inst.layout.log_file})")
    click.echo(f"restrict_oom_score_adj: {'true (no CAP_SYS_RESOURCE)' if needs_restrict_oom_score_adj() else 'false'}")
    click.echo(f"images: {PAUSE_IMAGE} (sandbox), {BUSYBOX_IMAGE}" + (f"; imported {', '.join(imported)}" if imported else "; already present"))


@runtime_group.command("stop")
@click.option("--dir", "runtime_dir", default=DEFAULT_RUNTIME_DIR, show_default=True)
def stop(runtime_dir: str) -> None:
    """Stop the private containerd (running containers keep running in their shims)."""
    inst = _instance(runtime_dir, None)
    if inst.pid() is None:
        click.echo("not running")
        return
    inst.stop()
    click.echo("stopped")


@runtime_group.command("config")
@click.option("--dir", "runtime_dir", default=None, help="render the private instance's config instead of a system one")
@_CGROUP_DRIVER
def show_config(runtime_dir: str | None, cgroup_driver: str) -> None:
    """Print the containerd config nodelet would use on this host."""
    if runtime_dir:
        inst = _instance(runtime_dir, None)
        click.echo(render_config(sandbox_image=PAUSE_IMAGE, cni_bin_dirs=(inst.cni_bin_dir,), cni_conf_dir=str(inst.layout.cni_conf_dir), restrict_oom_score_adj=needs_restrict_oom_score_adj(), layout=inst.layout, systemd_cgroup=cgroup_driver == "systemd"), nl=False)
    else:
        click.echo(render_config(sandbox_image=PAUSE_IMAGE, restrict_oom_score_adj=needs_restrict_oom_score_adj(),
                                 systemd_cgroup=cgroup_driver == "systemd"), nl=False)


@runtime_group.command("images")
@click.option("--address", default=None, help="containerd socket (default: the private instance under --dir)")
@click.option("--dir", "runtime_dir", default=DEFAULT_RUNTIME_DIR, show_default=True)
@click.option("--force", is_flag=True, help="rebuild and re-import even if present")
def images(address: str | None, runtime_dir: str, force: bool) -> None:
    """Build and import the pause and busybox images (no registry needed)."""
    try:
        if address:
            done = ensure_images(address=address, force=force)
        else:
            done = ensure_images(_instance(runtime_dir, None), cache_dir=Path(runtime_dir) / "images", force=force)
    except RuntimeSetupError as e:
        raise click.ClickException(str(e)) from e
    click.echo("imported: " + (", ".join(done) if done else "nothing (already present)"))
