"""`nodelet get pods|events`: the agent's pods and events from its local API, printed as kubectl prints them."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NoReturn
from urllib.parse import quote, urlencode

import click

from kubelet.server.apiclient import DEFAULT_SOCKET_PATH, APIClient, APIClientError, APIUnavailable
from kubelet.server.printers import render_events_table, render_list, render_names, render_object, render_pods_table

__all__ = ["get_group"]

OUTPUT_FORMATS = ("wide", "json", "yaml", "name")
DEFAULT_NAMESPACE = "default"  # kubectl's namespace when the kubeconfig names none


class _AliasedGroup(click.Group):
    """Subcommands reachable under kubectl's short names (pod, po, ev)."""

    aliases: dict[str, str] = {"pod": "pods", "po": "pods", "event": "events", "ev": "events", "service": "services",
                               "svc": "services", "ep": "endpoints", "node": "nodes", "no": "nodes"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        _, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else None), cmd, rest


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _fail(message: str) -> NoReturn:
    click.echo(f"nodelet: {message}", err=True)
    raise click.exceptions.Exit(1)


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-w", "--watch", is_flag=True, help="after listing, print each change (Ctrl-C to stop)")(f)
    f = click.option("--socket", "socket_path", envvar="NODELET_SOCKET", default=None,
                     metavar="PATH", help=f"the agent's API socket (env NODELET_SOCKET; default: --config's apiSocket or {DEFAULT_SOCKET_PATH})")(f)
    f = click.option("-l", "--selector", default="", metavar="SELECTOR",
                     help="label selector: a=b,c!=d,e,!f,g in (x,y)")(f)
    f = click.option("-A", "--all-namespaces", is_flag=True, help="list across all namespaces")(f)
    f = click.option("-n", "--namespace", default=None, metavar="NS", help=f"namespace (default: {DEFAULT_NAMESPACE})")(f)
    f = click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default=None, help="output format")(f)
    return f


def _fetch(client: APIClient, path: str) -> Any:
    try:
        return client.get(path)
    except APIClientError as e:
        _fail(str(e))


def _list_path(resource: str, namespace: str | None, selector: str) -> str:
    base = f"/api/v1/namespaces/{quote(namespace, safe='')}/{resource}" if namespace else f"/api/v1/{resource}"
    return base + (f"?{urlencode({'labelSelector': selector})}" if selector else "")


def _runtime_pods(ns: str | None, selector: str, config_path: str | None, runtime_endpoint: str | None,
                  socket_path: str) -> list[dict[str, Any]]:
    """The daemon is down: the node's pods as the runtime shows them (kubelet labels), filtered like the API does."""
    from kubelet.server.api import SelectorError, compute_selector_match, parse_label_selector
    from kubelet.cli.common import fallback_note, missing_socket, run_cri, target_from
    from kubelet.cli.fallback import list_runtime_pods

    try:
        reqs = parse_label_selector(selector)
    except SelectorError as e:
        raise click.BadParameter(str(e), param_hint="-l") from None
    target = target_from(socket_path, config_path, runtime_endpoint)
    endpoint = target.runtime_endpoint()
    reason = missing_socket(endpoint)
    if reason:
        _fail(f"{APIUnavailable(target.socket_path)}; no runtime to fall back to at {endpoint} ({reason})")
    node = target.config().node_name  # the daemon's pods only: io.nodelet.node=<nodeName>
    pods = run_cri(endpoint, lambda c: list_runtime_pods(c, node=node))
    fallback_note("pods")
    return [p for p in pods if (ns is None or p["metadata"]["namespace"] == ns)
            and compute_selector_match(reqs, p["metadata"].get("labels"))]


def _run_get(*, resource: str, names: tuple[str, ...], output: str | None, namespace: str | None,
             all_namespaces: bool, selector: str, socket_path: str | None, config_path: str | None = None,
             runtime_endpoint: str | None = None, watch: bool = False) -> None:
    if names and all_namespaces:
        raise click.UsageError("a resource cannot be retrieved by name across all namespaces")
    if names and selector:
        raise click.UsageError("when names are given, a selector (-l) cannot be used")
    ns = None if all_namespaces else (namespace or DEFAULT_NAMESPACE)
    if socket_path is None:
        if config_path:
            from kubelet.cli.common import target_from

            socket_path = target_from(None, config_path).socket_path
        else:
            socket_path = DEFAULT_SOCKET_PATH
    client = APIClient(socket_path)
    items: list[dict[str, Any]] = []
    errors: list[str] = []
    fallback = None
    if resource == "pods":
        try:
            client.get("/healthz")
        except APIUnavailable:
            fallback = _runtime_pods(ns, selector, config_path, runtime_endpoint, socket_path)
    if fallback is not None:
        items = [p for p in fallback if not names or p["metadata"]["name"] in names]
        errors = [f'pods "{n}" not found' for n in names if n not in {p["metadata"]["name"] for p in items}]
    elif names:
        if resource != "pods":
            raise click.UsageError("events cannot be retrieved by name here; list them")
        for name in names:
            try:
                obj = client.get(f"/api/v1/namespaces/{quote(ns or '', safe='')}/pods/{quote(name, safe='')}")
            except APIClientError as e:
                if getattr(e, "code", None) == 404:
                    errors.append(str(e))
                    continue
                _fail(str(e))
            items.append(obj)  # type: ignore[arg-type]
    else:
        body = _fetch(client, _list_path(resource, ns, selector))
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            _fail(f"unexpected answer from the daemon for {resource}")
        items = body["items"]

    now = _now()
    singular = resource.rstrip("s")
    if output in ("json", "yaml"):
        if len(names) == 1 and items:
            click.echo(render_object(items[0], output), nl=False)
        elif items or not names:
            click.echo(render_list(items, "List", output), nl=False)
    elif output == "name":
        click.echo(render_names(items, singular), nl=False)
    elif items:
        render = render_pods_table if resource == "pods" else render_events_table
        click.echo(render(items, wide=output == "wide", now=now, all_namespaces=ns is None), nl=False)
    elif not names:
        click.echo(f"No resources found in {ns} namespace." if ns else "No resources found", err=True)
    for err in errors:
        click.echo(f"nodelet: {err}", err=True)
    if errors:
        sys.stdout.flush()
        raise click.exceptions.Exit(1)
    if watch:
        if fallback is not None:
            _fail("--watch needs the daemon (the runtime fallback lists once)")
        _watch(client, resource=resource, names=names, items=items, output=output, ns=ns, selector=selector)


