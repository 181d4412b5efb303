"""Property: no manifest makes validation fail with anything but precise errors, and every pod it accepts turns into
CRI requests that protobuf can encode (no "Value out of range" at StopContainer or RunPodSandbox time).

Manifests are generated from the Pod schema (structured strategies for the fields nodelet reads), with any field
swapped for junk: huge and negative integers, floats (inf, nan), odd strings, quantities with huge exponents, wrong
shapes. Serialized as YAML and as JSON, they go through the same parser as the daemon's manifest directory.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cri import convert
from cri import api
from kubelet.kuberuntime.podconfig import NodeInfo, compute_container_config, compute_env, compute_sandbox_config
from kubelet.manifest.parse import parse_manifest_bytes

INT64 = 2**63
JUNK_INTS = st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**32, INT64 - 1, INT64, -INT64, -INT64 - 1, 10**30])
JUNK = st.deferred(lambda: st.one_of(
    st.none(), st.booleans(), JUNK_INTS, st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["", "1e99999999999", "-1", "1Ei", "9Ei", "0x10", "1e-99999999999", "..",
                                          "/abs", "a b", "\u00e9", "Always", "TCP", "http", "metadata.name"]),
    st.lists(JUNK, max_size=2), st.dictionaries(st.text(max_size=4), JUNK, max_size=2)))


def with_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The schema's value most of the time, junk sometimes."""
    return st.one_of(strategy, strategy, strategy, JUNK)


