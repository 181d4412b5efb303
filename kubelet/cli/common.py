"""What every `nodelet` diagnostics command shares: options (--socket, --config, --runtime-endpoint), finding the
runtime endpoint as crictl does, one-line failures with stable exit codes, colour only on a TTY, finding a pod through
the daemon or — when the daemon is down — straight from the CRI (kubelet labels), and running one CRI coroutine.

Heavy modules (grpc, cri, asyncio, yaml) are imported inside the functions that need them: `nodelet --help` and the
API-only commands stay fast."""
from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import click

from kubelet.server.apiclient import DEFAULT_SOCKET_PATH, APIClient, APIClientError, APIError, APIUnavailable

__all__ = [
    "AliasedGroup", "CRICTL_CONFIG", "DEFAULT_NAMESPACE", "DEFAULT_RUNTIME_ENDPOINT", "Target", "cri_options", "fail", "fallback_note",
    "find_pod", "missing_socket", "parse_crictl_endpoint", "resolve_runtime_endpoint", "run_cri", "style", "target_from",
]

T = TypeVar("T")

DEFAULT_NAMESPACE = "default"
DEFAULT_RUNTIME_ENDPOINT = "unix:///run/containerd/containerd.sock"
CRICTL_CONFIG = "/etc/crictl.yaml"
EXIT_ERROR = 1


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """One line on stderr naming what failed (and what to try), then exit `code` (1 error, 2 usage)."""
    click.echo(f"nodelet: {message}", err=True)
    raise click.exceptions.Exit(code)


def style(text: str, fg: str, *, err: bool = False) -> str:
    """Colour only when the stream is a terminal (and NO_COLOR is unset)."""
    stream = sys.stderr if err else sys.stdout
    if os.environ.get("NO_COLOR") or not getattr(stream, "isatty", lambda: False)():
        return text
    return click.style(text, fg=fg, bold=fg == "red")


def fallback_note(what: str) -> None:
    click.echo(f"nodelet: daemon not reachable; {what} read from the container runtime directly", err=True)


