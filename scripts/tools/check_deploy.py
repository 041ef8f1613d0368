"""Offline checks of the deployment files (run through scripts/check-deploy).

1. Every Kubernetes manifest validates with kubernetes-validate --strict against each stated
   Kubernetes version (its bundled OpenAPI schemas: no network, no cluster).
2. The manifests agree with each other and with the code: every ConfigMap, Secret and Service
   they name is defined (the CURVE ones by scripts/deploy-keys), every $(VAR) in an args list is
   defined, the HPA's metric is the one the adapter rule serves and the broker exports, probes ask
   /healthz on a declared port, init containers copy the key files the Secrets hold.
3. With a bottlefit binary: every flag a container passes is in its subcommand's --help, the
   generated curve.yaml validates, and the ConfigMap's topology passes `bottlefit up --dry-run`.
4. The Containerfile, statically (no container engine is needed or used): the packages it installs
   exist in Debian 12 (apt-cache), the builder installs scripts/setup's build packages, the runtime
   has a run-time library of each of the four C libraries (a Depends of its -dev package), every
   COPY source exists, the build is README.md's `swift build -c release --product bottlefit`, and
   the paths the manifests use exist in the image.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ["1.31.0", "1.37.0"]
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")

failures = []
notes = []


def ok(message):
    print(f"ok    {message}")


def fail(message):
    failures.append(message)
    print(f"FAIL  {message}")


def note(message):
    notes.append(message)
    print(f"skip  {message}")


def load_documents(paths):
    docs = []
    for p in paths:
        with open(p) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.append((Path(p).name, d))
    return docs


def validate(paths, versions):
    exe = Path(sys.executable).parent / "kubernetes-validate"
    for v in versions:
        r = subprocess.run([str(exe), "--strict", "--quiet", "-k", v] + [str(p) for p in paths],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode == 0:
            ok(f"kubernetes-validate --strict -k {v}: {len(paths)} files")
        else:
            fail(f"kubernetes-validate --strict -k {v}:\n{r.stdout.strip()}")


def pod_specs(docs):
    for file, d in docs:
        kind = d.get("kind")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield file, d, d["spec"]["template"]["spec"]


def cross_check(docs, curve_docs):
    defined = {(d["kind"], d["metadata"]["name"]) for _, d in docs + curve_docs}
    configmaps = {d["metadata"]["name"]: d for _, d in docs + curve_docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for _, d in curve_docs if d["kind"] == "Secret"}
    images = set()
    for file, d, spec in pod_specs(docs):
        where = f"{file}: {d['kind']} {d['metadata']['name']}"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in defined:
                fail(f"{where}: volume {v['name']} names ConfigMap {v['configMap']['name']}, defined nowhere")
            if "secret" in v:
                name = v["secret"]["secretName"]
                if curve_docs and name not in secrets:
                    fail(f"{where}: volume {v['name']} names Secret {name}, which scripts/deploy-keys does not make")
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            images.add(c["image"])
            env = {e["name"] for e in c.get("env", [])}
            for ref in c.get("envFrom", []):
                name = ref.get("configMapRef", {}).get("name")
                if name not in configmaps:
                    fail(f"{where}: envFrom names ConfigMap {name}, defined nowhere")
                else:
                    env |= set(configmaps[name].get("data", {}))
            for arg in c.get("args", []) + c.get("command", []):
                for var in re.findall(r"\$\((\w+)\)", arg):
                    if var not in env:
                        fail(f"{where}: {c['name']} uses $({var}), which no env or ConfigMap defines")
            # A key copied from a Secret must be a file that Secret holds.
            for arg in c.get("command", []):
                m = re.match(r"^/secret/(.+)$", arg)
                if m and curve_docs:
                    mounts = [vm["name"] for vm in c.get("volumeMounts", []) if vm["mountPath"] == "/secret"]
                    names = [volumes[n]["secret"]["secretName"] for n in mounts if "secret" in volumes.get(n, {})]
                    if not any(m.group(1) in secrets.get(n, {}).get("data", {}) for n in names):
                        fail(f"{where}: {c['name']} copies {arg}, which its Secret does not hold")
            for probe in ("readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if p:
                    ports = {q.get("name") for q in c.get("ports", [])}
                    if p["httpGet"]["path"] != "/healthz" or p["httpGet"]["port"] not in ports:
                        fail(f"{where}: {c['name']} {probe} must GET /healthz on a declared port")
            for mount in c.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    fail(f"{where}: {c['name']} mounts {mount['name']}, not a volume of the pod")
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "bottlefit-worker":
            probes = [c.get("readinessProbe") for c in spec["containers"]]
            if not all(probes):
                fail(f"{where}: the workers need a readiness probe on /healthz")
    if len(images) == 1:
        ok(f"one image everywhere ({images.pop()})")
    else:
        fail(f"containers use different images: {sorted(images)}")

    # The autoscaler, the adapter rule and what the broker exports.
    hpas = [d for _, d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    rules = []
    for _, d in docs:
        if d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {}):
            rules += yaml.safe_load(d["data"]["config.yaml"]).get("rules", [])
    served = {r["name"]["as"]: r for r in rules}
    for h in hpas:
        target = h["spec"]["scaleTargetRef"]
        if ("Deployment", target["name"]) not in defined:
            fail(f"HPA {h['metadata']['name']} scales {target['name']}, not a Deployment here")
        for m in h["spec"]["metrics"]:
            if m["type"] != "Object":
                continue
            name = m["object"]["metric"]["name"]
            obj = m["object"]["describedObject"]
            if (obj["kind"], obj["name"]) not in defined:
                fail(f"HPA {h['metadata']['name']}: {obj['kind']} {obj['name']} is defined nowhere")
            rule = served.get(name)
            if not rule:
                fail(f"HPA {h['metadata']['name']}: no Prometheus adapter rule serves {name}")
                continue
            series = re.match(r"^(\w+)", rule["seriesQuery"]).group(1)
            quantile = re.search(r'quantile="([0-9.]+)"', rule["metricsQuery"])
            exported = "".join(p.read_text() for p in (ROOT / "Sources/BottleFitBroker").glob("*.swift"))
            if f'"{series}"' not in exported:
                fail(f"adapter rule: the broker exports no series {series}")
            elif quantile and f'("{quantile.group(1)}", stats.' not in exported:
                fail(f"adapter rule: the broker exports no quantile {quantile.group(1)} of {series}")
            elif obj["kind"] != "Service" or "service" not in rule["resources"]["overrides"]:
                fail(f"adapter rule for {name} does not attach the series to the broker's Service")
            else:
                ok(f"HPA scales on {name} = {series}{{quantile=\"{quantile.group(1) if quantile else '?'}\"}} of {obj['kind']} {obj['name']}")
    if not hpas:
        fail("no HorizontalPodAutoscaler")
    ok("manifests cross-checked: ConfigMaps, Secrets, Services, $(VARS), probes, mounts")


def check_flags(docs, binary):
    helps = {}
    checked = 0
    for file, d, spec in pod_specs(docs):
        for c in spec.get("containers", []):
            args = c.get("args", [])
            if not args:
                continue
            sub = args[0]
            if sub not in helps:
                r = subprocess.run([binary, sub, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                if r.returncode != 0:
                    fail(f"{file}: `bottlefit {sub}` is not a subcommand")
                    continue
                helps[sub] = r.stdout
            for arg in args[1:]:
                flag = arg.split("=", 1)[0]
                if not flag.startswith("--"):
                    fail(f"{file}: {c['name']}: argument {arg} is not --flag=value")
                elif not re.search(re.escape(flag) + r"[\s=<,/]", helps[sub]):
                    fail(f"{file}: {c['name']}: `bottlefit {sub}` has no option {flag}")
                else:
                    checked += 1
    ok(f"{checked} container flags exist in their subcommand's --help ({', '.join(sorted(helps))})")


def check_topology(docs, binary, tmp):
    cm = next(d for _, d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "bottlefit-topology")
    text = cm["data"]["topology.yaml"].replace("/opt/bottlefit/models/fmnist-c2", str(ROOT / "assets/fashion-mnist/bottlefit-c2"))
    t = yaml.safe_load(text)
    tmp = Path(tmp) / "topology"
    tmp.mkdir()
    keys = tmp / "keys"
    workers = [f"worker-{i + 1}" for i in range(t["workers"]["count"])]
    cameras = [c["name"] for c in t.get("cameras", [])]
    names = ["broker", "controller"] + workers + cameras
    subprocess.run([binary, "keys", "generate", "--out", str(keys)] + sum((["--name", n] for n in names), []),
                   check=True, stdout=subprocess.DEVNULL)
    for allow, who in (("cameras.allow", cameras), ("workers.allow", workers)):
        (keys / allow).write_text("".join((keys / f"{n}.pub").read_text() for n in who))
    path = tmp / "topology.yaml"
    path.write_text(text)
    r = subprocess.run([binary, "up", str(path), "--dry-run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp)
    if r.returncode == 0:
        ok("the ConfigMap's topology.yaml passes `bottlefit up --dry-run` (model paths mapped to assets/)")
    else:
        fail(f"the ConfigMap's topology.yaml fails `bottlefit up --dry-run`:\n{r.stdout.strip()}")


def stages(containerfile):
    """[(name, base, [instruction lines joined])] of a Containerfile."""
    text = re.sub(r"\\\n", " ", containerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            out.append({"base": m.group(1), "name": m.group(2), "lines": []})
        elif out:
            out[-1]["lines"].append(line)
    return out


def installed_packages(stage):
    pkgs = []
    for line in stage["lines"]:
        for m in re.finditer(r"apt-get install ([^&;]+)", line):
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def apt_lists_present():
    return bool(glob.glob("/var/lib/apt/lists/*_Packages*"))


def check_containerfile(docs):
    path = ROOT / "deploy/Containerfile"
    st = stages(path)
    builder = next((s for s in st if s["name"] == "builder"), None)
    runtime = st[-1] if st else None
    if not builder or not runtime or builder is runtime:
        fail("Containerfile: expected a builder stage and a runtime stage")
        return
    if not re.match(r"^debian:12(-slim)?$", builder["base"]) or not re.match(r"^debian:12(-slim)?$", runtime["base"]):
        fail(f"Containerfile: both stages must be Debian 12 (found {builder['base']}, {runtime['base']})")
    else:
        ok(f"Containerfile: builder {builder['base']}, runtime {runtime['base']}")
    setup = (ROOT / "scripts/setup").read_text()
    wanted = re.search(r"APT_PACKAGES=\(([^)]*)\)", setup).group(1).split()
    test_only = {"libonnx-testdata", "dataset-fashion-mnist", "python3-venv"}
    build_pkgs = installed_packages(builder)
    missing = [p for p in wanted if p not in test_only and p not in build_pkgs]
    if missing:
        fail(f"Containerfile: the builder lacks scripts/setup's build packages {missing}")
    else:
        ok(f"Containerfile: the builder installs scripts/setup's build packages ({', '.join(p for p in wanted if p not in test_only)})")
    run_pkgs = installed_packages(runtime)
    all_pkgs = build_pkgs + run_pkgs
    bad = [p for p in all_pkgs if not PACKAGE_NAME.match(p)]
    if bad:
        fail(f"Containerfile: not package names: {bad}")
    if not shutil.which("apt-cache") or not apt_lists_present():
        note("Containerfile packages not looked up: no apt lists on this machine (apt-get update first)")
    else:
        unknown = []
        for p in sorted(set(all_pkgs)):
            r = subprocess.run(["apt-cache", "policy", p], stdout=subprocess.PIPE, text=True)
            cand = re.search(r"Candidate:\s*(\S+)", r.stdout)
            if not cand or cand.group(1) == "(none)":
                unknown.append(p)
        if unknown:
            fail(f"Containerfile: no Debian package {unknown} on this machine's apt sources")
        else:
            ok(f"Containerfile: all {len(set(all_pkgs))} packages exist in apt-cache")
        # Each C library's -dev package must depend on a run-time package the runtime stage installs.
        for dev in ("libzmq3-dev", "libopenblas-dev", "libmsgpack-dev", "libjpeg-dev"):
            r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                                "--no-breaks", "--no-replaces", "--no-enhances", dev], stdout=subprocess.PIPE, text=True)
            deps = set(re.findall(r"Depends:\s*<?([a-z0-9+.-]+)>?", r.stdout))
            hit = [p for p in run_pkgs if p in deps]
            if hit:
                ok(f"Containerfile: {dev} -> runtime {', '.join(hit)}")
            else:
                fail(f"Containerfile: the runtime installs no run-time library of {dev}")
    copies = []
    for s in st:
        for line in s["lines"]:
            m = re.match(r"^COPY\s+(?!--from)(.+)\s+(\S+)$", line)
            if m:
                for src in m.group(1).split():
                    copies.append((src, m.group(2), s))
                    if not (ROOT / src).exists():
                        fail(f"Containerfile: COPY {src}: no such path in the repository")
    ok(f"Containerfile: {len(copies)} COPY sources exist")
    build = " ".join(l for l in builder["lines"] if l.startswith("RUN swift build"))
    readme = (ROOT / "README.md").read_text()
    if "swift build -c release" not in readme or "swift build -c release --product bottlefit" not in build:
        fail("Containerfile: the builder must build with README.md's `swift build -c release` (--product bottlefit)")
    else:
        ok("Containerfile: builds with `swift build -c release --product bottlefit` as README.md does")
    version = re.search(r"ARG SWIFT_VERSION=(\d+)\.(\d+)", path.read_text())
    if not version or (int(version.group(1)), int(version.group(2))) < (6, 2):
        fail("Containerfile: SWIFT_VERSION must be 6.2 or newer (README.md)")
    entry = next((l for l in runtime["lines"] if l.startswith("ENTRYPOINT")), "")
    binary_copy = next((l for l in runtime["lines"] if l.startswith("COPY --from=builder")), "")
    target = entry.split('"')[1] if '"' in entry else ""
    if not target or not binary_copy.endswith(target):
        fail(f"Containerfile: ENTRYPOINT {target} is not where the binary is copied ({binary_copy})")
    # Paths the manifests use inside the image.
    image_paths = {dst.rstrip("/"): ROOT / src for src, dst, s in copies if s is runtime}
    used = set()
    for _, d in docs:
        if d["kind"] == "ConfigMap":
            for v in d.get("data", {}).values():
                used |= set(re.findall(r"/opt/bottlefit/[\w./-]+", v))
        for _, _, spec in pod_specs([("", d)]) if d["kind"] in ("Deployment", "Job") else []:
            for c in spec.get("containers", []):
                for a in c.get("args", []):
                    used |= set(re.findall(r"/opt/bottlefit/[\w./-]+", a))
    for u in sorted(used):
        base = next((dst for dst in image_paths if u == dst or u.startswith(dst + "/")), None)
        if base is None or not (image_paths[base] / u[len(base):].lstrip("/")).exists():
            fail(f"manifests use {u}, which the image does not contain")
    ok(f"{len(used)} image paths the manifests use exist in the image ({', '.join(sorted(used))})")


def main():
    parser = argparse.ArgumentParser(prog="scripts/check-deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifests", default=str(ROOT / "deploy/kubernetes"), help="folder of manifests (default: deploy/kubernetes)")
    parser.add_argument("--binary", help="a bottlefit binary: also check flags, deploy-keys' curve.yaml and the topology")
    a = parser.parse_args()
    if a.binary:
        a.binary = os.path.abspath(a.binary)
        if not os.access(a.binary, os.X_OK):
            print(f"check-deploy: no bottlefit binary at {a.binary}", file=sys.stderr)
            return 2
    paths = sorted(Path(a.manifests).glob("*.yaml"))
    if not paths:
        print(f"check-deploy: no manifests in {a.manifests}", file=sys.stderr)
        return 2
    try:
        docs = load_documents(paths)
    except yaml.YAMLError as e:
        print(f"check-deploy: {e}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
        curve_docs = []
        generated = []
        if a.binary:
            r = subprocess.run([str(ROOT / "scripts/deploy-keys"), tmp, "--binary", a.binary],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                fail(f"scripts/deploy-keys: {r.stdout.strip()}")
            else:
                generated = [Path(tmp) / "curve.yaml"]
                curve_docs = load_documents(generated)
                ok(f"scripts/deploy-keys wrote {len(curve_docs)} objects (curve.yaml, validated with the manifests)")
        else:
            note("no --binary: container flags, deploy-keys and the topology not checked")
        # One run per version for all files: loading a version's schemas is most of the time.
        validate(paths + generated, VERSIONS)
        try:
            cross_check(docs, curve_docs)
            if a.binary:
                check_flags(docs, a.binary)
                check_topology(docs, a.binary, tmp)
            check_containerfile(docs)
        except (KeyError, TypeError, AttributeError, StopIteration) as e:
            fail(f"a manifest lacks an expected field: {e!r}")
    print(f"check-deploy: {len(failures)} failed, {len(notes)} skipped; Kubernetes {', '.join(VERSIONS)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
