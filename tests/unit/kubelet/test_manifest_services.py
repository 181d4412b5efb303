"""Services (and EndpointSlices) are parsed once, when the manifest is read, by the proxy's own parser: a broken
one is an error with file:line that `nodelet validate` reports, and it never costs the file's pods."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kubelet.cli.main import cli
from kubelet.manifest.parse import compute_manifest_set
from proxy.model import ManifestDoc, Service
from proxy.resolve import compute_state
from proxy.ipalloc import Allocations

BROKEN = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
    - port: 80
    - port: 81
      nodePort: 99999
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: localhost/nodelet/busybox:1.35}]
"""
GOOD = """apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  type: NodePort
  selector: {app: api}
  ports: [{port: 80, nodePort: 30080}]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_broken_service_is_an_object_error_with_line_and_the_pod_stays(tmp_path: Path) -> None:
    m = compute_manifest_set(str(write(tmp_path, "a.yaml", BROKEN)), node_name="n1")
    assert m.errors == () and m.broken_files == frozenset() and len(m.pods) == 1
    assert [str(e) for e in m.object_errors] == [
        f"{tmp_path}/a.yaml:7: spec.ports[0].name: Service default/web: required when the service has more than one port"]
    assert [o.parsed for o in m.others] == [None]


def test_valid_service_is_parsed_once_and_reused_by_the_proxy(tmp_path: Path) -> None:
    m = compute_manifest_set(str(write(tmp_path, "b.yaml", GOOD)), node_name="n1")
    (svc,) = m.others
    assert isinstance(svc.parsed, Service) and svc.parsed.ports[0].node_port == 30080
    doc = ManifestDoc(source=svc.source, doc=svc.body, parsed=svc.parsed)
    state = compute_state(services=[doc], endpoint_docs=[], pods=[], previous=Allocations(), service_cidr="10.96.0.0/12")
    assert state.errors == () and len(state.ports) == 1
    # outside this proxy's nodePort range: parsed again, and rejected with the range in the message
    state = compute_state(services=[doc], endpoint_docs=[], pods=[], previous=Allocations(), service_cidr="10.96.0.0/12",
                          node_port_range=(31000, 32000))
    assert [e.reason for e in state.errors] == ["30080 is outside the node port range 31000-32000"]


def test_validate_reports_the_broken_service(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", BROKEN)
    write(tmp_path, "b.yaml", GOOD)
    r = CliRunner().invoke(cli, ["validate", "--node-name", "n1", str(tmp_path)], catch_exceptions=False)
    assert r.exit_code == 1
    assert r.stdout == (f"{tmp_path}/a.yaml:7: spec.ports[0].name: Service default/web: required when the service has "
                        "more than one port\n")
    assert r.stderr == f"{tmp_path}: 2 files, 1 pod, 1 Service valid; 1 error in 1 file\n"
