"""Turns scripts/study-overload's samples into the study's figures (printed, and written as
OUT/overload.md and OUT/overload.json). A study tool, not a test."""
import argparse, json, re

def value(sample, name, metric, **labels):
    values = sample.get(name) or {}
    total, found = 0.0, False
    for key, v in values.items():
        if not (key == metric or key.startswith(metric + "{")):
            continue
        if all(f'{k}="{val}"' in key for k, val in labels.items()):
            total += v
            found = True
    return total if found else None

def delta(first, last, name, metric, **labels):
    a, b = value(first, name, metric, **labels), value(last, name, metric, **labels)
    return None if a is None or b is None else b - a

def bucket_quantile(first, last, name, q):
    """The upper bound of the bucket holding the q-quantile of edge latency in the window."""
    metric = "bottlefit_camera_latency_seconds_bucket"
    bounds = {}
    for key in (last.get(name) or {}):
        if key.startswith(metric + "{") and 'path="edge"' in key:
            le = re.search(r'le="([^"]+)"', key).group(1)
            d = delta(first, last, name, metric, path="edge", le=le)
            if d is not None:
                bounds[float("inf") if le == "+Inf" else float(le)] = d
    return bounds

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--capacity", default="")
    p.add_argument("--rate", default="")
    p.add_argument("--duration", default="")
    p.add_argument("--slo", default="")
    p.add_argument("--emulated", action="store_true")
    p.add_argument("--pinned", action="store_true", help="the real run had the edge on CPU 0 and the cameras on CPU 1")
    p.add_argument("--edge-cpu", default="", help="the real run's worker had this fraction of one core (a CFS quota)")
    p.add_argument("--step-at", type=float, default=None, help="emulated run 'step': seconds at which the load stepped down")
    a = p.parse_args()
    if a.emulated:
        return emulated(a)
    cams = ["cam1", "cam2", "cam3", "cam4"]
    report = {}
    lines = [f"# Overload study (scripts/study-overload)", "",
             f"One tail worker (BottleFit ResNet-50 C=12{', limited to ' + a.edge_cpu + ' of a core' if a.edge_cpu else ''}, capacity {a.capacity or '?'} frames/s at batch 2), "
             f"4 cameras with the whole model at {a.rate} frames/s each ({'edge on CPU 0, cameras on CPU 1' if a.pinned else 'cameras at nice 10'}), SLO {a.slo} ms, {a.duration} s per run; "
             f"figures over the run after its first 10 s.", ""]
    for run in a.runs.split(","):
        samples = json.load(open(f"{a.out}/series-{run}.json"))
        live = [s for s in samples if "broker" in s and all(c in s for c in cams)]
        if len(live) < 12:
            print(f"run {run}: too few samples with every endpoint up ({len(live)})")
            continue
        start_t = live[0]["t"] + 10
        window = [s for s in live if s["t"] >= start_t]
        first, last = window[0], window[-1]
        busy = delta(first, last, "broker", "bottlefit_broker_worker_busy_seconds_total")
        worker = delta(first, last, "broker", "bottlefit_broker_worker_seconds_total")
        util = busy / worker if worker else None
        per = {}
        for c in cams:
            edge = delta(first, last, c, "bottlefit_camera_frames_completed_total", path="edge") or 0
            local = delta(first, last, c, "bottlefit_camera_frames_completed_total", path="local") or 0
            dropped = delta(first, last, c, "bottlefit_camera_frames_dropped_total") or 0
            changes = delta(first, last, c, "bottlefit_camera_edge_state_changes_total") or 0
            per[c] = {"edge": edge, "local": local, "dropped": dropped, "state_changes": changes}
        minutes = (last["t"] - first["t"]) / 60
        edge_total = sum(x["edge"] for x in per.values())
        local_total = sum(x["local"] for x in per.values())
        dropped_total = sum(x["dropped"] for x in per.values())
        all_frames = edge_total + local_total + dropped_total
        # Fairness: each camera's edge completions per 10 s window against the fleet mean.
        ratios = []
        i = 0
        while i + 10 < len(window):
            w0, w1 = window[i], window[i + 10]
            e = [delta(w0, w1, c, "bottlefit_camera_frames_completed_total", path="edge") or 0 for c in cams]
            mean = sum(e) / len(e)
            if mean > 0:
                ratios.append((min(e) / mean, max(e) / mean))
            i += 10
        # Edge latency p99 from the buckets (upper bound of its bucket).
        buckets = {}
        for c in cams:
            for le, n in bucket_quantile(first, last, c, 0.99).items():
                buckets[le] = buckets.get(le, 0) + n
        p99_bucket = None
        if buckets and buckets.get(float("inf"), 0) > 0:
            total = buckets[float("inf")]
            for le in sorted(buckets):
                if buckets[le] >= 0.99 * total:
                    p99_bucket = le
                    break
        # Whole-run figures from the cameras' own summary lines.
        summaries = [l for l in open(f"{a.out}/up-{run}.log").read().splitlines() if "camera=" in l and "offered=" in l]
        accounting, p99s = [], []
        for l in summaries:
            f = dict(kv.split("=", 1) for kv in l.split() if "=" in kv and "[" not in kv)
            off, ce, cl, dr = (int(f.get(k, 0)) for k in ("offered", "completed_edge", "completed_local", "dropped"))
            accounting.append(off - ce - cl - dr)
            if "edge_ms_p99" in f:
                p99s.append(float(f["edge_ms_p99"]))
        fraction = [(s["t"], value(s, "controller", "bottlefit_controller_local_fraction")) for s in window if "controller" in s]
        r = {
            "utilisation": util, "edge_frames": edge_total, "local_frames": local_total, "dropped": dropped_total,
            "local_share": local_total / all_frames if all_frames else None,
            "edge_p99_bucket_s": p99_bucket, "edge_p99_ms_per_camera_whole_run": p99s,
            "mode_changes_per_camera_per_minute": max(x["state_changes"] for x in per.values()) / minutes if minutes else None,
            "fairness_min_max_over_mean": [min(r[0] for r in ratios), max(r[1] for r in ratios)] if ratios else None,
            "unaccounted_per_camera": accounting, "per_camera": per,
            "controller_local_fraction": fraction[-20:],
            "edge_frames_per_s": edge_total / (minutes * 60) if minutes else None,
        }
        report[run] = r
        lines += [f"## Controller {run}", "",
                  "| figure | value |", "|---|---|",
                  f"| edge utilisation (busy / worker time) | {util:.1%} |" if util is not None else "| edge utilisation | ? |",
                  f"| edge-served frames/s | {r['edge_frames_per_s']:.1f} |",
                  f"| frames: edge / local / dropped | {edge_total:.0f} / {local_total:.0f} / {dropped_total:.0f} |",
                  f"| local share | {r['local_share']:.1%} |" if r["local_share"] is not None else "| local share | ? |",
                  f"| edge-served p99 (bucket bound) | {p99_bucket} s |",
                  f"| edge-served p99 per camera, whole run (ms) | {', '.join(f'{x:.0f}' for x in p99s)} |",
                  f"| mode changes per camera per minute (max) | {r['mode_changes_per_camera_per_minute']:.2f} |",
                  f"| per-camera edge share / fleet mean, 10 s windows (min, max) | {r['fairness_min_max_over_mean']} |",
                  f"| unaccounted frames per camera | {accounting} |", ""]
        lines += ["Per camera: " + "; ".join(f"{c} edge {x['edge']:.0f} local {x['local']:.0f} dropped {x['dropped']:.0f}" for c, x in per.items()), ""]
    json.dump(report, open(f"{a.out}/overload.json", "w"), indent=1)
    open(f"{a.out}/overload.md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))

def return_time(series, step_at):
    """Seconds from the step until the cameras' mean edge share (their own AIMD share, what they
    offer the edge) is back at 0.9 or more."""
    for s in series:
        if s["t"] > step_at and s.get("edge_share", 0) >= 0.9:
            return s["t"] - step_at
    return None

def after_step(r, step_at):
    """Local share and edge utilisation from 10 s after the step to the end."""
    series = [s for s in r.get("timeseries", []) if s["t"] >= step_at + 10]
    stats = [s for s in r.get("stats", []) if s["t"] >= step_at + 10 and s.get("utilisation") is not None]
    frames = sum(s.get("edge_per_s", 0) + s.get("local_per_s", 0) + s.get("fallback_per_s", 0) for s in series)
    local = sum(s.get("local_per_s", 0) + s.get("fallback_per_s", 0) for s in series)
    fallback = sum(s.get("fallback_per_s", 0) for s in series)
    return {"local_share": local / frames if frames else None, "fallback_share": fallback / frames if frames else None,
            "utilisation": sum(s["utilisation"] for s in stats) / len(stats) if stats else None}

def emulated(a):
    """The same figures from the load generator's JSON reports (docs/loadgen.md schema 1)."""
    lines = ["# Overload study, emulated cameras (scripts/study-overload --fidelity emulated)", "",
             "scenarios/overload-2x.yaml: 4 emulated Jetson Nano cameras at 5.8 frames/s on 20 Mbit/s Wi-Fi, "
             "one emulated tail worker (86 ms a frame, 11.6 frames/s), the real broker and controller; "
             "figures after the first 10 s unless noted.", ""]
    out = {}
    for run in a.runs.split(","):
        r = json.load(open(f"{a.out}/emulated-{run}.json"))
        t = r["totals"]
        end = a.step_at if run == "step" and a.step_at else float("inf")  # the overload phase only
        series = [s for s in r.get("timeseries", []) if 10 <= s["t"] < end]
        stats = [s for s in r.get("stats", []) if 10 <= s["t"] < end and s.get("utilisation") is not None]
        util = sum(s["utilisation"] for s in stats) / len(stats) if stats else None
        edge_p99 = r["latency_ms"].get("edge", {}).get("p99")
        frames = sum(s.get("edge_per_s", 0) + s.get("local_per_s", 0) + s.get("fallback_per_s", 0) for s in series)
        local = sum(s.get("local_per_s", 0) + s.get("fallback_per_s", 0) for s in series)
        fig = {"utilisation_after_10s": util, "edge_p99_ms": edge_p99, "local_share_after_10s": local / frames if frames else None,
               "state_changes_per_camera_per_minute": t.get("state_changes_per_camera_per_minute"),
               "unaccounted": t.get("unaccounted"), "dropped": t.get("dropped"), "offered": t.get("offered"),
               "completed_edge": t.get("completed_edge"), "completed_local": t.get("completed_local"),
               "completed_fallback": t.get("completed_fallback"), "edge_utilisation_whole_run": t.get("edge_utilisation")}
        if run == "step" and a.step_at:
            fig["return_after_step_s"] = return_time(r.get("timeseries", []), a.step_at)
            fig["after_step"] = after_step(r, a.step_at)
        out[run] = fig
        title = f"Controller {run}" if run != "step" else f"Controller on, then a step to 0.5x at {a.step_at:g} s (figures before the step)"
        lines += [f"## {title}", "", "| figure | value |", "|---|---|",
                  f"| edge utilisation (STATS ut, mean after 10 s) | {util:.1%} |" if util is not None else "| edge utilisation | ? |",
                  f"| edge-served p99, whole run | {edge_p99} ms |",
                  f"| local share (local + fallback, after 10 s) | {fig['local_share_after_10s']:.1%} |" if fig["local_share_after_10s"] is not None else "| local share | ? |",
                  f"| edge-state changes per camera per minute | {fig['state_changes_per_camera_per_minute']} |",
                  f"| offered / edge / local / fallback | {t.get('offered')} / {t.get('completed_edge')} / {t.get('completed_local')} / {t.get('completed_fallback')} |",
                  f"| dropped | {t.get('dropped')} |",
                  f"| unaccounted | {t.get('unaccounted')} |"]
        if "return_after_step_s" in fig:
            back = fig["return_after_step_s"]
            lines.append("| cameras' mean edge share back at 0.9 after the step | "
                         + (f"{back:.1f} s |" if back is not None else "never |"))
            after = fig["after_step"]
            if after["local_share"] is not None:
                lines.append(f"| from 10 s after the step: local share (of it, fallbacks) | {after['local_share']:.1%} ({after['fallback_share']:.1%}) |")
            if after["utilisation"] is not None:
                lines.append(f"| from 10 s after the step: edge utilisation | {after['utilisation']:.1%} |")
        lines.append("")
    json.dump(out, open(f"{a.out}/emulated.json", "w"), indent=1)
    open(f"{a.out}/emulated.md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))

main()
