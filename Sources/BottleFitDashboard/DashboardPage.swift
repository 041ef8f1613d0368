/// The dashboard page: one HTML document with its script and style inline and charts drawn by
/// hand on canvases, so it needs nothing but the endpoint that serves it (no CDN, no font, no
/// URL outside its own origin; `DashboardPageTests` checks). It polls `api/state` every second
/// and, once it has drawn a state, sets `data-rendered` on `<body>` to the number of states drawn
/// (`scripts/check-dashboard` waits for it); a script error sets `data-js-error`.
enum DashboardPage {
    static let html = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>BottleFit controller</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --muted:#677084; --line:#e2e5eb; --accent:#2563eb;
          --ok:#15803d; --warn:#b45309; --bad:#b91c1c; }
  * { box-sizing:border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; flex-wrap:wrap; align-items:center; gap:12px 20px; padding:14px 22px; background:var(--card); border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; font-weight:650; }
  .pill { padding:3px 10px; border-radius:999px; font-weight:600; font-size:13px; background:#e5e7eb; }
  .pill.healthy, .pill.underused { background:#dcfce7; color:var(--ok); }
  .pill.steady { background:#e0e7ff; color:#3730a3; }
  .pill.overloaded, .pill.silent { background:#fee2e2; color:var(--bad); }
  .meta { color:var(--muted); font-size:13px; }
  .meta b { color:var(--ink); font-weight:600; }
  #banner { display:none; margin:12px 22px 0; padding:8px 12px; border-radius:6px; background:#fee2e2; color:var(--bad); font-weight:600; }
  main { padding:16px 22px 28px; display:grid; gap:16px; grid-template-columns:repeat(auto-fill, minmax(340px, 1fr)); }
  .card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
  .card h2 { margin:0 0 2px; font-size:13px; font-weight:600; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
  .value { font-size:26px; font-weight:650; font-variant-numeric:tabular-nums; }
  .value small { font-size:14px; color:var(--muted); font-weight:500; margin-left:4px; }
  canvas { width:100%; height:130px; display:block; margin-top:6px; }
  .wide { grid-column:1 / -1; }
  table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
  th, td { text-align:right; padding:5px 8px; border-bottom:1px solid var(--line); }
  th:first-child, td:first-child { text-align:left; }
  th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; }
  .bar { display:flex; align-items:center; gap:10px; margin:7px 0; }
  .bar span:first-child { width:64px; color:var(--muted); }
  .bar .track { flex:1; height:16px; background:#eef0f4; border-radius:4px; overflow:hidden; }
  .bar .fill { height:100%; }
  .bar b { width:40px; text-align:right; font-variant-numeric:tabular-nums; }
  .legend { font-size:12px; color:var(--muted); }
  .legend i { display:inline-block; width:10px; height:3px; margin:0 4px 3px 8px; vertical-align:middle; }
  .empty { color:var(--muted); padding:8px 0; }
</style>
</head>
<body data-rendered="0">
<header>
  <h1>BottleFit controller</h1>
  <span id="condition" class="pill">waiting</span>
  <span class="meta">sent local <b id="fraction">–</b></span>
  <span class="meta">edge floor <b id="floor">–</b></span>
  <span class="meta">STATS <b id="age">–</b></span>
  <span class="meta" id="decision"></span>
  <span class="meta" id="updated" style="margin-left:auto"></span>
</header>
<div id="banner"></div>
<main>
  <section class="card"><h2>Queue depth</h2><div class="value" id="v-queue">–<small>frames</small></div><canvas id="c-queue"></canvas></section>
  <section class="card"><h2>Queue time p95</h2><div class="value" id="v-qtime">–<small>ms</small></div><canvas id="c-qtime"></canvas></section>
  <section class="card"><h2>Throughput</h2><div class="value" id="v-tput">–<small>frames/s</small></div><canvas id="c-tput"></canvas></section>
  <section class="card"><h2>Edge latency p99</h2><div class="value" id="v-p99">–<small>ms</small></div><canvas id="c-p99"></canvas></section>
  <section class="card"><h2>Fraction local</h2><div class="value" id="v-local">–<small>of frames</small></div><canvas id="c-local"></canvas>
    <div class="legend"><i style="background:#2563eb"></i>computed locally (camera reports)<i style="background:#d97706"></i>sent local by the controller</div></section>
  <section class="card"><h2>Cameras by mode</h2><div class="value" id="v-cams">–<small>reporting</small></div><div id="modes"></div></section>
  <section class="card wide"><h2>Workers</h2><div id="workers"></div></section>
</main>
<script>
"use strict";
(function () {
  var body = document.body;
  window.addEventListener("error", function (e) { body.setAttribute("data-js-error", String(e.message || e)); });
  var drawn = 0;
  var $ = function (id) { return document.getElementById(id); };
  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    var d = digits === undefined ? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2) : digits;
    return Number(v).toFixed(d);
  }
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + " %"; }
  function setValue(id, text, unit) { $(id).innerHTML = ""; $(id).appendChild(document.createTextNode(text)); var s = document.createElement("small"); s.textContent = unit; $(id).appendChild(s); }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  // A line chart of one or more series over times t (Unix ms); null values leave gaps.
  function chart(canvas, t, series, opts) {
    var ratio = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
    var g = canvas.getContext("2d"); g.setTransform(ratio, 0, 0, ratio, 0, 0); g.clearRect(0, 0, w, h);
    var left = 44, right = 8, top = 6, bottom = 18, pw = w - left - right, ph = h - top - bottom;
    var max = opts.max;
    if (max === undefined) {
      max = 0;
      series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && isFinite(v) && v > max) max = v; }); });
      max = niceMax(max * 1.1);
    }
    var now = t.length ? t[t.length - 1] : Date.now(), span = opts.span || 300000, start = now - span;
    g.font = "11px system-ui, sans-serif"; g.fillStyle = "#677084"; g.strokeStyle = "#e2e5eb"; g.lineWidth = 1;
    for (var i = 0; i <= 4; i++) {
      var y = top + ph - ph * i / 4;
      g.beginPath(); g.moveTo(left, Math.round(y) + 0.5); g.lineTo(left + pw, Math.round(y) + 0.5); g.stroke();
      var label = opts.percent ? Math.round(100 * max * i / 4) + "%" : fmt(max * i / 4, max >= 10 ? 0 : 2);
      g.textAlign = "right"; g.textBaseline = "middle"; g.fillText(label, left - 5, y);
    }
    g.textAlign = "center"; g.textBaseline = "top";
    for (var m = 0; m <= span / 60000; m++) {
      var x = left + pw - pw * m * 60000 / span;
      g.fillText(m === 0 ? "now" : "-" + m + "m", Math.min(Math.max(x, left + 10), left + pw - 10), top + ph + 4);
    }
    series.forEach(function (s) {
      g.strokeStyle = s.color; g.lineWidth = 2; g.beginPath();
      var pen = false, lastX = null, lastY = null;
      for (var k = 0; k < t.length; k++) {
        var v = s.values[k];
        if (v === null || v === undefined || !isFinite(v) || t[k] < start) { pen = false; continue; }
        var px = left + pw * (t[k] - start) / span, py = top + ph - ph * Math.min(v, max) / max;
        if (pen) g.lineTo(px, py); else g.moveTo(px, py);
        pen = true; lastX = px; lastY = py;
      }
      g.stroke();
      if (lastX !== null) { g.fillStyle = s.color; g.beginPath(); g.arc(lastX, lastY, 3, 0, 2 * Math.PI); g.fill(); }
    });
    if (!t.length) { g.fillStyle = "#677084"; g.textAlign = "center"; g.textBaseline = "middle"; g.fillText("no STATS yet", left + pw / 2, top + ph / 2); }
  }
  function workers(list) {
    var box = $("workers"); box.innerHTML = "";
    if (!list.length) { var p = document.createElement("div"); p.className = "empty"; p.textContent = "no worker connected"; box.appendChild(p); return; }
    var table = document.createElement("table"), head = table.insertRow();
    ["worker", "credit", "in flight", "batch mean", "batch max"].forEach(function (name) { var th = document.createElement("th"); th.textContent = name; head.appendChild(th); });
    list.forEach(function (w) {
      var row = table.insertRow();
      [w.id, String(w.credit), String(w.in_flight), w.batch_mean === null ? "–" : fmt(w.batch_mean, 2), w.batch_max === null ? "–" : String(w.batch_max)]
        .forEach(function (text) { row.insertCell().textContent = text; });
    });
    box.appendChild(table);
  }
  function modes(m) {
    var box = $("modes"); box.innerHTML = "";
    if (!m) { var p = document.createElement("div"); p.className = "empty"; p.textContent = "no camera reported its mode"; box.appendChild(p); return; }
    var total = Math.max(1, m.split + m.local + m.offload), colors = { split: "#2563eb", local: "#d97706", offload: "#7c3aed" };
    ["split", "local", "offload"].forEach(function (name) {
      var row = document.createElement("div"); row.className = "bar";
      var label = document.createElement("span"); label.textContent = name;
      var track = document.createElement("span"); track.className = "track";
      var fill = document.createElement("span"); fill.className = "fill"; fill.style.display = "block";
      fill.style.width = (100 * m[name] / total) + "%"; fill.style.background = colors[name];
      track.appendChild(fill);
      var count = document.createElement("b"); count.textContent = String(m[name]);
      row.appendChild(label); row.appendChild(track); row.appendChild(count); box.appendChild(row);
    });
  }
  function render(s) {
    var l = s.latest, h = s.history;
    var cond = $("condition"); cond.textContent = s.condition; cond.className = "pill " + s.condition;
    $("fraction").textContent = pct(s.local_fraction);
    $("floor").textContent = s.edge_floor > 0 ? pct(s.edge_floor) : "none";
    $("age").textContent = s.stats_age_milliseconds === null ? "none yet" : (s.stats_age_milliseconds / 1000).toFixed(1) + " s ago";
    $("decision").textContent = s.last_decision ? "last decision: " + s.last_decision : "";
    var banner = $("banner");
    if (s.stats_received === 0) { banner.style.display = "block"; banner.textContent = "No STATS from the broker yet (" + s.stats_endpoint + ")"; }
    else if (s.stats_age_milliseconds > 3000) { banner.style.display = "block"; banner.textContent = "STATS are " + (s.stats_age_milliseconds / 1000).toFixed(0) + " s old: is the broker up?"; }
    else banner.style.display = "none";
    setValue("v-queue", l ? String(l.queue_depth) : "–", "frames");
    setValue("v-qtime", l ? fmt(l.queue_time_p95) : "–", "ms");
    setValue("v-tput", l ? fmt(l.throughput) : "–", "frames/s");
    setValue("v-p99", l ? fmt(l.edge_p99) : "–", "ms");
    setValue("v-local", l ? pct(l.local_share) : "–", "of frames");
    setValue("v-cams", l && l.cameras_reporting !== null ? String(l.cameras_reporting) : "–", "reporting");
    chart($("c-queue"), h.t, [{ values: h.queue_depth, color: "#2563eb" }], {});
    chart($("c-qtime"), h.t, [{ values: h.queue_time_p95, color: "#2563eb" }], {});
    chart($("c-tput"), h.t, [{ values: h.throughput, color: "#15803d" }], {});
    chart($("c-p99"), h.t, [{ values: h.edge_p99, color: "#b91c1c" }], {});
    chart($("c-local"), h.t, [{ values: h.local_share, color: "#2563eb" }, { values: h.local_fraction, color: "#d97706" }], { max: 1, percent: true });
    workers(s.workers);
    modes(s.cameras_by_mode);
    drawn += 1;
    body.setAttribute("data-rendered", String(drawn));
    body.setAttribute("data-stats-received", String(s.stats_received));
    $("updated").textContent = "updated " + new Date(s.now_milliseconds).toLocaleTimeString();
  }
  function poll() {
    fetch("api/state", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) { render(s); body.removeAttribute("data-fetch-error"); })
      .catch(function (e) {
        body.setAttribute("data-fetch-error", String(e.message || e));
        var banner = $("banner"); banner.style.display = "block"; banner.textContent = "The controller does not answer: " + (e.message || e);
      })
      .then(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
</script>
</body>
</html>
"""#
}
