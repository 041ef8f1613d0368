#!/usr/bin/env python3
"""ONNX Runtime's own per-node profile of a model: median kernel time of every node over
the runs, slowest first, so it can be set beside `bottlefit bench --profile`.

usage: .venv/bin/python scripts/oracle/ort_profile.py MODEL.onnx [--batch B] [--threads T] [--runs R] [--top N]
"""
import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--top", type=int, default=40)
    a = p.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    x = np.random.default_rng(1).standard_normal([a.batch] + list(spec.shape[1:])).astype(np.float32)
    for _ in range(a.runs):
        session.run(None, {spec.name: x})
    with open(session.end_profiling()) as f:
        events = json.load(f)
    times = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            times[(e["name"][: -len("_kernel_time")], e["args"].get("op_name", "?"))].append(e["dur"])
    rows = sorted(((sorted(v)[len(v) // 2] / 1000, k) for k, v in times.items()), reverse=True)
    print(f"total {sum(r[0] for r in rows):.3f} ms (sum of node medians)")
    for ms, (name, op) in rows[: a.top]:
        print(f"{ms:8.3f} {op:20s} {name}")


if __name__ == "__main__":
    main()
