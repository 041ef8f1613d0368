#!/usr/bin/env python3
"""ort_run.py as a long-lived process: ONNX Runtime imported once, for many requests.

usage: ort_server.py [--sessions N]
Prints "ready" once onnxruntime is imported, then reads one request a line on standard input,
a JSON object {"model": PATH, "input": PATH.npy, "output": PATH.npy, "threads": N (default 1)},
runs it as ort_run.py would and answers one line on standard output: "ok", or "error: " and
the reason on the same line. Ends at the end of its input. The engine tests start one per test
process (Tests/BottleFitEngineTests/Support.swift): importing onnxruntime and numpy takes under
a second natively but 35-55 s under QEMU, once per process instead of once per request.
An InferenceSession is kept per model path and thread count, the N (default 4) used last; it is
made again when the file's size, mtime or inode changed (a test rewrote it).
"""
import argparse
import json
import os
import sys
from collections import OrderedDict


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=4, help="sessions kept (default 4)")
    a = p.parse_args()
    if a.sessions < 1:
        p.error("--sessions needs at least 1")
    # Replies go to the original standard output; anything else that writes to file
    # descriptor 1 (a library's message) goes to standard error instead of into a reply.
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from ort_run import run, session  # imports onnxruntime and numpy: the slow part

    sessions = OrderedDict()  # (path, threads) -> (file identity, InferenceSession)

    def cached(model, threads):
        st = os.stat(model)
        identity = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
        key = (model, threads)
        hit = sessions.get(key)
        if hit is not None and hit[0] == identity:
            sessions.move_to_end(key)
            return hit[1]
        sessions.pop(key, None)
        sess = session(model, threads)
        sessions[key] = (identity, sess)
        while len(sessions) > a.sessions:
            sessions.popitem(last=False)
        return sess

    replies.write("ready\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
            threads = req.get("threads", 1)
            if not isinstance(threads, int) or threads < 1:
                raise ValueError(f"threads must be a positive integer, got {threads!r}")
            for field in ("model", "input", "output"):
                if not isinstance(req.get(field), str):
                    raise ValueError(f"the request has no {field} path")
            run(cached(req["model"], threads), req["input"], req["output"])
            replies.write("ok\n")
        except Exception as e:  # one bad request must not end the server
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            replies.write(f"error: {reason}\n")


if __name__ == "__main__":
    main()
