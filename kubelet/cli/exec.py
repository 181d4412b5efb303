"""`nodelet exec POD [-c C] -- CMD…`: run a command in a container through the CRI's ExecSync (non-interactive);
its stdout and stderr are passed through and its exit code is ours."""
from __future__ import annotations

import sys
from typing import Any

import click

from kubelet.cli.completion import complete_pods
from kubelet.cli.common import (DEFAULT_NAMESPACE, container_id, container_status, cri_options, fail, fallback_note,
                                find_pod, pick_container, run_cri, target_from)

__all__ = ["exec_cmd"]


@click.command("exec")
@click.argument("pod_name", metavar="POD", shell_complete=complete_pods)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- COMMAND [ARG…]")
@click.option("-c", "--container", default=None, metavar="NAME", help="container (default: the only or first one)")
@click.option("-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True, metavar="NS")
@click.option("--timeout", type=float, default=0, metavar="SECONDS", help="kill the command after this long (0: no limit)")
@click.option("-i", "--stdin", "interactive", is_flag=True, help="pass stdin to the command (CRI streaming Exec)")
@click.option("-t", "--tty", is_flag=True, help="allocate a terminal (CRI streaming Exec; raw mode when stdin is one)")
@cri_options
def exec_cmd(pod_name: str, command: tuple[str, ...], container: str | None, namespace: str, timeout: float,
             interactive: bool, tty: bool, socket_path: str | None, config_path: str | None,
             runtime_endpoint: str | None) -> None:
    """Run COMMAND in a running container and exit with its exit code: CRI ExecSync, or with -i/-t the runtime's
    streaming server (stdin, terminal)."""
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise click.UsageError("no command given: nodelet exec POD -- COMMAND [ARG…]")
    target = target_from(socket_path, config_path, runtime_endpoint)
    pod, from_daemon = find_pod(target, pod_name, namespace)
    if not from_daemon:
        fallback_note("pod")
    name = pick_container(pod, container)
    st = container_status(pod, name) or {}
    cid = container_id(st)
    if not cid or "running" not in (st.get("state") or {}):
        fail(f"cannot exec into container {name} of pod {pod_name}: it is not running (see `nodelet describe pod {pod_name}`)")

    endpoint = target.runtime_endpoint()
    # kubectl's rules (StreamOptions.SetupTTY): -t needs -i, and -i's input must be a terminal
    if tty and not interactive:
        tty = False
    elif tty and not sys.stdin.isatty():
        tty = False
        click.echo("Unable to use a TTY - input is not a terminal or the right kind of file", err=True)
    if interactive:
        _exec_stream(endpoint, cid, list(command), interactive=interactive, tty=tty)
        return

    async def go(client: Any) -> Any:
        return await client.exec_sync(cid, list(command), timeout=timeout)

    result = run_cri(endpoint, go, mutate_timeout=24 * 3600.0)  # no limit of ours unless --timeout
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.buffer.flush()
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


def _exec_stream(endpoint: str, cid: str, command: list[str], *, interactive: bool, tty: bool) -> None:
    """-i/-t: the runtime's streaming Exec (WebSocket, v4.channel.k8s.io); the command's exit code is ours."""
    from kubelet.cli.stream import StreamError, run_exec_stream, terminal_size_of

    async def url(client: Any) -> str:
        return await client.exec_url(cid, command, tty=tty, stdin=interactive)

    exec_url = run_cri(endpoint, url)
    raw = tty  # -t survives only with -i on a terminal
    saved = None
    if raw:
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(sys.stdin.fileno())
        ttymod.setraw(sys.stdin.fileno(), termios.TCSANOW)  # TCSAFLUSH (the default) would drop typed-ahead input
    try:
        code, message = run_exec_stream(exec_url, stdin=sys.stdin.buffer if interactive else None, stdout=sys.stdout.buffer,
                                        stderr=sys.stderr.buffer, terminal_size=terminal_size_of if tty else lambda: None)
    except (StreamError, OSError) as e:
        fail(f"exec stream at {exec_url}: {e}")
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
    if message:
        click.echo(f"nodelet: {message}", err=True)
    if code:
        raise click.exceptions.Exit(code)
