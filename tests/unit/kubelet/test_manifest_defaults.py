"""Defaulting, naming, UIDs and hashes of static pods (REFERENCE §1)."""
from __future__ import annotations

import hashlib
import json
import textwrap

import pytest

from kubelet.manifest.defaults import compute_image_pull_policy, format_rfc3339nano
from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.types import ANN_CONFIG_FILE, ANN_CONFIG_HASH, ANN_CONFIG_SEEN, ANN_CONFIG_SOURCE, EnvVar, Pod

BASE = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx:1.25
    ports:
    - {name: http, containerPort: 80}
  - name: side
    image: busybox
    command: [sleep, "3600"]
"""
T0 = 1_700_000_000_123_456_789


def pod_of(text: str = BASE, *, file: str = "/etc/kubernetes/manifests/web.yaml", node: str = "node1",
           first_seen: dict | None = None, clock: int = T0) -> Pod:
    pods, _, errors = parse_manifest_bytes(textwrap.dedent(text).encode(), file=file, node_name=node,
                                           first_seen=first_seen, clock_ns=lambda: clock)
    assert not errors, [str(e) for e in errors]
    assert len(pods) == 1
    return pods[0]


def test_defaults_and_naming() -> None:
    pod = pod_of(node="Node1.Example")
    assert pod.name == "web-node1.example"
    assert pod.namespace == "default"
    assert pod.key == "default/web-node1.example"
    m = pod.manifest
    assert m["apiVersion"] == "v1" and m["kind"] == "Pod"
    assert m["metadata"]["name"] == "web-node1.example"
    assert m["metadata"]["uid"] == pod.uid
    spec = m["spec"]
    assert spec["nodeName"] == "Node1.Example" == pod.spec.node_name
    assert spec["restartPolicy"] == "Always" == pod.spec.restart_policy
    assert spec["dnsPolicy"] == "ClusterFirst" == pod.spec.dns_policy
    assert spec["terminationGracePeriodSeconds"] == 30 == pod.spec.termination_grace_period_seconds
    assert spec["tolerations"] == [{"operator": "Exists", "effect": "NoExecute"}]
    assert "status" not in m
    nginx, side = pod.spec.containers
    assert nginx.image_pull_policy == "IfNotPresent" and side.image_pull_policy == "Always"
    assert nginx.termination_message_path == "/dev/termination-log"
    assert nginx.termination_message_policy == "File"
    assert nginx.ports[0].protocol == "TCP" and nginx.ports[0].host_port == 0
    assert spec["containers"][0]["ports"][0] == {"name": "http", "containerPort": 80, "protocol": "TCP"}
    assert side.command == ("sleep", "3600")
    assert pod.labels == {"app": "web"}


def test_annotations() -> None:
    pod = pod_of()
    assert pod.annotations == {
        ANN_CONFIG_HASH: pod.uid, ANN_CONFIG_SOURCE: "file", ANN_CONFIG_SEEN: "2023-11-14T22:13:20.123456789Z",
        ANN_CONFIG_FILE: "/etc/kubernetes/manifests/web.yaml",
    }
    assert pod.manifest["metadata"]["annotations"] == pod.annotations


def test_user_config_annotations_and_uid_are_replaced() -> None:
    text = BASE.replace("  labels: {app: web}", "  uid: mine\n  annotations: {kubernetes.io/config.hash: x, a: b}")
    pod = pod_of(text)
    assert pod.uid != "mine" and len(pod.uid) == 32
    assert pod.annotations[ANN_CONFIG_HASH] == pod.uid and pod.annotations["a"] == "b"


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/nginx", "Always"), ("localhost:5000/nginx:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ("registry.k8s.io/pause:3.9", "IfNotPresent"),
])
def test_image_pull_policy_default(image: str, policy: str) -> None:
    assert compute_image_pull_policy(image) == policy


def test_explicit_pull_policy_kept() -> None:
    pod = pod_of(BASE.replace("image: busybox", "image: busybox\n    imagePullPolicy: Never"))
    assert pod.spec.containers[1].image_pull_policy == "Never"


def test_host_network_defaults_host_port() -> None:
    pod = pod_of(BASE.replace("spec:\n", "spec:\n  hostNetwork: true\n"))
    assert pod.spec.host_network
    assert pod.spec.containers[0].ports[0].host_port == 80
    assert pod.manifest["spec"]["containers"][0]["ports"][0]["hostPort"] == 80


def test_existing_no_execute_toleration_not_duplicated() -> None:
    text = BASE.replace("spec:\n", "spec:\n  tolerations: [{operator: Exists, effect: NoExecute}, {key: k, "
                                   "operator: Exists}]\n")
    assert pod_of(text).manifest["spec"]["tolerations"] == [{"operator": "Exists", "effect": "NoExecute"},
                                                            {"key": "k", "operator": "Exists"}]


def test_env_and_probes() -> None:
    text = BASE.replace("    ports:\n", """    env:
    - {name: A, value: "1"}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    readinessProbe:
      httpGet: {path: /ready, port: http}
    ports:
