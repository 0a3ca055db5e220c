#pragma once
// Private: the sweep section of the HTML report (`report --sweep`). Its data is the sweep's JSON
// (sweep_json) in <script type="application/json" id="eplb-sweep">, between kSweepData and
// kSweepScript; the script builds a section inside <main> (the evaluation page's, or kSweepBody's
// on a page of its own): the table, the recommendation per EP, and two charts against R, one line
// per EP: held-out imbalance (mean solid, p99 dashed) and extra memory per GPU. It reports errors
// like the evaluation page (#errors, data-errors) and sets data-sweep-ready="1" on <body> when
// drawn, with data-sweep-pixels = the painted pixels of the imbalance chart, for the headless
// browser test.

namespace eplb::detail {

/// The body of a page that shows the sweep alone; @TITLE@ is replaced by the title.
inline constexpr const char* kSweepBody = R"HTML(<body>
<header><h1>@TITLE@</h1></header>
<pre id="errors"></pre>
<main></main>
)HTML";

/// Opens the sweep's data; the JSON follows, then kSweepScript.
inline constexpr const char* kSweepData =
    R"HTML(<script type="application/json" id="eplb-sweep">)HTML";

/// Closes the data and draws the section.
inline constexpr const char* kSweepScript = R"HTML(</script>
<script>
(function () {
  "use strict";
  var body = document.body, errorsEl = document.getElementById("errors");
  function report(msg) {
    body.setAttribute("data-errors", String(Number(body.getAttribute("data-errors") || 0) + 1));
    if (errorsEl) errorsEl.textContent += msg + "\n";
  }
  var COLORS = ["#d1495b", "#2e86ab", "#edae49", "#66a182", "#8d6a9f", "#00798c", "#c8553d"];
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function fmt(v, d) { return v === null || v === undefined ? "-" : Number(v).toFixed(d); }
  function bytes(v) {
    if (v === null || v === undefined) return "-";
    if (!(v > 0)) return "0 B";
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (v >= 1024 && i < 4) { v /= 1024; i += 1; }
    return i === 0 ? v.toFixed(0) + " B" : v.toFixed(2) + " " + u[i];
  }
  try {
    var S = JSON.parse(document.getElementById("eplb-sweep").textContent);
    var planned = S.points.filter(function (p) { return p.planned; });
    var eps = [], rs = [];
    planned.forEach(function (p) {
      if (eps.indexOf(p.ep) < 0) eps.push(p.ep);
      if (rs.indexOf(p.redundant) < 0) rs.push(p.redundant);
    });
    rs.sort(function (a, b) { return a - b; });
    function color(ep) { return COLORS[eps.indexOf(ep) % COLORS.length]; }
    function choice(ep) {
      return S.recommendations.filter(function (c) { return c.ep === ep; })[0];
    }
    var sec = el("section");
    sec.id = "sweep-section";
    sec.appendChild(el("h2", "How many redundant slots? Held-out sweep"));
    var sp = S.split;
    sec.appendChild(el("p",
        S.stats.files.join(", ") + ": " + S.stats.num_layers + " layers x " +
        S.stats.num_experts + " experts. Each (EP, R) planned with the default policy on the " +
        "first " + sp.train_records + " records (steps " + sp.train_steps[0] + ".." +
        sp.train_steps[1] + ", " + sp.plan_samples + " sampled), judged on " +
        sp.heldout_samples + " sampled steps of the last " + sp.heldout_records + " (steps " +
        sp.heldout_steps[0] + ".." + sp.heldout_steps[1] + ").", "note"));
    var table = el("table");
    table.id = "sweep-table";
    var head = el("tr");
    ["EP", "R", "slots/rank", "mean", "p99", "worst", "identity", "time saved",
     "extra memory/GPU"].forEach(function (h) { head.appendChild(el("th", h)); });
    table.appendChild(head);
    S.points.forEach(function (p) {
      var tr = el("tr");
      if (!p.planned) {
        tr.className = "skip";
        tr.appendChild(el("td", String(p.ep)));
        tr.appendChild(el("td", String(p.redundant)));
        var td = el("td", "skipped: " + p.skipped + "; nearest valid R: " + p.nearest.join(", "));
        td.colSpan = 7;
        td.style.textAlign = "left";
        tr.appendChild(td);
      } else {
        var c = choice(p.ep);
        if (c && c.redundant === p.redundant) tr.className = "rec";
        [String(p.ep), String(p.redundant), String(p.slots_per_rank), fmt(p.mean, 4),
         fmt(p.p99, 4), fmt(p.worst, 4), fmt(p.identity_mean, 4),
         p.time_saved === null ? "-" : fmt(100 * p.time_saved, 1) + "%",
         bytes(p.extra_bytes_per_gpu)].forEach(function (t) { tr.appendChild(el("td", t)); });
      }
      table.appendChild(tr);
    });
    sec.appendChild(table);
    var recs = el("div");
    recs.id = "sweep-recs";
    S.recommendations.forEach(function (c) {
      recs.appendChild(el("p", "EP " + c.ep + ": " + c.why));
      recs.appendChild(el("p", "Knee of the curve: " + c.knee_why + ".", "note"));
    });
    sec.appendChild(recs);
    sec.appendChild(el("p", "Recommended: the smallest R whose held-out mean is within " +
        fmt(100 * S.tolerance, 2) + "% of the best (highlighted). Identity: vLLM's startup " +
        "layout with the fewest redundant slots the EP allows, the baseline of the time saved" +
        (S.expert_fraction === null ? "." : " (f = " + S.expert_fraction + ")."), "note"));
    var legend = el("div", undefined, "legend");
    eps.forEach(function (ep) {
      var sw = el("span", undefined, "sw");
      sw.style.background = color(ep);
      legend.appendChild(sw);
      legend.appendChild(el("span", "EP " + ep));
    });
    legend.appendChild(el("span", "(solid: mean, dashed: p99; ring: recommended, square: knee)"));
    sec.appendChild(legend);
    var imb = el("canvas");
    imb.id = "sweep-imbalance";
    imb.width = 1180;
    imb.height = 300;
    sec.appendChild(imb);
    var mem = null;
    if (S.memory !== null) {
      mem = el("canvas");
      mem.id = "sweep-memory";
      mem.width = 1180;
      mem.height = 240;
      sec.appendChild(mem);
    } else {
      sec.appendChild(el("p", "No memory figures: give the sweep --model-config or " +
                                  "--expert-bytes.", "note"));
    }
    (document.querySelector("main") || body).appendChild(sec);

    // One chart against R (evenly spaced), one line per EP.
    function chart(canvas, label, digits, series) {
      var ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
      var pad = {l: 56, r: 16, t: 18, b: 28}, lo = Infinity, hi = -Infinity;
      series.forEach(function (s) {
        s.values.forEach(function (v) { lo = Math.min(lo, v); hi = Math.max(hi, v); });
      });
      if (!isFinite(lo)) { lo = 0; hi = 1; }
      var span = hi - lo || Math.abs(hi) || 1;
      lo -= span * 0.08; hi += span * 0.08;
      window.eplbChart.frame(ctx, W, H, pad, lo, hi, label, digits);
      var x = function (r) {
        var i = rs.indexOf(r);
        return pad.l + (W - pad.l - pad.r) * (rs.length > 1 ? i / (rs.length - 1) : 0.5);
      };
      var y = function (v) { return pad.t + (H - pad.t - pad.b) * (1 - (v - lo) / (hi - lo)); };
      ctx.fillStyle = "#5a6576";
      rs.forEach(function (r) {
        var t = "R " + r;
        ctx.fillText(t, x(r) - ctx.measureText(t).width / 2, H - 8);
      });
      series.forEach(function (s) {
        ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = s.dashed ? 1.5 : 2.5;
        ctx.setLineDash(s.dashed ? [6, 4] : []);
        ctx.beginPath();
        s.rs.forEach(function (r, i) {
          (i === 0 ? ctx.moveTo : ctx.lineTo).call(ctx, x(r), y(s.values[i]));
        });
        ctx.stroke();
        ctx.setLineDash([]);
        if (s.dashed) return;
        s.rs.forEach(function (r, i) {
          ctx.beginPath(); ctx.arc(x(r), y(s.values[i]), 3.5, 0, 2 * Math.PI); ctx.fill();
          if (r === s.recommended) {
            ctx.beginPath(); ctx.arc(x(r), y(s.values[i]), 8, 0, 2 * Math.PI); ctx.stroke();
          }
          if (r === s.knee) ctx.strokeRect(x(r) - 6, y(s.values[i]) - 6, 12, 12);
        });
      });
    }
    function series(key, dashed, scale) {
      return eps.map(function (ep) {
        var pts = planned.filter(function (p) { return p.ep === ep && p[key] !== null; });
        var c = choice(ep);
        return {color: color(ep), dashed: dashed, recommended: c ? c.redundant : null,
                knee: c ? c.knee : null,
                rs: pts.map(function (p) { return p.redundant; }),
                values: pts.map(function (p) { return p[key] * scale; })};
      });
    }
    chart(imb, "held-out per-step imbalance", 3,
          series("mean", false, 1).concat(series("p99", true, 1)));
    if (mem !== null) chart(mem, "extra memory per GPU (GiB)", 2,
                            series("extra_bytes_per_gpu", false, 1 / 1073741824));
    var px = imb.getContext("2d").getImageData(0, 0, imb.width, imb.height).data, painted = 0;
    for (var i = 0; i < px.length; i += 4) {
      if (px[i + 3] > 0 && (px[i] < 245 || px[i + 1] < 245 || px[i + 2] < 245)) painted += 1;
    }
    body.setAttribute("data-sweep-pixels", String(painted));
  } catch (e) {
    report("error: " + (e && e.stack ? e.stack : e));
  }
  body.setAttribute("data-sweep-ready", "1");
})();
</script>
)HTML";

}  // namespace eplb::detail