def obj(required: dict[str, st.SearchStrategy[Any]] | None = None,
        **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with the required fields and any subset of the optional ones."""
    return st.fixed_dictionaries(required or {}, optional=fields)


def pod_strategy(maybe: Callable[[st.SearchStrategy[Any]], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pods from the schema; ``maybe`` decides how often a value is swapped for junk."""
    KEY = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
    NAME = maybe(KEY)
    QUANTITY = maybe(st.one_of(
        st.integers(min_value=0, max_value=2**64),
        st.builds(lambda n, s: f"{n}{s}", st.integers(min_value=0, max_value=10**20),
                  st.sampled_from(["", "m", "Mi", "Gi", "Ei", "k", "e3", "e18", "e99999999999", "E"])),
    ))
    SECONDS = maybe(st.integers(min_value=-1, max_value=2**64))
    PORT = maybe(st.one_of(st.integers(min_value=-1, max_value=2**32), NAME))


    PROBE = maybe(obj(
        httpGet=maybe(obj(port=PORT, path=maybe(st.text(max_size=5)), scheme=maybe(st.sampled_from(["HTTP", "HTTPS"])))),
        tcpSocket=maybe(obj(port=PORT)), exec=maybe(obj(command=maybe(st.lists(st.text(max_size=4), max_size=2)))),
        grpc=maybe(obj(port=PORT)), periodSeconds=SECONDS, timeoutSeconds=SECONDS, initialDelaySeconds=SECONDS,
        failureThreshold=SECONDS, successThreshold=SECONDS, terminationGracePeriodSeconds=SECONDS,
    ))
    ENV = maybe(st.lists(maybe(obj(
        name=NAME, value=maybe(st.text(max_size=5)),
        valueFrom=maybe(obj(fieldRef=maybe(obj(fieldPath=maybe(st.sampled_from([
            "metadata.name", "status.podIPs", "status.hostIPs", "spec.serviceAccountName", "metadata.labels['a']",
            "spec.nodeName"])))),
            resourceFieldRef=maybe(obj(resource=maybe(st.sampled_from(["limits.cpu", "requests.memory",
                                                                       "limits.ephemeral-storage"])),
                                       divisor=maybe(st.sampled_from(["1", "1m", "1Mi", "2"])),
                                       containerName=NAME)),
            secretKeyRef=maybe(obj(name=NAME, key=NAME)))),
    )), max_size=3))
    SECURITY = maybe(obj(
        runAsUser=SECONDS, runAsGroup=SECONDS, runAsNonRoot=maybe(st.booleans()), privileged=maybe(st.booleans()),
        readOnlyRootFilesystem=maybe(st.booleans()), allowPrivilegeEscalation=maybe(st.booleans()),
        capabilities=maybe(obj(add=maybe(st.lists(st.sampled_from(["NET_ADMIN", "CAP_X", "ALL"]), max_size=2)))),
        seccompProfile=maybe(obj(type=maybe(st.sampled_from(["RuntimeDefault", "Localhost", "Unconfined"])),
                                 localhostProfile=maybe(st.text(max_size=5)))),
        procMount=maybe(st.sampled_from(["Default", "Unmasked"])), seLinuxOptions=maybe(obj(level=maybe(st.text(max_size=3)))),
    ))
    CONTAINER = maybe(obj(
        {"name": NAME, "image": maybe(st.sampled_from(["busybox:1.35", " x", "localhost/nodelet/pause:3.9"]))},
        command=maybe(st.lists(st.text(max_size=4), max_size=2)), env=ENV,
        ports=maybe(st.lists(maybe(obj(containerPort=PORT, hostPort=PORT, protocol=maybe(st.sampled_from(["TCP", "UDP"])),
                                        name=NAME)), max_size=2)),
        resources=maybe(obj(limits=maybe(obj(cpu=QUANTITY, memory=QUANTITY)),
                            requests=maybe(obj(cpu=QUANTITY, memory=QUANTITY)))),
        livenessProbe=PROBE, readinessProbe=PROBE, startupProbe=PROBE, securityContext=SECURITY,
        lifecycle=maybe(obj(preStop=maybe(obj(sleep=maybe(obj(seconds=SECONDS)))))),
        volumeMounts=maybe(st.lists(maybe(obj(name=NAME, mountPath=maybe(st.sampled_from(["/a", "a", "/b"])))),
                                    max_size=2)),
    ))
    VOLUME = maybe(st.builds(lambda name, kind, body: {"name": name, kind: body}, NAME,
                             st.sampled_from(["emptyDir", "hostPath", "configMap", "downwardAPI", "projected", "image",
                                              "persistentVolumeClaim", "csi"]),
                             maybe(obj(sizeLimit=QUANTITY, path=maybe(st.sampled_from(["/tmp", "x"])), name=NAME,
                                       defaultMode=SECONDS, items=maybe(st.lists(JUNK, max_size=2))))))
    POD = st.builds(lambda meta, spec: {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec},
                    maybe(obj({"name": NAME}, namespace=NAME, labels=maybe(st.dictionaries(KEY, NAME, max_size=2)),
                              annotations=maybe(st.dictionaries(KEY, maybe(st.text(max_size=4)), max_size=2)))),
                    maybe(obj({"containers": maybe(st.lists(CONTAINER, min_size=1, max_size=2))},
                              initContainers=maybe(st.lists(CONTAINER, max_size=1)),
                              terminationGracePeriodSeconds=SECONDS, activeDeadlineSeconds=SECONDS, priority=SECONDS,
                              hostNetwork=maybe(st.booleans()), hostUsers=maybe(st.booleans()),
                              volumes=maybe(st.lists(VOLUME, max_size=2)), securityContext=SECURITY,
                              tolerations=maybe(st.lists(maybe(obj(key=NAME, tolerationSeconds=SECONDS)), max_size=1)),
                              serviceAccountName=NAME, restartPolicy=maybe(st.sampled_from(["Always", "Never"])),
                              overhead=maybe(obj(cpu=QUANTITY)))))
    return POD


POD = pod_strategy(with_junk)
SCHEMA_POD = pod_strategy(lambda s: s)  # no junk: reaches valid pods often


def _dump(pod: dict[str, Any], as_json: bool) -> bytes:
    if as_json:
        return json.dumps(pod, allow_nan=True).encode()
    return yaml.safe_dump(pod, allow_unicode=True).encode()


NODE = NodeInfo(node_name="node1", host_ip="192.168.1.2")


def _encodable(pod: Any) -> None:
    """Build every CRI request of an accepted pod and encode it to protobuf bytes."""
    convert.to_sandbox_config(compute_sandbox_config(pod, NODE, attempt=0, host_resolv=api.DNSConfig())
                              ).SerializeToString()
    allocatable = {"cpu": 2000, "memory": 1 << 30, "ephemeral-storage": 1 << 35}
    for c in pod.spec.init_containers + pod.spec.containers:
        compute_env(c, pod, pod_ip="10.0.0.2", host_ip="192.168.1.2", allocatable=allocatable)
        cfg = compute_container_config(pod, c, restart_count=0, init=False, pod_ip="10.0.0.2", host_ip="192.168.1.2",
                                       image="busybox:1.35", node=NODE)
        convert.to_container_config(cfg).SerializeToString()
    grace = pod.spec.termination_grace_period_seconds
    assert 0 <= grace < 2**63  # StopContainerRequest.timeout is an int64


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pod=POD, as_json=st.booleans())
def test_any_manifest_gives_precise_errors_or_an_encodable_pod(pod: dict[str, Any], as_json: bool) -> None:
    file = "/m/pod.json" if as_json else "/m/pod.yaml"
    pods, _, errors = parse_manifest_bytes(_dump(pod, as_json), file=file, node_name="node1")
    for e in errors:
        assert e.file == file and e.reason and "\n" not in str(e)
        assert e.line > 0 or e.reason.startswith("invalid JSON")  # a line for every problem in a parsed document
        assert "internal error" not in e.reason
    if errors:
        assert pods == []
        return
    assert len(pods) == 1
    _encodable(pods[0])


def test_generated_manifests_are_sometimes_valid() -> None:
    """The property is not vacuous: the schema strategy (the same one, without junk) reaches accepted pods as well as
    refusals."""
    seen = {"valid": 0, "invalid": 0}

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(pod=SCHEMA_POD)
    def run(pod: dict[str, Any]) -> None:
        pods, _, errors = parse_manifest_bytes(_dump(pod, False), file="/m/p.yaml", node_name="n")
        seen["valid" if pods else "invalid"] += 1

    run()
    assert seen["valid"] > 0 and seen["invalid"] > 0, seen
