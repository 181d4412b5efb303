"""Objects the agent emits through its API are v1 objects (checked against the official client's models, unknown
fields rejected), carry the API server's defaults, and a terminating pod's deletionTimestamp is stamped once."""
from __future__ import annotations

import cri
from kubelet.app import build_agent

import textwrap

import pytest

from kubelet.clock import FakeClock
from kubelet.config import load_config
from kubelet.lifecycle.agent import Agent
from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.testing_shape import ShapeError, assert_v1_shape
from kubelet.types import ManifestSet

MANIFEST = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: app
    image: localhost/nodelet/busybox:1.35
    command: [sleep, "3600"]
    readinessProbe: {exec: {command: ["true"]}}
    livenessProbe: {tcpSocket: {port: 80}, initialDelaySeconds: 2}
"""


class Workers:
    def __init__(self, **callbacks: object) -> None:
        self.terminating: set[str] = set()

    def sync(self, uid: str) -> None:
        pass

    def terminate(self, uid: str) -> None:
        self.terminating.add(uid)

    def is_terminating(self, uid: str) -> bool:
        return uid in self.terminating

    def uids(self) -> set[str]:
        return set()


def make_agent(tmp_path) -> tuple[Agent, FakeClock]:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    config = load_config(None, {"nodeName": "node1", "rootDir": str(tmp_path)})
    # a client that is never called: these tests read objects only
    agent = build_agent(config, client=cri.RuntimeClient("unix:///nonexistent.sock"), host_ip="192.0.2.10", clock=clock,
                        workers=Workers).agent
    pods, _, errors = parse_manifest_bytes(textwrap.dedent(MANIFEST).encode(), file="/m/web.yaml", node_name="node1")
    assert not errors
    agent.on_manifests(ManifestSet(pods=tuple(pods)))
    return agent, clock


def test_pod_objects_and_events_are_v1_and_defaulted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    agent, _ = make_agent(tmp_path)
    agent.recorder.node(reason="IgnoredConfigFields", message="x", type="Warning")
    [obj] = agent.pod_objects()
    assert_v1_shape("Pod", obj)
    probe = obj["spec"]["containers"][0]["readinessProbe"]
    assert (probe["failureThreshold"], probe["periodSeconds"], probe["timeoutSeconds"], probe["successThreshold"]) == (
        3, 10, 1, 1)
    assert (obj["spec"]["schedulerName"], obj["spec"]["enableServiceLinks"], obj["spec"]["securityContext"]) == (
        "default-scheduler", True, {})
    events = agent.recorder.list()
    assert events
    for e in events:
        assert_v1_shape("Event", e)
    assert_v1_shape("PodList", {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": ""},
                                "items": agent.pod_objects()})


def test_deletion_timestamp_is_stamped_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    agent, clock = make_agent(tmp_path)
    [uid] = list(agent.desired)
    agent.on_manifests(ManifestSet(pods=()))
    assert agent.workers.is_terminating(uid)
    first = agent.pod_objects()[0]["metadata"]["deletionTimestamp"]
    clock.t += 5
    assert agent.pod_objects()[0]["metadata"]["deletionTimestamp"] == first
    assert_v1_shape("Pod", agent.pod_objects()[0])


def test_the_shape_check_rejects_what_is_not_v1() -> None:
    with pytest.raises(ShapeError) as e:
        assert_v1_shape("Pod", {"apiVersion": "v1", "kind": "Pod", "status": {
            "containerStatuses": [{"name": "a", "image": "i", "imageID": "", "ready": True, "restartCount": 0,
                                   "logPath": "/x"}]}})
    assert ".status.containerStatuses[0].logPath: not a field of V1ContainerStatus" in str(e.value)
    with pytest.raises(ShapeError, match="must be an integer"):
        assert_v1_shape("Pod", {"spec": {"containers": [{"name": "a", "readinessProbe": {"periodSeconds": "10"}}]}})
    with pytest.raises(ShapeError, match="name"):  # required
        assert_v1_shape("Pod", {"spec": {"containers": [{"image": "busybox"}]}})
