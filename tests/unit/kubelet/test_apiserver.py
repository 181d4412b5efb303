"""The Kubernetes API over a StaticAPIView through aiohttp's test server (no TLS: a fixed identity stands in for the
client certificate; tests/e2e/test_kubectl.py drives the real thing with kubectl). Pure parts in tables."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kubelet.server.apiserver import make_api_app
from kubelet.server.apiserver.auth import UserInfo, compute_user
from kubelet.server.apiserver.certs import ADMIN_GROUP, VIEW_GROUP, ensure_pki, render_kubeconfig
from kubelet.server.apiserver.discovery import compute_aggregated, wants_aggregated
from kubelet.server.apiserver.handlers import compute_field_match, parse_field_selector
from kubelet.server.apiserver.objects import compute_endpoint_slices
from kubelet.server.apiserver.resources import StaticAPIView
from kubelet.server.apiserver.store import ObjectStore
from kubelet.server.apiserver.writes import apply_json_merge_patch, apply_strategic_merge_patch, compute_file_name
from kubelet.cli.kubeconfig import compute_merged_kubeconfig

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
ADMIN = UserInfo(name="admin", groups=(ADMIN_GROUP,))
VIEWER = UserInfo(name="viewer", groups=(VIEW_GROUP,))


def pod(name: str, *, ns: str = "default", labels: dict[str, str] | None = None, phase: str = "Running") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {},
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "node1", "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": phase, "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}]}}


@pytest.fixture
def view(tmp_path: Path) -> StaticAPIView:
    (tmp_path / "m").mkdir()
    return StaticAPIView(static_pod_path=str(tmp_path / "m"),
                         data={"pods": [pod("a-node1", labels={"app": "a"}), pod("b-node1", labels={"app": "b"}),
                                        pod("c-node1", ns="other")]},
                         sources={("Pod", "default", "a-node1"): "/etc/kubernetes/manifests/a.yaml"})


async def client_for(view: StaticAPIView, user: UserInfo | None = ADMIN, **kw: Any) -> TestClient:
    app = make_api_app(view, identify=lambda request: user, **kw)
    c = TestClient(TestServer(app, handler_cancellation=True, shutdown_timeout=1.0))
    await c.start_server()
    return c


@pytest.fixture
async def api(view: StaticAPIView) -> AsyncIterator[TestClient]:
    c = await client_for(view)
    yield c
    await c.close()


async def test_version_and_discovery(api: TestClient) -> None:
    v = await (await api.get("/version")).json()
    assert (v["major"], v["minor"]) == ("1", "32")
    r = await api.get("/api", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert r.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    doc = await r.json()
    pods = next(x for x in doc["items"][0]["versions"][0]["resources"] if x["resource"] == "pods")
    assert pods["shortNames"] == ["po"] and {"log", "exec", "portforward"} <= {s["subresource"] for s in pods["subresources"]}
    legacy = await (await api.get("/api/v1")).json()
    assert {"pods", "pods/log", "nodes", "configmaps"} <= {x["name"] for x in legacy["resources"]}
    groups = await (await api.get("/apis")).json()
    assert {"discovery.k8s.io", "events.k8s.io", "metrics.k8s.io"} == {g["name"] for g in groups["groups"]}


def test_wants_aggregated() -> None:
    assert wants_aggregated("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
    assert not wants_aggregated("application/json")
    assert [i["metadata"]["name"] for i in compute_aggregated(core=True)["items"]] == [""]


async def test_list_table_selectors_and_pagination(api: TestClient) -> None:
    r = await api.get("/api/v1/namespaces/default/pods", headers={"Accept": TABLE})
    t = await r.json()
    assert t["kind"] == "Table" and [c["name"] for c in t["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert [row["cells"][:3] for row in t["rows"]] == [["a-node1", "1/1", "Running"], ["b-node1", "1/1", "Running"]]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    lst = await (await api.get("/api/v1/pods", params={"labelSelector": "app in (a,b)"})).json()
    assert [p["metadata"]["name"] for p in lst["items"]] == ["a-node1", "b-node1"] and lst["metadata"]["resourceVersion"]
    lst = await (await api.get("/api/v1/pods", params={"fieldSelector": "metadata.namespace!=default"})).json()
    assert [p["metadata"]["name"] for p in lst["items"]] == ["c-node1"]
    page1 = await (await api.get("/api/v1/pods", params={"limit": "2"})).json()
    assert len(page1["items"]) == 2 and page1["metadata"]["remainingItemCount"] == 1
    page2 = await (await api.get("/api/v1/pods", params={"limit": "2", "continue": page1["metadata"]["continue"]})).json()
    assert [p["metadata"]["name"] for p in page2["items"]] == ["c-node1"] and "continue" not in page2["metadata"]
    bad = await api.get("/api/v1/pods", params={"labelSelector": "a in (b"})
    assert bad.status == 400 and (await bad.json())["kind"] == "Status"


async def test_get_by_manifest_name_and_errors(api: TestClient) -> None:
    p = await (await api.get("/api/v1/namespaces/default/pods/a")).json()
    assert p["metadata"]["name"] == "a" and p["metadata"]["uid"] == "uid-a-node1"
    for path, code in (("/api/v1/namespaces/default/pods/zzz", 404), ("/api/v1/frobs", 404),
                       ("/api/v1/namespaces/default/pods/a..b", 400), ("/apis/nope/v1", 404),
                       ("/api/v1/namespaces/default/pods/a%2Fb", 400), ("/api/v1/namespaces/a%2F..%2Fb/pods", 400)):
        r = await api.get(path)
        body = await r.json()
        assert (r.status, body["kind"], body["code"]) == (code, "Status", code), path


def test_field_selector_parse_and_match() -> None:
    terms = parse_field_selector("status.phase=Running,metadata.name!=x")
    assert terms == [("status.phase", "=", "Running"), ("metadata.name", "!=", "x")]
    assert compute_field_match(terms, pod("y"))
    assert not compute_field_match(terms, pod("x"))
    assert compute_field_match(parse_field_selector("metadata.name=web"), pod("web-n1"), name_suffix="-n1")


async def test_watch_from_rv_and_410(view: StaticAPIView) -> None:
    store = ObjectStore(view, history=2)
    c = await client_for(view, store=store)
    try:
        lst = await (await c.get("/api/v1/namespaces/default/pods")).json()
        rv = lst["metadata"]["resourceVersion"]
        resp = await c.get("/api/v1/namespaces/default/pods", params={"watch": "true", "resourceVersion": rv})
        assert view.data is not None
        view.data["pods"] = view.data["pods"][1:] + [pod("d-node1")]
        store.poke()
        seen = [json.loads(await asyncio.wait_for(resp.content.readline(), 5)) for _ in range(2)]
        assert sorted((e["type"], e["object"]["metadata"]["name"]) for e in seen) == [("ADDED", "d-node1"), ("DELETED", "a-node1")]
        resp.close()
        for i in range(3):  # push the history past rv
            view.data["pods"].append(pod(f"e{i}-node1"))
            await store.refresh(store._resources[("", "pods")])
        old = await c.get("/api/v1/pods", params={"watch": "1", "resourceVersion": rv})
        assert old.status == 410 and (await old.json())["reason"] == "Expired"
        # resourceVersion=0: synthetic ADDED of what exists, a Table per event when asked
        w = await c.get("/api/v1/namespaces/default/pods", params={"watch": "1", "resourceVersion": "0",
                                                                  "fieldSelector": "metadata.name=b-node1"},
                        headers={"Accept": TABLE})
        ev = json.loads(await asyncio.wait_for(w.content.readline(), 5))
        assert ev["type"] == "ADDED" and ev["object"]["kind"] == "Table" and ev["object"]["rows"][0]["cells"][0] == "b-node1"
        w.close()
    finally:
        await c.close()


async def test_viewer_403_no_identity_401_and_413(view: StaticAPIView) -> None:
    c = await client_for(view, VIEWER)
    try:
        assert (await c.get("/api/v1/pods")).status == 200
        r = await c.delete("/api/v1/namespaces/default/pods/a")
        body = await r.json()
        assert r.status == 403 and 'User "viewer" cannot delete resource "pods"' in body["message"]
    finally:
        await c.close()
    c = await client_for(view, None)
    try:
        r = await c.get("/api/v1/pods")
        assert r.status == 401 and (await r.json())["reason"] == "Unauthorized"
        assert (await c.get("/version")).status == 200  # public, as the API server's
    finally:
        await c.close()
    c = await client_for(view, max_body=1000)
    try:
        r = await c.post("/api/v1/namespaces/default/configmaps", data=b"x" * 5000, headers={"Content-Type": "application/json"})
        assert r.status == 413 and (await r.json())["kind"] == "Status"
        r = await c.post("/api/v1/namespaces/default/configmaps", data=b"{nope", headers={"Content-Type": "application/json"})
        assert r.status == 400
    finally:
        await c.close()


async def test_writes_create_dry_run_invalid_and_403(api: TestClient, view: StaticAPIView) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "v"}}
    path = Path(view.static_pod_path) / compute_file_name("ConfigMap", "default", "x")
    r = await api.post("/api/v1/namespaces/default/configmaps", params={"dryRun": "All"}, json=cm)
    assert r.status == 201 and not path.exists()
    r = await api.post("/api/v1/namespaces/default/configmaps", json=cm)
    assert r.status == 201 and path.exists() and "k: v" in path.read_text()
    r = await api.post("/api/v1/namespaces/default/configmaps", json=cm)
    assert r.status == 409 and (await r.json())["reason"] == "AlreadyExists"
    r = await api.patch("/api/v1/namespaces/default/configmaps/x", data=json.dumps({"data": {"k": None, "j": "w"}}),
                        headers={"Content-Type": "application/merge-patch+json"})
    assert r.status == 200 and "j: w" in path.read_text() and "k: v" not in path.read_text()
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"restartPolicy": "Sometimes", "containers": [{"name": "c", "image": "i"}]}}
    r = await api.post("/api/v1/namespaces/default/pods", json=bad)
    body = await r.json()
    assert r.status == 422 and body["reason"] == "Invalid" and body["details"]["causes"][0]["field"] == "spec.restartPolicy"
    r = await api.delete("/api/v1/namespaces/default/pods/a")
    body = await r.json()
    assert r.status == 403 and "/etc/kubernetes/manifests/a.yaml" in body["message"]
    r = await api.delete("/api/v1/namespaces/default/configmaps/x")
    assert r.status == 200 and not path.exists()


def test_strategic_merge_patch_merges_by_key() -> None:
    cur = {"spec": {"containers": [{"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]}, {"name": "b", "image": "2"}],
                    "volumes": [{"name": "v", "emptyDir": {}}]},
           "metadata": {"labels": {"x": "1", "y": "2"}}}
    patch = {"metadata": {"labels": {"y": None, "z": "3"}},
             "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                      "containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}, {"name": "b", "$patch": "delete"}],
                      "volumes": [{"name": "w", "emptyDir": {}}]}}
    out = apply_strategic_merge_patch(cur, patch)
    assert out["metadata"]["labels"] == {"x": "1", "z": "3"}
    assert out["spec"]["containers"] == [{"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]
    assert [v["name"] for v in out["spec"]["volumes"]] == ["v", "w"]
    assert apply_strategic_merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}  # no merge key: replaced
    assert apply_json_merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"c": 2}}


def test_endpoint_slices_from_services() -> None:
    svc = {"metadata": {"name": "s", "namespace": "default"},
           "spec": {"selector": {"app": "a"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    slices = compute_endpoint_slices([svc], [pod("a-node1", labels={"app": "a"}), pod("b-node1", labels={"app": "b"})], node_name="node1")
    assert len(slices) == 1 and slices[0]["metadata"]["labels"]["kubernetes.io/service-name"] == "s"
    assert slices[0]["endpoints"][0]["addresses"] == ["10.0.0.9"] and slices[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_pki_identities_and_kubeconfig(tmp_path: Path) -> None:
    import ssl

    import yaml

    pki = ensure_pki(tmp_path / "pki", node_name="node1", node_ips=["192.0.2.7"])
    again = ensure_pki(tmp_path / "pki", node_name="node1", node_ips=["192.0.2.7"])
    assert again.serving_cert.read_bytes() == pki.serving_cert.read_bytes()  # kept, not re-issued
    assert oct((tmp_path / "pki" / "admin.key").stat().st_mode & 0o777) == "0o600"
    cert = ssl._ssl._test_decode_cert(str(pki.serving_cert))  # type: ignore[attr-defined]
    assert ("IP Address", "192.0.2.7") in cert["subjectAltName"] and ("DNS", "node1") in cert["subjectAltName"]
    admin = ssl._ssl._test_decode_cert(str(pki.client_cert("admin")))  # type: ignore[attr-defined]
    assert compute_user(admin) == UserInfo(name="nodelet-admin", groups=(ADMIN_GROUP, "system:authenticated"))
    assert compute_user({}) is None
    kc = yaml.safe_load(render_kubeconfig(pki, server="https://127.0.0.1:10443", node_name="node1", user="viewer"))
    assert kc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:10443" and kc["current-context"] == "viewer@nodelet-node1"
    merged = compute_merged_kubeconfig({"clusters": [{"name": "other"}], "users": [], "contexts": [], "current-context": "x"}, kc)
    assert [c["name"] for c in merged["clusters"]] == ["other", "nodelet-node1"] and merged["current-context"] == "viewer@nodelet-node1"


async def test_extra_routes_plug_in_with_view_runtime_and_user(view: StaticAPIView) -> None:
    """The contract for the streaming handlers (package docstring): their routes win, the app carries the view and
    the runtime, the request carries the authenticated user; POST by a read-only identity is 403 before them."""
    async def exec_handler(request: web.Request) -> web.StreamResponse:
        user = request["nodelet.user"]
        return web.json_response({"view": request.app["nodelet.view"] is view, "runtime": request.app["nodelet.runtime"],
                                  "user": user.name, "write": user.can_write, "pod": request.match_info["name"]})

    path = "/api/v1/namespaces/{namespace}/pods/{name}/exec"
    c = await client_for(view, runtime="cri", extra_routes=[("GET", path, exec_handler), ("POST", path, exec_handler)])
    try:
        got = await (await c.get("/api/v1/namespaces/default/pods/a/exec")).json()
        assert got == {"view": True, "runtime": "cri", "user": "admin", "write": True, "pod": "a"}
        assert (await c.get("/api/v1/namespaces/default/pods/a/attach")).status == 404  # not registered: a Status
    finally:
        await c.close()
    c = await client_for(view, VIEWER, extra_routes=[("POST", path, exec_handler)])
    try:
        assert (await c.post("/api/v1/namespaces/default/pods/a/exec")).status == 403
    finally:
        await c.close()
