"""Turns scripts/study-split-vs-offload's load-generator reports into the study's tables, the
paper's claims checked, the crossover points and an SVG plot. A study tool, not a test.

Figures per run (one JSON report each, docs/loadgen.md schema):
  latency     median / p99 of all completions, ms, from each frame's scheduled time;
  power       mean camera power at the run's frame rate, W = (compute + radio + idle J) / (wall s x cameras),
              the quantity the paper's "power consumption" compares;
  energy      camera energy per frame, J = (compute + radio J) / frames (the idle draw excluded: it
              depends on the frame rate, not on the mode).
Model: a frame's latency is camera compute (profile) + 2 x 20 ms + serialisation (8 x (bytes - 1,500)
/ bandwidth: the emulated link sends its 1,500-byte bucket at once and the rest at the link rate,
exactly) + the edge's time. Only the last is measured; it is the median over all runs of a mode of
(median latency - the known terms), which pools the runs against this shared machine's noise. The
paper's claims are checked on the model (and on the raw medians, shown next to it); crossovers are
where two modes' models meet.
"""
import argparse, datetime, json, os

MODES = ["local", "offload", "split"]
COLOURS = {"local": "#c0504d", "offload": "#4f81bd", "split": "#9bbb59"}
CLAIMS = {("local", "latency"): 0.89, ("local", "power"): 0.49, ("offload", "latency"): 0.55, ("offload", "power"): 0.37}


def load(out, name):
    path = f"{out}/{name}.json"
    if not os.path.exists(path):
        return None
    r = json.load(open(path))
    g = r["groups"][0]
    t = r["totals"]
    done = t["completed_edge"] + t["completed_local"] + t["completed_fallback"]
    e = g["energy"]
    cams = g["cameras"]
    return {
        "p50": r["latency_ms"]["all"]["p50"], "p99": r["latency_ms"]["all"]["p99"], "mean": r["latency_ms"]["all"]["mean"],
        "edge": t["completed_edge"], "local": t["completed_local"], "fallback": t["completed_fallback"],
        "dropped": t["dropped_total"], "unaccounted": t["unaccounted"], "offered": t["offered"],
        "power_w": (e["compute_j"] + e["radio_j"] + e["idle_j"]) / (r["elapsed_s"] * cams),
        "energy_j": (e["compute_j"] + e["radio_j"]) / done if done else None,
        "head_ms": g["head_ms"], "full_ms": g["full_ms"], "jpeg_encode_ms": g["jpeg_encode_ms"],
        "bottleneck_bytes": g["bottleneck_bytes"], "jpeg_bytes": g["jpeg_bytes"], "fidelity": r["fidelity"],
        "rate": t["offered_per_s"] / cams,
    }


BUCKET = 1500  # the emulated link sends the first 1,500 bytes at once (profiles: bucket_bytes)


DELAY = 20  # ms one way, every uplink of the study


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def camera_ms(r, mode):
    return r["head_ms"] if mode == "split" else r["jpeg_encode_ms"] if mode == "offload" else r["full_ms"]


def payload_of(r, mode):
    return r["bottleneck_bytes"] if mode == "split" else r["jpeg_bytes"]


def serialisation_ms(payload, mbit):
    return 8 * max(0, payload - BUCKET) / (mbit * 1000)


def verdict(got, claim):
    return "holds" if -got >= claim - 0.02 else ("same direction, smaller" if got < 0 else "does not hold (split is worse)")