class AliasedGroup(click.Group):
    """Subcommands also reachable under kubectl's other names (`aliases={"po": "pods"}`), listed once in --help."""

    def __init__(self, *args: Any, aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases = aliases or {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        _, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else None), cmd, rest


# --- options and where things are -------------------------------------------------------------------------------------

@dataclass(kw_only=True)
class Target:
    """Where the daemon and the runtime are, from the flags, the config file and the crictl conventions."""

    socket_path: str
    config_path: str | None
    runtime_endpoint_flag: str | None
    _config: Any = field(default=None, repr=False)
    _node: dict[str, Any] | None = field(default=None, repr=False)
    _node_tried: bool = field(default=False, repr=False)

    @property
    def client(self) -> APIClient:
        return APIClient(self.socket_path)

    def config(self) -> Any:
        """The daemon's NodeletConfig from --config (defaults without it). A bad file is a one-line error."""
        if self._config is None:
            from kubelet.config import ConfigError, load_config

            try:
                self._config = load_config(self.config_path)
            except ConfigError as e:
                fail(str(e), 2)
            except OSError as e:
                fail(f"cannot read the configuration {self.config_path}: {e.strerror or e}")
        return self._config

    def node(self) -> dict[str, Any] | None:
        """The daemon's /api/v1/node, or None when the daemon is not reachable."""
        if not self._node_tried:
            self._node_tried = True
            try:
                body = self.client.get("/api/v1/node")
                self._node = body if isinstance(body, dict) else None
            except APIClientError:
                self._node = None
        return self._node

    def runtime_endpoint(self) -> str:
        return resolve_runtime_endpoint(
            flag=self.runtime_endpoint_flag, env=os.environ.get("CONTAINER_RUNTIME_ENDPOINT"),
            config_value=self.config().container_runtime_endpoint if self.config_path else None,
            daemon_value=(self.node() or {}).get("runtimeEndpoint"), crictl_value=_read_crictl_endpoint())

    def setting(self, node_key: str, attr: str) -> Any:
        """A daemon setting: from --config when given, else what the running daemon reports, else the default."""
        if self.config_path:
            return getattr(self.config(), attr)
        value = (self.node() or {}).get(node_key)
        return value if value not in (None, "") else getattr(self.config(), attr)


def parse_crictl_endpoint(text: str) -> str | None:
    """`runtime-endpoint:` of a crictl.yaml (crictl's own key); None when absent or the file is not YAML."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    value = data.get("runtime-endpoint") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def _read_crictl_endpoint(path: str = CRICTL_CONFIG) -> str | None:
    path = os.environ.get("CRI_CONFIG_FILE", path)
    try:
        with open(path, encoding="utf-8") as f:
            return parse_crictl_endpoint(f.read())
    except OSError:
        return None


def resolve_runtime_endpoint(*, flag: str | None, env: str | None, config_value: str | None, daemon_value: str | None,
                             crictl_value: str | None) -> str:
    """--runtime-endpoint, then $CONTAINER_RUNTIME_ENDPOINT (crictl's), then --config's containerRuntimeEndpoint, then
    the running daemon's, then /etc/crictl.yaml's runtime-endpoint, then containerd's default socket."""
    for value in (flag, env, config_value, daemon_value, crictl_value):
        if value:
            return value
    return DEFAULT_RUNTIME_ENDPOINT


def socket_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--socket", "socket_path", envvar="NODELET_SOCKET", default=None, metavar="PATH",
                        help=f"the agent's API socket (env NODELET_SOCKET; default: --config's apiSocket or {DEFAULT_SOCKET_PATH})")(f)


def cri_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--socket, --config and --runtime-endpoint (all optional)."""
    f = click.option("-r", "--runtime-endpoint", default=None, metavar="ENDPOINT",
                     help="CRI socket (default: $CONTAINER_RUNTIME_ENDPOINT, the config, the daemon's, /etc/crictl.yaml)")(f)
    f = click.option("--config", "config_path", default=None, metavar="FILE", help="the daemon's configuration file")(f)
    return socket_option(f)


def target_from(socket_path: str | None, config_path: str | None, runtime_endpoint: str | None = None) -> Target:
    t = Target(socket_path=socket_path or DEFAULT_SOCKET_PATH, config_path=config_path, runtime_endpoint_flag=runtime_endpoint)
    if socket_path is None and config_path:
        t.socket_path = t.config().api_socket
    return t


# --- the CRI ----------------------------------------------------------------------------------------------------------

def missing_socket(endpoint: str) -> str | None:
    """The reason a unix endpoint certainly cannot answer (no socket file), without the client's retry wait."""
    path = endpoint[len("unix://"):] if endpoint.startswith("unix://") else endpoint[5:] if endpoint.startswith("unix:") else endpoint if endpoint.startswith("/") else None
    if path is not None and not os.path.exists(path):
        return f"no socket at {path}"
    return None


def run_cri(endpoint: str, fn: Callable[[Any], Awaitable[T]], *, timeout: float = 10.0, mutate_timeout: float = 120.0) -> T:
    """Run `fn(client)` with a RuntimeClient on `endpoint`; CRI errors become one-line failures."""
    import asyncio

    import cri

    async def go() -> T:
        async with cri.RuntimeClient(endpoint, timeout=timeout, mutate_timeout=mutate_timeout) as client:
            return await fn(client)

    reason = missing_socket(endpoint)
    if reason:
        fail(f"cannot reach the container runtime at {endpoint}: {reason} (is containerd running? try --runtime-endpoint)")
    try:
        return asyncio.run(go())
    except cri.Unavailable as e:
        fail(f"cannot reach the container runtime at {endpoint}: {e.message} (is containerd running? try --runtime-endpoint)")
    except cri.CRIError as e:
        fail(f"container runtime at {endpoint}: {e.message}")


# --- pods -------------------------------------------------------------------------------------------------------------

def find_pod(target: Target, name: str, namespace: str) -> tuple[dict[str, Any], bool]:
    """(pod, from_daemon): the v1 Pod from the daemon, or — when the daemon is down — one rebuilt from the CRI."""
    try:
        body = target.client.get(f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}")
        if not isinstance(body, dict):
            fail(f"unexpected answer from the daemon for pod {namespace}/{name}")
        return body, True
    except APIUnavailable:
        pass
    except APIError as e:
        if e.code == 404:
            fail(f'pods "{name}" not found in namespace {namespace} (try `nodelet get pods -A`)')
        fail(str(e))
    from kubelet.cli.fallback import list_runtime_pods

    endpoint = target.runtime_endpoint()
    node = target.config().node_name
    pods = run_cri(endpoint, lambda c: list_runtime_pods(c, node=node))
    for pod in pods:
        meta = pod["metadata"]
        if meta["name"] == name and meta["namespace"] == namespace:
            return pod, False
    fail(f'pods "{name}" not found in namespace {namespace}: the daemon at {target.socket_path} is down and the runtime '
         f"at {endpoint} has no such pod of node {node} (try --config)")


def container_id(status: dict[str, Any]) -> str:
    """`containerd://abc…` → `abc…`."""
    cid = str(status.get("containerID") or "")
    return cid.split("://", 1)[-1]


def pick_container(pod: dict[str, Any], container: str | None) -> str:
    """The named container, or the only/default one as kubectl picks it (kubectl.kubernetes.io/default-container)."""
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or ()]
    init = [c.get("name") for c in spec.get("initContainers") or ()]
    pname = (pod.get("metadata") or {}).get("name", "")
    if container:
        if container not in names and container not in init:
            fail(f"container {container} is not valid for pod {pname}: choose one of: [{' '.join(init + names)}]")
        return container
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if isinstance(default, str) and default in names:
        return default
    if not names:
        fail(f"pod {pname} has no containers")
    if len(names) > 1:
        click.echo(f'Defaulted container "{names[0]}" out of: {", ".join(names + [f"{n} (init)" for n in init])}', err=True)
    return names[0]


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    st = pod.get("status") or {}
    for c in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
        if c.get("name") == name:
            return c
    return None
