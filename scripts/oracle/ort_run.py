#!/usr/bin/env python3
"""Reference inference with ONNX Runtime: the oracle the engine is checked against.

usage: ort_run.py MODEL.onnx INPUT.npy OUTPUT.npy [--threads N]
Runs the model's single input on the CPU provider and writes its first output.
ort_server.py does the same for many requests in one process (the engine tests use it).
"""
import argparse

import numpy as np
import onnxruntime as ort


def session(model, threads=1):
    """An InferenceSession on the CPU provider with THREADS intra-op threads."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def run(sess, input_path, output_path):
    """Runs SESS on the array in INPUT_PATH (its single input); writes its first output to OUTPUT_PATH."""
    x = np.load(input_path)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.save(output_path, np.ascontiguousarray(y))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    run(session(a.model, a.threads), a.input, a.output)


if __name__ == "__main__":
    main()
