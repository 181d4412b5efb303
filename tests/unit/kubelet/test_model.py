"""The typed pod model: a manifest parsed once into frozen values the agent acts on (no re-reading of raw dicts)."""
from __future__ import annotations

import dataclasses

import grpc
import pytest

import cri
from cri._gen import api_pb2 as pb
from cri.testing import FakeContainer, FakeRuntime
from kubelet.kuberuntime.hooks import HookError, describe_hook, run_hook
from kubelet.manifest.parse import parse_manifest_bytes
from kubelet.types import DNSOption, Pod, PodDNSConfig, SleepAction
from probes.types import ExecAction, HTTPGetAction

MANIFEST = b"""apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 5
  dnsConfig:
    nameservers: [192.0.2.53]
    options: [{name: ndots, value: "2"}, {name: edns0}]
  containers:
    - name: app
      image: localhost/nodelet/busybox:1.35
      stdin: true
      tty: true
      ports: [{name: http, containerPort: 8080}]
      lifecycle:
        postStart: {httpGet: {path: /ready, port: http}}
        preStop: {sleep: {seconds: 3}}
    - name: side
      image: localhost/nodelet/busybox:1.35
      lifecycle:
        preStop: {exec: {command: [sh, -c, "kill 1"]}}
"""


def parsed() -> Pod:
    pods, _, errors = parse_manifest_bytes(MANIFEST, file="/m/web.yaml", node_name="n1")
    assert not errors
    return pods[0]


def test_lifecycle_stdin_tty_and_dns_are_typed_at_parse_time() -> None:
    pod = parsed()
    app, side = pod.spec.containers
    assert app.lifecycle.post_start == HTTPGetAction(scheme="HTTP", host=None, port=8080, path="/ready")
    assert app.lifecycle.pre_stop == SleepAction(seconds=3)
    assert app.lifecycle.pre_stop_json == '{"sleep":{"seconds":3}}'
    assert (app.stdin, app.stdin_once, app.tty) == (True, False, True)
    assert side.lifecycle.pre_stop == ExecAction(command=("sh", "-c", "kill 1")) and side.lifecycle.post_start is None
    assert pod.spec.dns_config == PodDNSConfig(nameservers=("192.0.2.53",),
                                               options=(DNSOption(name="ndots", value="2"), DNSOption(name="edns0")))
    assert [describe_hook(h) for h in (app.lifecycle.post_start, app.lifecycle.pre_stop, side.lifecycle.pre_stop)] == [
        "httpGet", "sleep", "exec"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        app.tty = False  # type: ignore[misc]


async def test_exec_hook_runs_the_parsed_command_through_cri() -> None:
    seen: list[list[str]] = []

    def handler(cid: str, cmd: list[str], timeout: int) -> tuple[int, bytes, bytes]:
        seen.append(cmd)
        return (7, b"boom", b"") if cmd[-1] == "fail" else (0, b"", b"")

    async with FakeRuntime() as fake:
        fake.exec_handler = handler
        fake.containers["c1"] = FakeContainer(id="c1", sandbox_id="s1", config=pb.ContainerConfig(), state=pb.CONTAINER_RUNNING)
        client = cri.RuntimeClient(fake.endpoint)
        try:
            await run_hook(ExecAction(command=("sh", "-c", "ok")), client=client, container_id="c1", pod_ip="", timeout=2)
            with pytest.raises(HookError, match="exited with 7: boom"):
                await run_hook(ExecAction(command=("sh", "-c", "fail")), client=client, container_id="c1", pod_ip="", timeout=2)
            fake.inject_error("ExecSync", grpc.StatusCode.NOT_FOUND, "no such container")
            with pytest.raises(HookError, match="no such container"):
                await run_hook(ExecAction(command=("true",)), client=client, container_id="c1", pod_ip="", timeout=2)
        finally:
            await client.close()
    assert seen == [["sh", "-c", "ok"], ["sh", "-c", "fail"]]


def test_no_raw_manifest_reads_far_from_parsing() -> None:
    """The raw manifest is kept for display (the API's pod objects) and the unimplemented-fields report only."""
    import re
    from pathlib import Path

    import kubelet

    allowed = {
        ("lifecycle/agent.py", "compute_api_object(pod.manifest)"),  # the API's v1 Pod objects (with API defaults)
        ("kuberuntime/manager.py", "compute_unimplemented_fields(pod.manifest)"),
        ("manifest/parse.py", 'found.item.manifest["metadata"]["name"]'),  # the parser itself
    }
    pattern = re.compile(r"\.raw\b|\bpod\.manifest\b|\.manifest\.get\(|\.manifest\[")
    root = Path(kubelet.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("testing") or rel in ("types.py", "manifest/defaults.py"):
            continue
        for line in path.read_text().splitlines():
            if pattern.search(line) and not any(rel == f and s in line for f, s in allowed):
                found.append(f"{rel}: {line.strip()}")
    assert found == []
