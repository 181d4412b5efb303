"""Shell completion: click's scripts for bash/zsh/fish, and pod names completed from the daemon."""
from __future__ import annotations

import os
import shutil
import tempfile

from click.testing import CliRunner

from kubelet.server.api import StaticView
from kubelet.cli.main import cli
from kubelet.cli.testing import ServerThread


def test_scripts() -> None:
    for shell, needle in (("bash", "_NODELET_COMPLETE=bash_complete"), ("zsh", "#compdef nodelet"), ("fish", "complete --no-files --command nodelet")):
        r = CliRunner().invoke(cli, ["completion", shell])
        assert r.exit_code == 0 and needle in r.stdout, (shell, r.stdout[:300])
    assert CliRunner().invoke(cli, ["completion", "tcsh"]).exit_code == 2


def complete(args: str, incomplete: str, env: dict[str, str]) -> list[str]:
    """What bash completion offers (click's protocol, in-process)."""
    r = CliRunner().invoke(cli, [], prog_name="nodelet", env={"_NODELET_COMPLETE": "bash_complete", "COMP_WORDS": f"nodelet {args} {incomplete}",
                                                            "COMP_CWORD": str(len(args.split()) + 1), **env})
    return [line.split(",", 1)[1] for line in r.stdout.splitlines() if "," in line]


def test_commands_and_pod_names() -> None:
    d = tempfile.mkdtemp(prefix=f"nodelet-comp-{os.getpid()}-")
    sock = os.path.join(d, "api.sock")
    pods = [{"metadata": {"name": n, "namespace": ns}} for n, ns in (("web-n1", "default"), ("worker-n1", "default"), ("dns-n1", "kube-system"))]
    try:
        with ServerThread(StaticView(pod_list=pods), sock):
            assert {"logs", "describe", "exec", "doctor", "net", "top", "validate", "version"} <= set(complete("", "", {}))
            assert complete("logs", "w", {"NODELET_SOCKET": sock}) == ["web-n1", "worker-n1"]
            assert complete("describe pod -n kube-system", "", {"NODELET_SOCKET": sock}) == ["dns-n1"]
            assert complete("exec", "x", {"NODELET_SOCKET": sock}) == []
        assert complete("logs", "w", {"NODELET_SOCKET": sock}) == []  # daemon down: nothing, quietly
    finally:
        shutil.rmtree(d, ignore_errors=True)
