"""kubectl's output, as pure functions over Kubernetes-shaped dicts: `get pods`/`get events` tables (printPod and
printEvent of pkg/printers/internalversion, laid out like cli-runtime's tabwriter: min width 6, padding 3), human
durations (apimachinery's duration.HumanDuration) and `-o json|yaml|name` (cli-runtime's printers)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "compute_events_rows", "compute_pod_cells", "compute_pods_rows", "compute_widths", "parse_time", "render_events_table", "render_human_duration", "render_json", "render_list",
    "render_names", "render_object", "render_pods_table", "render_row", "render_table", "render_tabwriter", "render_yaml",
]

TAB_MIN_WIDTH = 6
TAB_PADDING = 3


# --- time ------------------------------------------------------------------------------------------------------------

def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (metav1.Time / MicroTime) → aware datetime; None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    from kubelet.clock import parse_rfc3339  # Python 3.10's fromisoformat takes neither "Z" nor nanoseconds

    seconds = parse_rfc3339(value)
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def render_human_duration(d: timedelta) -> str:
    """duration.HumanDuration: 45s, 5m12s, 12m, 3h4m, 10h, 2d3h, 400d, 3y20d, 9y."""
    seconds = int(d.total_seconds())  # Go's int(d.Seconds()) truncates toward zero
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime) -> str:
    t = parse_time(value)
    return "<unknown>" if t is None else render_human_duration(now - t)


# --- tables ----------------------------------------------------------------------------------------------------------

def render_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells aligned as Go's tabwriter does for kubectl: every column but the last padded to max(6, widest + 3)."""
    lines = [list(header)] + [list(r) for r in rows]
    ncols = len(header)
    widths = [max(TAB_MIN_WIDTH, max(len(line[i]) for line in lines) + TAB_PADDING) for i in range(ncols - 1)]
    out = []
    for line in lines:
        cells = [line[i].ljust(widths[i]) for i in range(ncols - 1)] + [line[-1]]
        out.append("".join(cells))
    return "\n".join(out) + "\n"


