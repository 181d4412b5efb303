"""The Prometheus registry: golden exposition text, escaping, float formatting, and the agent's metric set."""
from __future__ import annotations

import math

import pytest

from kubelet.server.metrics import (
    AgentMetrics, Counter, Gauge, Histogram, MetricsError, Registry, compute_exponential_buckets, render_float,
)


def test_exposition_golden() -> None:
    r = Registry()
    ops = r.counter("demo_ops_total", "Operations by type.", ["operation", "code"])
    ops.labels(operation="start", code="ok").inc()
    ops.labels("start", "ok").inc(2)
    ops.labels(operation="pull", code='bad"one\\\n').inc()
    g = r.gauge("demo_pods", "Pods by phase.\nSecond line with \\ backslash.", ["phase"])
    g.labels(phase="Running").set(3)
    g.labels(phase="Pending").set(0)
    h = r.histogram("demo_sync_seconds", "Sync latency.", buckets=[0.1, 1, 10])
    for v in (0.05, 0.1, 0.5, 20):
        h.observe(v)
    r.gauge("demo_empty_vec", "Never set.", ["x"])  # a vector without children is not rendered at all
    plain = r.counter("demo_plain_total", "No labels.")
    plain.inc(1234567)
    assert r.render() == (
        "# HELP demo_ops_total Operations by type.\n"
        "# TYPE demo_ops_total counter\n"
        'demo_ops_total{code="bad\\"one\\\\\\n",operation="pull"} 1\n'
        'demo_ops_total{code="ok",operation="start"} 3\n'
        "# HELP demo_plain_total No labels.\n"
        "# TYPE demo_plain_total counter\n"
        "demo_plain_total 1.234567e+06\n"
        "# HELP demo_pods Pods by phase.\\nSecond line with \\\\ backslash.\n"
        "# TYPE demo_pods gauge\n"
        'demo_pods{phase="Pending"} 0\n'
        'demo_pods{phase="Running"} 3\n'
        "# HELP demo_sync_seconds Sync latency.\n"
        "# TYPE demo_sync_seconds histogram\n"
        'demo_sync_seconds_bucket{le="0.1"} 2\n'
        'demo_sync_seconds_bucket{le="1"} 3\n'
        'demo_sync_seconds_bucket{le="10"} 3\n'
        'demo_sync_seconds_bucket{le="+Inf"} 4\n'
        "demo_sync_seconds_sum 20.65\n"
        "demo_sync_seconds_count 4\n"
    )


def test_labelled_histogram_puts_le_last() -> None:
    h = Histogram("x_seconds", "h", ["operation_type"], buckets=[1])
    h.labels(operation_type="sync").observe(2)
    assert h.render().splitlines()[2:] == [
        'x_seconds_bucket{operation_type="sync",le="1"} 0',
        'x_seconds_bucket{operation_type="sync",le="+Inf"} 1',
        'x_seconds_sum{operation_type="sync"} 2',
        'x_seconds_count{operation_type="sync"} 1',
    ]


@pytest.mark.parametrize(
    ("v", "text"),
    [(0, "0"), (1, "1"), (-2.5, "-2.5"), (0.005, "0.005"), (1e-05, "1e-05"), (0.0001, "0.0001"), (100000, "100000"),
     (1e6, "1e+06"), (123456.5, "123456.5"), (0.1 + 0.2, "0.30000000000000004"), (math.inf, "+Inf"),
     (-math.inf, "-Inf"), (math.nan, "NaN"), (1.5e300, "1.5e+300")],
)
def test_floats_as_go_formats_them(v: float, text: str) -> None:
    assert render_float(v) == text


def test_exponential_buckets_match_kubelets() -> None:
    b = compute_exponential_buckets(0.005, 2.5, 14)
    assert [render_float(x) for x in b[:4]] == ["0.005", "0.0125", "0.03125", "0.078125"]
    assert len(b) == 14


def test_misuse_is_an_error() -> None:
    c = Counter("c_total", "c", ["a"])
    with pytest.raises(MetricsError):
        c.inc()  # labelled: needs .labels()
    with pytest.raises(MetricsError):
        c.labels(b="x")
    with pytest.raises(MetricsError):
        c.labels(a="x").inc(-1)
    with pytest.raises(MetricsError):
        Counter("bad-name", "x")
    with pytest.raises(MetricsError):
        Histogram("h", "x", ["le"])
    with pytest.raises(MetricsError):
        Histogram("h", "x", buckets=[2, 1])
    r = Registry()
    r.counter("dup_total", "x")
    with pytest.raises(MetricsError):
        r.counter("dup_total", "x")


def test_gauge_function_and_remove() -> None:
    g = Gauge("g", "g")
    box = [7.0]
    g.set_function(lambda: box[0])
    assert "g 7\n" in g.render()
    box[0] = 8
    assert "g 8\n" in g.render()
    v = Gauge("v", "v", ["k"])
    v.labels(k="a").set(1)
    v.remove(k="a")
    assert v.render() == ""


def test_histogram_time_observes_even_on_error() -> None:
    h = Histogram("t_seconds", "t")
    with pytest.raises(RuntimeError):
        with h.time():
            raise RuntimeError("boom")
    assert "t_seconds_count 1\n" in h.render()


def test_agent_metrics() -> None:
    m = AgentMetrics(node_name="node1")
    m.set_pod_phases({"Running": 2, "Pending": 1})
    m.set_containers({"running": 3})
    m.observe_runtime_call("run_podsandbox", 0.2, error=False)
    m.observe_runtime_call("pull_image", 1.0, error=True)
    m.pod_sync_duration.labels(operation_type="sync").observe(0.03)
    m.pod_worker_sync_errors.inc()
    m.manifest_errors.set(2)
    m.pleg_relist_duration.observe(0.001)
    text = m.render()
    for line in [
        'nodelet_pods{phase="Running"} 2', 'nodelet_pods{phase="Pending"} 1', 'nodelet_pods{phase="Failed"} 0',
        'nodelet_running_containers{container_state="running"} 3', 'nodelet_running_containers{container_state="exited"} 0',
        'nodelet_runtime_operations_errors_total{operation="pull_image"} 1',
        'nodelet_runtime_operations_total{operation="run_podsandbox"} 1',
        'nodelet_runtime_operations_duration_seconds_bucket{operation="run_podsandbox",le="0.1953125"} 0',
        'nodelet_runtime_operations_duration_seconds_bucket{operation="run_podsandbox",le="0.48828125"} 1',
        'nodelet_pod_sync_duration_seconds_bucket{operation_type="sync",le="0.05"} 1',
        "nodelet_pod_worker_sync_errors_total 1", "nodelet_manifest_errors 2",
        'nodelet_pleg_relist_duration_seconds_bucket{le="0.005"} 1', 'nodelet_node_name{node="node1"} 1',
        "# TYPE nodelet_pod_sync_duration_seconds histogram", "# TYPE nodelet_pleg_relist_duration_seconds histogram",
    ]:
        assert line + "\n" in text, line
    assert 'nodelet_runtime_operations_errors_total{operation="run_podsandbox"}' not in text
    rss = next(line for line in text.splitlines() if line.startswith("process_resident_memory_bytes "))
    assert float(rss.split()[1]) > 1e6
    # every sample line parses as <name>{labels} <float>
    for line in text.splitlines():
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1].replace("+Inf", "inf"))
