#!/usr/bin/env python3
"""Picks the tensor at which scripts/check-model-zoo splits a model: about a third of the way.

usage: cut.py MODEL.onnx
Prints one line: the tensor's name and the index (1-based) of the node that produces it, out
of all nodes. A tensor qualifies when `bottlefit model split` can cut there: every path from
the input to the output passes through it, so no other value computed before it (a skip
connection, a Constant the head also needs) is read after it, and nothing after it reads the
graph input. Candidates are tried from the node a third of the way along the graph's node
order, then outward, nearest first. Exits 1 with a one-line reason when no tensor qualifies.
Runs under the project's .venv Python (onnx).
"""
import sys

import onnx


def qualifies(nodes, producer, inputs, initializers, outputs, i, value):
    """The rules of ModelSplitter.split for a cut at `value` (produced by node i)."""
    if value in outputs:
        return False
    head = set()
    stack = [value]
    while stack:
        v = stack.pop()
        p = producer.get(v)
        if p is None or p in head:
            continue
        head.add(p)
        stack.extend(x for x in nodes[p].input if x and x not in initializers)
    head_values = {o for p in head for o in nodes[p].output} | inputs
    for j, n in enumerate(nodes):
        if j in head:
            continue
        for x in n.input:
            if x and x != value and x in head_values and x not in initializers:
                return False
    return not any(o in head_values for o in outputs)


def main():
    m = onnx.load(sys.argv[1], load_external_data=False)
    g = m.graph
    nodes = list(g.node)
    initializers = {t.name for t in g.initializer}
    inputs = {v.name for v in g.input if v.name not in initializers}
    outputs = {v.name for v in g.output}
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    order = sorted(range(len(nodes)), key=lambda i: (abs(i - len(nodes) // 3), i))
    for i in order:
        n = nodes[i]
        if n.op_type == "Constant" or len(n.output) != 1:
            continue
        if qualifies(nodes, producer, inputs, initializers, outputs, i, n.output[0]):
            print(n.output[0], i + 1, len(nodes))
            return
    print(f"cut.py: no tensor of {sys.argv[1]} is crossed by every path from the input to the output", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
