#!/usr/bin/env python3
"""Prints max |a - b| / max |b| for two .npy files and whether it is within a bound.

usage: compare.py A.npy B.npy [--bound 1e-4]   (exit status 1 when the bound is exceeded)
"""
import argparse
import sys

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--bound", type=float, default=1e-4)
    args = p.parse_args()
    a, b = np.load(args.a), np.load(args.b)
    if a.shape != b.shape:
        print(f"shape {a.shape} != {b.shape}")
        sys.exit(1)
    err = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
    top = bool((np.argmax(a.reshape(a.shape[0], -1), 1) == np.argmax(b.reshape(b.shape[0], -1), 1)).all())
    ok = err <= args.bound
    print(f"max|diff|/max|ref| = {err:.3e} ({'ok' if ok else 'EXCEEDS'} {args.bound:g}), same argmax: {top}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
