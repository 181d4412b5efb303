"""Suite-wide policy and helpers.

CI runs as root with a real runtime: there, a skipped test is a hidden failure. With NODELET_FORBID_SKIPS=1
(.ci/run sets it) every skip is reported as a failure naming the skip reason.
"""
from __future__ import annotations

import os

import pytest

FORBID_SKIPS = os.environ.get("NODELET_FORBID_SKIPS") == "1"


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
    """The private test containerd (started once per session, adopted if already running), with local images."""
    if not is_root():
        pytest.skip("needs root to run containerd")
    from kubelet.node.runtime.testing import start_test_runtime

    return start_test_runtime()