""")
    pod = pod_of(text)
    nginx = pod.spec.containers[0]
    assert nginx.env == (EnvVar(name="A", value="1"), EnvVar(name="POD_IP", field_path="status.podIP"),
                         EnvVar(name="APP", field_path="metadata.labels['app']"))
    assert nginx.readiness_probe.handler.port == 80 and nginx.readiness_probe.period_seconds == 10
    assert nginx.liveness_probe is None
    ref = pod.manifest["spec"]["containers"][0]["env"][1]["valueFrom"]["fieldRef"]
    assert ref == {"fieldPath": "status.podIP", "apiVersion": "v1"}


def test_uid_is_sha256_of_defaulted_pod_host_and_file() -> None:
    """The hash covers nodelet's own defaults, not the API server's (added after it: upgrades restart no pod)."""
    import yaml

    from kubelet.manifest.defaults import default_pod_object

    pod = pod_of()
    defaulted = default_pod_object(yaml.safe_load(textwrap.dedent(BASE)), node_name="node1")
    assert "schedulerName" not in defaulted["spec"] and "schedulerName" not in pod.manifest["spec"]
    canon = json.dumps(defaulted, sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256((canon + "host:node1" + "file:/etc/kubernetes/manifests/web.yaml").encode())
    assert pod.uid == expected.hexdigest()[:32]


@pytest.mark.parametrize("change", [
    {"text": BASE.replace("nginx:1.25", "nginx:1.26")},
    {"text": BASE.replace("app: web", "app: web2")},
    {"text": BASE + "  restartPolicy: Never\n"},
    {"file": "/etc/kubernetes/manifests/web2.yaml"},
    {"node": "node2"},
])
def test_uid_changes_on_edit_rename_or_node_change(change: dict) -> None:
    assert pod_of(**change).uid != pod_of().uid


@pytest.mark.parametrize("text", [
    BASE.replace("spec:\n", "spec:\n  restartPolicy: Always\n"),  # an explicit default
    BASE.replace("{name: http, containerPort: 80}", "{containerPort: 80, name: http, protocol: TCP}"),
    "# a comment\n" + BASE.replace("labels: {app: web}", "labels:\n    app: web"),  # formatting
    json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.25", "ports": [{"name": "http", "containerPort": 80}]},
                    {"name": "side", "image": "busybox", "command": ["sleep", "3600"]}]}}),
])
def test_uid_stable_across_equivalent_writing(text: str) -> None:
    assert pod_of(text).uid == pod_of().uid


def test_uid_stable_across_time() -> None:
    assert pod_of(clock=T0).uid == pod_of(clock=T0 + 10**12).uid


def test_config_seen_from_first_seen_map() -> None:
    seen: dict = {}
    first = pod_of(first_seen=seen, clock=T0)
    again = pod_of(first_seen=seen, clock=T0 + 5 * 10**9)
    assert first.annotations[ANN_CONFIG_SEEN] == again.annotations[ANN_CONFIG_SEEN] == seen[first.uid]
    assert first == again
    edited = pod_of(BASE.replace("nginx:1.25", "nginx:1.26"), first_seen=seen, clock=T0 + 5 * 10**9)
    assert edited.annotations[ANN_CONFIG_SEEN] == "2023-11-14T22:13:25.123456789Z"


@pytest.mark.parametrize("ns,text", [
    (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
    (1_700_000_000_500_000_000, "2023-11-14T22:13:20.5Z"),
    (1_700_000_000_000_000_001, "2023-11-14T22:13:20.000000001Z"),
])
def test_rfc3339nano(ns: int, text: str) -> None:
    assert format_rfc3339nano(ns) == text


def test_container_hash_changes_only_for_that_container() -> None:
    before = pod_of()
    after = pod_of(BASE.replace("nginx:1.25", "nginx:1.26"))
    assert before.spec.containers[0].hash != after.spec.containers[0].hash
    assert before.spec.containers[1].hash == after.spec.containers[1].hash
    assert len(before.spec.containers[0].hash) == 8
    # a pod-level change that does not touch the container keeps its hash
    assert pod_of(BASE + "  terminationGracePeriodSeconds: 5\n").spec.containers[0].hash == \
        before.spec.containers[0].hash


def test_unimplemented_fields_are_kept() -> None:
    text = BASE.replace("    command:", """    resources: {limits: {memory: 64Mi}}
    securityContext: {runAsUser: 1000}
    volumeMounts: [{name: data, mountPath: /data}]
    command:""") + "  volumes: [{name: data, emptyDir: {}}]\n  affinity: {}\n"
    pod = pod_of(text)
    assert pod.manifest["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert pod.spec.containers[1].raw["resources"] == {"limits": {"memory": "64Mi"}}
    assert pod.spec.containers[1].raw["securityContext"] == {"runAsUser": 1000}


def test_init_containers_and_pod_flags() -> None:
    text = BASE.replace("spec:\n", """spec:
  hostPID: true
  hostIPC: true
  hostname: web0
  subdomain: svc
  initContainers:
  - {name: init, image: busybox:1.36, command: ["true"], workingDir: /tmp}
