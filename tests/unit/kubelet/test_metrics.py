"""The agent's metrics on prometheus-client: kubelet / kube-proxy names, types and labels, own registries."""
from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from kubelet.server.metrics import (
    AgentMetrics, ContainerUsage, ResourceSnapshot, compute_exponential_buckets, read_node_usage,
    render_resource_metrics,
)


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_exponential_buckets_match_kubelets() -> None:
    b = compute_exponential_buckets(0.005, 2.5, 14)
    assert b[:3] == (0.005, 0.0125, 0.03125) and len(b) == 14
    with pytest.raises(ValueError):
        compute_exponential_buckets(0, 2, 3)


def test_kubelet_names_types_and_labels() -> None:
    m = AgentMetrics(node_name="node1")
    m.set_pod_phases({"Running": 2, "Pending": 1})
    m.set_containers({"running": 3})
    m.running_pods.set(2)
    m.observe_runtime_call("run_podsandbox", 0.2, error=False)
    m.observe_runtime_call("pull_image", 1.0, error=True)
    m.pod_sync_duration.labels(operation_type="sync").observe(0.03)
    m.pod_worker_sync_errors.inc()
    m.manifest_errors.set(2)
    m.observe_proxy_sync(kind="partial", seconds=0.004, error=None, mode="iptables", wall=1700000000.0)
    m.observe_proxy_sync(kind="failed", seconds=0.0, error="boom", mode="iptables", wall=1700000001.0)
    text = m.render()
    for line in [
        "# TYPE kubelet_running_pods gauge", "kubelet_running_pods 2.0",
        'kubelet_running_containers{container_state="running"} 3.0',
        'kubelet_running_containers{container_state="exited"} 0.0',
        "# TYPE kubelet_runtime_operations_total counter",
        'kubelet_runtime_operations_total{operation_type="run_podsandbox"} 1.0',
        'kubelet_runtime_operations_errors_total{operation_type="pull_image"} 1.0',
        'kubelet_runtime_operations_duration_seconds_bucket{le="0.48828125",operation_type="run_podsandbox"} 1.0',
        "# TYPE kubelet_pod_worker_duration_seconds histogram",
        'kubelet_pod_worker_duration_seconds_bucket{le="0.05",operation_type="sync"} 1.0',
        'kubelet_node_name{node="node1"} 1.0', 'nodelet_pods{phase="Failed"} 0.0', "nodelet_manifest_errors 2.0",
        "nodelet_pod_worker_sync_errors_total 1.0",
        "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram",
        'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"} 1.0',
        'kubeproxy_sync_partial_proxy_rules_duration_seconds_count 1.0',
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09",
        "kubeproxy_sync_proxy_rules_iptables_restore_failures_total 1.0",
        "# TYPE process_cpu_seconds_total counter",
    ]:
        assert line + "\n" in text, line
    assert "_created" not in text  # client_golang writes none
    assert 'operation_type="run_podsandbox"' not in text.split("kubelet_runtime_operations_errors_total")[1].split(
        "# HELP")[0]
    assert float(families(text)["process_resident_memory_bytes"].samples[0].value) > 1e6  # type: ignore[attr-defined]
    assert "kubelet_running_pods" not in {m.name for m in REGISTRY.collect()}  # own registry, not the global one


def test_probe_metrics() -> None:
    m = AgentMetrics(node_name="node1", process_metrics=False)
    for result in ("Success", "Success", "Failure"):
        m.observe_probe(probe_type="Readiness", result=result, container="app", pod="web-node1", namespace="default",
                        pod_uid="u1", seconds=0.002)
    text = m.render_probes()
    assert ('prober_probe_total{container="app",namespace="default",pod="web-node1",pod_uid="u1",'
            'probe_type="Readiness",result="successful"} 2.0\n') in text
    assert 'result="failed"} 1.0\n' in text
    assert ('prober_probe_duration_seconds_count{container="app",namespace="default",pod="web-node1",'
            'probe_type="Readiness"} 3.0\n') in text
    assert "prober_probe_total" not in m.render()


def test_resource_metrics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = ResourceSnapshot(node_cpu_seconds=12.5, node_working_set_bytes=2048, containers=[
        ContainerUsage(namespace="default", pod="web-node1", container="a", cpu_seconds=1.5, working_set_bytes=100,
                       start_time=1700000000.0),
        ContainerUsage(namespace="default", pod="web-node1", container="b", cpu_seconds=0.5, working_set_bytes=50,
                       start_time=0)])
    text = render_resource_metrics(snap)
    for line in ["# TYPE node_cpu_usage_seconds_total counter", "node_cpu_usage_seconds_total 12.5",
                 "node_memory_working_set_bytes 2048.0",
                 'container_cpu_usage_seconds_total{container="a",namespace="default",pod="web-node1"} 1.5',
                 'container_memory_working_set_bytes{container="b",namespace="default",pod="web-node1"} 50.0',
                 'container_start_time_seconds{container="a",namespace="default",pod="web-node1"} 1.7e+09',
                 'pod_cpu_usage_seconds_total{namespace="default",pod="web-node1"} 2.0',
                 'pod_memory_working_set_bytes{namespace="default",pod="web-node1"} 150.0',
                 "scrape_error 0.0", "resource_scrape_error 0.0"]:
        assert line + "\n" in text, line
    (tmp_path / "stat").write_text("cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 1 1 1 1\n")
    (tmp_path / "meminfo").write_text("MemTotal:  1000 kB\nMemFree: 100 kB\nMemAvailable:  400 kB\n")
    import os

    cpu, ws = read_node_usage(str(tmp_path))
    assert cpu == pytest.approx(150 / os.sysconf("SC_CLK_TCK")) and ws == 600 * 1024


async def test_metrics_http_serves_the_three_paths() -> None:
    import aiohttp

    from kubelet.server.metrics_http import MetricsServer, make_metrics_app

    m = AgentMetrics(node_name="node1", process_metrics=False)
    m.running_pods.set(4)

    async def resource() -> str:
        return render_resource_metrics(ResourceSnapshot(node_cpu_seconds=1.0, node_working_set_bytes=1))

    srv = MetricsServer(make_metrics_app(metrics=m.render, probes=m.render_probes, resource=resource),
                        bind_address="127.0.0.1:0")
    await srv.start()
    try:
        async with aiohttp.ClientSession() as s:
            for path, needle in (("/metrics", "kubelet_running_pods 4.0"), ("/metrics/probes", "prober_probe_total"),
                                 ("/metrics/resource", "node_cpu_usage_seconds_total 1.0")):
                async with s.get(f"http://127.0.0.1:{srv.port}{path}") as r:
                    assert r.status == 200 and r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
                    assert needle in await r.text(), path
            async with s.get(f"http://127.0.0.1:{srv.port}/nope") as r:
                assert r.status == 404
    finally:
        await srv.stop()
