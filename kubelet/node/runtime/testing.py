"""The test runtime: one private containerd with the local images, shared by a whole pytest session.

Its base directory (default /var/lib/nodelet-test/containerd, or $NODELET_TEST_RUNTIME_DIR) persists between
runs so images are imported once; the instance itself is started by the first session that needs it and
adopted by later ones.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kubelet.node.runtime.containerd import PrivateContainerd
from kubelet.node.runtime.images import BUSYBOX_IMAGE, PAUSE_IMAGE, ensure_images

DEFAULT_BASE = "/var/lib/nodelet-test/containerd"
TEST_POD_SUBNET = "10.244.250.0/24"
TEST_BRIDGE = "nlt-br0"
TEST_CNI_SOCKET = "/run/nodelet-test/cni.sock"

__all__ = ["BUSYBOX_IMAGE", "PAUSE_IMAGE", "reference_cni_conflist", "start_test_runtime"]


def reference_cni_conflist(*, ipam_dir: Path, subnet: str = TEST_POD_SUBNET, bridge: str = TEST_BRIDGE) -> dict[str, Any]:
    """A conflist for the reference bridge + host-local plugins (what containerd users run without nodelet)."""
    return {
        "cniVersion": "1.0.0",
        "name": "nodelet-test",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "hairpinMode": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def start_test_runtime(base: str | None = None, *, cni_conflist: dict[str, Any] | None = None) -> PrivateContainerd:
    base_dir = Path(base or os.environ.get("NODELET_TEST_RUNTIME_DIR", DEFAULT_BASE))
    instance = PrivateContainerd(base_dir, sandbox_image=PAUSE_IMAGE)
    instance.layout.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    # Pod networking through nodelet-cni, exactly as an agent with podCIDR TEST_POD_SUBNET configures it (the
    # plugin falls back to its in-process path when no agent serves its socket).
    from cni.config import ensure_conflist, render_conflist
    from cni.install import ensure_plugin_installed

    instance.write_config()
    ensure_plugin_installed(instance.cni_bin_dir, socket_path=TEST_CNI_SOCKET)
    if cni_conflist is None:
        from kubelet.app import default_route_mtu

        mtu = default_route_mtu()
        conflist = render_conflist(pod_cidr=TEST_POD_SUBNET, bridge=TEST_BRIDGE, mtu=mtu if mtu and mtu < 1500 else 0)
        ensure_conflist(instance.layout.cni_conf_dir, conflist)
    else:
        ensure_conflist(instance.layout.cni_conf_dir, cni_conflist)
    for stale in instance.layout.cni_conf_dir.glob("10-nodelet-test.conflist"):
        stale.unlink()  # the reference-bridge config older versions of this harness wrote
    instance.start()
    ensure_images(instance, cache_dir=base_dir / "images")
    return instance
