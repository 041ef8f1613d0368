import Foundation

/// The `--html` page: the JSON report embedded in a self-contained page whose inline script draws
/// SVG plots. No network, no CDN: it renders from a file with nothing else around it.
public enum LoadgenHTML {
    public static func render(_ report: LoadgenReport) throws -> String {
        let json = String(decoding: try report.json(), as: UTF8.self).replacingOccurrences(of: "</", with: "<\\/")
        let title = "bottlefit loadgen — \(report.fidelity), \(report.groups.reduce(0) { $0 + $1.cameras }) cameras, \(report.durationS) s"
        return page.replacingOccurrences(of: "@TITLE@", with: title).replacingOccurrences(of: "@DATA@", with: json)
    }

    private static let page = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>@TITLE@</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 18px; } h2 { font-size: 14px; margin: 4px 0; }
.grid { display: grid; grid-template-columns: repeat(2, 560px); gap: 12px; }
.card { border: 1px solid #ddd; border-radius: 4px; padding: 8px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee; }
td:first-child, th:first-child { text-align: left; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.fail { color: #b00; font-weight: bold; } .ok { color: #070; }
</style></head>
<body>
<h1>@TITLE@</h1>
<div id="summary"></div>
<div class="grid" id="plots"></div>
<script type="application/json" id="report">@DATA@</script>
<script>
"use strict";
const R = JSON.parse(document.getElementById("report").textContent);
const colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"];
const NS = "http://www.w3.org/2000/svg";
function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2); }
// A line chart: series = [{name, points: [[x, y], ...]}]; opts: {logX, yLabel, xLabel, marks: [x...], yMax}.
function chart(title, series, opts) {
  opts = opts || {};
  const card = document.createElement("div"); card.className = "card";
  const h = document.createElement("h2"); h.textContent = title; card.appendChild(h);
  const W = 540, H = 240, L = 52, B = 30, T = 8, Rt = 10;
  const svg = el("svg", {width: W, height: H}, card);
  const all = series.flatMap(s => s.points).filter(p => p[1] !== null && isFinite(p[1]));
  if (all.length === 0) {
    el("text", {x: W / 2 - 30, y: H / 2}, svg).textContent = "no data";
    document.getElementById("plots").appendChild(card); return;
  }
  const tx = x => opts.logX ? Math.log10(Math.max(x, 1e-3)) : x;
  let x0 = Math.min(...all.map(p => tx(p[0]))), x1 = Math.max(...all.map(p => tx(p[0])));
  if (x1 === x0) x1 = x0 + 1;
  let y1 = opts.yMax || Math.max(...all.map(p => p[1])) * 1.05; if (!(y1 > 0)) y1 = 1;
  const sx = x => L + (tx(x) - x0) / (x1 - x0) * (W - L - Rt), sy = y => H - B - y / y1 * (H - B - T);
  el("line", {x1: L, y1: H - B, x2: W - Rt, y2: H - B, stroke: "#999"}, svg);
  el("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#999"}, svg);
  for (let i = 0; i <= 4; i++) {
    const y = y1 * i / 4;
    el("line", {x1: L, y1: sy(y), x2: W - Rt, y2: sy(y), stroke: "#eee"}, svg);
    el("text", {x: 2, y: sy(y) + 4}, svg).textContent = fmt(y);
    const xv = x0 + (x1 - x0) * i / 4;
    el("text", {x: L + (W - L - Rt) * i / 4 - 10, y: H - B + 14}, svg).textContent = fmt(opts.logX ? Math.pow(10, xv) : xv);
  }
  el("text", {x: W / 2 - 20, y: H - 2}, svg).textContent = opts.xLabel || "seconds";
  if (opts.yLabel) el("text", {x: L + 4, y: T + 10}, svg).textContent = opts.yLabel;
  for (const m of (opts.marks || [])) el("line", {x1: sx(m), y1: T, x2: sx(m), y2: H - B, stroke: "#bbb", "stroke-dasharray": "3,3"}, svg);
  series.forEach((s, i) => {
    const pts = s.points.filter(p => p[1] !== null && isFinite(p[1]));
    if (pts.length === 0) return;
    const c = s.color || colors[i % colors.length];
    el("polyline", {points: pts.map(p => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" "), fill: "none", stroke: c, "stroke-width": 1.8}, svg);
    if (pts.length === 1) el("circle", {cx: sx(pts[0][0]), cy: sy(pts[0][1]), r: 3, fill: c}, svg);
    // Legend: up to four entries a row.
    const lx = L + 8 + (i % 4) * 112, ly = T + 16 + Math.floor(i / 4) * 13;
    el("rect", {x: lx, y: ly, width: 10, height: 3, fill: c}, svg);
    el("text", {x: lx + 13, y: ly + 5}, svg).textContent = s.name;
  });
  document.getElementById("plots").appendChild(card);
}
const ts = R.timeseries;
const pick = (rows, key) => rows.map(r => [r.t, r[key] === undefined ? null : r[key]]);
// The controller re-publishes the directive in force every second: mark and count only new ones.
const fresh = R.directives.filter((d, i) => i === 0 || d.sequence !== R.directives[i - 1].sequence);
const marks = fresh.map(d => d.t);
chart("Latency percentiles over time (ms, per interval)", [
  {name: "p50", points: pick(ts, "p50")}, {name: "p90", points: pick(ts, "p90")},
  {name: "p99", points: pick(ts, "p99")}, {name: "edge p99", points: pick(ts, "edge_p99")}], {yLabel: "ms", marks});
