"""Samples Prometheus text endpoints once a second into a JSON series (a study tool, not a test).

usage: sample-metrics.py --duration S --pid PID --endpoint NAME=HOST:PORT ... --out FILE
Stops after --duration seconds or when --pid exits. Only loopback endpoints are read.
Each sample: {"t": seconds since start, "NAME": {"metric{labels}": value, ...}, ...};
an endpoint that does not answer (starting, stopped) is left out of that sample.
"""
import argparse, json, os, time, urllib.request

def scrape(address):
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=0.5) as r:
            text = r.read().decode()
    except Exception:
        return None
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            values[key] = float(value)
        except ValueError:
            pass
    return values

def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--endpoint", action="append", default=[])
    p.add_argument("--out", required=True)
    a = p.parse_args()
    endpoints = dict(e.split("=", 1) for e in a.endpoint)
    for address in endpoints.values():
        assert address.startswith("127.0.0.1:"), f"loopback only: {address}"
    start = time.monotonic()
    samples = []
    while time.monotonic() - start < a.duration and alive(a.pid):
        tick = time.monotonic()
        sample = {"t": round(tick - start, 3)}
        for name, address in endpoints.items():
            values = scrape(address)
            if values is not None:
                sample[name] = values
        samples.append(sample)
        time.sleep(max(0, 1 - (time.monotonic() - tick)))
    with open(a.out, "w") as f:
        json.dump(samples, f)

main()
