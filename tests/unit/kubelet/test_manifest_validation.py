"""Every bad-input case of a manifest gives the exact error: ``file:line: field: reason`` (API server phrasing)."""
from __future__ import annotations

import textwrap

import pytest

from kubelet.manifest.parse import parse_manifest_bytes

F = "/m/pod.yaml"
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                 "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
                 "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def errors_of(text: str, file: str = F) -> list[str]:
    pods, _, errors = parse_manifest_bytes(textwrap.dedent(text).lstrip("\n").encode(), file=file, node_name="node1")
    if errors:
        assert not pods or len(pods) < text.count("kind: Pod")
    return [str(e) for e in errors]


CASES = [
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
        spec:
          containers:
          - name: c
            image: [nginx
        """, [f"{F}:9: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence)"],
        id="yaml-syntax"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata:
        \tname: web
        """, [f"{F}:4: invalid YAML: found character that cannot start any token (while scanning for the next "
              "token)"], id="yaml-tab"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        spec:
          containers: [{name: c, image: x}]
        """, [f"{F}:1: metadata: Required value"], id="metadata-missing"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata:
          labels: {a: b}
        spec:
          containers: [{name: c, image: x}]
        """, [f"{F}:3: metadata.name: Required value: name or generateName is required"], id="name-missing"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: Web_1}
        spec:
          containers: [{name: c, image: x}]
        """, [f'{F}:3: metadata.name: Invalid value: "Web_1": {SUBDOMAIN_MSG}'], id="name-invalid"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: kube.system}
        spec:
          containers: [{name: c, image: x}]
        """, [f'{F}:3: metadata.namespace: Invalid value: "kube.system": must not contain dots'], id="namespace-dots"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: Prod}
        spec:
          containers: [{name: c, image: x}]
        """, [f'{F}:3: metadata.namespace: Invalid value: "Prod": {LABEL_MSG}'], id="namespace-invalid"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          labels:
            app: 3
        spec:
          containers: [{name: c, image: x}]
        """, [f"{F}:6: metadata.labels.app: Invalid value: 3: must be a string (quote numbers and booleans)"],
        id="label-value-type"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        """, [f"{F}:1: spec: Required value"], id="spec-missing"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers: []
        """, [f"{F}:5: spec.containers: Required value"], id="containers-empty"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          restartPolicy: Always
        """, [f"{F}:4: spec.containers: Required value"], id="containers-missing"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers: {name: c}
        """, [f"{F}:5: spec.containers: Invalid value: an object: must be a list"], id="containers-type"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - image: nginx
        """, [f"{F}:6: spec.containers[0].name: Required value"], id="container-name-missing"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: web
          - name: side
            image: x
        """, [f"{F}:6: spec.containers[0].image: Required value"], id="container-image-missing"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: web
            image: " nginx"
        """, [f'{F}:7: spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing '
              "whitespace"], id="image-whitespace"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: Web
            image: x
        """, [f'{F}:6: spec.containers[0].name: Invalid value: "Web": {LABEL_MSG}'], id="container-name-invalid"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: 42
            image: x
        """, [f"{F}:6: spec.containers[0].name: Invalid value: 42: must be a string"], id="container-name-type"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - {name: a, image: x}
          - {name: a, image: y}
        """, [f'{F}:7: spec.containers[1].name: Duplicate value: "a"'], id="duplicate-container"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          initContainers:
          - {name: a, image: x}
          containers:
          - {name: a, image: y}
        """, [f'{F}:6: spec.initContainers[0].name: Duplicate value: "a"'], id="duplicate-init-and-regular"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            ports:
            - {name: http, containerPort: 80}
            - {name: http, containerPort: 81}
        """, [f'{F}:10: spec.containers[0].ports[1].name: Duplicate value: "http"'], id="duplicate-port-name"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            ports:
            - {name: Http_Port, containerPort: 80}
        """, [f'{F}:9: spec.containers[0].ports[0].name: Invalid value: "Http_Port": '
              "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"],
        id="port-name-invalid"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            ports:
            - {name: "8080", containerPort: 8080}
        """, [f'{F}:9: spec.containers[0].ports[0].name: Invalid value: "8080": must contain at least one letter '
              "(a-z)"], id="port-name-no-letter"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            ports:
            - containerPort: 70000
            - containerPort: 80
              hostPort: -1
            - name: web
        """, [f"{F}:9: spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
              "65535, inclusive",
              f"{F}:11: spec.containers[0].ports[1].hostPort: Invalid value: -1: must be between 1 and 65535, "
              "inclusive",
              f"{F}:12: spec.containers[0].ports[2].containerPort: Required value"], id="port-range"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            ports:
            - containerPort: "80"
        """, [f'{F}:9: spec.containers[0].ports[0].containerPort: Invalid value: "80": must be an integer'],
        id="port-type"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            ports:
            - containerPort: 53
              protocol: ICMP
        """, [f'{F}:10: spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: '
              '"SCTP", "TCP", "UDP"'], id="protocol"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          hostNetwork: true
          containers:
          - name: a
            image: x
            ports:
            - containerPort: 80
              hostPort: 8080
        """, [f"{F}:10: spec.containers[0].ports[0].containerPort: Invalid value: 80: must match `hostPort` when "
              "`hostNetwork` is true"], id="hostnetwork-hostport"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - {name: a, image: x, ports: [{containerPort: 80, hostPort: 8080}]}
          - {name: b, image: x, ports: [{containerPort: 81, hostPort: 8080}]}
        """, [f'{F}:7: spec.containers[1].ports[0].hostPort: Duplicate value: "/TCP/8080"'], id="hostport-twice"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          restartPolicy: Sometimes
          dnsPolicy: Cluster
          containers:
          - name: a
            image: x
            imagePullPolicy: always
        """, [f'{F}:5: spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
              '"OnFailure", "Never"',
              f'{F}:6: spec.dnsPolicy: Unsupported value: "Cluster": supported values: "ClusterFirst", '
              '"ClusterFirstWithHostNet", "Default", "None"',
              f'{F}:10: spec.containers[0].imagePullPolicy: Unsupported value: "always": supported values: '
              '"Always", "IfNotPresent", "Never"'], id="policies"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          hostNetwork: "yes"
          terminationGracePeriodSeconds: -5
          containers:
          - name: a
            image: x
            command: sleep 10
        """, [f'{F}:5: spec.hostNetwork: Invalid value: "yes": must be a boolean',
              f"{F}:6: spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0",
              f'{F}:10: spec.containers[0].command: Invalid value: "sleep 10": must be a list'], id="types"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            env:
            - name: "A=B"
              value: x
            - value: y
            - name: N
              value: 5
        """, [f'{F}:9: spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name '
              "must consist only of printable ASCII characters other than '='",
              f"{F}:11: spec.containers[0].env[1].name: Required value",
              f"{F}:13: spec.containers[0].env[2].value: Invalid value: 5: must be a string (quote numbers and "
              "booleans)"], id="env-names"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            env:
            - name: NODE
              valueFrom:
                fieldRef: {fieldPath: spec.nodeNam}
            - name: CM
              valueFrom:
                configMapKeyRef: {name: c, key: k}
        """, [f'{F}:11: spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: '
              '"spec.nodeNam": supported values: "metadata.annotations[\'<key>\']", '
              '"metadata.labels[\'<key>\']", "metadata.name", "metadata.namespace", "metadata.uid", '
              '"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", '
              '"status.podIPs"',
              f"{F}:14: spec.containers[0].env[1].valueFrom.configMapKeyRef: Forbidden: static pods may not "
              "reference configmaps"], id="env-fieldref"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            imagePullPolcy: Always
        """, [f"{F}:8: spec.containers[0].imagePullPolcy: Forbidden: unknown field (nodelet validates strictly, as "
              "kubectl --validate=strict)"], id="unknown-field"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            livenessProbe:
              httpGet: {port: 0}
            readinessProbe:
              tcpSocket: {port: metrics}
        """, [f"{F}:9: spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and "
              "65535, inclusive",
              f'{F}:11: spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: "metrics": no TCP '
              "container port with this name (container ports named: none)"], id="probes"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          initContainers:
          - {name: side, image: x, restartPolicy: OnFailure}
          - name: init
            image: x
            readinessProbe: {exec: {command: ["true"]}}
            lifecycle: {preStop: {exec: {command: ["true"]}}}
          containers:
          - {name: a, image: x, restartPolicy: Always}
        """, [f'{F}:6: spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: '
              '"Always"',
              f"{F}:9: spec.initContainers[1].readinessProbe: Forbidden: may not be set for init containers without "
              "restartPolicy=Always",
              f"{F}:10: spec.initContainers[1].lifecycle: Forbidden: may not be set for init containers without "
              "restartPolicy=Always",
              f"{F}:12: spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"],
        id="sidecar"),
    pytest.param("""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        """, [f'{F}:2: kind: Unsupported value: "Deployment": unknown kind (nodelet reads Pod, Service, Endpoints, '
              "EndpointSlice, ConfigMap, Secret, Node and List)"], id="unknown-kind"),
    pytest.param("""
        apiVersion: v2
        kind: Pod
        metadata: {name: web}
        spec: {containers: [{name: a, image: x}]}
        """, [f'{F}:1: apiVersion: Unsupported value: "v2": supported values: "v1"'], id="pod-apiversion"),
    pytest.param("""
        metadata: {name: web}
        """, [f"{F}:1: kind: Required value"], id="kind-missing"),
    pytest.param("""
        - a
        - b
        """, [f"{F}:1: Invalid value: a list: must be an object (a Kubernetes resource with apiVersion and kind)"],
        id="not-an-object"),
    pytest.param("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: a
            image: x
            name: b
        """, [f'{F}:8: spec.containers[0].name: Duplicate value: "name": duplicate key in a YAML/JSON mapping'],
        id="duplicate-key"),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_bad_input_gives_exact_errors(text: str, expected: list[str]) -> None:
    assert errors_of(text) == expected


def test_broken_file_contributes_no_pods_even_with_valid_documents() -> None:
    text = """
    apiVersion: v1
    kind: Pod
    metadata: {name: good}
    spec: {containers: [{name: a, image: x}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: bad}
    spec: {containers: [{name: a}]}
    """
    pods, _, errors = parse_manifest_bytes(textwrap.dedent(text).encode(), file=F, node_name="n")
    # parse_manifest_bytes reports the valid pod; compute_manifest_set drops the whole file (tested there)
    assert [p.name for p in pods] == ["good-n"]
    assert [(e.document, e.line, e.field) for e in errors] == [(1, 10, "spec.containers[0].image")]


def test_json_errors_have_lines() -> None:
    text = '{\n  "apiVersion": "v1",\n  "kind": "Pod",\n  "metadata": {"name": "w"},\n  "spec": {\n' \
           '    "containers": [\n      {"name": "a"}\n    ]\n  }\n}\n'
    _, _, errors = parse_manifest_bytes(text.encode(), file="/m/p.json", node_name="n")
    assert [str(e) for e in errors] == ["/m/p.json:7: spec.containers[0].image: Required value"]


def test_json_syntax_error() -> None:
    _, _, errors = parse_manifest_bytes(b'{\n  "kind": "Pod",\n  "x": \n}\n', file="/m/p.json", node_name="n")
    assert [str(e) for e in errors] == ["/m/p.json:4: invalid JSON: Expecting value (column 1)"]


def test_not_utf8() -> None:
    _, _, errors = parse_manifest_bytes(b"kind: Pod\nname: \xff\n", file=F, node_name="n")
    assert [str(e) for e in errors] == [f"{F}:2: not UTF-8 text (byte 0xff at offset 16)"]


def test_alias_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import kubelet.manifest.parse

    monkeypatch.setattr(kubelet.manifest.parse, "_MAX_NODES", 10_000)
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 6):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    _, _, errors = parse_manifest_bytes("\n".join(lines).encode(), file=F, node_name="n")
    assert len(errors) == 1 and "document too large" in errors[0].reason


def test_generated_name_too_long() -> None:
    name = "a" * 250
    text = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{containers: [{{name: a, image: x}}]}}\n"
    _, _, errors = parse_manifest_bytes(text.encode(), file=F, node_name="node1")
    assert [e.field for e in errors] == ["metadata.name"]
    assert errors[0].reason.endswith("must be no more than 253 characters (the name with the node name appended)")
