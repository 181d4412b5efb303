"""A second real CNI client: Debian's podman 4.3 (CNI backend, its own config dir and storage under tmp) runs
containers on a `nodelet-cni` network, through the nodelet-cni server and through the no-server fallback.

podman runs inside a private "host" netns (nsenter), so the bridge, veths and nft table it makes never touch the
real host; its container netns mounts (/run/netns/cni-…) are removed by `podman rm`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cni.config import render_conflist
from cni.install import ensure_plugin_installed
from cni.testing import REFERENCE_DIR, cni_server, is_root, netns, ns_argv, run_in
from kubelet.node.runtime.images import BUSYBOX_IMAGE, busybox_image_archive

pytestmark = [pytest.mark.root, pytest.mark.netns,
              pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")]

NETWORK = "nodelet-cni"
BRIDGE = "nltpm0"
SUBNET = "10.244.251.0/24"
# podman (rootful) raises RLIMIT_NOFILE/NPROC to 1048576 by default; a container without CAP_SYS_RESOURCE (CI runs
# in one) may not: ask for limits any host grants.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


@dataclass
class Podman:
    host: str
    base: Path
    socket: str

    def argv(self, *args: str) -> list[str]:
        return ns_argv(self.host or None, ["podman", "--root", str(self.base / "root"), "--runroot", str(self.base / "run"),
                                   "--storage-driver", "vfs", *args])

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, CONTAINERS_CONF=str(self.base / "containers.conf"))
        r = subprocess.run(self.argv(*args), env=env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed rc={r.returncode}: {r.stderr[-3000:]}")
        return r

    def allocations(self) -> list[str]:
        d = self.base / "ipam" / NETWORK
        return sorted(p.name for p in d.iterdir() if re.fullmatch(r"[0-9.]+", p.name)) if d.exists() else []

    def nft(self) -> str:
        p = run_in(self.host, "nft", "list", "table", "ip", "nodelet-cni", check=False)
        return p.stdout if p.returncode == 0 else ""


@pytest.fixture(scope="module")
def podman_base(tmp_path_factory) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed (test.sh PACKAGES installs it)")
    base = tmp_path_factory.mktemp("podman")
    (base / "net.d").mkdir()
    (base / "containers.conf").write_text(
        "[network]\nnetwork_backend = \"cni\"\n"
        f"cni_plugin_dirs = [\"{base / 'bin'}\", \"{REFERENCE_DIR}\"]\nnetwork_config_dir = \"{base / 'net.d'}\"\n"
        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n")
    conflist = render_conflist(pod_cidr=SUBNET, bridge=BRIDGE, name=NETWORK, data_dir=str(base / "ipam"),
                               portmap=False)
    (base / "net.d" / f"{NETWORK}.conflist").write_text(json.dumps(conflist))
    (base / "busybox.tar").write_bytes(busybox_image_archive())
    pm = Podman(host="", base=base, socket="")
    pm("load", "-i", str(base / "busybox.tar"), timeout=120)
    yield base
    pm("rm", "-f", "-a", check=False)
    pm("rmi", "-a", "-f", check=False)
    # podman leaves its storage's mounts under --root/--runroot: unmount them, then the files can go
    subprocess.run(["sh", "-c", f"grep -o ' {base}/[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l"],
                   check=False)


@pytest.fixture(params=["server", "fallback"])
def podman(request, podman_base: Path) -> Iterator[Podman]:  # type: ignore[no-untyped-def]
    with netns("pmhost") as host:
        sock = str(podman_base / f"cni-{request.param}.sock")
        ensure_plugin_installed(podman_base / "bin", socket_path=sock)
        pm = Podman(host=host, base=podman_base, socket=sock)
        try:
            if request.param == "server":
                with cni_server(sock, host_netns=host):
                    yield pm
            else:
                yield pm
        finally:
            pm("rm", "-f", "-a", check=False)


def _link(pm: Podman, ctr: str) -> str:
    return pm("exec", ctr, "ip", "-o", "link", "show", "eth0").stdout


def test_podman_containers_on_a_nodelet_cni_network(podman: Podman) -> None:
    mac = "0a:58:0a:f4:fb:42"
    netns_before = set(os.listdir("/run/netns"))
    podman("run", "-d", "--name", "a", *ULIMITS, "--network", NETWORK, "--mac-address", mac, BUSYBOX_IMAGE,
           "sleep", "3600")
    podman("run", "-d", "--name", "b", *ULIMITS, "--network", NETWORK, BUSYBOX_IMAGE, "sleep", "3600")
    a_ip = json.loads(podman("inspect", "a").stdout)[0]["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    assert a_ip.startswith("10.244.251.") and len(podman.allocations()) == 2
    assert f"link/ether {mac}" in _link(podman, "a")  # MAC= honoured
    assert podman("exec", "b", "ping", "-c", "1", "-W", "2", a_ip, check=False).returncode == 0
    assert "id=" in podman.nft() and "masq-" in podman.nft()
    # `podman network reload` re-runs DEL+ADD with the same MAC: the peer's neighbour entry stays right
    podman("network", "reload", "a")
    assert f"link/ether {mac}" in _link(podman, "a")
    assert podman("exec", "b", "ping", "-c", "1", "-W", "2", a_ip, check=False).returncode == 0
    podman("rm", "-f", "a", "b")
    assert podman.allocations() == []
    assert podman.nft() == ""  # the network's chain and set went with its last container
    assert set(os.listdir("/run/netns")) - netns_before == set()  # podman's cni-… netns went with its containers
    links = run_in(podman.host, "ip", "-o", "link", "show", "master", BRIDGE, check=False).stdout
    assert "veth" not in links
