// liqsignals web view: heatmap (time x price) on a canvas, liquidation map, read-outs.
// No framework, no CDN: the server sends the matrix as base64 uint8 at screen resolution.
// The same file renders the static export (liqsignals heatmap --out x.html): there the page
// carries its data in <script type="application/json" id="liqsignals-data"> and asks no server.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token");
  const EMBED = document.getElementById("liqsignals-data");
  const STATIC = EMBED ? JSON.parse(EMBED.textContent) : null;
  const M = { left: 74, right: 8, top: 8, bottom: 26 };
  const STOPS = {
    "default": [[0, "#000000"], [0.10, "#0a1238"], [0.30, "#1d3f9e"], [0.55, "#13a08c"], [0.78, "#6fd34f"], [1, "#fff21a"]],
    "cividis": [[0, "#00224e"], [0.25, "#3d4d6e"], [0.5, "#7c7b78"], [0.75, "#bcaf6f"], [1, "#fee838"]],
    "viridis": [[0, "#440154"], [0.2, "#414487"], [0.4, "#2a788e"], [0.6, "#22a884"], [0.8, "#7ad151"], [1, "#fde725"]],
    "magma": [[0, "#000004"], [0.2, "#3b0f70"], [0.4, "#8c2981"], [0.6, "#de4968"], [0.8, "#fe9f6d"], [1, "#fcfdbf"]],
  };
  const S = window.liqsignals = {
    loads: 0, lastCandle: null, firstPaintMs: null, payloadBytes: null, hm: null, map: null,
    zoom: null, pageId: Math.random().toString(36).slice(2), trades: [], errors: [],
    static: STATIC !== null, cells: 0, pending: 0,
  };
  let meta = null;

  function api(path, params) {
    const q = new URLSearchParams(params);
    if (token) q.set("token", token);
    return fetch(path + "?" + q.toString(), { cache: "no-store" }).then(async (r) => {
      const text = await r.text();
      if (!r.ok) throw new Error(r.status + " " + text);
      return { data: JSON.parse(text), bytes: text.length };
    });
  }

  function lut(name) {
    const stops = STOPS[name] || STOPS["default"];
    const rgb = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
    const out = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const x = i / 255;
      let k = 0;
      while (k < stops.length - 2 && x > stops[k + 1][0]) k++;
      const [x0, c0] = stops[k], [x1, c1] = stops[k + 1];
      const f = (x - x0) / (x1 - x0), a = rgb(c0), b = rgb(c1);
      for (let j = 0; j < 3; j++) out[i * 3 + j] = a[j] + (b[j] - a[j]) * f;
    }
    return out;
  }

  function fmtMoney(v) {
    if (v === null || !isFinite(v)) return "-";
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + "B";
    if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return v.toFixed(0);
  }
  const fmtPrice = (p) => (p === null || !isFinite(p)) ? "-" : (p >= 100 ? p.toFixed(1) : p.toPrecision(5));
  const fmtTime = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";

  function params() {
    const ex = Array.from($("exchange").selectedOptions).map((o) => o.value);
    const p = {
      exchange: ex.join(","), pair: $("pair").value, timeframe: $("timeframe").value,
      preset: $("preset").value, mode: $("mode").value,
    };
    if ($("window").value) p.window = $("window").value;
    return p;
  }

  function fill(sel, values, keep) {
    const old = keep ? sel.value : null;
    sel.innerHTML = "";
    for (const v of values) {
      const o = document.createElement("option");
      o.value = v; o.textContent = v === "" ? "(preset)" : v;
      sel.appendChild(o);
    }
    if (old !== null && values.includes(old)) sel.value = old;
  }

  function onExchange() {
    const ex = Array.from($("exchange").selectedOptions).map((o) => o.value);
    const pairs = Object.keys(meta.catalogue[ex[0]] || {});
    fill($("pair"), pairs, true);
    onPair();
  }
  function onPair() {
    const ex = Array.from($("exchange").selectedOptions).map((o) => o.value)[0];
    const tfs = (meta.catalogue[ex] || {})[$("pair").value] || [];
    fill($("timeframe"), tfs, true);
  }

  // ------------------------------------------------------------------ heatmap
  const canvas = $("heatmap");
  const geom = () => {
    const r = canvas.getBoundingClientRect();
    return { W: Math.max(100, Math.floor(r.width)), H: Math.max(100, Math.floor(r.height)) };
  };

  function bytesOf(b64) {
    const bin = atob(b64);
    const q = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) q[i] = bin.charCodeAt(i);
    return q;
  }
  function decode(hm) {
    hm.q = bytesOf(hm.matrix);
    hm.llo = Math.log(hm.edges_lo);
    hm.lhi = Math.log(hm.edges_hi);
    hm.cellCache = new Map();
  }
  // the static export's exact cells: gzip of little-endian float32, rows x cols, top row first
  async function unpackValues(b64) {
    const stream = new Blob([bytesOf(b64)]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Float32Array(await new Response(stream).arrayBuffer());
  }

  function draw() {
    const hm = S.hm;
    if (!hm) return;
    const { W, H } = geom();
    canvas.width = W; canvas.height = H;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#0b0c10"; ctx.fillRect(0, 0, W, H);
    const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    const off = document.createElement("canvas");
    off.width = hm.cols; off.height = hm.rows;
    const octx = off.getContext("2d");
    const img = octx.createImageData(hm.cols, hm.rows);
    const L = lut($("colors").value);
    for (let i = 0, n = hm.q.length; i < n; i++) {
      const v = hm.q[i] * 3;
      img.data[i * 4] = L[v]; img.data[i * 4 + 1] = L[v + 1]; img.data[i * 4 + 2] = L[v + 2];
      img.data[i * 4 + 3] = 255;
    }
    octx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, M.left, M.top, pw, ph);
    const X = (j) => M.left + (j + 0.5) * pw / hm.cols;
    const Y = (p) => M.top + ph * (1 - (Math.log(p) - hm.llo) / (hm.lhi - hm.llo));
    hm.X = X; hm.Y = Y; hm.pw = pw; hm.ph = ph;
    // candles (every column; thin when there are more columns than pixels)
    const cw = Math.max(1, pw / hm.cols * 0.7);
    for (let j = 0; j < hm.cols; j++) {
      if (hm.close[j] === null) continue;
      const up = hm.close[j] >= hm.open[j];
      ctx.strokeStyle = ctx.fillStyle = up ? "#eef0f4" : "#ff3b5c";
      const x = X(j);
      ctx.beginPath(); ctx.moveTo(x, Y(hm.high[j])); ctx.lineTo(x, Y(hm.low[j])); ctx.lineWidth = 1; ctx.stroke();
      if (cw > 2) {
        const y0 = Y(Math.max(hm.open[j], hm.close[j])), y1 = Y(Math.min(hm.open[j], hm.close[j]));
        ctx.fillRect(x - cw / 2, y0, cw, Math.max(1, y1 - y0));
      }
    }
    if ($("show-trades").checked) drawTrades(ctx, hm);
    // axes
    ctx.fillStyle = "#d8dce6"; ctx.font = "11px sans-serif"; ctx.textAlign = "right";
    for (let k = 0; k <= 6; k++) {
      const lp = hm.llo + (hm.lhi - hm.llo) * k / 6;
      const y = M.top + ph * (1 - k / 6);
      ctx.fillText(fmtPrice(Math.exp(lp)), M.left - 4, y + 4);
    }
    ctx.textAlign = "center";
    for (let k = 0; k <= 4; k++) {
      const j = Math.min(hm.cols - 1, Math.round((hm.cols - 1) * k / 4));
      ctx.fillText(fmtTime(hm.times[j]).slice(0, 16), Math.min(Math.max(X(j), M.left + 50), W - 50), H - 8);
    }
  }

  function drawTrades(ctx, hm) {
    const t0 = hm.times[0], t1 = hm.times[hm.cols - 1];
    const xOf = (ms) => M.left + (ms - t0) / Math.max(1, t1 - t0) * hm.pw;
    for (const t of S.trades) {
      if (t.close < t0 || t.open > t1) continue;
      ctx.strokeStyle = (t.profit_ratio || 0) >= 0 ? "#39d98a" : "#ff3b5c";
      ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(xOf(t.open), hm.Y(t.open_rate)); ctx.lineTo(xOf(t.close), hm.Y(t.close_rate)); ctx.stroke();
      ctx.fillStyle = t.is_short ? "#f6465d" : "#2ebd85";
      ctx.beginPath(); ctx.arc(xOf(t.open), hm.Y(t.open_rate), 3, 0, 7); ctx.fill();
    }
  }

  async function loadHeatmap() {
    if (STATIC) { draw(); S.loads += 1; return; }
    S.pending += 1;
    try { await fetchHeatmap(); } finally { S.pending -= 1; }
  }
  async function fetchHeatmap() {
    const { W, H } = geom();
    const p = params();
    p.span = $("span").value;
    p.w = Math.max(16, W - M.left - M.right);
    p.h = Math.max(16, H - M.top - M.bottom);
    if (S.zoom) { p.start = S.zoom[0]; p.end = S.zoom[1]; }
    const t0 = performance.now();
    $("state").textContent = "loading...";
    const r = await api("api/heatmap", p);
    decode(r.data);
    r.data.req = p;
    S.hm = r.data;
    S.payloadBytes = r.bytes;
    S.lastCandle = r.data.last;
    if ($("show-trades").checked && meta.trades) {
      S.trades = (await api("api/trades", params())).data.trades;
    }
    draw();
    S.loads += 1;
    if (S.firstPaintMs === null) S.firstPaintMs = performance.now();
    S.lastPaintMs = performance.now() - t0;
    $("state").textContent = "last candle " + fmtTime(r.data.last);
    $("state").dataset.last = String(r.data.last);
    await loadMap(null);
  }

  // ------------------------------------------------------------------ map + read-outs
  const mapCanvas = $("map");
  let mapTimer = null, mapAt = undefined;
  async function loadMap(at) {
    if (STATIC) return;
    const p = params();
    if (at !== null) p.at = at;
    mapAt = at;
    const r = await api("api/map", p);
    if (mapAt !== at) return;
    S.map = r.data;
    drawMap(r.data);
    readout(r.data);
  }

  function drawMap(m) {
    const rect = mapCanvas.getBoundingClientRect();
    const W = Math.max(100, Math.floor(rect.width)), H = Math.max(100, Math.floor(rect.height));
    mapCanvas.width = W; mapCanvas.height = H;
    const ctx = mapCanvas.getContext("2d");
    ctx.fillStyle = "#0b0c10"; ctx.fillRect(0, 0, W, H);
    const b = m.buckets, n = (b.price || []).length;
    ctx.fillStyle = "#d8dce6"; ctx.font = "11px sans-serif";
    ctx.fillText("map at " + (m.time ? fmtTime(m.time) : "-"), 6, 14);
    if (!n) return;
    const lo = Math.log(b.low[0]), hi = Math.log(b.high[n - 1]);
    const Y = (p) => 22 + (H - 30) * (1 - (Math.log(p) - lo) / (hi - lo));
    let vmax = 0;
    for (let i = 0; i < n; i++) vmax = Math.max(vmax, b.long[i], b.short[i]);
    const left = 64, bw = W - left - 6;
    for (let i = 0; i < n; i++) {
      const y0 = Y(b.high[i]), y1 = Y(b.low[i]);
      const v = b.long[i] > 0 ? b.long[i] : b.short[i];
      if (!(v > 0)) continue;
      ctx.fillStyle = b.long[i] > 0 ? "#f6465d" : "#2ebd85";
      ctx.fillRect(left, y0, bw * v / (vmax || 1), Math.max(1, y1 - y0 - 0.5));
    }
    ctx.strokeStyle = "#fff21a"; ctx.beginPath(); ctx.moveTo(left, Y(m.price)); ctx.lineTo(W, Y(m.price)); ctx.stroke();
    ctx.fillStyle = "#d8dce6"; ctx.textAlign = "right";
    for (let k = 0; k <= 4; k++) {
      const p = Math.exp(lo + (hi - lo) * k / 4);
      ctx.fillText(fmtPrice(p), left - 4, Y(p) + 4);
    }
    ctx.textAlign = "left";
  }

  function readout(m) {
    const r = m.readout || {};
    const rows = [
      ["close", fmtPrice(m.price)],
      ["nearest long cluster", fmtPrice(r.liq_long_cluster_price) + "  (" + fmtMoney(r.liq_long_cluster_size) + ")"],
      ["nearest short cluster", fmtPrice(r.liq_short_cluster_price) + "  (" + fmtMoney(r.liq_short_cluster_size) + ")"],
      ["magnet", fmtPrice(r.liq_magnet_price) + (r.liq_magnet_side === -1 ? " (longs below)" : r.liq_magnet_side === 1 ? " (shorts above)" : "")],
      ["gap above", r.liq_gap_above_pct == null ? "-" : r.liq_gap_above_pct.toFixed(2) + " %"],
      ["gap below", r.liq_gap_below_pct == null ? "-" : r.liq_gap_below_pct.toFixed(2) + " %"],
      ["long band / short band", fmtMoney(r.liq_long_band) + " / " + fmtMoney(r.liq_short_band)],
    ];
    for (const c of m.clusters || []) {
      rows.push([c.side + " cluster", fmtPrice(c.price) + " " + fmtMoney(c.notional) + " (" + c.distance_pct.toFixed(2) + " %)"]);
    }
    const table = document.createElement("table");
    for (const [k, v] of rows) {
      const tr = table.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = v;
    }
    $("readout").replaceChildren(table);
  }

  // ------------------------------------------------------------------ interaction
  let drag = null;
  function cellAt(ev) {
    const hm = S.hm;
    if (!hm || !hm.X) return null;
    const rect = canvas.getBoundingClientRect();
    const x = (ev.clientX - rect.left) * canvas.width / Math.max(1, rect.width);
    const y = (ev.clientY - rect.top) * canvas.height / Math.max(1, rect.height);
    const j = Math.floor((x - M.left) / hm.pw * hm.cols);
    const i = Math.floor((y - M.top) / hm.ph * hm.rows);
    if (j < 0 || j >= hm.cols || i < 0 || i >= hm.rows) return null;
    const lp = hm.lhi - (hm.lhi - hm.llo) * (i + 0.5) / hm.rows;
    return { x, y, i, j, time: hm.times[j], price: Math.exp(lp) };
  }

  // hover: the exact notional of the hovered cell, from the matrix the server computed for this
  // heatmap (/api/cell) or, in the static export, from the float32 cells carried in the file
  let cellTimer = null, hovered = null;
  const quote = () => { const m = /\/([^:]+)/.exec(S.hm.pair || ""); return m ? m[1] : ""; };
  function hoverText(c, v) {
    const hm = S.hm;
    const n = v === undefined ? "..." : Math.round(v).toLocaleString("en-US") + " " + quote() + " (" + fmtMoney(v) + ")";
    return fmtTime(c.time) + "\nprice " + fmtPrice(c.price) + "\nnotional " + n + "\n" + hm.mode +
      ", per " + hm.row_bp.toFixed(0) + " bp row";
  }
  function showNotional(c, v) {
    const box = $("hover");
    if (hovered === null || hovered.i !== c.i || hovered.j !== c.j || hovered.hm !== S.hm) return;
    box.textContent = hoverText(c, v);
    box.dataset.notional = String(v);
    S.cells += 1;
  }
  async function fetchCell(c) {
    const hm = S.hm, key = c.i + ":" + c.j;
    let v = hm.cellCache.get(key);
    if (v === undefined) {
      const p = Object.assign({}, hm.req, { col: c.j, row: c.i });
      if (hm.view) { p.start = hm.view.start; p.end = hm.view.end; }
      const r = await api("api/cell", p);
      v = r.data.notional;
      hm.cellCache.set(key, v);
    }
    showNotional(c, v);
  }
  canvas.addEventListener("mousemove", (ev) => {
    const c = cellAt(ev), box = $("hover");
    if (!c) { box.style.display = "none"; hovered = null; return; }
    const same = hovered !== null && hovered.i === c.i && hovered.j === c.j && hovered.hm === S.hm;
    box.style.display = "block";
    box.style.left = Math.min(c.x + 14, canvas.clientWidth - 220) + "px";
    box.style.top = (c.y + 14) + "px";
    if (same) return;
    hovered = { i: c.i, j: c.j, hm: S.hm };
    box.textContent = hoverText(c, undefined);
    box.dataset.time = String(c.time);
    box.dataset.price = String(c.price);
    box.dataset.col = String(c.j);
    box.dataset.row = String(c.i);
    delete box.dataset.notional;
    clearTimeout(cellTimer);
    if (S.hm.values) showNotional(c, S.hm.values[c.i * S.hm.cols + c.j]);
    else cellTimer = setTimeout(() => fetchCell(c).catch(report), 40);
    if (STATIC) return;
    clearTimeout(mapTimer);
    mapTimer = setTimeout(() => loadMap(c.time).catch(report), 150);
  });
  canvas.addEventListener("mouseleave", () => { $("hover").style.display = "none"; hovered = null; });
  canvas.addEventListener("mousedown", (ev) => { const c = cellAt(ev); if (c) drag = c; });
  canvas.addEventListener("mouseup", (ev) => {
    const c = cellAt(ev);
    if (!STATIC && drag && c && Math.abs(c.j - drag.j) > 3) {
      S.zoom = [Math.min(drag.time, c.time), Math.max(drag.time, c.time)];
      loadHeatmap().catch(report);
    }
    drag = null;
  });
  $("reset").addEventListener("click", () => { S.zoom = null; loadHeatmap().catch(report); });
  $("png").addEventListener("click", () => {
    const a = document.createElement("a");
    a.download = "liqsignals-" + $("pair").value.replace(/[^A-Za-z0-9]+/g, "_") + "-" + $("timeframe").value + ".png";
    a.href = canvas.toDataURL("image/png");
    a.click();
  });
  function report(e) { S.errors.push(String(e)); $("state").textContent = String(e).slice(0, 200); }

  async function poll() {
    try {
      const r = await api("api/status", params());
      if (S.lastCandle !== null && r.data.last !== S.lastCandle && !S.zoom) await loadHeatmap();
    } catch (e) { report(e); }
    setTimeout(poll, meta.poll_s * 1000);
  }

  // the static export: one heatmap (and the map at its last column) carried in the page
  async function initStatic() {
    meta = STATIC.meta;
    if (STATIC.title) document.title = STATIC.title;
    const one = (id, v) => { fill($(id), [v], false); $(id).disabled = true; };
    const ex = $("exchange");
    fill(ex, Object.keys(meta.catalogue), false);
    for (const o of ex.options) o.selected = true;
    ex.size = 1; ex.disabled = true;
    const pair = Object.keys(Object.values(meta.catalogue)[0])[0];
    one("pair", pair);
    one("timeframe", Object.values(meta.catalogue)[0][pair][0]);
    one("span", meta.spans[0]); one("window", meta.windows[0]);
    one("preset", meta.presets[0]); one("mode", meta.modes[0]);
    fill($("colors"), meta.colors, false);
    if (meta.color && meta.colors.includes(meta.color)) $("colors").value = meta.color;
    $("show-trades").disabled = !meta.trades;
    $("show-trades").checked = !!meta.trades;
    $("reset").style.display = "none";
    const hm = STATIC.heatmap;
    decode(hm);
    hm.values = await unpackValues(STATIC.values);
    S.hm = hm;
    S.lastCandle = hm.last;
    S.trades = STATIC.trades || [];
    $("colors").addEventListener("change", draw);
    $("show-trades").addEventListener("change", draw);
    $("state").textContent = STATIC.note || "";
    $("state").title = STATIC.note || "";
    if (STATIC.map) { S.map = STATIC.map; drawMap(STATIC.map); readout(STATIC.map); }
    else document.querySelector("aside").style.display = "none";
    follow(draw);
    draw();
    S.loads = 1;
    S.firstPaintMs = performance.now();
  }

  async function init() {
    if (STATIC) return initStatic();
    meta = (await api("api/meta", {})).data;
    const ex = $("exchange");
    fill(ex, Object.keys(meta.catalogue), false);
    ex.size = Math.min(3, ex.options.length);
    ex.options[0].selected = true;
    fill($("span"), meta.spans, false); $("span").value = "3M";
    fill($("window"), ["", ...meta.windows], false);
    fill($("preset"), meta.presets, false);
    fill($("mode"), meta.modes, false); $("mode").value = "combined";
    fill($("colors"), meta.colors, false);
    $("show-trades").disabled = !meta.trades;
    // initial choices from the address (?pair=ETH/USDT:USDT&timeframe=15m&span=1y ...)
    const url = new URLSearchParams(location.search);
    const pick = (id) => {
      const v = url.get(id);
      if (v !== null && Array.from($(id).options).some((o) => o.value === v)) $(id).value = v;
    };
    if (url.get("exchange")) {
      const want = url.get("exchange").split(",");
      for (const o of ex.options) o.selected = want.includes(o.value);
      if (!ex.selectedOptions.length) ex.options[0].selected = true;
    }
    for (const id of ["span", "window", "preset", "mode", "colors"]) pick(id);
    onExchange();
    pick("pair"); onPair(); pick("timeframe");
    ex.addEventListener("change", () => { onExchange(); reload(); });
    $("pair").addEventListener("change", () => { onPair(); reload(); });
    for (const id of ["timeframe", "span", "window", "preset", "mode", "show-trades"]) $(id).addEventListener("change", reload);
    $("colors").addEventListener("change", draw);
    follow(reload);
    await loadHeatmap();
    setTimeout(poll, meta.poll_s * 1000);
  }
  // redraw (or, on a server, fetch again at the new resolution) when the plot changes size
  function follow(fn) {
    new ResizeObserver(() => {
      const { W, H } = geom();
      if (!S.hm || (Math.abs(W - canvas.width) <= 1 && Math.abs(H - canvas.height) <= 1)) return;
      clearTimeout(S.rt); S.rt = setTimeout(fn, 200);
    }).observe($("plot"));
  }
  function reload() { S.zoom = null; loadHeatmap().catch(report); }
  init().catch(report);
})();
