"""A multi-host BottleFit deployment rehearsed on one machine (run through scripts/multihost, as root).

Every host of the topology (broker, controller, each worker, each camera group) gets a network
namespace PREFIX-HOST; a further namespace PREFIX-switch holds a bridge. Each host is joined to the
bridge by a veth pair created inside the namespaces, so nothing is made in the machine's own
namespace and no interface, address or route of the host is touched. Uplinks (and downlinks) are
shaped with tc tbf, with a netem delay line in front when the kernel has sch_netem. CURVE keys are
made with `bottlefit keys generate`. The processes run with `ip netns exec`; the camera groups are
`bottlefit loadgen` processes. At the end the accounting is checked (docs/deploy.md) and written
to OUT/summary.json.

Cleanup: every namespace made is recorded in /run/bottlefit-multihost/PREFIX.json before it is
made; on exit, on an error and on SIGINT/SIGTERM/SIGHUP the processes are stopped by PID and the
namespaces deleted (which deletes their links and the bridge). Children die with this script even
when it is killed with SIGKILL (PR_SET_PDEATHSIG); the namespaces of such a run are removed by
`--clean`, or by the next run with the same prefix, which finds the state file of a dead process.
"""

import argparse
import ctypes
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path("/run/bottlefit-multihost")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit)$")
SIZE = re.compile(r"^\d+(b|kb|mb)?$")


class Failure(Exception):
    """A problem worth one line to the user."""


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def log(message):
    print(f"multihost: {message}", flush=True)


def run(args, check=True, timeout=120):
    # Bounded: an `ip` or `tc` call that waits on the kernel for minutes is reported, not waited out.
    try:
        result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"`{' '.join(args)}` did not finish within {timeout} s")
    if check and result.returncode != 0:
        raise Failure(f"`{' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}")
    return result


# --- the topology ---------------------------------------------------------------------------------

