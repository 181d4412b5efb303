"""`nodelet describe pod NAME`: kubectl's describe (pkg/describe: describePod and its helpers, written through Go's
tabwriter), plus what only the node knows: each probe's live state from the daemon's probe workers."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import click

from kubelet.server.apiclient import APIClientError
from kubelet.cli.completion import complete_pods
from kubelet.cli.common import DEFAULT_NAMESPACE, AliasedGroup, cri_options, fail, fallback_note, find_pod, target_from
from kubelet.server.printers import parse_time, render_human_duration, render_tabwriter

__all__ = ["describe_group", "render_go_duration", "render_pod_description", "render_probe"]

MAX_ANNOTATION_LEN = 140
L0, L1, L2, L3 = "", "  ", "    ", "      "


def _now() -> datetime:
    return datetime.now(timezone.utc)


def render_go_duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: 0s, 10s, 1m0s, 1h0m0s."""
    if seconds == 0:
        return "0s"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def _rfc1123z(value: Any) -> str:
    t = parse_time(value)
    return t.strftime("%a, %d %b %Y %H:%M:%S %z") if t else "Mon, 01 Jan 0001 00:00:00 +0000"


def render_probe(probe: Mapping[str, Any]) -> str:
    """DescribeProbe: `http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3`."""
    attrs = (f"delay={render_go_duration(int(probe.get('initialDelaySeconds', 0)))} "
             f"timeout={render_go_duration(int(probe.get('timeoutSeconds', 1)))} "
             f"period={render_go_duration(int(probe.get('periodSeconds', 10)))} "
             f"#success={probe.get('successThreshold', 1)} #failure={probe.get('failureThreshold', 3)}")
    if "exec" in probe:
        return f"exec [{' '.join(str(c) for c in (probe['exec'] or {}).get('command') or ())}] {attrs}"
    if "httpGet" in probe:
        h = probe["httpGet"] or {}
        port = str(h.get("port", ""))
        host = str(h.get("host", ""))
        hostport = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") if port else host
        return f"http-get {str(h.get('scheme', 'HTTP')).lower()}://{hostport}{h.get('path', '')} {attrs}"
    if "tcpSocket" in probe:
        t = probe["tcpSocket"] or {}
        return f"tcp-socket {t.get('host', '')}:{t.get('port', '')} {attrs}"
    if "grpc" in probe:
        g = probe["grpc"] or {}
        return f"grpc <pod>:{g.get('port')} {g.get('service', '')} {attrs}"
    return f"unknown {attrs}"


def _labels(w: list[str], title: str, labels: Mapping[str, str] | None) -> None:
    if not labels:
        w.append(f"{title}:\t<none>\n")
        return
    for i, k in enumerate(sorted(labels)):
        w.append(f"{title}:\t{k}={labels[k]}\n" if i == 0 else f"\t{k}={labels[k]}\n")


def _annotations(w: list[str], title: str, annotations: Mapping[str, str] | None) -> None:
    if not annotations:
        w.append(f"{title}:\t<none>\n")
        return
    for i, k in enumerate(sorted(annotations)):
        prefix = f"{title}:\t" if i == 0 else "\t"
        value = str(annotations[k]).removesuffix("\n")
        if len(value) + len(k) + 2 > MAX_ANNOTATION_LEN or "\n" in value:
            w.append(f"{prefix}{k}:\n")
            for s in value.split("\n"):
                s = s if len(s) <= MAX_ANNOTATION_LEN - 2 else s[:MAX_ANNOTATION_LEN - 2] + "..."
                w.append(f"\t  {s}\n")
        else:
            w.append(f"{prefix}{k}: {value}\n")