""")
    pod = pod_of(text)
    assert [c.name for c in pod.spec.init_containers] == ["init"]
    assert pod.spec.init_containers[0].working_dir == "/tmp"
    assert pod.spec.host_pid and pod.spec.host_ipc and not pod.spec.host_network
    assert (pod.spec.hostname, pod.spec.subdomain) == ("web0", "svc")
    assert pod.container("init") is pod.spec.init_containers[0]


API_DEFAULTS_POD = """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  priorityClassName: system-node-critical
  hostNetwork: true
  containers:
  - name: app
    image: busybox:1.35
    resources: {limits: {cpu: 500m, memory: 64Mi}, requests: {cpu: 100m}}
    readinessProbe: {httpGet: {port: 80}}
    livenessProbe: {grpc: {port: 9000}, periodSeconds: 5}
    lifecycle: {preStop: {httpGet: {port: 80, path: /stop}}}
    ports: [{containerPort: 8080}]
  - name: side
    image: busybox:1.35
  volumes:
  - name: host
    hostPath: {path: /srv}
  - name: cfg
    configMap: {name: cfg}
"""


def test_api_server_defaults_as_a_cluster_shows_the_pod() -> None:
    """What `kubectl get pod -o json` shows in a cluster for this manifest (SetObjectDefaults_Pod + Priority)."""
    from kubelet.manifest.defaults import compute_api_object

    spec = compute_api_object(pod_of(API_DEFAULTS_POD).manifest)["spec"]
    assert (spec["enableServiceLinks"], spec["schedulerName"], spec["securityContext"]) == (True, "default-scheduler",
                                                                                            {})
    assert (spec["priority"], spec["preemptionPolicy"]) == (2000001000, "PreemptLowerPriority")
    assert (spec["dnsPolicy"], spec["restartPolicy"], spec["terminationGracePeriodSeconds"]) == ("ClusterFirst",
                                                                                                 "Always", 30)
    app, side = spec["containers"]
    assert app["readinessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                     "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert app["livenessProbe"] == {"grpc": {"port": 9000, "service": ""}, "timeoutSeconds": 1, "periodSeconds": 5,
                                    "successThreshold": 1, "failureThreshold": 3}
    assert app["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}
    assert app["resources"] == {"limits": {"cpu": "500m", "memory": "64Mi"},
                                "requests": {"cpu": "100m", "memory": "64Mi"}}
    assert app["ports"] == [{"containerPort": 8080, "protocol": "TCP", "hostPort": 8080}]
    assert side["resources"] == {} and "readinessProbe" not in side
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["host"]["hostPath"] == {"path": "/srv", "type": ""}
    assert vols["cfg"]["configMap"] == {"name": "cfg", "defaultMode": 420}


def test_api_server_volume_defaults() -> None:
    """Volume kinds nodelet refuses still get upstream's defaults (the function is the API server's, not nodelet's)."""
    from kubelet.manifest.defaults import apply_api_server_defaults

    pod = {"spec": {"containers": [], "volumes": [
        {"name": "scratch"},
        {"name": "token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}]}}
    apply_api_server_defaults(pod)
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["scratch"] == {"name": "scratch", "emptyDir": {}}
    sources = vols["token"]["projected"]["sources"]
    assert vols["token"]["projected"]["defaultMode"] == 420
    assert sources[0]["serviceAccountToken"] == {"path": "token", "expirationSeconds": 3600}
    assert sources[1]["downwardAPI"]["items"][0]["fieldRef"] == {"fieldPath": "metadata.name", "apiVersion": "v1"}


def test_plain_pod_gets_priority_zero_and_is_a_v1_pod() -> None:
    from kubelet.manifest.defaults import compute_api_object
    from kubelet.testing_shape import assert_v1_shape

    obj = compute_api_object(pod_of().manifest)
    assert (obj["spec"]["priority"], obj["spec"]["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert_v1_shape("Pod", obj)
    assert_v1_shape("Pod", compute_api_object(pod_of(API_DEFAULTS_POD).manifest))