def load_topology(path, duration):
    """Reads and checks the topology; returns it with every host in `hosts` (name -> settings)."""
    try:
        with open(path) as f:
            t = yaml.safe_load(f)
    except OSError as e:
        raise Failure(f"cannot read {path}: {e.strerror}")
    except yaml.YAMLError as e:
        raise Failure(f"{path}: not valid YAML: {e}")
    if not isinstance(t, dict):
        raise Failure(f"{path}: expected a mapping at the top")
    known = {"subnet", "security", "metrics_port", "tbf", "models", "broker", "controller", "workers", "camera_groups", "duration"}
    for key in t:
        if key not in known:
            raise Failure(f"{path}: unknown key {key} (known: {', '.join(sorted(known))})")
    base = Path(path).resolve().parent

    def need(mapping, key, where, kind=None):
        if not isinstance(mapping, dict) or key not in mapping:
            raise Failure(f"{path}: {where}.{key} is missing")
        value = mapping[key]
        if kind is not None and not isinstance(value, kind):
            raise Failure(f"{path}: {where}.{key} must be {kind.__name__ if not isinstance(kind, tuple) else 'a number'}, not {value!r}")
        return value

    try:
        subnet = ipaddress.ip_network(need(t, "subnet", "top", str))
    except ValueError as e:
        raise Failure(f"{path}: subnet: {e}")
    if not subnet.is_private or subnet.version != 4:
        raise Failure(f"{path}: subnet {subnet} must be a private IPv4 range (10/8, 172.16/12, 192.168/16)")
    security = t.get("security", "curve")
    if security not in ("curve", "none"):
        raise Failure(f"{path}: security must be curve or none, not {security!r}")
    tbf = t.get("tbf", {}) or {}
    burst = str(tbf.get("burst", "32kb"))
    if not SIZE.match(burst):
        raise Failure(f"{path}: tbf.burst {burst!r} is not a size like 32kb")
    latency = tbf.get("latency_ms", 200)
    if not isinstance(latency, (int, float)) or latency <= 0:
        raise Failure(f"{path}: tbf.latency_ms must be a positive number")
    models = need(t, "models", "top", dict)
    for name, files in models.items():
        for part in ("tail", "full"):
            f = base / need(files, part, f"models.{name}", str)
            if not f.is_file():
                raise Failure(f"{path}: models.{name}.{part}: no file {f}")
            files[part] = str(f)

    hosts = {}
    used = set()

    def host(name, settings, role, where):
        if not isinstance(name, str) or not NAME.match(name) or name == "switch":
            raise Failure(f"{path}: {where}: host name {name!r} must be lower-case letters, digits and dashes (not 'switch')")
        if name in hosts:
            raise Failure(f"{path}: {where}: the name {name} is used twice")
        try:
            address = ipaddress.ip_address(need(settings, "address", where, str))
        except ValueError as e:
            raise Failure(f"{path}: {where}.address: {e}")
        if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
            raise Failure(f"{path}: {where}.address {address} is not a host address of {subnet}")
        if address in used:
            raise Failure(f"{path}: {where}.address {address} is used twice")
        used.add(address)
        links = {}
        for direction in ("uplink", "downlink"):
            link = settings.get(direction)
            if link is None:
                continue
            if not isinstance(link, dict):
                raise Failure(f"{path}: {where}.{direction} must be a mapping like {{rate: 20mbit, delay_ms: 10}}")
            rate = str(need(link, "rate", f"{where}.{direction}"))
            if not RATE.match(rate):
                raise Failure(f"{path}: {where}.{direction}.rate {rate!r} is not a tc rate like 20mbit")
            delay = link.get("delay_ms", 0)
            if not isinstance(delay, (int, float)) or delay < 0:
                raise Failure(f"{path}: {where}.{direction}.delay_ms must be a number of milliseconds")
            links[direction] = {"rate": rate, "delay_ms": delay}
        hosts[name] = dict(settings, role=role, address=str(address), links=links)

    host("broker", need(t, "broker", "top", dict), "broker", "broker")
    host("controller", need(t, "controller", "top", dict), "controller", "controller")
    workers = need(t, "workers", "top", list)
    if not workers:
        raise Failure(f"{path}: workers: at least one worker is needed")
    for i, w in enumerate(workers):
        host(need(w, "name", f"workers[{i}]"), w, "worker", f"workers[{i}]")
    groups = need(t, "camera_groups", "top", list)
    if not groups:
        raise Failure(f"{path}: camera_groups: at least one group is needed")
    for i, g in enumerate(groups):
        where = f"camera_groups[{i}]"
        host(need(g, "name", where), g, "cameras", where)
        if need(g, "model", where, str) not in models:
            raise Failure(f"{path}: {where}.model {g['model']} is not under models:")
        for key in ("cameras", "rate"):
            value = need(g, key, where, (int, float))
            if value <= 0:
                raise Failure(f"{path}: {where}.{key} must be positive")
        if g.get("mode", "split") not in ("split", "offload", "local"):
            raise Failure(f"{path}: {where}.mode must be split, offload or local")
    t["duration"] = duration if duration is not None else t.get("duration", 20)
    if not isinstance(t["duration"], (int, float)) or t["duration"] <= 0:
        raise Failure(f"{path}: duration must be a positive number of seconds")
    t.update(subnet=subnet, security=security, burst=burst, tbf_latency_ms=latency, hosts=hosts,
             metrics_port=t.get("metrics_port", 9100))
    return t


# --- namespaces, links, shapers -------------------------------------------------------------------

