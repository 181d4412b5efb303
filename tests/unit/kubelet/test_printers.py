"""kubectl's table, duration and -o json/yaml output, from fixed objects and a fixed `now`."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from kubelet.server.printers import (
    compute_pod_cells, render_events_table, render_human_duration, render_json, render_list, render_names,
    render_pods_table, render_table, render_yaml,
)

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def running(name: str, *, restarts: int = 0, ready: bool = True, last_finished: str | None = None) -> dict:
    cs = {"name": name, "ready": ready, "restartCount": restarts, "started": True,
          "state": {"running": {"startedAt": ago(hours=1)}}}
    if last_finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": last_finished}}
    return cs


def waiting(name: str, reason: str, *, restarts: int = 0, last_finished: str | None = None) -> dict:
    cs = {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}
    if last_finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": last_finished}}
    return cs


def terminated(name: str, reason: str, code: int, *, restarts: int = 0) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts,
            "state": {"terminated": {"exitCode": code, "reason": reason, "finishedAt": ago(seconds=30)}}}


def pod(name: str, *, created: str, phase: str, containers: list[dict], init: list[dict] | None = None,
        ns: str = "default", ip: str = "", deletion: str | None = None, conditions: list[dict] | None = None,
        init_specs: list[dict] | None = None) -> dict:
    meta = {"name": name, "namespace": ns, "creationTimestamp": created, "labels": {"app": name.split("-")[0]}}
    if deletion:
        meta["deletionTimestamp"] = deletion
    status: dict = {"phase": phase, "containerStatuses": containers, "conditions": conditions or []}
    if init is not None:
        status["initContainerStatuses"] = init
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    spec = {"nodeName": "node1", "containers": [{"name": c["name"], "image": "busybox"} for c in containers]}
    if init is not None:
        spec["initContainers"] = init_specs or [{"name": c["name"], "image": "busybox"} for c in init]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


READY_TRUE = [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}]
PODS = [
    pod("web-node1", created=ago(hours=3, minutes=4), phase="Running", ip="10.88.0.5", conditions=READY_TRUE,
        init=[terminated("setup", "Completed", 0)], containers=[running("nginx"), running("sidecar")]),
    pod("crash-node1", created=ago(days=2, hours=3), phase="Running", ip="10.88.0.6",
        containers=[waiting("app", "CrashLoopBackOff", restarts=5, last_finished=ago(minutes=5))]),
    pod("job-node1", created=ago(seconds=45), phase="Succeeded", ip="10.88.0.7",
        containers=[terminated("job", "Completed", 0)]),
    pod("init-node1", created=ago(minutes=5, seconds=12), phase="Pending", ip="10.88.0.8",
        init=[running("wait", ready=False)], containers=[waiting("app", "PodInitializing")]),
    pod("pull-node1", created=ago(days=400), phase="Pending", containers=[waiting("app", "ErrImagePull")]),
]


def test_pods_table_is_kubectls() -> None:
    assert render_pods_table(PODS, now=NOW) == (
        "NAME          READY   STATUS             RESTARTS     AGE\n"
        "web-node1     2/2     Running            0            3h4m\n"
        "crash-node1   0/1     CrashLoopBackOff   5 (5m ago)   2d3h\n"
        "job-node1     0/1     Completed          0            45s\n"
        "init-node1    0/1     Init:0/1           0            5m12s\n"
        "pull-node1    0/1     ErrImagePull       0            400d\n"
    )


def test_pods_table_wide_and_all_namespaces() -> None:
    pods = [PODS[0], {**PODS[4], "metadata": {**PODS[4]["metadata"], "namespace": "kube-system"}}]
    assert render_pods_table(pods, now=NOW, wide=True, all_namespaces=True) == (
        "NAMESPACE     NAME         READY   STATUS         RESTARTS   AGE    IP          NODE    NOMINATED NODE   READINESS GATES\n"
        "default       web-node1    2/2     Running        0          3h4m   10.88.0.5   node1   <none>           <none>\n"
        "kube-system   pull-node1   0/1     ErrImagePull   0          400d   <none>      node1   <none>           <none>\n"
    )


@pytest.mark.parametrize(
    ("p", "status", "ready", "restarts"),
    [
        # init container crash-looping: Init:<reason>, restarts counted from init containers with their "ago"
        (pod("i", created=ago(hours=1), phase="Pending",
             init=[waiting("setup", "CrashLoopBackOff", restarts=3, last_finished=ago(seconds=65))],
             containers=[waiting("app", "PodInitializing")]), "Init:CrashLoopBackOff", "0/1", "3 (65s ago)"),
        # the second of two init containers running
        (pod("i", created=ago(hours=1), phase="Pending",
             init=[terminated("a", "Completed", 0), running("b", ready=False)],
             containers=[waiting("app", "PodInitializing")]), "Init:1/2", "0/1", "0"),
        # init container failed without a reason: Init:ExitCode:N
        (pod("i", created=ago(hours=1), phase="Failed",
             init=[{"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}],
             containers=[waiting("app", "PodInitializing")]), "Init:ExitCode:3", "0/1", "0"),
        (pod("i", created=ago(hours=1), phase="Failed",
             init=[terminated("a", "Error", 1)], containers=[waiting("app", "PodInitializing")]), "Init:Error", "0/1", "0"),
        # init done, regular containers not yet created
        (pod("i", created=ago(hours=1), phase="Pending", init=[terminated("a", "Completed", 0)],
             containers=[waiting("app", "PodInitializing")]), "PodInitializing", "0/1", "0"),
        (pod("e", created=ago(hours=1), phase="Failed", containers=[terminated("app", "Error", 1)]), "Error", "0/1", "0"),
        (pod("e", created=ago(hours=1), phase="Running", containers=[terminated("app", "OOMKilled", 137, restarts=2)]),
         "OOMKilled", "0/1", "2"),  # no lastState: no "ago"
        (pod("e", created=ago(hours=1), phase="Running",
             containers=[{"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "signal": 9}}}]),
         "Signal:9", "0/1", "0"),
        (pod("w", created=ago(hours=1), phase="Pending", containers=[waiting("app", "ContainerCreating")]),
         "ContainerCreating", "0/1", "0"),
        # the first container's reason wins (kubectl walks the statuses backwards)
        (pod("m", created=ago(hours=1), phase="Running",
             containers=[waiting("a", "ImagePullBackOff"), waiting("b", "CrashLoopBackOff")]), "ImagePullBackOff", "0/2", "0"),
        # one container completed, one still running and the pod Ready → Running; not Ready → NotReady
        (pod("c", created=ago(hours=1), phase="Running", conditions=READY_TRUE,
             containers=[terminated("a", "Completed", 0), running("b")]), "Running", "1/2", "0"),
        (pod("c", created=ago(hours=1), phase="Running",
             containers=[terminated("a", "Completed", 0), running("b")]), "NotReady", "1/2", "0"),
        # running but not ready: not counted as ready, status stays the phase
        (pod("r", created=ago(hours=1), phase="Running", containers=[running("a", ready=False)]), "Running", "0/1", "0"),
        (pod("t", created=ago(hours=1), phase="Running", deletion=ago(seconds=5), containers=[running("a")]),
         "Terminating", "1/1", "0"),
        (pod("t", created=ago(hours=1), phase="Succeeded", deletion=ago(seconds=5),
             containers=[terminated("a", "Completed", 0)]), "Completed", "0/1", "0"),
        # restarts summed over containers, "ago" from the latest lastState.finishedAt
        (pod("r", created=ago(hours=1), phase="Running", conditions=READY_TRUE,
             containers=[running("a", restarts=2, last_finished=ago(minutes=30)),
                         running("b", restarts=1, last_finished=ago(minutes=12))]), "Running", "2/2", "3 (12m ago)"),
        # a sidecar (restartable init container) counts in READY and its restarts count once initialized
        (pod("s", created=ago(hours=1), phase="Running", conditions=READY_TRUE,
             init=[{**running("proxy", restarts=1, last_finished=ago(minutes=7))}], containers=[running("app")],
             init_specs=[{"name": "proxy", "image": "x", "restartPolicy": "Always"}]), "Running", "2/2", "1 (7m ago)"),
        # status.reason overrides the phase (e.g. Evicted)
        ({**pod("v", created=ago(hours=1), phase="Failed", containers=[]),
          "status": {"phase": "Failed", "reason": "Evicted"}}, "Evicted", "0/0", "0"),
    ],
)
def test_pod_status_column(p: dict, status: str, ready: str, restarts: str) -> None:
    name, got_ready, got_status, got_restarts, _ = compute_pod_cells(p, now=NOW)
    assert (got_status, got_ready, got_restarts) == (status, ready, restarts)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1.5, "0s"), (0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (312, "5m12s"), (599, "9m59s"),
     (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600 + 240, "3h4m"), (5 * 3600, "5h"), (8 * 3600, "8h"), (47 * 3600, "47h"),
     (51 * 3600, "2d3h"), (7 * 86400, "7d"), (400 * 86400, "400d"), (3 * 365 * 86400 + 20 * 86400, "3y20d"),
     (4 * 365 * 86400, "4y"), (9 * 365 * 86400, "9y")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert render_human_duration(timedelta(seconds=seconds)) == text


def test_missing_creation_timestamp_is_unknown() -> None:
    p = pod("x", created="", phase="Pending", containers=[])
    assert compute_pod_cells(p, now=NOW)[4] == "<unknown>"


def test_table_min_width_and_padding() -> None:
    # Go tabwriter (minwidth 6, padding 3): short columns are 6 wide, the last column is never padded
    assert render_table(["A", "BB", "C"], [["x", "yyyyyy", "z"]]) == "A     BB       C\nx     yyyyyy   z\n"


def test_events_table() -> None:
    events = [
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web-node1.1", "namespace": "default"},
         "involvedObject": {"kind": "Pod", "name": "web-node1", "namespace": "default", "fieldPath": "spec.containers{nginx}"},
         "reason": "Pulled", "message": "Container image \"nginx\" already present on machine\n", "type": "Normal",
         "count": 1, "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(minutes=10),
         "source": {"component": "nodelet", "host": "node1"}},
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "crash-node1.2", "namespace": "default"},
         "involvedObject": {"kind": "Pod", "name": "crash-node1", "namespace": "default"},
         "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning",
         "count": 7, "firstTimestamp": ago(minutes=9), "lastTimestamp": ago(seconds=20),
         "source": {"component": "nodelet", "host": "node1"}},
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "node1.3", "namespace": "default"},
         "involvedObject": {"kind": "Node", "name": "node1"}, "reason": "Starting", "message": "Starting nodelet.",
         "type": "Normal", "eventTime": ago(hours=2), "reportingComponent": "nodelet", "reportingInstance": "node1"},
    ]
    assert render_events_table(events, now=NOW) == (
        "LAST SEEN   TYPE      REASON     OBJECT            MESSAGE\n"
        "10m         Normal    Pulled     pod/web-node1     Container image \"nginx\" already present on machine\n"
        "20s         Warning   BackOff    pod/crash-node1   Back-off restarting failed container\n"
        "120m        Normal    Starting   node/node1        Starting nodelet.\n"
    )
    wide = render_events_table(events[1:2], now=NOW, wide=True).splitlines()
    assert wide == [
        "LAST SEEN   TYPE      REASON    OBJECT            SUBOBJECT   SOURCE           MESSAGE                                FIRST SEEN   COUNT   NAME",
        "20s         Warning   BackOff   pod/crash-node1               nodelet, node1   Back-off restarting failed container   9m           7       crash-node1.2",
    ]


def test_empty_tables_are_empty() -> None:
    assert render_pods_table([], now=NOW) == ""
    assert render_events_table([], now=NOW) == ""


def test_list_json_is_kubectls() -> None:
    p = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a<b>&c", "labels": {}}, "spec": {"containers": []}}
    assert render_list([p]) == (
        '{\n'
        '    "apiVersion": "v1",\n'
        '    "items": [\n'
        '        {\n'
        '            "apiVersion": "v1",\n'
        '            "kind": "Pod",\n'
        '            "metadata": {\n'
        '                "labels": {},\n'
        '                "name": "a\\u003cb\\u003e\\u0026c"\n'
        '            },\n'
        '            "spec": {\n'
        '                "containers": []\n'
        '            }\n'
        '        }\n'
        '    ],\n'
        '    "kind": "List",\n'
        '    "metadata": {\n'
        '        "resourceVersion": ""\n'
        '    }\n'
        '}\n'
    )
    assert json.loads(render_list([p]))["items"][0]["metadata"]["name"] == "a<b>&c"
    assert render_list([]) == '{\n    "apiVersion": "v1",\n    "items": [],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n'
    assert render_json({"m": "é"}) == '{\n    "m": "é"\n}\n'  # UTF-8, not \u escapes, as Go


def test_list_yaml_is_kubectls() -> None:
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "web", "annotations": {"a": "true", "b": "", "c": "1.5", "d": "line1\nline2\n"}},
         "spec": {"containers": [{"name": "c", "args": ["sleep", "3600"]}]}}
    assert render_list([p], fmt="yaml") == (
        "apiVersion: v1\n"
        "items:\n"
        "- apiVersion: v1\n"
        "  kind: Pod\n"
        "  metadata:\n"
        "    annotations:\n"
        '      a: "true"\n'
        '      b: ""\n'
        '      c: "1.5"\n'
        "      d: |\n"
        "        line1\n"
        "        line2\n"
        "    name: web\n"
        "  spec:\n"
        "    containers:\n"
        "    - args:\n"
        "      - sleep\n"
        '      - "3600"\n'
        "      name: c\n"
        "kind: List\n"
        "metadata:\n"
        '  resourceVersion: ""\n'
    )
    assert yaml.safe_load(render_yaml(p)) == p


def test_names() -> None:
    assert render_names(PODS[:2], "pod") == "pod/web-node1\npod/crash-node1\n"
