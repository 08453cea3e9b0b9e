"""The HTML report's inline stylesheet and script (no network, no external assets).

The script draws two SVG charts per model from the embedded JSON, makes the layer tables sortable
and sets ``data-charts-drawn`` on <body> so a headless browser test can see it ran.
"""

from __future__ import annotations

CSS = """
:root{--ink:#1f2430;--muted:#667085;--line:#e4e7ec;--bg:#f5f6f8;--card:#fff;--accent:#2f6fdf;
--flag:#e5484d;--warn:#f5a524;--info:#3b82f6;--ok:#12a150;--err:#d92d20}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",
Arial,sans-serif;color:var(--ink);background:var(--bg)}
header.top{background:#111827;color:#fff;padding:18px 32px;display:flex;align-items:baseline;
gap:16px}
header.top h1{font-size:20px;margin:0;font-weight:650;letter-spacing:.2px}
header.top .meta{color:#9ca3af;font-size:13px}
main{max-width:1280px;margin:0 auto;padding:24px 32px 48px}
h2{font-size:18px;margin:0 0 4px;word-break:break-all}
h2 code{font-size:16px}
h3{font-size:15px;margin:0 0 10px;font-weight:620}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;
margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.model{margin-bottom:36px}
.model-head{display:flex;justify-content:space-between;align-items:flex-end;margin:0 0 12px}
.subtle{color:var(--muted);font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;
margin:0 0 18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.6px}
.card .value{font-size:26px;font-weight:680;margin-top:2px}
.card .exact{color:var(--muted);font-size:12px}
.card.bad .value{color:var(--err)}
.card.good .value{color:var(--ok)}
.grid2{display:grid;grid-template-columns:2fr 1fr;gap:18px}
@media (max-width:1000px){.grid2{grid-template-columns:1fr}}
.chart svg{width:100%;height:auto;display:block}
.chart .bar{fill:var(--accent)}
.chart .bar.flagged{fill:var(--flag)}
.chart .bar.flagged.info{fill:var(--warn)}
.chart .bar.uncounted{fill:#c7cdd8}
.chart .bar:hover{opacity:.75;cursor:pointer}
.chart .axis{stroke:#98a2b3;stroke-width:1}
.chart .grid{stroke:#eef0f3;stroke-width:1}
.chart text{font-size:11px;fill:#667085}
.chart .slice{stroke:#fff;stroke-width:2}
.legend{display:flex;gap:14px;font-size:12px;color:var(--muted);margin-top:6px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
table.layers{width:100%;border-collapse:collapse;font-size:13px}
table.layers th,table.layers td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;
white-space:nowrap}
table.layers td.num,table.layers th.num{text-align:right;font-variant-numeric:tabular-nums}
table.layers th{position:sticky;top:0;background:#f9fafb;font-weight:600;cursor:pointer;
user-select:none;color:#344054}
table.layers th:hover{background:#eef2f7}
table.layers th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
table.layers th[aria-sort=descending]::after{content:" ▼";font-size:10px}
table.layers tr.flagged td{background:#fff1f1}
table.layers tr.flagged td:nth-child(2){box-shadow:inset 3px 0 0 var(--flag)}
table.layers tr.flagged.info td{background:#fff8eb}
table.layers tr.flagged.info td:nth-child(2){box-shadow:inset 3px 0 0 var(--warn)}
table.layers tr.pulse td{background:#fff7cc}
.sharebar{display:inline-block;height:8px;background:var(--accent);border-radius:4px;
vertical-align:middle;margin-right:6px;opacity:.8}
.tablewrap{overflow:auto;max-height:640px}
.finding{border:1px solid var(--line);border-left:4px solid var(--warn);border-radius:8px;
padding:12px 14px;margin:0 0 12px;background:#fff}
.finding.error{border-left-color:var(--err)}
.finding.info{border-left-color:var(--info)}
.finding .title{display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.badge{display:inline-block;border-radius:999px;padding:1px 9px;font-size:11.5px;font-weight:650;
text-transform:uppercase;letter-spacing:.4px;color:#fff;background:var(--warn)}
.badge.error{background:var(--err)}
.badge.info{background:var(--info)}
.finding .msg{margin:8px 0 10px}
.ba{display:grid;grid-template-columns:96px 1fr 200px;gap:6px 10px;align-items:center;
font-size:12.5px;max-width:820px}
.ba .track{background:#f2f4f7;border-radius:4px;height:14px;overflow:hidden}
.ba .fill{height:14px;border-radius:4px;background:#98a2b3}
.ba .fill.after{background:var(--ok)}
.ba .fig{font-variant-numeric:tabular-nums;color:#344054}
.saving{font-weight:650;color:var(--ok)}
.errorbox{border:1px solid #fecdca;background:#fef3f2;color:#912018;border-radius:8px;
padding:10px 14px;margin:0 0 12px}
table.overview{width:100%;border-collapse:collapse}
table.overview td,table.overview th{padding:6px 10px;border-bottom:1px solid var(--line);
text-align:left}
table.overview th.num{text-align:right}
table.overview td.num{text-align:right;font-variant-numeric:tabular-nums}
footer{color:var(--muted);font-size:12px;max-width:1280px;margin:0 auto;padding:0 32px 32px}
.clean{color:var(--ok);font-weight:600}
"""

