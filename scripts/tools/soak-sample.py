#!/usr/bin/env python3
"""scripts/soak's sampler and report.

Sampling: every --interval seconds until the process --until-exit ends, each --pid NAME=PID's
VmRSS (KiB), open file descriptors and threads from /proc, and the broker's queue depth from its
/metrics (--metrics HOST:PORT). Writes the samples as JSON to --out.

Report (--report SAMPLES.json): checks the soak's conditions, writes a markdown table and an SVG
of RSS over time, exits 1 if any condition fails.
"""
import argparse, json, os, sys, time, urllib.request

def proc(pid):
    try:
        status = open(f"/proc/{pid}/status").read().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        rss = int(fields["VmRSS"].split()[0])
        threads = int(fields["Threads"].split()[0])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return {"rss_kib": rss, "fds": fds, "threads": threads}
    except (OSError, KeyError, ValueError):
        return None

def queue_depth(address):
    try:
        text = urllib.request.urlopen(f"http://{address}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("bottlefit_broker_frames_queued"):
            return float(line.split()[-1])
    return None

def sample(a):
    pids = dict(p.split("=", 1) for p in a.pid)
    start = time.time()
    samples = []
    while True:
        row = {"t": round(time.time() - start, 1), "queue": queue_depth(a.metrics) if a.metrics else None}
        for name, pid in pids.items():
            row[name] = proc(pid)
        samples.append(row)
        if proc(a.until_exit) is None:
            break
        time.sleep(a.interval)
    json.dump({"interval_s": a.interval, "samples": samples}, open(a.out, "w"), indent=1)

def report(a):
    data = json.load(open(a.report))
    samples = data["samples"]
    names = [k for k in samples[0] if k not in ("t", "queue")]
    end_t = samples[-1]["t"]
    problems, rows = [], []
    for name in names:
        series = [(s["t"], s[name]) for s in samples if s.get(name)]
        if not series:
            problems.append(f"{name}: never sampled")
            continue
        after_minute = next((v for t, v in series if t >= 60), series[-1][1])
        half = next((v for t, v in series if t >= end_t / 2), series[-1][1])
        last = series[-1][1]
        peak = max(v["rss_kib"] for _, v in series)
        fd_growth = last["fds"] - after_minute["fds"]
        rss_growth = last["rss_kib"] - half["rss_kib"]
        if fd_growth > 0:
            problems.append(f"{name}: open file descriptors grew from {after_minute['fds']} to {last['fds']} after the first minute")
        if rss_growth > 0.10 * half["rss_kib"] + 16 * 1024:
            problems.append(f"{name}: RSS grew from {half['rss_kib'] // 1024} MiB to {last['rss_kib'] // 1024} MiB over the second half")
        rows.append(f"| {name} | {series[0][1]['rss_kib'] // 1024} | {half['rss_kib'] // 1024} | {last['rss_kib'] // 1024} | {peak // 1024} "
                    f"| {after_minute['fds']} → {last['fds']} | {last['threads']} |")
    queue = [s["queue"] for s in samples if s.get("queue") is not None]
    if queue and max(queue) > a.queue_capacity:
        problems.append(f"broker queue reached {max(queue):g}, over its capacity {a.queue_capacity}")
    lg = json.load(open(a.loadgen)) if a.loadgen and os.path.exists(a.loadgen) else {}
    totals = lg.get("totals", {})
    if totals.get("unaccounted") != 0:
        problems.append(f"load generator: unaccounted = {totals.get('unaccounted')}")
    if a.loadgen_status != 0:
        problems.append(f"load generator exited {a.loadgen_status}")
    lines = [f"Soak of {end_t:.0f} s, sampled every {data['interval_s']} s.", "",
             "| process | RSS at start (MiB) | at half time | at the end | peak | open fds (1 min → end) | threads |",
             "|---|---|---|---|---|---|---|"] + rows + ["",
             f"Broker queue depth: max {max(queue):g} of capacity {a.queue_capacity}, mean {sum(queue) / len(queue):.1f}." if queue else "Broker queue depth: not sampled.",
             f"Load generator: offered {totals.get('offered')}, edge {totals.get('completed_edge')}, local {totals.get('completed_local')}, "
             f"fallback {totals.get('completed_fallback')}, dropped {totals.get('dropped_total')} {totals.get('dropped')}, unaccounted {totals.get('unaccounted')}; "
             f"edge utilisation {totals.get('edge_utilisation')}, local fraction {totals.get('local_fraction')}.", "",
             "Result: " + ("every condition holds." if not problems else "FAILED: " + "; ".join(problems))]
    open(a.markdown, "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    # RSS over time, one polyline per process, no dependencies.
    width, height, pad = 720, 300, 50
    peak = max((s[n]["rss_kib"] for s in samples for n in names if s.get(n)), default=1) / 1024
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{pad}" y="16">Resident memory (MiB) over the soak ({end_t:.0f} s)</text>',
           f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad - 20}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
           f'<text x="{pad - 5}" y="{pad - 16}" text-anchor="end">{peak:.0f}</text>',
           f'<text x="{pad - 5}" y="{height - pad}" text-anchor="end">0</text>',
           f'<text x="{width - 10}" y="{height - pad + 15}" text-anchor="end">{end_t:.0f} s</text>']
    for i, name in enumerate(names):
        pts = [(pad + (s["t"] / max(end_t, 1)) * (width - pad - 10), height - pad - (s[name]["rss_kib"] / 1024 / peak) * (height - 2 * pad + 20))
               for s in samples if s.get(name)]
        colour = colours[i % len(colours)]
        svg.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"/>')
        svg.append(f'<text x="{width - 150}" y="{pad + 14 * i}" fill="{colour}">{name}</text>')
    svg.append("</svg>")
    open(a.svg, "w").write("\n".join(svg) + "\n")
    return 1 if problems else 0

def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out"); p.add_argument("--metrics"); p.add_argument("--until-exit", type=int)
    p.add_argument("--pid", action="append", default=[]); p.add_argument("--interval", type=float, default=5)
    p.add_argument("--report"); p.add_argument("--queue-capacity", type=int, default=0); p.add_argument("--loadgen")
    p.add_argument("--loadgen-status", type=int, default=0); p.add_argument("--markdown"); p.add_argument("--svg")
    a = p.parse_args()
    if a.report:
        sys.exit(report(a))
    sample(a)

main()
