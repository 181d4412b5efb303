"""The corpus figure of issue 15 — N of M upstream-valid manifests accepted — next to its reference measured in the
same run (M: the upstream Pod schema, kubernetes-validate strict, Kubernetes 1.35, over the same files), and the
time per manifest of nodelet's parse+validate+default next to the schema validator's.
Run:  python bench/manifest_corpus.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kubernetes_validate  # noqa: E402
import yaml  # noqa: E402

from kubelet.manifest.parse import parse_manifest_bytes  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    files = [CORPUS / "pods" / e["file"] for e in json.loads((CORPUS / "index.json").read_text())]
    data = {f: f.read_bytes() for f in files}
    objs = {f: yaml.safe_load(data[f]) for f in files}
    t_nodelet, t_schema = [], []
    accepted, valid = set(), set()
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for f in files:
            pods, _, errors = parse_manifest_bytes(data[f], file=str(f), node_name="node1")
            if pods and not errors:
                accepted.add(f)
        t_nodelet.append((time.perf_counter() - t0) / len(files))
        t0 = time.perf_counter()
        for f in files:
            try:
                kubernetes_validate.validate(objs[f], "1.35.0", strict=True)
                valid.add(f)
            except kubernetes_validate.ValidationError:
                pass
        t_schema.append((time.perf_counter() - t0) / len(files))
    n = len(accepted & valid)
    print(f"corpus: {len(files)} files; upstream-valid (reference, schema): M = {len(valid)}; "
          f"accepted by nodelet: N = {n} ({100 * n / len(valid):.0f} %); accepted but schema-invalid: "
          f"{len(accepted - valid)}")
    print(f"per manifest (median of {args.repeat}): nodelet parse+validate+default "
          f"{statistics.median(t_nodelet) * 1e3:.2f} ms; reference jsonschema validation "
          f"{statistics.median(t_schema) * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