JS = r"""
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#2f6fdf", "#12a150", "#f5a524", "#8b5cf6", "#e5484d", "#0ea5e9", "#d946ef",
                 "#84cc16", "#f97316", "#64748b"];
  var data = JSON.parse(document.getElementById("convaudit-data").textContent);
  var drawn = 0;

  function svgEl(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function human(n) {
    if (n === null || n === undefined) { return "?"; }
    var units = [["T", 1e12], ["G", 1e9], ["M", 1e6], ["K", 1e3]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(n) >= units[i][1]) { return (n / units[i][1]).toFixed(1) + units[i][0]; }
    }
    return String(n);
  }
  function pct(x) { return (100 * x).toFixed(1) + "%"; }
  function niceStep(max, ticks) {
    var raw = max / ticks, mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var norm = raw / mag, step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10;
    return step * mag;
  }
  function addTitle(node, text) { svgEl("title", {}, node).textContent = text; }

  function jumpToRow(id) {
    var row = document.getElementById(id);
    if (!row) { return; }
    row.scrollIntoView({block: "center", behavior: "smooth"});
    row.classList.add("pulse");
    window.setTimeout(function () { row.classList.remove("pulse"); }, 1600);
  }

  function layerChart(host, model, mi) {
    var layers = model.layers, W = 900, H = 280, L = 60, R = 10, T = 12, B = 40;
    var iw = W - L - R, ih = H - T - B;
    var max = 0;
    layers.forEach(function (l) { if (l.macs !== null && l.macs > max) { max = l.macs; } });
    if (max === 0) { max = 1; }
    var step = niceStep(max, 4), top = Math.ceil(max / step) * step;
    var svg = svgEl("svg", {viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": "MACs per layer in graph order"}, null);
    for (var v = 0; v <= top + step / 2; v += step) {
      var y = T + ih - (v / top) * ih;
      svgEl("line", {x1: L, x2: W - R, y1: y, y2: y, "class": "grid"}, svg);
      svgEl("text", {x: L - 6, y: y + 4, "text-anchor": "end"}, svg).textContent = human(v);
    }
    svgEl("line", {x1: L, x2: W - R, y1: T + ih, y2: T + ih, "class": "axis"}, svg);
    // Few layers: cap the bar width and centre the group rather than drawing one wide block.
    var n = Math.max(layers.length, 1), slot = Math.min(iw / n, 90), gap = Math.min(slot * 0.2, 6);
    var x0 = L + (iw - slot * n) / 2;
    var every = Math.max(1, Math.ceil(n / 24));
    layers.forEach(function (l, i) {
      var h = l.macs === null ? 0 : Math.max((l.macs / top) * ih, l.macs > 0 ? 1 : 0);
      var cls = "bar" + (l.flag ? " flagged" : "") + (l.flag === "info" ? " info" : "") +
        (l.counted ? "" : " uncounted");
      var r = svgEl("rect", {x: x0 + i * slot + gap / 2, y: T + ih - h,
        width: Math.max(slot - gap, 1), height: h, rx: Math.min(3, slot / 4), "class": cls,
        "data-layer": l.index}, svg);
      addTitle(r, "#" + l.index + " " + l.name + " (" + l.op + ")\n" + human(l.macs) + " MACs" +
        (l.share === null ? "" : ", " + pct(l.share)) +
        (l.flag ? "\nflagged (" + l.flag + ")" : ""));
      r.addEventListener("click", function () { jumpToRow("m" + mi + "-l" + l.index); });
      if (i % every === 0) {
        svgEl("text", {x: x0 + i * slot + slot / 2, y: T + ih + 16, "text-anchor": "middle"}, svg)
          .textContent = String(l.index);
      }
    });
    svgEl("text", {x: L + iw / 2, y: H - 6, "text-anchor": "middle"}, svg).textContent =
      "layer index (graph order)";
    host.appendChild(svg);
    drawn += 1;
  }

  function arcPath(cx, cy, r0, r1, a0, a1) {
    var large = a1 - a0 > Math.PI ? 1 : 0;
    function pt(r, a) {
      return (cx + r * Math.sin(a)).toFixed(2) + " " + (cy - r * Math.cos(a)).toFixed(2);
    }
    return "M " + pt(r1, a0) + " A " + r1 + " " + r1 + " 0 " + large + " 1 " + pt(r1, a1) +
      " L " + pt(r0, a1) + " A " + r0 + " " + r0 + " 0 " + large + " 0 " + pt(r0, a0) + " Z";
  }

  function shareChart(host, model) {
    var groups = model.by_op, W = 420, H = 60 + Math.max(groups.length, 1) * 22 + 190;
    var svg = svgEl("svg", {viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": "Share of MACs by op type"}, null);
    var cx = W / 2, cy = 100, r1 = 88, r0 = 52, total = 0;
    groups.forEach(function (g) { total += g.macs; });
    var a = 0;
    groups.forEach(function (g, i) {
      var color = PALETTE[i % PALETTE.length], frac = total ? g.macs / total : 0, node;
      if (frac >= 0.9999) {
        node = svgEl("circle", {cx: cx, cy: cy, r: (r0 + r1) / 2, fill: "none", stroke: color,
          "stroke-width": r1 - r0, "class": "slice-ring"}, svg);
      } else if (frac > 0) {
        node = svgEl("path", {d: arcPath(cx, cy, r0, r1, a, a + frac * 2 * Math.PI),
          fill: color, "class": "slice"}, svg);
      }
      if (node) { addTitle(node, g.label + ": " + human(g.macs) + " MACs (" + pct(frac) + ")"); }
      a += frac * 2 * Math.PI;
      var ly = 2 * cy + 24 + i * 22;
      svgEl("rect", {x: 40, y: ly - 10, width: 12, height: 12, rx: 2, fill: color}, svg);
      svgEl("text", {x: 60, y: ly, style: "font-size:12px;fill:#1f2430"}, svg)
        .textContent = g.label;
      svgEl("text", {x: W - 40, y: ly, "text-anchor": "end", style: "font-size:12px"}, svg)
        .textContent = pct(frac) + "  ·  " + human(g.macs);
    });
    var t1 = svgEl("text", {x: cx, y: cy - 2, "text-anchor": "middle",
      style: "font-size:18px;font-weight:700;fill:#1f2430"}, svg);
    t1.textContent = human(total);
    svgEl("text", {x: cx, y: cy + 16, "text-anchor": "middle"}, svg).textContent = "MACs";
    host.appendChild(svg);
    drawn += 1;
  }

  function sortable(table) {
    var heads = table.querySelectorAll("th");
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var num = th.getAttribute("data-type") === "num", body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (x, y) {
          var a = x.cells[col].getAttribute("data-v"), b = y.cells[col].getAttribute("data-v");
          var c;
          if (num) {
            var fa = a === "" ? -Infinity : parseFloat(a);
            var fb = b === "" ? -Infinity : parseFloat(b);
            c = fa - fb;
          } else { c = a < b ? -1 : a > b ? 1 : 0; }
          if (c === 0) {  // ties keep graph order
            return parseInt(x.getAttribute("data-index"), 10) -
              parseInt(y.getAttribute("data-index"), 10);
          }
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  data.models.forEach(function (model, mi) {
    if (!model.layers) { return; }
    var lc = document.querySelector('[data-chart="layers"][data-model="' + mi + '"]');
    var sc = document.querySelector('[data-chart="share"][data-model="' + mi + '"]');
    if (lc) { layerChart(lc, model, mi); }
    if (sc) { shareChart(sc, model); }
  });
  Array.prototype.forEach.call(document.querySelectorAll("table.layers"), sortable);
  document.body.setAttribute("data-charts-drawn", String(drawn));
})();
"""