chart("Throughput (frames/s)", [
  {name: "offered", points: pick(ts, "offered_per_s")}, {name: "completed", points: pick(ts, "completed_per_s")},
  {name: "edge", points: pick(ts, "edge_per_s")}, {name: "local", points: pick(ts, "local_per_s")},
  {name: "fallback", points: pick(ts, "fallback_per_s")}, {name: "dropped", points: pick(ts, "dropped_per_s")}], {yLabel: "frames/s", marks});
chart("Fraction local, cameras' edge share, edge utilisation (STATS ut)", [
  {name: "local share", points: pick(ts, "local_fraction")}, {name: "obeying local", points: pick(ts, "obeying_local")},
  {name: "edge share", points: pick(ts, "edge_share")}, {name: "utilisation", points: pick(R.stats, "utilisation")}],
  {yLabel: "fraction", yMax: 1, marks});
chart("Workers (STATS) and the broker's completions/s", [
  {name: "workers", points: pick(R.stats, "workers")}, {name: "completed/s", points: pick(R.stats, "completions_per_s")}], {marks});
chart("Broker queue (STATS): depth and queue time p99 (ms)", [
  {name: "queue depth", points: pick(R.stats, "queue_depth")}, {name: "queue p99 ms", points: pick(R.stats, "q99")},
  {name: "in flight", points: pick(R.stats, "in_flight")}], {marks});
chart("Directives (controller): fraction sent local, edge share cap", [
  {name: "tf (local)", points: R.directives.map(d => [d.t, d.mode === "local" ? (d.fraction === null || d.fraction === undefined ? 1 : d.fraction) : 0])},
  {name: "es (edge share)", points: R.directives.map(d => [d.t, d.edge_share === undefined ? null : d.edge_share])},
  {name: "cameras obeyed / all", points: fresh.map(d => [d.t, d.obeyed / Math.max(1, R.groups.reduce((a, g) => a + g.cameras, 0))])}],
  {yLabel: "fraction", yMax: 1});
chart("Fairness (issue 10): per-camera edge share / fleet mean, lowest and highest, 10 s windows", [
  {name: "lowest", points: pick(ts, "fairness_min")}, {name: "highest", points: pick(ts, "fairness_max")},
  {name: "0.5 (bound)", points: ts.filter(r => r.fairness_min !== undefined && r.fairness_min !== null).map(r => [r.t, 0.5])},
  {name: "2 (bound)", points: ts.filter(r => r.fairness_min !== undefined && r.fairness_min !== null).map(r => [r.t, 2])}],
  {yLabel: "ratio", marks});
if (R.cameras && R.cameras.length) {
  const cams = R.cameras.filter(c => c.mode !== "local" && c.edge_share !== undefined && c.edge_share !== null);
  chart("Edge share per camera, whole run (cameras by index)", [
    {name: "edge share", points: cams.map((c, i) => [i, c.edge_share])}], {xLabel: "camera", yLabel: "fraction", yMax: 1});
}
const cdfSeries = ["all", "edge", "local", "fallback"].filter(k => R.cdf[k] && R.cdf[k].length).map(k => ({name: k, points: R.cdf[k]}));
chart("Latency CDF per path (ms, log scale)", cdfSeries, {logX: true, xLabel: "latency ms", yMax: 1});
// Summary table.
const t = R.totals;
let html = "<table><tr><th>offered</th><th>edge</th><th>local</th><th>fallback</th><th>dropped</th><th>unaccounted</th><th>edge fraction</th><th>completed/s</th></tr>";
html += `<tr><td>${t.offered}</td><td>${t.completed_edge}</td><td>${t.completed_local}</td><td>${t.completed_fallback}</td><td>${t.dropped_total}</td><td>${t.unaccounted}</td><td>${(t.edge_fraction * 100).toFixed(1)}%</td><td>${t.completed_per_s.toFixed(1)}</td></tr></table>`;
html += "<table><tr><th>latency ms</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>";
for (const k of ["all", "edge", "local", "fallback"]) {
  const s = R.latency_ms[k]; if (!s) continue;
  html += `<tr><td>${k}</td><td>${s.count}</td><td>${fmt(s.p50)}</td><td>${fmt(s.p90)}</td><td>${fmt(s.p99)}</td><td>${fmt(s.p999)}</td><td>${fmt(s.max)}</td></tr>`;
}
html += "</table><table><tr><th>group</th><th>cameras</th><th>device</th><th>uplink</th><th>J/frame</th></tr>";
for (const g of R.groups) html += `<tr><td>${g.name}</td><td>${g.cameras}</td><td>${g.device}</td><td>${g.uplink}</td><td>${g.energy.joules_per_frame === undefined || g.energy.joules_per_frame === null ? "-" : g.energy.joules_per_frame.toFixed(3)}</td></tr>`;
html += "</table>";
for (const th of R.thresholds) html += `<div class="${th.passed ? "ok" : "fail"}">${th.passed ? "ok" : "FAIL"} ${th.expression}</div>`;
if (R.fairness) {
  const f = R.fairness;
  html += f.windows > 0 ? `<div class="${f.fair ? "ok" : "fail"}">fairness: edge share / fleet mean ${f.min_ratio.toFixed(2)}...${f.max_ratio.toFixed(2)} over ${f.windows} windows of ${f.window_s} s (${f.fair ? "fair" : "unfair"}: 0.5...2)${f.worst_camera ? ", worst " + f.worst_camera : ""}</div>`
    : `<div>fairness: no ${f.window_s} s window after ${f.warmup_s} s</div>`;
}
html += `<p>Cameras (fidelity: ${R.fidelity}); schema ${R.schema} v${R.schema_version}.</p>`;
document.getElementById("summary").innerHTML = html;
</script>
</body></html>
"""#
}