def _state(w: list[str], title: str, state: Mapping[str, Any]) -> None:
    if state.get("running") is not None:
        w.append(f"{L2}{title}:\tRunning\n")
        w.append(f"{L3}Started:\t{_rfc1123z(state['running'].get('startedAt'))}\n")
    elif state.get("terminated") is not None:
        t = state["terminated"]
        w.append(f"{L2}{title}:\tTerminated\n")
        if t.get("reason"):
            w.append(f"{L3}Reason:\t{t['reason']}\n")
        if t.get("message"):
            w.append(f"{L3}Message:\t{t['message']}\n")
        w.append(f"{L3}Exit Code:\t{t.get('exitCode', 0)}\n")
        if t.get("signal"):
            w.append(f"{L3}Signal:\t{t['signal']}\n")
        w.append(f"{L3}Started:\t{_rfc1123z(t.get('startedAt'))}\n")
        w.append(f"{L3}Finished:\t{_rfc1123z(t.get('finishedAt'))}\n")
    else:
        w.append(f"{L2}{title}:\tWaiting\n")
        reason = (state.get("waiting") or {}).get("reason")
        if reason:
            w.append(f"{L3}Reason:\t{reason}\n")


_FIELD_VALUES = {
    "metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace"), "metadata.uid": ("metadata", "uid"),
    "spec.nodeName": ("spec", "nodeName"), "spec.serviceAccountName": ("spec", "serviceAccountName"),
    "status.podIP": ("status", "podIP"), "status.hostIP": ("status", "hostIP"),
}


def _env(w: list[str], pod: Mapping[str, Any], env: Sequence[Mapping[str, Any]]) -> None:
    w.append(f"{L2}Environment:{chr(9) + '<none>' if not env else ''}\n")
    for e in env:
        vf = e.get("valueFrom")
        if not vf:
            for i, s in enumerate(str(e.get("value", "")).split("\n")):
                w.append(f"{L3}{e['name']}:\t{s}\n" if i == 0 else f"{L3}\t{s}\n")
        elif "fieldRef" in vf:
            fr = vf["fieldRef"]
            sec, key = _FIELD_VALUES.get(fr.get("fieldPath", ""), ("", ""))
            value = (pod.get(sec) or {}).get(key, "") if sec else ""
            w.append(f"{L3}{e['name']}:\t{value} ({fr.get('apiVersion', 'v1')}:{fr.get('fieldPath')})\n")
        elif "resourceFieldRef" in vf:
            w.append(f"{L3}{e['name']}:\t{vf['resourceFieldRef'].get('containerName', '')} ({vf['resourceFieldRef'].get('resource')})\n")
        elif "secretKeyRef" in vf:
            r = vf["secretKeyRef"]
            w.append(f"{L3}{e['name']}:\t<set to the key '{r.get('key')}' in secret '{r.get('name')}'>\tOptional: {str(bool(r.get('optional'))).lower()}\n")
        elif "configMapKeyRef" in vf:
            r = vf["configMapKeyRef"]
            w.append(f"{L3}{e['name']}:\t<set to the key '{r.get('key')}' of config map '{r.get('name')}'>\tOptional: {str(bool(r.get('optional'))).lower()}\n")


def _live_probe(states: Sequence[Mapping[str, Any]], container: str, kind: str) -> str | None:
    for s in states:
        if s.get("container") == container and s.get("probe") == kind:
            last = str(s.get("lastResult") or s.get("lastProbeResult") or "none yet").lower()
            streak = s.get("consecutiveSuccesses") if last == "success" else s.get("consecutiveFailures")
            text = f"{str(s.get('result', 'unknown')).lower()} (last probe: {last}"
            if last != "none yet":
                text += f", {streak} in a row"
            if s.get("lastLatencySeconds") is not None:
                text += f", {float(s['lastLatencySeconds']) * 1000:.1f}ms"
            text += ")"
            if s.get("lastMessage"):
                text += f": {s['lastMessage']}"
            return text
    return None


