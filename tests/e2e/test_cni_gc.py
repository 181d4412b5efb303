"""The daemon runs CNI GC itself (containerd 1.6 never does): at start and every cniGCPeriod, with the runtime's
sandboxes as the valid set. Leaks are planted the way a crash leaves them: an allocation file owned by a sandbox
that does not exist, and a veth-side link labelled with our network for that sandbox."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from kubelet.node.podnet import compute_cni_network
from kubelet.testing import BUSYBOX, AgentProcess, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd, pytest.mark.netns]

POD = """apiVersion: v1
kind: Pod
metadata: {name: gc}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: ["sleep", "3600"]
""" % BUSYBOX


def _plant(store: Path, ip: str, owner: str, link: str, network: str) -> None:
    store.mkdir(parents=True, exist_ok=True)
    f = store / ip
    f.write_bytes(f"{owner}\r\neth0".encode())
    os.utime(f, (1_000_000_000, 1_000_000_000))  # old: not an ADD in flight
    subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", "name", link + "p"], check=True)
    subprocess.run(["ip", "link", "set", link, "alias", f"nodelet-cni net={network} id={owner} if=eth0"], check=True)


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def test_daemon_gc_reclaims_leaks_at_start_and_periodically(containerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agent = AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}",
                         runtime=containerd, extra={"cniGCPeriod": "1s"})
    node = agent.config["nodeName"]
    net = compute_cni_network(root_dir=agent.config["rootDir"])
    store = Path(str(net.data_dir)) / net.name
    links = [f"nltgc{uuid.uuid4().hex[:6]}", f"nltgc{uuid.uuid4().hex[:6]}"]
    try:
        _plant(store, "10.244.250.250", "leaked" + uuid.uuid4().hex, links[0], net.name)
        agent.start()
        agent.write("gc.yaml", POD)
        pod = wait_until(lambda: (p := agent.pod(f"gc-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
        wait_until(lambda: not (store / "10.244.250.250").exists() and not _link_exists(links[0]), timeout=20,
                   what="GC at start")
        assert (store / pod["status"]["podIP"]).exists()  # the running pod's allocation is valid: kept
        # a leak appearing later goes at the next period
        _plant(store, "10.244.250.251", "leaked" + uuid.uuid4().hex, links[1], net.name)
        wait_until(lambda: not (store / "10.244.250.251").exists() and not _link_exists(links[1]), timeout=20,
                   what="periodic GC")
        assert (store / pod["status"]["podIP"]).exists()
        assert agent.get("/api/v1/extra/cniGC") is not None
        for f in agent.manifests.iterdir():
            f.unlink()
        wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="teardown")
    finally:
        for f in agent.manifests.iterdir():
            f.unlink()
        for link in links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        if agent.proc is not None:
            try:
                wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=60, what="teardown")
            finally:
                agent.stop()
