"""No input makes the parser raise: every value of a rich manifest replaced by every wrong type gives errors only."""
from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from kubelet.manifest.parse import parse_manifest_bytes

RICH: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}, "annotations": {"a": "b"}},
    "spec": {
        "hostNetwork": False, "restartPolicy": "OnFailure", "dnsPolicy": "ClusterFirst", "hostname": "h",
        "terminationGracePeriodSeconds": 10, "tolerations": [{"key": "k", "operator": "Exists"}],
        "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["true"]}],
        "containers": [{
            "name": "web", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent", "args": ["-g", "x"],
            "workingDir": "/", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP", "hostPort": 8080,
                                          "hostIP": "127.0.0.1"}],
            "env": [{"name": "A", "value": "1"},
                    {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}}],
            "livenessProbe": {"httpGet": {"path": "/", "port": "http", "httpHeaders": [{"name": "X", "value": "y"}]},
                              "periodSeconds": 5},
            "readinessProbe": {"exec": {"command": ["true"]}},
            "startupProbe": {"tcpSocket": {"port": 80}},
            "terminationMessagePolicy": "File",
        }],
    },
}
WRONG: list[Any] = [None, 0, -1, 1.5, "", "x", True, [], [1], {}, {"a": 1}]


def paths(obj: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths(v, prefix + (i,))


def replaced(path: tuple, value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(RICH)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return doc


def test_rich_manifest_is_valid() -> None:
    pods, _, errors = parse_manifest_bytes(json.dumps(RICH).encode(), file="/m/p.json", node_name="n")
    assert errors == [] and len(pods) == 1


def test_every_wrong_type_everywhere_gives_errors_not_exceptions() -> None:
    outcomes = 0
    for path in paths(RICH):
        for value in WRONG:
            data = json.dumps(replaced(path, value)).encode()
            pods, others, errors = parse_manifest_bytes(data, file="/m/p.json", node_name="n")
            assert all(e.reason for e in errors)
            outcomes += 1
    assert outcomes > 500
