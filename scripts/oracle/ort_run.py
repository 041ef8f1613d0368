#!/usr/bin/env python3
"""Reference inference with ONNX Runtime: the oracle the engine is checked against.

usage: ort_run.py MODEL.onnx INPUT.npy OUTPUT.npy [--threads N]
Runs the model's single input on the CPU provider and writes its first output.
"""
import argparse

import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    x = np.load(a.input)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.save(a.output, np.ascontiguousarray(y))


if __name__ == "__main__":
    main()
