"""Regenerate the etcd v3 (KV, Watch, Lease) Python stubs in kubelet/node/etcd/_gen from kubelet/node/etcd/proto/rpc.proto.

    python -m kubelet.node.etcd.regen            # rewrite kubelet/node/etcd/_gen
    python -m kubelet.node.etcd.regen --check    # exit 1 if the committed stubs differ from a fresh generation

The same generator as the CRI stubs (:mod:`cri.regen`), on this package's proto.
"""
from __future__ import annotations

from pathlib import Path

from cri.regen import StubSet, run

ETCD = StubSet(package_dir=Path(__file__).resolve().parent, proto="rpc.proto", module="kubelet.node.etcd.regen",
               shown="kubelet/node/etcd")


def main(argv: list[str] | None = None) -> int:
    return run(ETCD, argv, description=(__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    raise SystemExit(main())