def _containers(w: list[str], label: str, pod: Mapping[str, Any], specs: Sequence[Mapping[str, Any]],
                statuses: Sequence[Mapping[str, Any]], probes: Sequence[Mapping[str, Any]]) -> None:
    by_name = {s.get("name"): s for s in statuses}
    w.append(f"{label}:\n")
    for c in specs:
        st = by_name.get(c.get("name"))
        w.append(f"{L1}{c.get('name')}:\n")
        if st is not None:
            w.append(f"{L2}Container ID:\t{st.get('containerID', '')}\n")
        w.append(f"{L2}Image:\t{c.get('image', '')}\n")
        if st is not None:
            w.append(f"{L2}Image ID:\t{st.get('imageID', '')}\n")
        ports = c.get("ports") or []
        port = ", ".join(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in ports)
        host = ", ".join(f"{p.get('hostPort', 0)}/{p.get('protocol', 'TCP')}" for p in ports)
        w.append(f"{L2}Ports:\t{port}\n" if "," in port else f"{L2}Port:\t{port or '<none>'}\n")
        w.append(f"{L2}Host Ports:\t{host}\n" if "," in host else f"{L2}Host Port:\t{host or '<none>'}\n")
        for title, key in (("Command", "command"), ("Args", "args")):
            if c.get(key):
                w.append(f"{L2}{title}:\n")
                for arg in c[key]:
                    for s in str(arg).split("\n"):
                        w.append(f"{L3}{s}\n")
        if st is not None:
            _state(w, "State", st.get("state") or {})
            if (st.get("lastState") or {}).get("terminated"):
                _state(w, "Last State", st["lastState"])
            w.append(f"{L2}Ready:\t{'True' if st.get('ready') else 'False'}\n")
            w.append(f"{L2}Restart Count:\t{st.get('restartCount', 0)}\n")
        res = c.get("resources") or {}
        for title, key in (("Limits", "limits"), ("Requests", "requests")):
            if res.get(key):
                w.append(f"{L2}{title}:\n")
                for r in sorted(res[key]):
                    w.append(f"{L3}{r}:\t{res[key][r]}\n")
        for title, key, kind in (("Liveness", "livenessProbe", "liveness"), ("Readiness", "readinessProbe", "readiness"),
                                 ("Startup", "startupProbe", "startup")):
            if c.get(key):
                w.append(f"{L2}{title}:\t{render_probe(c[key])}\n")
                live = _live_probe(probes, str(c.get("name")), kind)
                if live:
                    w.append(f"{L3}Now:\t{live}\n")
        _env(w, pod, c.get("env") or [])
        mounts = sorted(c.get("volumeMounts") or [], key=lambda m: m.get("mountPath", ""))
        w.append(f"{L2}Mounts:{chr(9) + '<none>' if not mounts else ''}\n")
        for m in mounts:
            flags = ["ro" if m.get("readOnly") else "rw"] + ([f'path="{m["subPath"]}"'] if m.get("subPath") else [])
            w.append(f"{L3}{m.get('mountPath')} from {m.get('name')} ({','.join(flags)})\n")


def _volumes(w: list[str], volumes: Sequence[Mapping[str, Any]]) -> None:
    if not volumes:
        w.append("Volumes:\t<none>\n")
        return
    w.append("Volumes:\n")
    for v in volumes:
        w.append(f"{L1}{v.get('name')}:\n")
        if "hostPath" in v:
            hp = v["hostPath"] or {}
            w.append(f"{L2}Type:\tHostPath (bare host directory volume)\n{L2}Path:\t{hp.get('path', '')}\n"
                     f"{L2}HostPathType:\t{hp.get('type') or '<none>'}\n")
        elif "emptyDir" in v:
            ed = v["emptyDir"] or {}
            w.append(f"{L2}Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n{L2}Medium:\t{ed.get('medium', '')}\n"
                     f"{L2}SizeLimit:\t{ed.get('sizeLimit') or '<unset>'}\n")
        elif "configMap" in v:
            cm = v["configMap"] or {}
            w.append(f"{L2}Type:\tConfigMap (a volume populated by a ConfigMap)\n{L2}Name:\t{cm.get('name', '')}\n"
                     f"{L2}Optional:\t{str(bool(cm.get('optional'))).lower()}\n")
        elif "secret" in v:
            sc = v["secret"] or {}
            w.append(f"{L2}Type:\tSecret (a volume populated by a Secret)\n{L2}SecretName:\t{sc.get('secretName', '')}\n"
                     f"{L2}Optional:\t{str(bool(sc.get('optional'))).lower()}\n")
        elif "downwardAPI" in v:  # kubectl's printDownwardAPIVolumeSource
            w.append(f"{L2}Type:\tDownwardAPI (a volume populated by information about the pod)\n{L2}Items:\n")
            _downward_items(w, (v["downwardAPI"] or {}).get("items") or ())
        elif "projected" in v:  # kubectl's printProjectedVolumeSource
            w.append(f"{L2}Type:\tProjected (a volume that contains injected data from multiple sources)\n")
            for src in (v["projected"] or {}).get("sources") or ():
                if src.get("secret") is not None:
                    w.append(f"{L2}SecretName:\t{src['secret'].get('name', '')}\n"
                             f"{L2}SecretOptionalName:\t{_optional(src['secret'])}\n")
                elif src.get("downwardAPI") is not None:
                    w.append(f"{L2}DownwardAPI:\ttrue\n")
                elif src.get("configMap") is not None:
                    w.append(f"{L2}ConfigMapName:\t{src['configMap'].get('name', '')}\n"
                             f"{L2}ConfigMapOptional:\t{_optional(src['configMap'])}\n")
        else:
            w.append(f"{L1}<unknown>\n")