def pct(v):
    return f"{100 * v:+.0f} %"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--devices", required=True)
    p.add_argument("--uplinks", required=True)
    p.add_argument("--quality", default="90")
    p.add_argument("--cameras", default="2")
    p.add_argument("--command", default="scripts/study-split-vs-offload")
    p.add_argument("--machine", default="")
    p.add_argument("--doc")
    p.add_argument("--svg")
    a = p.parse_args()
    devices = a.devices.split(",")
    uplinks = [int(u) for u in a.uplinks.split(",")]
    runs = {}
    for d in devices:
        runs[(d, "local", None)] = load(a.out, f"{d}-local")
        for u in uplinks:
            for m in ("offload", "split"):
                runs[(d, m, u)] = load(a.out, f"{d}-{u}mbit-{m}")
    missing = [k for k, v in runs.items() if v is None]
    if missing:
        print("missing runs:", missing)
    any_run = next(v for v in runs.values() if v)
    lines = []
    lines.append("| device | uplink | mode | median ms | p99 ms | frames edge / local / fallback / dropped | camera power W | energy/frame J (compute + radio) |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for d in devices:
        for u in [None] + uplinks:
            for m in MODES:
                r = runs.get((d, m, u))
                if (m == "local") != (u is None) or r is None:
                    continue
                up = "–" if u is None else f"{u} Mbit/s"
                lines.append(f"| {d} | {up} | {m} | {r['p50']:.0f} | {r['p99']:.0f} | {r['edge']} / {r['local']} / {r['fallback']} / {r['dropped']} "
                             f"| {r['power_w']:.2f} | {r['energy_j']:.3f} |")
    table = "\n".join(lines)

    summary = {"runs": {f"{d}/{m}/{u}": v for (d, m, u), v in runs.items()}, "claims": {}, "model": {}}
    # The edge's part of each run: median minus what the camera and the link add (both known exactly:
    # the profile's compute time, 2 x 20 ms, the payload's serialisation). Pooled per mode over every
    # board and uplink, it is the one measured term of the model below.
    edge_parts = {"split": [], "offload": []}
    for (d, m, u), r in runs.items():
        if r and m in edge_parts:
            edge_parts[m].append(r["p50"] - camera_ms(r, m) - 2 * DELAY - serialisation_ms(payload_of(r, m), u))
    edge = {m: median(v) for m, v in edge_parts.items() if v}
    summary["edge_ms"] = {m: {"median": edge[m], "min": min(v), "max": max(v), "runs": len(v)} for m, v in edge_parts.items() if v}

    def model(d, m, u):
        r = runs.get((d, "local", None)) if m == "local" else next((runs[(d, m, x)] for x in uplinks if runs.get((d, m, x))), None)
        if not r:
            return None
        if m == "local":
            return r["full_ms"]
        return camera_ms(r, m) + 2 * DELAY + serialisation_ms(payload_of(r, m), u) + edge[m]

    claims = []
    crossings = []
    model_rows = ["| device | uplink | local ms | offload ms | split ms |", "|---|---|---|---|---|"]
    for d in devices:
        for u in uplinks:
            vals = [model(d, m, u) for m in MODES]
            model_rows.append(f"| {d} | {u} Mbit/s | " + " | ".join("–" if v is None else f"{v:.0f}" for v in vals) + " |")
    for d in devices:
        local = runs.get((d, "local", None))
        for base in ("local", "offload"):
            per, lat_model, lat_meas, pow_change = [], [], [], []
            for u in uplinks:
                s_run = runs.get((d, "split", u))
                b_run = local if base == "local" else runs.get((d, "offload", u))
                sm, bm = model(d, "split", u), model(d, base, u)
                if not s_run or not b_run or sm is None or bm is None:
                    continue
                lat_model.append(sm / bm - 1)
                lat_meas.append(s_run["p50"] / b_run["p50"] - 1)
                pow_change.append(s_run["power_w"] / b_run["power_w"] - 1)
                per.append(f"{u} Mbit/s: {pct(sm / bm - 1)} (measured {pct(s_run['p50'] / b_run['p50'] - 1)})")
            if not lat_model:
                continue
            cl, cp = CLAIMS[(base, "latency")], CLAIMS[(base, "power")]
            best_lat, best_pow = min(lat_model), min(pow_change)
            claims.append(f"| {d} | split vs {base} | {pct(best_lat)} (measured {pct(min(lat_meas))}); paper −{cl * 100:.0f} %: {verdict(best_lat, cl)} "
                          f"| {pct(best_pow)}; paper −{cp * 100:.0f} %: {verdict(best_pow, cp)} | {'; '.join(per)} |")
            summary["claims"][f"{d}/split-vs-{base}"] = {"best_latency_change_model": best_lat, "best_latency_change_measured": min(lat_meas),
                                                        "best_power_change": best_pow}
        # Crossovers of the model: where two modes take equally long.
        rs = next((runs[(d, "split", u)] for u in uplinks if runs.get((d, "split", u))), None)
        ro = next((runs[(d, "offload", u)] for u in uplinks if runs.get((d, "offload", u))), None)
        if rs and ro and "split" in edge and "offload" in edge:
            fixed = (camera_ms(rs, "split") + edge["split"]) - (camera_ms(ro, "offload") + edge["offload"])
            bits = 8 * (max(0, payload_of(rs, "split") - BUCKET) - max(0, payload_of(ro, "offload") - BUCKET))
            # split - offload = fixed + bits / (bw Mbit/s x 1000) ms
            if bits < 0 and fixed > 0:
                crossings.append(f"- {d}: split is faster than offload below **{-bits / fixed / 1000:.2f} Mbit/s** "
                                 f"(it sends {-bits / 8:,.0f} B less but spends {fixed:.0f} ms more before the link and at the edge); above, offload is.")
            elif bits < 0:
                crossings.append(f"- {d}: split is faster than offload at every bandwidth (smaller payload, and {-fixed:.0f} ms less elsewhere).")
            elif fixed < 0:
                crossings.append(f"- {d}: split is faster than offload above **{bits / -fixed / 1000:.2f} Mbit/s**.")
            else:
                crossings.append(f"- {d}: offload is faster than split at every bandwidth.")
        if local:
            for m in ("split", "offload"):
                r = rs if m == "split" else ro
                if not r or m not in edge:
                    continue
                rest = camera_ms(r, m) + 2 * DELAY + edge[m]
                budgets = [local["full_ms"] - camera_ms(r, m) - 2 * DELAY - serialisation_ms(payload_of(r, m), u) for u in uplinks]
                crossings.append(f"- {d}: {m} beats local when the edge answers within: "
                                 + ", ".join(f"{b:.0f} ms at {u} Mbit/s" if b > 0 else f"no edge time at {u} Mbit/s" for b, u in zip(budgets, uplinks))
                                 + f" (here it took {edge[m]:.0f} ms).")
                if rest >= local["full_ms"]:
                    crossings.append(f"- {d}: local ({local['full_ms']:.0f} ms) beats {m} at every bandwidth ({m} needs {rest:.0f} ms on an infinitely fast link: "
                                     f"the edge's {edge[m]:.0f} ms alone is more than the board's whole model).")
                else:
                    bw = 8 * max(0, payload_of(r, m) - BUCKET) / (local["full_ms"] - rest) / 1000
                    crossings.append(f"- {d}: {m} beats local above **{bw:.2f} Mbit/s** (local {local['full_ms']:.0f} ms, {m} {rest:.0f} ms + serialisation).")
            pw = {m: runs.get((d, m, uplinks[0]))["power_w"] for m in ("split", "offload") if runs.get((d, m, uplinks[0]))}
            order = sorted(list(pw.items()) + [("local", local["power_w"])], key=lambda kv: kv[1])
            crossings.append(f"- {d}, camera power at {any_run['rate']:.2g} frames/s per camera: " + " < ".join(f"{m} {w:.2f} W" for m, w in order)
                             + " (no crossover: the radio is charged per byte, so power does not depend on the link rate here).")
    summary["model"] = {f"{d}/{m}/{u}": model(d, m, u) for d in devices for m in MODES for u in uplinks}
    json.dump(summary, open(f"{a.out}/summary.json", "w"), indent=1, default=str)
    print(table)
    print()
    print("\n".join(model_rows))
    print("\n".join(claims))
    print("\n".join(crossings))
    if a.svg:
        write_svg(a.svg, runs, devices, uplinks)
    if a.doc:
        write_doc(a, table, claims, crossings, runs, devices, uplinks, any_run, model_rows, summary["edge_ms"], summary["claims"])


def write_doc(a, table, claims, crossings, runs, devices, uplinks, r0, model_rows, edge_ms, verdicts):
    short = []
    for d in devices:
        vl, vo = verdicts.get(f"{d}/split-vs-local"), verdicts.get(f"{d}/split-vs-offload")
        if not vl or not vo:
            continue
        short.append(f"- **{d}**: against local computing, split changes latency by {pct(vl['best_latency_change_model'])} "
                     f"(paper −89 %) and camera power by {pct(vl['best_power_change'])} (paper −49 %); against offloading, "
                     f"by {pct(vo['best_latency_change_model'])} (paper −55 %) and {pct(vo['best_power_change'])} (paper −37 %).")
    per_dev = []
    for d in devices:
        r = runs.get((d, "split", uplinks[0])) or runs.get((d, "local", None))
        per_dev.append(f"{d}: head {r['head_ms']:.1f} ms, whole model {r['full_ms']:.0f} ms, JPEG encode {r['jpeg_encode_ms']:.1f} ms")
    jpeg = next((runs[(d, "offload", u)]["jpeg_bytes"] for d in devices for u in uplinks if runs.get((d, "offload", u))), None)
    doc = f"""# Split computing against local computing and full offload (issue 11, study 1)

The BottleFit paper (Matsubara et al., arXiv 2201.02693) measures, on a Raspberry Pi (no GPU) and a
Jetson Nano, that split computing cuts latency by up to 89 % and power by up to 49 % against local
computing, and by up to 55 % and 37 % against offloading the image to the edge. This study runs the
same three ways for BottleFit ResNet-50 (C = 12) through this system, per camera board and uplink.

**Command** (results below): `{a.command}`, on {datetime.date.today()}; this 2-core machine was
shared with other work ({a.machine or "load not recorded"}).

**Fidelity: emulated cameras, real edge.** The cameras are the load generator's (docs/loadgen.md): the
real camera policy decides every frame, but the head, the whole model and the JPEG encode take the
device profile's time and draw its power ({'; '.join(per_dev)}; profiles/devices, each figure
with its source), and the uplink is emulated in the sender (token bucket at the link rate, then a
20 ms one-way delay; profiles/uplinks/uplink-*mbit-20ms.yaml). Payloads are the real sizes: the
quantized bottleneck is {r0['bottleneck_bytes']:,} bytes; offload sends photo-like 224×224 frames
(`--source textured`: 1/f noise, the spectrum of natural images) JPEG-encoded once with this
project's libjpeg codec at quality {a.quality} ({jpeg:,} bytes each, the low end of a photograph's
15–30 KB at that size and quality). The edge is real: one `bottlefit broker`
and one `bottlefit worker` running the real decoder + tail (split) and the real whole ResNet-50
with JPEG decode (offload) on this 2-core x86 machine, two threads. The fleet is small on purpose
({a.cameras} cameras at {r0['rate']:.2g} frames/s each, a small fraction of one worker's capacity),
so that the 2 cores are not the bottleneck and a latency is one frame's path; when the machine is
shared with other work while the study runs, some frames still queue behind others: the p99
column shows it, and the medians are the figures used. The paper's edge server had a GPU; here
the edge's tail and whole model run on a CPU (tens of ms each on this machine's two cores), and
that, more than the bottleneck, decides the comparisons below.

Latency counts from each frame's scheduled time to its result at the camera (open loop). Camera
power is the mean draw at this frame rate, (compute + radio + idle energy) / wall time, the quantity
the paper compares; energy per frame counts compute and radio only.

![median latency and camera power per mode, board and uplink](split-vs-offload.svg)

## In short

{chr(10).join(short)}
- Where the claims fail here it is for two reasons the study makes visible: this edge is a shared
  CPU whose tail takes longer than the Jetson's whole model (so on that board local computing wins
  unless the edge answers within 5–18 ms), and on the Pi the head's 35 ms of compute costs more camera
  energy than JPEG encoding plus the extra 3.7 KB of radio: split would break even only if each byte
  sent cost about 45 µJ, 200× the profile's (assumed) 200 nJ/B.

## Results

Measured, per run ({a.cameras} cameras × {r0['rate']:.2g} frames/s; median and p99 from each frame's scheduled time):

{table}

The edge's time, per mode, pooled over every run (median latency minus the camera's compute, 2 × 20 ms
and the payload's serialisation): split (decoder + tail) **{edge_ms['split']['median']:.0f} ms** (runs {edge_ms['split']['min']:.0f}–{edge_ms['split']['max']:.0f}),
offload (JPEG decode + whole model) **{edge_ms['offload']['median']:.0f} ms** (runs {edge_ms['offload']['min']:.0f}–{edge_ms['offload']['max']:.0f}).
On an idle machine the tail alone takes about 86 ms (issue 10 measured 11.6 frames/s); the spread between
runs is this shared machine, not the design.

Latency from the model (camera compute + 2 × 20 ms + serialisation + the pooled edge time), ms:

{chr(10).join(model_rows)}

## The paper's claims in this setting

Best change of split computing over the uplinks run (negative = split better): latency on the model
(raw medians in brackets), camera power measured:

| device | comparison | latency | power | per uplink (model, measured) |
|---|---|---|---|---|
{chr(10).join(claims)}

## Crossover points

{chr(10).join(crossings)}

## What this does and does not show

- The latency and energy of a camera are modelled from cited (not measured here) board figures;
  the edge's share is measured. A faster edge (a GPU) shortens split and offload alike and moves
  every crossover toward the edge; a slower board moves them the other way.
- The radio is charged per byte (profiles: 200 nJ/B), so the power comparison does not depend on
  the link rate here; a radio whose draw is per unit of airtime would favour split more on slow links.
- Offload's JPEG size is that of photo-like 1/f-noise frames ({jpeg:,} bytes at quality {a.quality});
  a larger photograph moves the split/offload crossover up by 8 × the extra bytes / the fixed-cost
  difference above.
- The paper's edge ran the tail on a GPU in milliseconds; here the edge is this 2-core CPU, shared,
  whose tail takes longer than the Jetson's whole model. That, not the bottleneck, is why split loses
  to local on the Jetson profile.
"""
    open(a.doc, "w").write(doc)
    print(f"wrote {a.doc}")


def write_svg(path, runs, devices, uplinks):
    W, PH, PW = 980, 230, 460
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{60 + PH * len(devices) + 40}" font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="20" font-size="15">Split vs offload vs local: BottleFit ResNet-50 C=12, emulated cameras, real edge (scripts/study-split-vs-offload)</text>']
    for i, m in enumerate(MODES):
        s.append(f'<rect x="{20 + i * 90}" y="32" width="12" height="12" fill="{COLOURS[m]}"/><text x="{36 + i * 90}" y="43">{m}</text>')
    for di, d in enumerate(devices):
        y0 = 60 + di * PH
        for pi, (key, unit) in enumerate((("p50", "median latency, ms"), ("power_w", "camera power, W"))):
            x0 = 60 + pi * (PW + 30)
            vals = {}
            for u in uplinks:
                for m in MODES:
                    r = runs.get((d, "local", None)) if m == "local" else runs.get((d, m, u))
                    if r:
                        vals[(u, m)] = r[key]
            top = max(vals.values()) * 1.1 if vals else 1
            h = PH - 60
            s.append(f'<text x="{x0}" y="{y0 + 12}">{d}: {unit}</text>')
            s.append(f'<line x1="{x0}" y1="{y0 + 20 + h}" x2="{x0 + PW - 40}" y2="{y0 + 20 + h}" stroke="black"/>')
            for k in range(5):
                v = top * k / 4
                yy = y0 + 20 + h - h * k / 4
                s.append(f'<line x1="{x0 - 4}" y1="{yy:.1f}" x2="{x0 + PW - 40}" y2="{yy:.1f}" stroke="#ddd"/>')
                s.append(f'<text x="{x0 - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="10">{v:.3g}</text>')
            gw = (PW - 60) / len(uplinks)
            for ui, u in enumerate(uplinks):
                gx = x0 + 10 + ui * gw
                for mi, m in enumerate(MODES):
                    v = vals.get((u, m))
                    if v is None:
                        continue
                    bh = h * v / top
                    bx = gx + mi * (gw - 20) / 3
                    s.append(f'<rect x="{bx:.1f}" y="{y0 + 20 + h - bh:.1f}" width="{(gw - 20) / 3 - 2:.1f}" height="{bh:.1f}" fill="{COLOURS[m]}"/>')
                    s.append(f'<text x="{bx + (gw - 20) / 6:.1f}" y="{y0 + 16 + h - bh:.1f}" text-anchor="middle" font-size="9">{v:.3g}</text>')
                s.append(f'<text x="{gx + (gw - 20) / 2:.1f}" y="{y0 + 34 + h}" text-anchor="middle">{u} Mbit/s, 20 ms</text>')
    s.append("</svg>")
    open(path, "w").write("\n".join(s))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