class Network:
    """The namespaces of one run. Each is recorded in the state file before it is made."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.state = STATE_DIR / f"{prefix}.json"
        self.namespaces = []
        self.netem = None
        self.links = {}  # (host, direction) -> (namespace, device)

    def ns(self, host):
        return f"{self.prefix}-{host}"

    def existing(self):
        out = run(["ip", "netns", "list"]).stdout
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        return [n for n in names if n.startswith(self.prefix + "-")]

    def claim(self):
        """Refuses names in use by a live run or not made by this script; removes a dead run's."""
        left = self.existing()
        if not left:
            return
        owner = None
        if self.state.exists():
            try:
                owner = json.loads(self.state.read_text())
            except (OSError, ValueError):
                owner = None
        if owner is None:
            raise Failure(f"namespaces {', '.join(left)} exist and were not made by this script "
                          f"(no {self.state}); remove them or choose another --prefix")
        pid = owner.get("pid")
        if pid and pid_alive(pid) and "multihost" in cmdline(pid):
            raise Failure(f"a rehearsal (pid {pid}) is using the prefix {self.prefix}; choose another --prefix")
        log(f"removing what a run that ended without cleaning up (pid {pid}) left: {', '.join(left)}")
        remove_namespaces([n for n in left if n in owner.get("namespaces", [])] or left)
        self.state.unlink(missing_ok=True)

    def save(self):
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "namespaces": self.namespaces}))
        tmp.replace(self.state)

    def add(self, name):
        self.namespaces.append(name)
        self.save()
        run(["ip", "netns", "add", name])
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def build(self, t):
        switch = self.ns("switch")
        self.add(switch)
        run(["ip", "-n", switch, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", switch, "link", "set", "br0", "up"])
        prefixlen = t["subnet"].prefixlen
        for i, (name, h) in enumerate(t["hosts"].items()):
            ns = self.ns(name)
            self.add(ns)
            port = f"p{i}"
            # Both ends are made inside namespaces: the host's own namespace never sees them.
            run(["ip", "-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "-n", switch, "link", "set", port, "alias", name])
            run(["ip", "-n", switch, "link", "set", port, "master", "br0"])
            run(["ip", "-n", switch, "link", "set", port, "up"])
            run(["ip", "-n", ns, "addr", "add", f"{h['address']}/{prefixlen}", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            for direction, (where, dev) in (("uplink", (ns, "eth0")), ("downlink", (switch, port))):
                link = h["links"].get(direction)
                if link:
                    self.shape(where, dev, link, t)
                    self.links[(name, direction)] = (where, dev)
        log(f"{len(self.namespaces)} namespaces, bridge br0 in {switch}, subnet {t['subnet']}, "
            f"netem {'on' if self.netem else 'not available: camera delays are emulated by the load generator'}")

    def shape(self, ns, dev, link, t):
        tbf = ["tbf", "rate", link["rate"], "burst", t["burst"], "latency", f"{t['tbf_latency_ms']}ms"]
        if link["delay_ms"] and self.netem is not False:
            r = run(["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "handle", "1:", "netem",
                     "delay", f"{link['delay_ms']}ms", "limit", "10000"], check=False)
            self.netem = r.returncode == 0
            if self.netem:
                run(["tc", "-n", ns, "qdisc", "add", "dev", dev, "parent", "1:", "handle", "2:"] + tbf)
                return
        run(["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "handle", "2:"] + tbf)

    def link_stats(self):
        """Bytes and packets each shaper sent, dropped and held back (tc -s)."""
        out = {}
        for (host, direction), (ns, dev) in self.links.items():
            r = run(["tc", "-s", "-j", "-n", ns, "qdisc", "show", "dev", dev], check=False)
            try:
                qdiscs = json.loads(r.stdout)
            except ValueError:
                continue
            for q in qdiscs:
                if q.get("kind") == "tbf":
                    out[f"{host}/{direction}"] = {k: q.get(k) for k in ("bytes", "packets", "drops", "overlimits")} | {
                        "rate": q.get("options", {}).get("rate")}
        return out

    def remove(self):
        """Deletes this run's namespaces; returns those still there. Another run's are never touched."""
        if not self.namespaces:
            return []
        remove_namespaces(self.namespaces)
        left = [n for n in self.existing() if n in self.namespaces]
        if not left:
            self.state.unlink(missing_ok=True)
        return left


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def remove_namespaces(names):
    """Kills what still runs in each namespace (by PID), then deletes it with its links."""
    for name in names:
        try:
            for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            for _ in range(50):
                if not run(["ip", "netns", "pids", name], check=False).stdout.split():
                    break
                time.sleep(0.1)
            run(["ip", "netns", "del", name], check=False)
        except Failure as e:
            # Go on with the others; what is left is reported by the caller (and --clean removes it).
            print(f"multihost: removing {name}: {e}", file=sys.stderr)


# --- processes ------------------------------------------------------------------------------------

LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    # PR_SET_PDEATHSIG (1): the child gets SIGKILL when this script ends, even by SIGKILL. It
    # survives the exec of `ip` and of `bottlefit` (neither is set-user-ID).
    LIBC.prctl(1, signal.SIGKILL)


class Fleet:
    def __init__(self, network, binary, out):
        self.network = network
        self.binary = binary
        self.out = out
        self.processes = {}  # name -> (Popen, log path)

    def start(self, name, host, args):
        path = self.out / "logs" / f"{name}.log"
        f = open(path, "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.network.ns(host), self.binary] + args,
                             stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        f.close()
        self.processes[name] = (p, path)
        log(f"started {name} (pid {p.pid}) in {self.network.ns(host)}")
        return p

    def alive_or_fail(self, name):
        p, path = self.processes[name]
        if p.poll() is not None:
            tail = path.read_text(errors="replace").strip().splitlines()[-5:]
            raise Failure(f"{name} exited with status {p.returncode}: " + " | ".join(tail))

    def wait_for(self, what, check, timeout, names):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in names:
                self.alive_or_fail(n)
            if check():
                return
            time.sleep(0.2)
        raise Failure(f"timed out after {timeout} s waiting for {what}")

    def log_has(self, name, text):
        return text in self.processes[name][1].read_text(errors="replace")

    def stop(self, names, timeout=30):
        """SIGTERM by PID, then SIGKILL after `timeout` s; returns name -> exit status."""
        status = {}
        for n in names:
            p, _ = self.processes[n]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for n in names:
            p, _ = self.processes[n]
            try:
                status[n] = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                status[n] = p.wait()
                log(f"{n} did not stop within {timeout} s of SIGTERM; killed")
        return status

    def stop_all(self):
        return self.stop([n for n, (p, _) in self.processes.items() if p.poll() is None], timeout=15)


def fetch(network, host, url):
    """GETs `url` from inside `host`'s namespace (the bridge is reachable only from there)."""
    code = "import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())"
    r = run(["ip", "netns", "exec", network.ns(host), sys.executable, "-c", code, url], check=False)
    return r.stdout if r.returncode == 0 else None


def parse_metrics(text):
    """Prometheus text -> {family: {labels: value}} (labels as the raw `{...}` text, '' when none)."""
    out = {}
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)", line)
        if m:
            try:
                out.setdefault(m.group(1), {})[m.group(2) or ""] = float(m.group(3))
            except ValueError:
                pass
    return out


def total(metrics, family):
    return sum(metrics.get(family, {}).values())


# --- the rehearsal --------------------------------------------------------------------------------

def rehearse(t, network, fleet, out, profiles):
    hosts = t["hosts"]
    b = hosts["broker"]
    c = hosts["controller"]
    port = t["metrics_port"]
    workers = [n for n, h in hosts.items() if h["role"] == "worker"]
    groups = [n for n, h in hosts.items() if h["role"] == "cameras"]
    front = f"tcp://{b['address']}:{b.get('frontend_port', 5555)}"
    back = f"tcp://{b['address']}:{b.get('backend_port', 5556)}"
    stats = f"tcp://{b['address']}:{b.get('stats_port', 5557)}"
    directives = f"tcp://{c['address']}:{c.get('publish_port', 5558)}"
    curve = t["security"] == "curve"
    keys = out / "keys"
    key = lambda n: str(keys / f"{n}.key")  # noqa: E731
    pub = lambda n: str(keys / f"{n}.pub")  # noqa: E731
    if curve:
        args = [fleet.binary, "keys", "generate", "--out", str(keys)]
        for n in hosts:
            args += ["--name", n]
        run(args)
        def allow(file, names):
            (keys / file).write_text("".join(Path(pub(n)).read_text() for n in names))
        allow("cameras.allow", groups)
        allow("workers.allow", workers)
        allow("stats.allow", ["controller"] + groups)  # the load generators read STATS as well
        log(f"CURVE keys for {len(hosts)} hosts in {keys}")

    def metrics(host):
        return f"{hosts[host]['address']}:{port}"

    args = ["broker", "--frontend", front, "--backend", back, "--stats", stats,
            "--queue-capacity", str(b.get("queue_capacity", 1024)), "--metrics", metrics("broker")]
    if curve:
        args += ["--curve-key", key("broker"), "--allow-cameras", str(keys / "cameras.allow"),
                 "--allow-workers", str(keys / "workers.allow"), "--allow-stats", str(keys / "stats.allow")]
    fleet.start("broker", "broker", args)
    fleet.wait_for("the broker to serve", lambda: fleet.log_has("broker", "broker serving"), 120, ["broker"])

    args = ["controller", "--stats", stats, "--publish", directives, "--slo-ms", str(c.get("slo_ms", 250)),
            "--latency-slo-ms", str(c.get("latency_slo_ms", 250)), "--metrics", metrics("controller")]
    if curve:
        args += ["--curve-key", key("controller"), "--broker-key", pub("broker"), "--allow-cameras", str(keys / "cameras.allow")]
    fleet.start("controller", "controller", args)

    for n in workers:
        w = hosts[n]
        args = ["worker", "--broker", back, "--id", n, "--credit", str(w.get("credit", 16)),
                "--max-batch", str(w.get("max_batch", 8)), "--threads", str(w.get("threads", 1)), "--metrics", metrics(n)]
        for name, files in t["models"].items():
            args += ["--model", f"{name}={files['tail']},{files['full']}"]
        if curve:
            args += ["--curve-key", key(n), "--broker-key", pub("broker")]
        fleet.start(n, n, args)

    # Ready when the broker's STATS count every worker (each has passed CURVE and said READY) and the
    # controller has received STATS (it passed the broker's STATS allow-list).
    edge = ["broker", "controller"] + workers

    def ready():
        bm = parse_metrics(fetch(network, "broker", f"http://{metrics('broker')}/metrics"))
        cm = parse_metrics(fetch(network, "controller", f"http://{metrics('controller')}/metrics"))
        return total(bm, "bottlefit_broker_workers") >= len(workers) and total(cm, "bottlefit_controller_stats_received_total") > 0
    fleet.wait_for(f"{len(workers)} workers at the broker and STATS at the controller", ready, 300, edge)
    log("edge ready: every worker joined over the bridge, the controller reads STATS")

    # Camera groups: their uplink delay is netem's when the kernel has it, else the load generator's.
    for n in groups:
        g = hosts[n]
        uplink = "ideal"
        delay = g["links"].get("uplink", {}).get("delay_ms", 0) + g["links"].get("downlink", {}).get("delay_ms", 0)
        if delay and not network.netem:
            uplink = str(out / f"uplink-{n}.yaml")
            Path(uplink).write_text(
                f"name: {n}-delay\nbandwidth_mbit: 100000\nbucket_bytes: 1500\ndelay_ms: {delay / 2}\njitter_ms: 0\nloss: 0\n"
                "sources:\n  bandwidth_mbit: \"assumption: unlimited here, tc tbf shapes the real link\"\n"
                "  bucket_bytes: \"assumption: one MTU\"\n"
                f"  delay_ms: \"{out.name}: the topology's uplink + downlink delay, halved (no sch_netem in this kernel)\"\n"
                "  jitter_ms: \"assumption: none\"\n  loss: \"assumption: none\"\n")
        args = ["loadgen", "--broker", front, "--stats", stats, "--directives", directives, "--name", n,
                "--cameras", str(g["cameras"]), "--rate", str(g["rate"]), "--mode", g.get("mode", "split"),
                "--model", g["model"], "--device", g.get("device", "raspberry-pi-4"), "--uplink", uplink,
                "--slo-ms", str(g.get("slo_ms", 250)), "--duration", f"{t['duration']}s", "--profiles", str(profiles),
                "--report", str(out / f"{n}.json"), "--no-progress"]
        if curve:
            args += ["--curve-key", key(n), "--broker-key", pub("broker"), "--controller-key", pub("controller")]
        fleet.start(n, n, args)
    log(f"camera groups started: {', '.join(groups)} ({t['duration']} s of load)")

    deadline = time.monotonic() + t["duration"] + 300
    statuses = {}
    for n in groups:
        p, _ = fleet.processes[n]
        try:
            statuses[n] = p.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Failure(f"{n} did not finish within {t['duration'] + 300} s")
        for e in edge:
            fleet.alive_or_fail(e)

    # The edge's own counts, after every camera has finished and before anything stops.
    bm = parse_metrics(fetch(network, "broker", f"http://{metrics('broker')}/metrics"))
    cm = parse_metrics(fetch(network, "controller", f"http://{metrics('controller')}/metrics"))
    wm = {n: parse_metrics(fetch(network, n, f"http://{metrics(n)}/metrics")) for n in workers}
    links = network.link_stats()
    edge_status = fleet.stop(["controller"] + workers + ["broker"])
    return summarise(t, out, groups, statuses, bm, cm, wm, links, edge_status, curve)


def summarise(t, out, groups, statuses, bm, cm, wm, links, edge_status, curve):
    checks = []

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    summary = {"groups": {}, "duration_s": t["duration"], "security": t["security"], "links": links}
    sent = completed_edge = 0
    for n in groups:
        path = out / f"{n}.json"
        if not path.exists():
            check(f"{n} report", False, f"no report {path} (exit status {statuses[n]})")
            continue
        r = json.loads(path.read_text())
        tot = r["totals"]
        g = t["hosts"][n]
        expected = int(round(g["cameras"] * g["rate"] * t["duration"]))
        summary["groups"][n] = {
            "exit_status": statuses[n], "offered": tot["offered"], "sent": tot["sent"],
            "completed_edge": tot["completed_edge"], "completed_local": tot["completed_local"],
            "completed_fallback": tot["completed_fallback"], "dropped": tot["dropped_total"],
            "dropped_by_reason": tot["dropped"], "unaccounted": tot["unaccounted"],
            "edge_p99_ms": r["latency_ms"].get("edge", {}).get("p99"), "expected_offered": expected}
        sent += tot["sent"]
        completed_edge += tot["completed_edge"]
        check(f"{n}: load generator exit status 0", statuses[n] == 0, f"status {statuses[n]}")
        check(f"{n}: unaccounted == 0", tot["unaccounted"] == 0,
              f"offered {tot['offered']} = edge {tot['completed_edge']} + local {tot['completed_local']} + "
              f"fallback {tot['completed_fallback']} + dropped {tot['dropped_total']} + unaccounted {tot['unaccounted']}")
        # Open loop: a camera offers cameras x rate x duration frames whatever the edge does (±1 per camera for phases).
        check(f"{n}: offered the scheduled frames", abs(tot["offered"] - expected) <= g["cameras"],
              f"offered {tot['offered']}, scheduled {expected}")
        if g.get("mode", "split") != "local":
            check(f"{n}: frames completed at the edge over the bridge", tot["completed_edge"] > 0, f"{tot['completed_edge']}")

    received = total(bm, "bottlefit_broker_requests_received_total")
    done = total(bm, "bottlefit_broker_frames_completed_total")
    dropped = total(bm, "bottlefit_broker_requests_dropped_total")
    held = total(bm, "bottlefit_broker_frames_queued") + total(bm, "bottlefit_broker_frames_in_flight")
    workers_done = sum(total(m, "bottlefit_worker_frames_completed_total") for m in wm.values())
    summary["broker"] = {"received": received, "completed": done, "dropped": dropped, "queued_or_in_flight": held,
                         "dropped_by_reason": {k: v for k, v in bm.get("bottlefit_broker_requests_dropped_total", {}).items() if v},
                         "auth_accepted": bm.get("bottlefit_broker_auth_accepted_total", {}),
                         "auth_refused": total(bm, "bottlefit_broker_auth_refused_total")}
    summary["workers"] = {n: {"completed": total(m, "bottlefit_worker_frames_completed_total")} for n, m in wm.items()}
    summary["controller"] = {"stats_received": total(cm, "bottlefit_controller_stats_received_total"),
                             "directives_published": total(cm, "bottlefit_controller_directives_published_total"),
                             "local_fraction": total(cm, "bottlefit_controller_local_fraction")}
    summary["cameras"] = {"sent": sent, "completed_edge": completed_edge}
    check("broker: received == completed + dropped + queued + in flight", received == done + dropped + held,
          f"{received:.0f} == {done:.0f} + {dropped:.0f} + {held:.0f}")
    check("broker received no more than the cameras sent", 0 < received <= sent, f"broker {received:.0f}, cameras {sent}")
    check("cameras' edge completions all came through the broker", completed_edge <= done,
          f"cameras {completed_edge}, broker {done:.0f}")
    check("workers completed what the broker completed", workers_done >= done,
          f"workers {workers_done:.0f}, broker {done:.0f}")
    if curve:
        refused = total(bm, "bottlefit_broker_auth_refused_total")
        check("CURVE: no connection refused", refused == 0, f"{refused:.0f} refused")
        check("CURVE: cameras and workers accepted by key", total(bm, "bottlefit_broker_auth_accepted_total") > 0,
              json.dumps(bm.get("bottlefit_broker_auth_accepted_total", {})))
    check("controller read STATS", summary["controller"]["stats_received"] > 0, f"{summary['controller']['stats_received']:.0f}")
    for name, status in edge_status.items():
        check(f"{name} stopped cleanly on SIGTERM", status == 0, f"status {status}")
    for host_link, s in links.items():
        check(f"{host_link}: shaped by tc tbf and carried traffic", (s.get("bytes") or 0) > 0, f"{s}")
    summary["checks"] = checks
    summary["ok"] = all(c["ok"] for c in checks)
    return summary


def print_summary(s):
    print()
    print(f"{'group':<12} {'offered':>8} {'sent':>7} {'edge':>7} {'local':>7} {'fallbk':>7} {'dropped':>8} {'unacc':>6} {'edge p99':>9}")
    for n, g in s.get("groups", {}).items():
        p99 = f"{g['edge_p99_ms']:.1f}ms" if g.get("edge_p99_ms") is not None else "-"
        print(f"{n:<12} {g['offered']:>8} {g['sent']:>7} {g['completed_edge']:>7} {g['completed_local']:>7} "
              f"{g['completed_fallback']:>7} {g['dropped']:>8} {g['unaccounted']:>6} {p99:>9}")
    if "broker" in s:
        b = s["broker"]
        print(f"broker: received {b['received']:.0f}, completed {b['completed']:.0f}, dropped {b['dropped']:.0f}, "
              f"queued/in flight {b['queued_or_in_flight']:.0f}; workers completed "
              + ", ".join(f"{n} {w['completed']:.0f}" for n, w in s["workers"].items()))
    for link, st in s.get("links", {}).items():
        rate = f"{st['rate'] * 8 / 1e6:g} Mbit/s" if isinstance(st.get("rate"), (int, float)) else st.get("rate")
        print(f"link {link}: tbf {rate}, {st.get('bytes')} bytes, {st.get('drops')} dropped, {st.get('overlimits')} over limit")
    for c in s.get("checks", []):
        print(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
    for k in ("cleanup",):
        if k in s:
            print(f"cleanup: {s[k]}")


def probe(network):
    """Makes two namespaces, a bridge, a veth link and a tbf shaper, then removes them."""
    try:
        network.claim()
        a, b = network.ns("probe"), network.ns("probe2")
        network.add(a)
        network.add(b)
        run(["ip", "-n", a, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", a, "link", "add", "p0", "type", "veth", "peer", "name", "eth0", "netns", b])
        run(["ip", "-n", a, "link", "set", "p0", "master", "br0"])
        run(["ip", "-n", b, "link", "set", "eth0", "up"])
        run(["tc", "-n", b, "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "1mbit", "burst", "32kb", "latency", "200ms"])
        log("namespaces, veth links, a bridge and tc tbf work here")
        status = 0
    except Failure as e:
        print(f"multihost: this machine cannot run the rehearsal: {e}", file=sys.stderr)
        status = 1
    finally:
        left = network.remove()
    if left:
        print(f"multihost: LEFT BEHIND: {', '.join(left)}", file=sys.stderr)
        return 1
    return status


def main():
    parser = argparse.ArgumentParser(
        prog="scripts/multihost",
        description="Rehearse a multi-host BottleFit deployment on one machine in network namespaces (root). "
                    "Example: sudo scripts/multihost topology/multihost.yaml --duration 20 --out out/multihost")
    parser.add_argument("topology", nargs="?", default=str(ROOT / "topology/multihost.yaml"), help="default: topology/multihost.yaml")
    parser.add_argument("--duration", type=float, help="seconds of camera load (default: the topology's duration, else 20)")
    parser.add_argument("--out", default=str(ROOT / "out/multihost"), help="folder for keys, logs, reports and summary.json (default: out/multihost)")
    parser.add_argument("--prefix", default="bfmh", help="namespace name prefix: PREFIX-HOST, PREFIX-switch (default: bfmh)")
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/bottlefit"), help="the bottlefit binary (default: .build/debug/bottlefit)")
    parser.add_argument("--summary", help="also write the summary JSON here")
    parser.add_argument("--clean", action="store_true", help="remove the namespaces a killed run with this prefix left, and exit")
    parser.add_argument("--probe", action="store_true",
                        help="only check that namespaces, veth, a bridge and tc tbf work here (makes and removes two namespaces)")
    a = parser.parse_args()
    if not re.match(r"^[a-z][a-z0-9]{0,11}$", a.prefix):
        print("multihost: --prefix must be 1 to 12 lower-case letters and digits, starting with a letter", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("multihost: network namespaces need root (run it with sudo)", file=sys.stderr)
        return 1
    if run(["ip", "netns", "list"], check=False).returncode != 0:
        print("multihost: `ip netns` does not work here (no network namespace support?)", file=sys.stderr)
        return 1
    network = Network(a.prefix)
    if a.clean:
        left = network.existing()
        try:
            network.claim()
        except Failure as e:
            print(f"multihost: {e}", file=sys.stderr)
            return 1
        log(f"removed {len(left)} namespaces" if left else f"nothing to remove for prefix {a.prefix}")
        return 0

    if a.probe:
        return probe(network)

    interrupted = None

    def on_signal(signum, _frame):
        raise Interrupted(signum)

    # A parent may have started this script with these signals blocked (a thread of a test runner
    # does): unblock them, or SIGTERM would never reach the cleanup.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    fleet = None
    summary = {}
    status = 1
    try:
        t = load_topology(a.topology, a.duration)
        binary = str(Path(a.binary).resolve())
        if not os.access(binary, os.X_OK):
            raise Failure(f"no bottlefit binary at {binary}: build it (swift build) or give --binary")
        out = Path(a.out).resolve()
        if out.exists():
            # Only a previous rehearsal's folder is replaced, never an unrelated one.
            if any(out.iterdir()) and not (out / "summary.json").exists() and not (out / "logs").is_dir():
                raise Failure(f"--out {out} exists and is not a multihost output folder; choose another")
            shutil.rmtree(out)
        (out / "logs").mkdir(parents=True)
        network.claim()
        network.build(t)
        fleet = Fleet(network, binary, out)
        summary = rehearse(t, network, fleet, out, ROOT / "profiles")
        status = 0 if summary["ok"] else 1
    except Failure as e:
        print(f"multihost: {e}", file=sys.stderr)
        summary["error"] = str(e)
    except Interrupted as e:
        interrupted = e
        log(f"{e}: stopping and cleaning up")
        summary["error"] = f"interrupted by {e}"
    finally:
        # Nothing may interrupt the cleanup itself.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if fleet:
            fleet.stop_all()
        left = network.remove()
        if left:
            summary["cleanup"] = f"LEFT BEHIND: {', '.join(left)}"
        elif network.namespaces:
            summary["cleanup"] = f"removed {len(network.namespaces)} namespaces (their veth links and the bridge with them)"
        else:
            summary["cleanup"] = "nothing was made, nothing to remove"
        if left:
            status = 1
        log(summary["cleanup"])
    if summary.get("groups") or summary.get("checks"):
        print_summary(summary)
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    try:
        if "out" in locals() and out.exists():
            (out / "summary.json").write_text(text)
        if a.summary:
            Path(a.summary).write_text(text)
    except OSError as e:
        print(f"multihost: cannot write the summary: {e}", file=sys.stderr)
    if interrupted:
        return 128 + interrupted.signum
    return status


if __name__ == "__main__":
    sys.exit(main())
