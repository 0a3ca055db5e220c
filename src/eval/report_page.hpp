#pragma once
// Private: the static parts of the HTML report (style and script). A page is kPageHead, then the
// evaluation (kReportBody, its data as JSON in <script type="application/json" id="eplb-data">,
// kReportTail) and/or the sweep (sweep_page.hpp), then kPageEnd. Plain ES2017 and canvas;
// nothing is fetched, so the page works offline and from a file:// URL. The script writes any
// error into #errors (and data-errors on <body>), and sets data-ready="1" on <body> once
// everything is drawn, with data-heat-pixels = the number of non-white pixels of the "before"
// heatmap, for the headless browser test.

namespace eplb::detail {

/// The start of every page: its style and the chart helpers every page uses (window.eplbChart:
/// nice axis ticks, a chart frame with grid lines); @TITLE@ is replaced by the title.
inline constexpr const char* kPageHead = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:14px 24px}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:2px 0;color:#c9d1dc}
.warn{color:#ffcf70!important;font-weight:600}
main{padding:8px 24px 32px;max-width:1280px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;margin:14px 0;padding:12px 16px}
h2{font-size:16px;margin:0 0 8px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #eceff3}
th:first-child,td:first-child{text-align:left}
th{background:#f1f3f6;font-weight:600}
td .sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.controls{margin:4px 0 10px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
.heat-row{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
figure{margin:0}
figcaption{font-weight:600;margin-bottom:4px}
canvas{display:block;border:1px solid #dde2e8;background:#fff}
.note{color:#5a6576;font-size:12px}
#errors{color:#b00020;white-space:pre-wrap;margin:0 24px}
#errors:empty{display:none}
#tip{position:fixed;pointer-events:none;background:rgba(29,36,48,.92);color:#fff;padding:5px 8px;
border-radius:4px;font-size:12px;display:none;white-space:pre;z-index:10}
.legend{display:flex;align-items:center;gap:6px;font-size:12px;color:#5a6576}
.legend .sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-left:8px}
tr.rec td{background:#fff4cc;font-weight:600}
tr.skip td{color:#8a94a3}
</style>
<script>
window.eplbChart = (function () {
  "use strict";
  function niceTicks(lo, hi, n) {
    var span = hi - lo || 1, step = Math.pow(10, Math.floor(Math.log(span / n) / Math.LN10));
    [1, 2, 5, 10].some(function (f) {
      if (span / (step * f) > n) return false;
      step *= f;
      return true;
    });
    var t = [], v = Math.ceil(lo / step) * step;
    for (; v <= hi + 1e-9; v += step) t.push(v);
    return t;
  }
  function frame(ctx, W, H, pad, lo, hi, label, digits) {
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px system-ui, sans-serif";
    ctx.strokeStyle = "#e3e7ec"; ctx.fillStyle = "#5a6576"; ctx.lineWidth = 1;
    niceTicks(lo, hi, 6).forEach(function (t) {
      var y = pad.t + (H - pad.t - pad.b) * (1 - (t - lo) / (hi - lo));
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(W - pad.r, y); ctx.stroke();
      ctx.fillText(t.toFixed(digits === undefined ? 2 : digits), 4, y + 4);
    });
    ctx.fillText(label, pad.l, 11);
  }
  return {niceTicks: niceTicks, frame: frame};
})();
</script>
</head>
)HTML";

/// The evaluation page's body up to its data: header, error box and the sections its script
/// fills; the data JSON follows, then kReportTail.
inline constexpr const char* kReportBody = R"HTML(<body>
<header><h1 id="title"></h1><p id="meta"></p><p id="train"></p></header>
<pre id="errors"></pre>
<main>
<section id="summary-section"><h2>Summary: per-step imbalance on the judged steps</h2>
<table id="summary"></table>
<p class="note" id="summary-note"></p></section>
<section id="heat-section"><h2>Rank load per layer (load / the layer's mean rank load)</h2>
<div class="controls">
<label>Before <select id="before"></select></label>
<label>After <select id="after"></select></label>
<label>Step <input type="range" id="step" min="0" value="0"></label><span id="step-label"></span>
</div>
<div class="heat-row">
<figure><figcaption id="cap-before"></figcaption><canvas id="heat-before"></canvas></figure>
<figure><figcaption id="cap-after"></figcaption><canvas id="heat-after"></canvas></figure>
<div class="legend"><span>0.5x</span><canvas id="heat-legend" width="160" height="12"></canvas>
<span>2x</span></div>
</div>
<p class="note">Rows are MoE layers (0 at the top), columns EP ranks. White is an average rank; red
ranks are busier, blue ones idler. "All judged steps" sums the loads of every judged step; a single
step shows one of the evenly spaced sampled steps.</p>
</section>
<section id="series-section"><h2>Per-step imbalance over time</h2>
<div class="controls"><label>Layer <select id="series-layer"></select></label>
<span class="note">Lines: mean per bucket of steps; shaded: the bucket's worst step.</span>
<span class="legend mapping-legend"></span></div>
<canvas id="series" width="1180" height="300"></canvas></section>
<section id="layers-section"><h2>Per-layer mean per-step imbalance</h2>
<div class="controls"><span class="legend mapping-legend"></span></div>
<canvas id="layers" width="1180" height="260"></canvas></section>
<section id="replica-section"><h2>Replicas per expert</h2>
<div class="controls"><label>Layer <select id="replica-layer"></select></label>
<span class="note">Bars: replica count per mapping; grey line: the expert's share of the layer's
load on the judged steps (right axis).</span><span class="legend mapping-legend"></span></div>
<canvas id="replicas" width="1180" height="260"></canvas></section>
</main>
<div id="tip"></div>
<script type="application/json" id="eplb-data">)HTML";

/// The evaluation page's script, after its data (which kReportBody opened); kPageEnd follows.
inline constexpr const char* kReportTail = R"HTML(</script>
<script>
(function () {
  "use strict";
  var errorsEl = document.getElementById("errors");
  var errorCount = 0;
  function report(msg) {
    errorCount += 1;
    errorsEl.textContent += msg + "\n";
    document.body.setAttribute("data-errors", String(errorCount));
  }
  window.onerror = function (msg, src, line, col) {
    report("error: " + msg + " (line " + line + ":" + col + ")");
  };
  var D = JSON.parse(document.getElementById("eplb-data").textContent);
  var L = D.topology.num_layers, E = D.topology.num_experts;
  var COLORS = ["#7a8699", "#d1495b", "#2e86ab", "#edae49", "#66a182", "#8d6a9f", "#00798c",
                "#c8553d"];
  var tip = document.getElementById("tip");
  function color(i) { return COLORS[i % COLORS.length]; }
  function fmt(v, d) { return v === null || v === undefined ? "-" : Number(v).toFixed(d); }
  function el(tag, text) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function showTip(ev, text) {
    tip.textContent = text;
    tip.style.display = "block";
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 260) + "px";
    tip.style.top = (ev.clientY + 14) + "px";
  }
  function hideTip() { tip.style.display = "none"; }

  // Header and summary table.
  document.getElementById("title").textContent = D.title;
  document.title = D.title;
  document.getElementById("meta").textContent =
      "Judged steps " + D.judged.first + ".." + D.judged.last + " (" + D.judged.records +
      " records) from " + D.files.join(", ") + "; " + L + " layers x " + E + " experts, EP " +
      D.topology.num_ranks + ".";
  var trainEl = document.getElementById("train");
  if (D.train) {
    trainEl.textContent = "Train steps " + (D.train.first === null ? "" : D.train.first) + ".." +
        (D.train.last === null ? "" : D.train.last) +
        (D.overlap > 0 ? ": " + D.overlap +
                         " judged records lie inside, so these figures are NOT held out."
                       : ": no judged step inside (held out).");
    if (D.overlap > 0) trainEl.className = "warn";
  } else {
    trainEl.textContent =
        "Train steps not given: make sure the mappings were built on other steps.";
  }
  var table = document.getElementById("summary");
  var head = el("tr");
  ["mapping", "EP", "slots", "mean", "p50", "p90", "p99", "worst", "worst step", "gap to bound",
   "time saved"].forEach(function (h) { head.appendChild(el("th", h)); });
  table.appendChild(head);
  D.mappings.forEach(function (m, i) {
    var tr = el("tr");
    var name = el("td");
    var sw = el("span"); sw.className = "sw"; sw.style.background = color(i);
    name.appendChild(sw); name.appendChild(document.createTextNode(m.name));
    tr.appendChild(name);
    var im = m.imbalance;
    [String(m.ranks), String(m.slots), fmt(im.mean, 4), fmt(im.p50, 4), fmt(im.p90, 4),
     fmt(im.p99, 4),
     fmt(im.worst, 4), String(im.worst_step), m.gap ? fmt(100 * m.gap.mean, 2) + "%" : "-",
     m.time_saved === null ? "-" : fmt(100 * m.time_saved, 1) + "%"]
        .forEach(function (t) { tr.appendChild(el("td", t)); });
    table.appendChild(tr);
  });
  if (D.bound) {
    var tr = el("tr");
    ["per-step lower bound", String(D.topology.num_ranks), String(D.topology.num_slots),
     fmt(D.bound.mean, 4),
      fmt(D.bound.p50, 4), fmt(D.bound.p90, 4), fmt(D.bound.p99, 4), fmt(D.bound.worst, 4),
      String(D.bound.worst_step), "", ""].forEach(function (t) { tr.appendChild(el("td", t)); });
    table.appendChild(tr);
  }
  document.getElementById("summary-note").textContent =
      "Per step: sum over layers of the busiest rank's load / sum of the mean rank load (1.0 is " +
      "perfect); each expert's load is split evenly over its replicas. Percentiles are nearest-" +
      "rank. Gap: how far above the per-step lower bound (a placement re-planned for every step)." +
      (D.expert_fraction === null ? " Give --expert-fraction for the predicted time saved."
       : " Time saved: f * (1 - imbalance / identity's) with f = " + D.expert_fraction +
         " of step time in expert compute under the identity layout.");

  Array.prototype.forEach.call(document.querySelectorAll(".mapping-legend"), function (box) {
    D.mappings.forEach(function (m, i) {
      var sw = el("span"); sw.className = "sw"; sw.style.background = color(i);
      box.appendChild(sw); box.appendChild(el("span", m.name));
    });
  });

  // Heatmaps.
  function heatColor(v) {
    if (!(v > 0)) return [235, 238, 242];
    var u = Math.max(-1, Math.min(1, Math.log(v) / Math.LN2));
    if (u >= 0) return [255, Math.round(255 - 200 * u), Math.round(255 - 215 * u)];
    return [Math.round(255 + 215 * u), Math.round(255 + 150 * u), 255];
  }
  var beforeSel = document.getElementById("before"), afterSel = document.getElementById("after");
  D.mappings.forEach(function (m, i) {
    beforeSel.appendChild(new Option(m.name, String(i)));
    afterSel.appendChild(new Option(m.name, String(i)));
  });
  beforeSel.value = "0";
  afterSel.value = String(D.mappings.length - 1);
  var stepInput = document.getElementById("step");
  stepInput.max = String(D.sampled_steps.length);
  function heatValues(m, s) {
    if (s === 0) return m.heat;
    var n = L * m.ranks, out = new Array(n), base = (s - 1) * n;
    for (var i = 0; i < n; ++i) out[i] = m.sampled[base + i] / 100;
    return out;
  }
  var cellW = 0, cellH = 0;
  function drawHeat(canvas, m, s) {
    var R = m.ranks;
    cellW = Math.max(4, Math.min(24, Math.floor(520 / R)));
    cellH = Math.max(2, Math.min(14, Math.floor(560 / L)));
    canvas.width = cellW * R; canvas.height = cellH * L;
    var ctx = canvas.getContext("2d"), vals = heatValues(m, s);
    for (var l = 0; l < L; ++l) {
      for (var r = 0; r < R; ++r) {
        var c = heatColor(vals[l * R + r]);
        ctx.fillStyle = "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")";
        ctx.fillRect(r * cellW, l * cellH, cellW, cellH);
      }
    }
    canvas.onmousemove = function (ev) {
      var b = canvas.getBoundingClientRect();
      var r = Math.floor((ev.clientX - b.left) / cellW);
      var l = Math.floor((ev.clientY - b.top) / cellH);
      if (r < 0 || r >= R || l < 0 || l >= L) { hideTip(); return; }
      showTip(ev, m.name + "\nlayer " + l + ", rank " + r + ": " + fmt(vals[l * R + r], 3) +
                  "x mean");
    };
    canvas.onmouseleave = hideTip;
  }
  function drawHeats() {
    var s = Number(stepInput.value);
    document.getElementById("step-label").textContent =
        s === 0 ? "all judged steps" : "step " + D.sampled_steps[s - 1];
    var b = D.mappings[Number(beforeSel.value)], a = D.mappings[Number(afterSel.value)];
    document.getElementById("cap-before").textContent = "Before: " + b.name;
    document.getElementById("cap-after").textContent = "After: " + a.name;
    drawHeat(document.getElementById("heat-before"), b, s);
    drawHeat(document.getElementById("heat-after"), a, s);
  }
  (function legend() {
    var c = document.getElementById("heat-legend").getContext("2d");
    for (var x = 0; x < 160; ++x) {
      var col = heatColor(Math.pow(2, (x / 159) * 2 - 1));
      c.fillStyle = "rgb(" + col[0] + "," + col[1] + "," + col[2] + ")";
      c.fillRect(x, 0, 1, 12);
    }
  })();
  [beforeSel, afterSel].forEach(function (s) { s.addEventListener("change", drawHeats); });
  stepInput.addEventListener("input", drawHeats);

  // Chart helpers shared with the sweep section (kPageHead).
  var frame = window.eplbChart.frame;

  // Per-step series.
  var seriesLayer = document.getElementById("series-layer");
  var replicaLayer = document.getElementById("replica-layer");
  seriesLayer.appendChild(new Option("whole model", "-1"));
  for (var l = 0; l < L; ++l) {
    seriesLayer.appendChild(new Option("layer " + l, String(l)));
    replicaLayer.appendChild(new Option("layer " + l, String(l)));
  }
  function seriesOf(m, layer, which) {
    if (layer < 0) return which === "max" ? m.series_max : m.series_mean;
    var src = which === "max" ? m.layer_series_max : m.layer_series_mean, out = [];
    for (var b = 0; b < D.buckets.first_step.length; ++b) out.push(src[b * L + layer]);
    return out;
  }
  function drawSeries() {
    var canvas = document.getElementById("series"), ctx = canvas.getContext("2d");
    var W = canvas.width, H = canvas.height, pad = {l: 44, r: 12, t: 18, b: 24};
    var layer = Number(seriesLayer.value), B = D.buckets.first_step.length;
    var lo = Infinity, hi = -Infinity;
    D.mappings.forEach(function (m) {
      seriesOf(m, layer, "max").concat(seriesOf(m, layer, "mean")).forEach(function (v) {
        if (v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      });
    });
    if (!isFinite(lo)) { lo = 1; hi = 2; }
    lo = Math.max(0, Math.min(1, lo)); hi = hi + (hi - lo) * 0.05;
    frame(ctx, W, H, pad, lo, hi, "imbalance");
    var x = function (b) { return pad.l + (W - pad.l - pad.r) * (B > 1 ? b / (B - 1) : 0.5); };
    var y = function (v) { return pad.t + (H - pad.t - pad.b) * (1 - (v - lo) / (hi - lo)); };
    D.mappings.forEach(function (m, i) {
      var mean = seriesOf(m, layer, "mean"), mx = seriesOf(m, layer, "max");
      ctx.globalAlpha = 0.18; ctx.fillStyle = color(i); ctx.beginPath();
      for (var b = 0; b < B; ++b) (b === 0 ? ctx.moveTo : ctx.lineTo).call(ctx, x(b), y(mx[b]));
      for (b = B - 1; b >= 0; --b) ctx.lineTo(x(b), y(mean[b]));
      ctx.closePath(); ctx.fill(); ctx.globalAlpha = 1;
      ctx.strokeStyle = color(i); ctx.lineWidth = 1.5; ctx.beginPath();
      for (b = 0; b < B; ++b) (b === 0 ? ctx.moveTo : ctx.lineTo).call(ctx, x(b), y(mean[b]));
      ctx.stroke();
    });
    ctx.fillStyle = "#5a6576";
    ctx.fillText("step " + D.buckets.first_step[0], pad.l, H - 6);
    var last = "step " + D.judged.last;
    ctx.fillText(last, W - pad.r - ctx.measureText(last).width, H - 6);
    canvas.onmousemove = function (ev) {
      var r = canvas.getBoundingClientRect(), px = (ev.clientX - r.left) * W / r.width;
      var b = Math.round((px - pad.l) / (W - pad.l - pad.r) * (B - 1));
      if (b < 0 || b >= B) { hideTip(); return; }
      var end = b + 1 < B ? D.buckets.first_step[b + 1] - 1 : D.judged.last;
      var lines = ["steps " + D.buckets.first_step[b] + ".." + end +
                   (layer < 0 ? "" : ", layer " + layer)];
      D.mappings.forEach(function (m) {
        lines.push(m.name + ": mean " + fmt(seriesOf(m, layer, "mean")[b], 4) + ", worst " +
                   fmt(seriesOf(m, layer, "max")[b], 4));
      });
      showTip(ev, lines.join("\n"));
    };
    canvas.onmouseleave = hideTip;
  }
  seriesLayer.addEventListener("change", drawSeries);

  // Per-layer bars.
  function drawLayers() {
    var canvas = document.getElementById("layers"), ctx = canvas.getContext("2d");
    var W = canvas.width, H = canvas.height, pad = {l: 44, r: 12, t: 18, b: 24};
    var M = D.mappings.length, hi = 1;
    D.mappings.forEach(function (m) {
      m.layer_mean.forEach(function (v) { hi = Math.max(hi, v); });
    });
    hi *= 1.05;
    var lo = 1;
    frame(ctx, W, H, pad, lo, hi, "mean per-step imbalance");
    var gw = (W - pad.l - pad.r) / L, bw = Math.max(1, gw / (M + 0.5));
    var y = function (v) { return pad.t + (H - pad.t - pad.b) * (1 - (v - lo) / (hi - lo)); };
    D.mappings.forEach(function (m, i) {
      ctx.fillStyle = color(i);
      m.layer_mean.forEach(function (v, l) {
        var top = y(Math.max(lo, v));
        ctx.fillRect(pad.l + l * gw + i * bw, top, Math.max(1, bw - 0.5), H - pad.b - top);
      });
    });
    ctx.fillStyle = "#5a6576";
    for (var l = 0; l < L; l += Math.max(1, Math.ceil(L / 24))) {
      ctx.fillText(String(l), pad.l + l * gw, H - 6);
    }
    canvas.onmousemove = function (ev) {
      var r = canvas.getBoundingClientRect(), px = (ev.clientX - r.left) * W / r.width;
      var l = Math.floor((px - pad.l) / gw);
      if (l < 0 || l >= L) { hideTip(); return; }
      showTip(ev, ["layer " + l].concat(D.mappings.map(function (m) {
        return m.name + ": " + fmt(m.layer_mean[l], 4);
      })).join("\n"));
    };
    canvas.onmouseleave = hideTip;
  }

  // Replicas per expert.
  function drawReplicas() {
    var canvas = document.getElementById("replicas"), ctx = canvas.getContext("2d");
    var W = canvas.width, H = canvas.height, pad = {l: 44, r: 44, t: 18, b: 24};
    var layer = Number(replicaLayer.value);
    var maps = D.mappings.filter(function (m) { return m.replicas !== null; });
    var hi = 1;
    maps.forEach(function (m) {
      for (var e = 0; e < E; ++e) hi = Math.max(hi, m.replicas[layer * E + e]);
    });
    var load = D.expert_load.slice(layer * E, (layer + 1) * E);
    var total = load.reduce(function (a, b) { return a + b; }, 0) || 1;
    var share = load.map(function (v) { return v / total; });
    var smax = Math.max.apply(null, share) * 1.1 || 1;
    frame(ctx, W, H, pad, 0, hi + 0.5, "replicas", 0);
    var gw = (W - pad.l - pad.r) / E, bw = Math.max(1, gw / (maps.length + 0.5));
    var y = function (v) { return pad.t + (H - pad.t - pad.b) * (1 - v / (hi + 0.5)); };
    maps.forEach(function (m, i) {
      ctx.fillStyle = color(D.mappings.indexOf(m));
      for (var e = 0; e < E; ++e) {
        var top = y(m.replicas[layer * E + e]);
        ctx.fillRect(pad.l + e * gw + i * bw, top, Math.max(1, bw - 0.5), H - pad.b - top);
      }
    });
    ctx.strokeStyle = "#1d2430"; ctx.lineWidth = 1; ctx.beginPath();
    share.forEach(function (v, e) {
      var px = pad.l + (e + 0.5) * gw, py = pad.t + (H - pad.t - pad.b) * (1 - v / smax);
      if (e === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke();
    ctx.fillStyle = "#5a6576";
    ctx.fillText(fmt(100 * smax, 1) + "%", W - pad.r + 4, pad.t + 4);
    for (var e = 0; e < E; e += Math.max(1, Math.ceil(E / 32))) {
      ctx.fillText(String(e), pad.l + e * gw, H - 6);
    }
    canvas.onmousemove = function (ev) {
      var r = canvas.getBoundingClientRect(), px = (ev.clientX - r.left) * W / r.width;
      var e = Math.floor((px - pad.l) / gw);
      if (e < 0 || e >= E) { hideTip(); return; }
      showTip(ev, ["layer " + layer + ", expert " + e + ": " + fmt(100 * share[e], 2) +
                   "% of the load"]
          .concat(maps.map(function (m) {
            return m.name + ": " + m.replicas[layer * E + e] + " replica(s)";
          }))
          .join("\n"));
    };
    canvas.onmouseleave = hideTip;
  }
  replicaLayer.addEventListener("change", drawReplicas);

  try {
    drawHeats();
    drawSeries();
    drawLayers();
    drawReplicas();
    // For the headless test: count the heatmap pixels that carry a load colour (not white).
    var hc = document.getElementById("heat-before");
    var px = hc.getContext("2d").getImageData(0, 0, hc.width, hc.height).data, painted = 0;
    for (var i = 0; i < px.length; i += 4) {
      if (px[i + 3] > 0 && (px[i] < 245 || px[i + 1] < 245 || px[i + 2] < 245)) painted += 1;
    }
    document.body.setAttribute("data-heat-pixels", String(painted));
  } catch (e) {
    report("error: " + (e && e.stack ? e.stack : e));
  }
  document.body.setAttribute("data-ready", "1");
})();
</script>
)HTML";

/// The end of every page.
inline constexpr const char* kPageEnd = "</body></html>\n";

}  // namespace eplb::detail
