#!/usr/bin/env python3
"""Gives every BatchNormalization in an ONNX model random (seeded) statistics and affine
parameters, so that folding them into convolutions is really exercised.

usage: perturb_batchnorm.py IN.onnx OUT.onnx [--seed S]
"""
import argparse

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    m = onnx.load(a.input)
    inits = {t.name: t for t in m.graph.initializer}
    ranges = [(0.5, 1.5), (-0.2, 0.2), (-0.2, 0.2), (0.5, 2.0)]  # scale, bias, mean, var
    for node in m.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        for name, (lo, hi) in zip(node.input[1:5], ranges):
            t = inits[name]
            v = rng.uniform(lo, hi, size=numpy_helper.to_array(t).shape).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(v, name))
    onnx.save(m, a.output)


if __name__ == "__main__":
    main()
