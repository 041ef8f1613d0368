#!/usr/bin/env python3
"""Times a model with ONNX Runtime the way `bottlefit bench` times it.

usage: ort_bench.py MODEL.onnx --batch B --threads T [--warmup W] [--runs R]
Prints one JSON object: median_ms, p10_ms, p90_ms, images_per_s, batch, threads.
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [a.batch] + [int(d) for d in inp.shape[1:]]
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    feed = {inp.name: x}
    # Same warm-up rule as `bottlefit bench`: the given runs and at least 0.25 s in all.
    start, warmed = time.perf_counter(), 0
    while warmed < a.warmup or (a.warmup > 0 and time.perf_counter() - start < 0.25):
        sess.run(None, feed)
        warmed += 1
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1000)
    median = float(np.percentile(times, 50))
    print(json.dumps({
        "median_ms": round(median, 4),
        "p10_ms": round(float(np.percentile(times, 10)), 4),
        "p90_ms": round(float(np.percentile(times, 90)), 4),
        "images_per_s": round(a.batch / (median / 1000), 4),
        "batch": a.batch,
        "threads": a.threads,
    }))


if __name__ == "__main__":
    main()