def _optional(src: Mapping[str, Any]) -> str:
    """kubectl prints the ``*bool`` as is: ``<nil>`` when unset."""
    return "<nil>" if src.get("optional") is None else str(bool(src["optional"])).lower()


def _downward_items(w: list[str], items: Sequence[Mapping[str, Any]]) -> None:
    for item in items:
        ref = item.get("fieldRef") or {}
        res = item.get("resourceFieldRef") or {}
        w.append(f"{L3}{ref.get('fieldPath') or res.get('resource', '')} -> {item.get('path', '')}\n")


def _tolerations(w: list[str], tolerations: Sequence[Mapping[str, Any]]) -> None:
    if not tolerations:
        w.append("Tolerations:\t<none>\n")
        return
    for i, t in enumerate(tolerations):
        text = t.get("key", "")
        if t.get("value"):
            text += f"={t['value']}"
        if t.get("effect"):
            text += f":{t['effect']}"
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists" if t.get("key") or t.get("effect") else "op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {t['tolerationSeconds']}s"
        w.append(f"Tolerations:\t{text}\n" if i == 0 else f"\t{text}\n")


def _events(events: Sequence[Mapping[str, Any]], now: datetime) -> str:
    if not events:
        return "Events:\t<none>\n"
    w = ["Events:\n", f"{L1}Type\tReason\tAge\tFrom\tMessage\n", f"{L1}----\t------\t----\t----\t-------\n"]

    def since(v: Any) -> str:
        t = parse_time(v)
        return render_human_duration(now - t) if t else "<unknown>"

    def key(e: Mapping[str, Any]) -> datetime:
        return parse_time(e.get("lastTimestamp")) or parse_time(e.get("eventTime")) or datetime.min.replace(tzinfo=timezone.utc)

    for e in sorted(events, key=key):
        first = since(e.get("firstTimestamp") or e.get("eventTime"))
        count = int(e.get("count") or 0)
        interval = f"{since(e.get('lastTimestamp'))} (x{count} over {first})" if count > 1 else first
        src = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        w.append(f"{L1}{e.get('type', '')}\t{e.get('reason', '')}\t{interval}\t{src}\t{str(e.get('message', '')).strip()}\n")
    return render_tabwriter("".join(w))


