from __future__ import annotations

from probes import ContainerId, ProbeKind, ProbeResult, ProbeState
from probes.results import render_probe_states
from probes.testing import POD, UID


def state(kind: ProbeKind, container: str = "web") -> ProbeState:
    return ProbeState(pod_key=POD, pod_uid=UID, container_name=container, container_id=ContainerId("c1"), kind=kind,
                      handler="httpGet", result=ProbeResult.FAILURE, last_probe_result=ProbeResult.FAILURE,
                      consecutive_successes=0, consecutive_failures=2,
                      last_message="HTTP probe failed with statuscode: 500", last_latency_s=0.0012345,
                      last_probe_time=1_700_000_000.5, on_hold=False)


def test_render_is_stable_and_complete() -> None:
    out = render_probe_states([state(ProbeKind.READINESS), state(ProbeKind.LIVENESS), state(ProbeKind.STARTUP, "a")])
    assert [(o["container"], o["probe"]) for o in out] == [("a", "startup"), ("web", "liveness"),
                                                           ("web", "readiness")]
    assert out[1] == {
        "pod": "default/web-node1", "podUID": UID, "container": "web", "containerID": "c1", "probe": "liveness",
        "handler": "httpGet", "result": "Failure", "lastProbeResult": "Failure", "consecutiveSuccesses": 0,
        "consecutiveFailures": 2, "lastMessage": "HTTP probe failed with statuscode: 500", "lastLatencyMs": 1.234,
        "lastProbeTime": 1_700_000_000.5, "onHold": False,
    }