def render_tabwriter(text: str, *, minwidth: int = 0, padding: int = 2) -> str:
    """Go's text/tabwriter with padchar ' ' and no flags (what `kubectl describe` writes through): tab-terminated
    cells are aligned per column block (consecutive lines having that column); a line without a tab ends every block."""
    lines = text.split("\n")
    trailing = lines[-1] == ""
    if trailing:
        lines.pop()
    cells = [ln.split("\t") for ln in lines]
    out: list[str] = []

    def write(a: int, b: int, widths: list[int]) -> None:
        for row in cells[a:b]:
            parts = []
            for j, c in enumerate(row):
                parts.append(c.ljust(widths[j]) if j < len(widths) and j < len(row) - 1 else c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int, widths: list[int]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(cells[this]) - 1:
                this += 1
                continue
            write(line0, this, widths)
            line0 = this
            width = minwidth
            while this < line1 and column < len(cells[this]) - 1:
                width = max(width, len(cells[this][column]) + padding)
                this += 1
            fmt(line0, this, widths + [width])
            line0 = this
        write(line0, line1, widths)

    start = 0
    for i, row in enumerate(cells):
        if len(row) == 1:  # a line without cells flushes: blocks never span it
            fmt(start, i + 1, [])
            start = i + 1
    fmt(start, len(cells), [])
    return "\n".join(out) + ("\n" if trailing else "")


def _restartable(spec: Mapping[str, Any] | None) -> bool:
    return bool(spec) and spec.get("restartPolicy") == "Always"  # type: ignore[union-attr]


def _terminated_reason(term: Mapping[str, Any], prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _condition_true(status: Mapping[str, Any], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in status.get("conditions") or ())


def compute_pod_cells(pod: Mapping[str, Any], *, now: datetime) -> tuple[str, str, str, str, str]:
    """NAME, READY, STATUS, RESTARTS, AGE exactly as kubectl's printPod computes them."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = spec.get("containers") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(containers) + sum(1 for c in init_specs.values() if _restartable(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def later(a: datetime | None, st: Mapping[str, Any]) -> datetime | None:
        t = parse_time(((st.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        return t if t is not None and (a is None or t > a) else a

    initializing = False
    n_init = len(spec.get("initContainers") or [])
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = later(last_restart, cs)
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = later(last_sidecar_restart, cs)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            reason = _terminated_reason(term, "Init:")
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = later(last_restart, cs)
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts and last_restart is not None:
        restarts_str = f"{restarts} ({render_human_duration(now - last_restart)} ago)"
    return (meta.get("name", ""), f"{ready}/{total}", reason, restarts_str, _since(meta.get("creationTimestamp"), now))


def _pod_wide_cells(pod: Mapping[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips else "") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_str = "<none>"
    if gates:
        true = 0
        for g in gates:
            for c in status.get("conditions") or ():
                if c.get("type") == g.get("conditionType"):
                    true += c.get("status") == "True"
                    break
        gates_str = f"{true}/{len(gates)}"
    return [ip, spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_str]


def render_pods_table(pods: Sequence[Mapping[str, Any]], *, wide: bool = False, now: datetime, all_namespaces: bool = False) -> str:
    """`kubectl get pods [-o wide] [-A]`. Empty input → "" (the caller says "No resources found")."""
    if not pods:
        return ""
    return render_table(*compute_pods_rows(pods, wide=wide, now=now, all_namespaces=all_namespaces))


def compute_pods_rows(pods: Sequence[Mapping[str, Any]], *, wide: bool = False, now: datetime,
                      all_namespaces: bool = False) -> tuple[list[str], list[list[str]]]:
    """The header and rows of `kubectl get pods` (render_table lays them out)."""
    header = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if wide:
        header += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    if all_namespaces:
        header = ["NAMESPACE"] + header
    rows = []
    for pod in pods:
        row = list(compute_pod_cells(pod, now=now))
        if wide:
            row += _pod_wide_cells(pod)
        if all_namespaces:
            row = [(pod.get("metadata") or {}).get("namespace", "")] + row
        rows.append(row)
    return header, rows


def compute_widths(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[int]:
    """render_table's column widths (the last column is not padded)."""
    lines = [list(header)] + [list(r) for r in rows]
    return [max(TAB_MIN_WIDTH, max(len(line[i]) for line in lines) + TAB_PADDING) for i in range(len(header) - 1)]


def render_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One more row under a table already printed with `widths` (`get -w`); a wider cell pushes the rest right."""
    out = []
    for i, c in enumerate(cells):
        out.append(c.ljust(max(widths[i], len(c) + TAB_PADDING)) if i < len(cells) - 1 else c)
    return "".join(out) + "\n"


def _event_source(ev: Mapping[str, Any]) -> str:
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    instance = src.get("host") or ev.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def render_events_table(events: Sequence[Mapping[str, Any]], *, wide: bool = False, now: datetime, all_namespaces: bool = False) -> str:
    """`kubectl get events [-o wide] [-A]` (printEvent): LAST SEEN, TYPE, REASON, OBJECT, MESSAGE."""
    if not events:
        return ""
    return render_table(*compute_events_rows(events, wide=wide, now=now, all_namespaces=all_namespaces))


def compute_events_rows(events: Sequence[Mapping[str, Any]], *, wide: bool = False, now: datetime,
                        all_namespaces: bool = False) -> tuple[list[str], list[list[str]]]:
    """The header and rows of `kubectl get events`."""
    header = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    if wide:
        header = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT", "NAME"]
    if all_namespaces:
        header = ["NAMESPACE"] + header
    rows = []
    for ev in events:
        first = _since(ev.get("firstTimestamp"), now) if parse_time(ev.get("firstTimestamp")) else _since(ev.get("eventTime"), now)
        last = _since(ev.get("lastTimestamp"), now) if parse_time(ev.get("lastTimestamp")) else first
        count = int(ev.get("count") or 0)
        series = ev.get("series")
        if series:
            last = _since(series.get("lastObservedTime"), now)
            count = int(series.get("count") or 0)
        elif count == 0:
            count = 1
        inv = ev.get("involvedObject") or {}
        kind = str(inv.get("kind", "")).lower()
        target = f"{kind}/{inv['name']}" if inv.get("name") else kind
        message = str(ev.get("message", "")).strip()
        if wide:
            row = [last, ev.get("type", ""), ev.get("reason", ""), target, inv.get("fieldPath", ""), _event_source(ev),
                   message, first, str(count), (ev.get("metadata") or {}).get("name", "")]
        else:
            row = [last, ev.get("type", ""), ev.get("reason", ""), target, message]
        if all_namespaces:
            row = [(ev.get("metadata") or {}).get("namespace", "")] + row
        rows.append(row)
    return header, rows


# --- -o json | yaml | name -------------------------------------------------------------------------------------------

def render_json(obj: Any) -> str:
    """Go's json.MarshalIndent(obj, "", "    ") of an unstructured object (sorted keys, HTML-safe escapes) + "\\n"."""
    text = json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)  # these only occur inside strings in JSON text
    return text + "\n"


_DUMPER: Any = None


def _go_yaml_dumper() -> Any:
    """PyYAML tuned toward sigs.k8s.io/yaml (go-yaml v2): double quotes where quoting is needed, `|` for multi-line.
    Built on first use: the CLI does not import yaml unless asked for -o yaml."""
    global _DUMPER
    if _DUMPER is None:
        import yaml

        class GoYAMLDumper(yaml.SafeDumper):
            def choose_scalar_style(self) -> str:
                style = super().choose_scalar_style()
                return '"' if style == "'" else style

        def represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
            style = "|" if "\n" in data else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

        GoYAMLDumper.add_representer(str, represent_str)
        _DUMPER = GoYAMLDumper
    return _DUMPER


def render_yaml(obj: Any) -> str:
    import yaml

    return yaml.dump(obj, Dumper=_go_yaml_dumper(), default_flow_style=False, sort_keys=True, allow_unicode=True)


def render_object(obj: Any, fmt: str = "json") -> str:
    if fmt == "json":
        return render_json(obj)
    if fmt == "yaml":
        return render_yaml(obj)
    raise ValueError(f"unknown output format {fmt!r} (json, yaml)")


def render_list(objs: Sequence[Mapping[str, Any]], kind: str = "List", fmt: str = "json") -> str:
    """What `kubectl get … -o json|yaml` prints for several objects: a v1 List with an empty resourceVersion."""
    return render_object({"apiVersion": "v1", "items": list(objs), "kind": kind, "metadata": {"resourceVersion": ""}}, fmt)


def render_names(objs: Sequence[Mapping[str, Any]], resource: str) -> str:
    """`-o name`: one `<resource>/<name>` per line (kubectl: pod/web-node1)."""
    return "".join(f"{resource}/{(o.get('metadata') or {}).get('name', '')}\n" for o in objs)