def render_pod_description(pod: Mapping[str, Any], *, events: Sequence[Mapping[str, Any]] | None,
                           probes: Sequence[Mapping[str, Any]] = (), now: datetime) -> str:
    """kubectl's `describe pod` text for a v1 Pod, its events (None: not known) and the live probe states."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    w: list[str] = [f"Name:\t{meta.get('name', '')}\n", f"Namespace:\t{meta.get('namespace', DEFAULT_NAMESPACE)}\n"]
    if spec.get("priority") is not None:
        w.append(f"Priority:\t{spec['priority']}\n")
    if spec.get("priorityClassName"):
        w.append(f"Priority Class Name:\t{spec['priorityClassName']}\n")
    w.append(f"Service Account:\t{spec.get('serviceAccountName', '')}\n")
    w.append(f"Node:\t{spec['nodeName'] + '/' + status.get('hostIP', '') if spec.get('nodeName') else '<none>'}\n")
    if status.get("startTime"):
        w.append(f"Start Time:\t{_rfc1123z(status['startTime'])}\n")
    _labels(w, "Labels", meta.get("labels"))
    _annotations(w, "Annotations", meta.get("annotations"))
    if meta.get("deletionTimestamp"):
        t = parse_time(meta["deletionTimestamp"])
        w.append(f"Status:\tTerminating (lasts {render_human_duration(now - t) if t else '<unknown>'})\n")
        w.append(f"Termination Grace Period:\t{meta.get('deletionGracePeriodSeconds', 0)}s\n")
    else:
        w.append(f"Status:\t{status.get('phase', '')}\n")
    if status.get("reason"):
        w.append(f"Reason:\t{status['reason']}\n")
    if status.get("message"):
        w.append(f"Message:\t{status['message']}\n")
    w.append(f"IP:\t{status.get('podIP', '')}\n")
    ips = status.get("podIPs") or []
    if ips:
        w.append("IPs:\n")
        w.extend(f"{L1}IP:\t{ip.get('ip', '')}\n" for ip in ips)
    else:
        w.append("IPs:\t<none>\n")
    if spec.get("initContainers"):
        _containers(w, "Init Containers", pod, spec["initContainers"], status.get("initContainerStatuses") or [], probes)
    _containers(w, "Containers", pod, spec.get("containers") or [], status.get("containerStatuses") or [], probes)
    if status.get("conditions"):
        w.append(f"Conditions:\n{L1}Type\tStatus\n")
        w.extend(f"{L1}{c.get('type')} \t{c.get('status')} \n" for c in status["conditions"])
    _volumes(w, spec.get("volumes") or [])
    w.append(f"QoS Class:\t{status.get('qosClass') or 'BestEffort'}\n")
    _labels(w, "Node-Selectors", spec.get("nodeSelector"))
    _tolerations(w, spec.get("tolerations") or [])
    text = render_tabwriter("".join(w))
    if events is not None:
        text += _events(events, now)
    return text


def compute_pod_events(events: Sequence[Mapping[str, Any]], pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    meta = pod.get("metadata") or {}
    out = []
    for e in events:
        o = e.get("involvedObject") or {}
        if o.get("kind") == "Pod" and o.get("name") == meta.get("name") and o.get("namespace", DEFAULT_NAMESPACE) == meta.get("namespace"):
            if not o.get("uid") or not meta.get("uid") or o.get("uid") == meta.get("uid"):
                out.append(e)
    return out


@click.group("describe", cls=AliasedGroup, aliases={"pods": "pod", "po": "pod", "services": "service", "svc": "service"})
def describe_group() -> None:
    """Show details of a pod or a service (like kubectl describe), with what only the node knows: live probe
    states, and the rules programmed for a service with their packet counters."""


@describe_group.command("pod")
@click.argument("name", shell_complete=complete_pods)
@click.option("-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True, metavar="NS")
@cri_options
def describe_pod(name: str, namespace: str, socket_path: str | None, config_path: str | None, runtime_endpoint: str | None) -> None:
    """Describe one pod (aliases: pods, po): containers with state/last state/exit code/restarts, probes (live),
    volumes, IPs, events."""
    target = target_from(socket_path, config_path, runtime_endpoint)
    pod, from_daemon = find_pod(target, name, namespace)
    events: list[Mapping[str, Any]] | None = None
    probes: list[Mapping[str, Any]] = []
    if from_daemon:
        try:
            body = target.client.get(f"/api/v1/namespaces/{namespace}/events")
            events = compute_pod_events(body.get("items") or [], pod) if isinstance(body, dict) else []
        except APIClientError as e:
            fail(str(e))
        try:
            states = target.client.get("/api/v1/extra/probes")
            uid = (pod.get("metadata") or {}).get("uid")
            probes = [s for s in states if isinstance(s, dict) and s.get("podUID") == uid] if isinstance(states, list) else []
        except APIClientError:
            probes = []  # an agent without probe workers
    else:
        fallback_note("pod (no events, probes or readiness)")
    click.echo(render_pod_description(pod, events=events, probes=probes, now=_now()), nl=False)



from kubelet.cli.services import describe_service  # noqa: E402  (services live with the proxy's view)

describe_group.add_command(describe_service)