_WATCH_INTERVAL = 1.0


def _sleep(seconds: float) -> None:  # tests replace it to drive the watch loop
    import time

    time.sleep(seconds)


def _watch_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _watch(client: APIClient, *, resource: str, names: tuple[str, ...], items: list[dict[str, Any]], output: str | None,
           ns: str | None, selector: str) -> None:
    """kubectl get -w: poll the daemon and print every object whose printed row (AGE aside) or content changed."""
    from kubelet.server.printers import compute_events_rows, compute_pods_rows, compute_widths, render_row

    wide = output == "wide"
    compute = compute_pods_rows if resource == "pods" else compute_events_rows
    # the column that changes every second by itself: AGE (pods), LAST SEEN (events)
    age = (4 if resource == "pods" else 0) + (ns is None)

    def table(objs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
        return compute(objs, wide=wide, now=_now(), all_namespaces=ns is None)

    def fingerprint(obj: dict[str, Any], row: list[str]) -> Any:
        if output in ("json", "yaml", "name") or resource == "events":  # an event's update (count) is news too
            return json.dumps(obj, sort_keys=True)
        cells = row[:age] + row[age + 1:]
        if resource == "pods":  # RESTARTS "5 (3m ago)": its age moves by itself too
            i = 3 + (ns is None)
            cells[i] = cells[i].split(" ")[0]
        return cells

    header, first_rows = table(items)
    widths = compute_widths(header, first_rows)
    state = {_watch_key(o): fingerprint(o, r) for o, r in zip(items, first_rows)}
    header_shown = bool(items) or output in ("json", "yaml", "name")
    try:
        while True:
            sys.stdout.flush()
            _sleep(_WATCH_INTERVAL)
            try:
                body = client.get(_list_path(resource, ns, selector))
            except APIClientError as e:
                click.echo(f"nodelet: {e} (still watching)", err=True)
                continue
            objs = [o for o in (body.get("items") if isinstance(body, dict) else None) or []
                    if not names or (o.get("metadata") or {}).get("name") in names]
            _, rows = table(objs)
            for o, row in zip(objs, rows):
                key, value = _watch_key(o), fingerprint(o, row)
                if state.get(key) == value:
                    continue
                state[key] = value
                if output in ("json", "yaml"):
                    click.echo(render_object(o, output), nl=False)
                elif output == "name":
                    click.echo(render_names([o], resource.rstrip("s")), nl=False)
                else:
                    if not header_shown:
                        widths = compute_widths(header, rows)
                        click.echo(render_row(header, widths), nl=False)
                        header_shown = True
                    click.echo(render_row(row, widths), nl=False)
    except KeyboardInterrupt:
        return


@click.group("get", cls=_AliasedGroup)
def get_group() -> None:
    """Show what the running agent manages (like kubectl get)."""


@get_group.command("pods")
@click.argument("names", nargs=-1)
@_common
@click.option("-r", "--runtime-endpoint", default=None, metavar="ENDPOINT", help="CRI socket, when the daemon is down")
@click.option("--config", "config_path", default=None, metavar="FILE", help="the daemon's configuration file")
def get_pods(names: tuple[str, ...], output: str | None, namespace: str | None, all_namespaces: bool, selector: str,
             socket_path: str, watch: bool, runtime_endpoint: str | None, config_path: str | None) -> None:
    """List pods (aliases: pod, po), or show the named ones. When the daemon is down, from the runtime directly."""
    _run_get(resource="pods", names=names, output=output, namespace=namespace, all_namespaces=all_namespaces,
             selector=selector, socket_path=socket_path, config_path=config_path, runtime_endpoint=runtime_endpoint,
             watch=watch)


@get_group.command("events")
@_common
@click.option("--config", "config_path", default=None, metavar="FILE", help="the daemon's configuration file")
def get_events(output: str | None, namespace: str | None, all_namespaces: bool, selector: str, socket_path: str | None,
               watch: bool, config_path: str | None) -> None:
    """List events (alias: ev), oldest first."""
    _run_get(resource="events", names=(), output=output, namespace=namespace, all_namespaces=all_namespaces,
             selector=selector, socket_path=socket_path, watch=watch, config_path=config_path)


from kubelet.cli.services import endpoints_cmd, services_cmd  # noqa: E402  (the proxy's view, its own module)

get_group.add_command(services_cmd)
get_group.add_command(endpoints_cmd)
from kubelet.cli.cluster import nodes_cmd  # noqa: E402  (every node of the cluster)

get_group.add_command(nodes_cmd)
