"""Pods rebuilt from the CRI alone (the daemon is down): kubelet labels → v1-Pod-shaped dicts the printers accept."""
from __future__ import annotations

from datetime import datetime, timezone

from cri import api
from kubelet.cli.fallback import compute_runtime_pods
from kubelet.server.printers import render_pods_table

S = 1_000_000_000
T0 = int(datetime(2026, 1, 10, 11, 0, tzinfo=timezone.utc).timestamp()) * S


def sandbox(sid: str, uid: str, name: str, *, ready: bool = True, created: int = T0) -> api.PodSandbox:
    labels = {"io.kubernetes.pod.uid": uid, "io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "default",
              "io.nodelet.node": "n1", "app": name}
    return api.PodSandbox(id=api.SandboxId(sid), metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace="default", attempt=0),
                          state=api.SandboxState.READY if ready else api.SandboxState.NOTREADY, created_at=created, labels=labels)


def cstatus(cid: str, uid: str, name: str, state: api.ContainerState, *, attempt: int = 0, exit_code: int = 0,
            init: bool = False) -> api.ContainerStatus:
    return api.ContainerStatus(
        id=api.ContainerId(cid), name=name, attempt=attempt, state=state, created_at=T0 + attempt * S, started_at=T0 + attempt * S,
        finished_at=T0 + (attempt + 1) * S if state == api.ContainerState.EXITED else 0, exit_code=exit_code,
        image="busybox", image_ref="sha256:b",
        labels={"io.kubernetes.pod.uid": uid, "io.kubernetes.container.name": name, "io.nodelet.node": "n1"},
        annotations={"io.kubernetes.container.restartCount": str(attempt), "io.nodelet.container.type": "init" if init else "regular"},
        log_path=f"/var/log/pods/default_{uid}/{name}/{attempt}.log")


def test_pods_from_runtime_print_like_the_api() -> None:
    R, E = api.ContainerState.RUNNING, api.ContainerState.EXITED
    pods = compute_runtime_pods(
        [sandbox("s0", "u1", "web-n1", ready=False, created=T0 - 10 * S), sandbox("s1", "u1", "web-n1"), sandbox("s2", "u2", "crash-n1")],
        {"s1": "10.244.0.5", "s2": "10.244.0.6"},
        [cstatus("i1", "u1", "init", E, init=True), cstatus("c1", "u1", "httpd", R),
         cstatus("c2", "u2", "app", E, attempt=3, exit_code=1), cstatus("c3", "u2", "app", E, attempt=2, exit_code=1)])
    web, crash = pods[1], pods[0]
    assert web["metadata"] == {"name": "web-n1", "namespace": "default", "uid": "u1", "creationTimestamp": "2026-01-10T11:00:00Z", "labels": {"app": "web-n1"},
                               "annotations": {"nodelet.io/log-directory": "/var/log/pods/default_u1"}}
    assert web["status"]["podIP"] == "10.244.0.5" and web["status"]["phase"] == "Running"
    assert web["spec"]["initContainers"] == [{"name": "init", "image": "busybox"}]
    assert web["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    app = crash["status"]["containerStatuses"][0]
    assert (app["restartCount"], app["containerID"]) == (3, "containerd://c2")
    assert "logPath" not in app  # not a v1 field: the runtime's directory is an annotation instead
    assert pods[0]["metadata"]["annotations"]["nodelet.io/log-directory"] == "/var/log/pods/default_u2"
    assert app["lastState"]["terminated"]["exitCode"] == 1 and crash["status"]["phase"] == "Failed"
    now = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
    assert render_pods_table(pods, now=now) == (
        "NAME       READY   STATUS    RESTARTS      AGE\n"
        "crash-n1   0/1     Error     3 (59m ago)   60m\n"
        "web-n1     1/1     Running   0             60m\n")
    from kubelet.testing_shape import assert_v1_shape

    for p in pods:
        assert_v1_shape("Pod", p)
    no_ip = compute_runtime_pods([sandbox("s3", "u3", "new-n1", ready=False)], {}, [])[0]
    assert "podIP" not in no_ip["status"] and "podIPs" not in no_ip["status"]
