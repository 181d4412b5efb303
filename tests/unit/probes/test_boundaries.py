"""probes stays a leaf: it never imports the daemon (kubelet) or the runtime client (cri)."""
from __future__ import annotations

import ast
from pathlib import Path

import probes
from probes import HTTPGetAction
from probes.http import compute_probe_url, render_probe_request
from probes.runners import render_go_duration


def test_probes_imports_neither_kubelet_nor_cri() -> None:
    root = Path(probes.__file__).parent
    offenders = []
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("kubelet", "cri")]
    assert offenders == []


def test_urls_and_request_lines() -> None:
    act = HTTPGetAction(scheme="HTTPS", host=None, port=8443, path="/healthz?a=1", headers=())
    assert compute_probe_url(act, "fd00::5") == "https://[fd00::5]:8443/healthz?a=1"
    req = render_probe_request("http://10.0.0.2:80/x?y=1", (("x-a", "1"), ("Host", "h.example"), ("x-a", "2")),
                               host_override="h.example")
    assert req == (b"GET /x?y=1 HTTP/1.1\r\nHost: h.example\r\nUser-Agent: kube-probe/1.31\r\nAccept: */*\r\n"
                   b"X-A: 1\r\nX-A: 2\r\nConnection: close\r\n\r\n")


def test_go_durations() -> None:
    assert [render_go_duration(s) for s in (1, 10, 1.5, 0.5)] == ["1s", "10s", "1.5s", "500ms"]
