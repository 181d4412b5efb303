"""Suite-wide policy and helpers.

CI runs as root with a real runtime: there, a skipped test is a hidden failure. With NODELET_FORBID_SKIPS=1
(.ci/run sets it) every skip is reported as a failure naming the skip reason.

A session that runs root tests checks at its end that the host is as it found it (kubelet/testing_leaks.py):
every namespace, link, route, rule, nft table/set/chain, iptables chain, mount or process with our names that
appeared during the session and is still there fails the run, listed. NODELET_LEAK_CHECK=0 turns it off.
The test containerd is stopped at the end when this session started it.
"""
from __future__ import annotations

import os

import pytest

FORBID_SKIPS = os.environ.get("NODELET_FORBID_SKIPS") == "1"
LEAK_CHECK = os.environ.get("NODELET_LEAK_CHECK", "1") != "0"
_leaks: dict[str, object] = {}  # "before": HostSnapshot, "basetemp": str, "found": list[str]


def is_root() -> bool:
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(not is_root(), reason="needs root")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if FORBID_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped while NODELET_FORBID_SKIPS=1 (CI must run every test): {reason}"


@pytest.fixture(scope="session")
def containerd():  # type: ignore[no-untyped-def]
    """The private test containerd (started once per session, adopted if already running), with local images.
    Stopped at the end when this session started it; the test bridge goes too when this session created it."""
    if not is_root():
        pytest.skip("needs root to run containerd")
    from pathlib import Path

    from kubelet.node.runtime.containerd import PrivateContainerd
    from kubelet.node.runtime.testing import DEFAULT_BASE, PAUSE_IMAGE, TEST_BRIDGE, start_test_runtime

    was_running = PrivateContainerd(Path(os.environ.get("NODELET_TEST_RUNTIME_DIR", DEFAULT_BASE)), sandbox_image=PAUSE_IMAGE).pid() is not None
    had_bridge = os.path.exists(f"/sys/class/net/{TEST_BRIDGE}")
    instance = start_test_runtime()
    yield instance
    if not had_bridge and os.path.isdir(f"/sys/class/net/{TEST_BRIDGE}/brif") \
            and not os.listdir(f"/sys/class/net/{TEST_BRIDGE}/brif"):
        import subprocess

        subprocess.run(["ip", "link", "del", TEST_BRIDGE], check=False)
    if not was_running:
        instance.stop()


def _ancestors() -> frozenset[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return frozenset(pids)


def pytest_collection_finish(session):  # type: ignore[no-untyped-def]
    """Snapshot the host before the first test, when root tests are about to run."""
    if not (LEAK_CHECK and is_root() and any(i.get_closest_marker("root") for i in session.items)):
        return
    from kubelet.testing_leaks import snapshot

    _leaks["before"] = snapshot(exclude_pids=_ancestors())


@pytest.fixture(scope="session", autouse=True)
def _session_basetemp(tmp_path_factory):  # type: ignore[no-untyped-def]
    if "before" in _leaks:
        _leaks["basetemp"] = str(tmp_path_factory.getbasetemp())
    yield


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    before = _leaks.get("before")
    if before is None:
        return
    from kubelet.testing_leaks import compute_leaks, snapshot

    roots = (str(_leaks["basetemp"]),) if "basetemp" in _leaks else ()
    found = compute_leaks(before, snapshot(temp_roots=roots, exclude_pids=_ancestors()))  # type: ignore[arg-type]
    _leaks["found"] = found
    if found and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):  # type: ignore[no-untyped-def]
    found = _leaks.get("found")
    if found:
        terminalreporter.section("host objects the tests left behind (session-end leak check)", red=True)
        for line in found:  # type: ignore[attr-defined]
            terminalreporter.line(line)
