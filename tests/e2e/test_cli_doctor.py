"""`nodelet doctor` on this real host with the real private containerd: the facts are gathered for real, a
world-writable manifest dir is a FAIL with its fix, and the exit code follows the FAIL lines."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.containerd]


def doctor(config: Path, *extra: str) -> tuple[int, str, str]:
    p = subprocess.run([sys.executable, "-m", "kubelet.cli.main", "doctor", "--config", str(config), *extra],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_doctor_real_host(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"containerRuntimeEndpoint": containerd.endpoint, "staticPodPath": str(manifests),
                                  "podLogsDir": str(tmp_path / "logs"), "apiSocket": str(tmp_path / "none.sock")}))
    os.chmod(manifests, 0o777)
    code, out, err = doctor(config)
    assert err == ""
    lines = out.splitlines()
    assert f"FAIL  manifests      {manifests} is world-writable (mode 0777): anyone on the node can run root pods" in lines
    assert f"                     fix: chmod o-w {manifests}" in lines
    assert any(ln.startswith("PASS  runtime        containerd ") for ln in lines), out
    assert "PASS  sandbox-image  localhost/nodelet/pause:3.9 present" in lines
    assert code == 1 and lines[-1].startswith("13 checks: ")

    os.chmod(manifests, 0o755)
    code, out, _ = doctor(config)
    assert f"PASS  manifests      {manifests} mode 0755, owned by root" in out.splitlines()
    assert code == (1 if any(ln.startswith("FAIL") for ln in out.splitlines()) else 0), out
    code2, js, _ = doctor(config, "-o", "json")
    checks = json.loads(js)["checks"]
    assert [c["name"] for c in checks][:3] == ["runtime", "cgroups", "ip_forward"] and code2 == code
