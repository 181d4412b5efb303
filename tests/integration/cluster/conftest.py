from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelet.node.etcd.testing import EtcdCluster


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    """One real etcd member (Debian's etcd-server) on free loopback ports, for this test only."""
    with EtcdCluster.start(tmp_path / "etcd", members=1) as c:
        yield c
