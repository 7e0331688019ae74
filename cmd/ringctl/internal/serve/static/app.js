// The framering web view: polls the server's JSON API and the newest frame.
// No framework, no build step; everything comes from the same server.
"use strict";

const FRAME_MS = 250, RING_MS = 1000, LIST_MS = 2000;
const $ = (sel, el = document) => el.querySelector(sel);
let current = null;      // the ring shown
let frameURL = null;     // the blob: URL the <img> shows
let lastFrame = null;    // {seq, epoch, width, height, defects}

function ringFromHash() {
  const m = /^#ring=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(r.status + " " + (await r.text()).trim());
  return r.json();
}

function fmtDur(ns) {
  if (!(ns > 0)) return "-";
  const s = ns / 1e9;
  if (s >= 3600) return (s / 3600).toFixed(1) + " h";
  if (s >= 60) return (s / 60).toFixed(1) + " min";
  if (s >= 1) return s.toFixed(2) + " s";
  if (s >= 1e-3) return (s * 1e3).toFixed(2) + " ms";
  return (s * 1e6).toFixed(1) + " µs";
}

function setK(key, text, cls) {
  for (const el of document.querySelectorAll(`#ring [data-k="${key}"]`)) {
    el.textContent = text;
    el.className = cls || (el.classList.contains("muted") ? "muted" : "");
  }
}

async function refreshList() {
  try {
    const rings = await getJSON("/api/rings");
    $("#conn").textContent = "";
    const nav = $("#rings");
    nav.replaceChildren();
    for (const r of rings) {
      const a = document.createElement("a");
      a.href = "#ring=" + encodeURIComponent(r.name);
      a.dataset.ring = r.name;
      const dot = document.createElement("span");
      dot.className = "dot " + (r.stalled ? "stalled" : r.status);
      a.append(dot, r.name);
      a.title = r.status + (r.error ? ": " + r.error : "");
      if (r.name === current) a.className = "on";
      nav.append(a);
    }
    if ((!current || !rings.some(r => r.name === current)) && rings.length > 0 && !ringFromHash()) {
      location.hash = "#ring=" + encodeURIComponent(rings[0].name);
    }
    if (rings.length === 0) {
      $("#empty").textContent = "No rings on this host yet (waiting for a producer).";
    }
  } catch (e) {
    $("#conn").textContent = "server unreachable: " + e.message;
  }
}

function spark(svg, ys, ups) {
  const max = Math.max(1e-9, ...ys);
  const n = Math.max(ys.length - 1, 1);
  svg.replaceChildren();
  let pts = [];
  const flush = () => {
    if (pts.length > 0) {
      const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      pl.setAttribute("points", pts.join(" "));
      svg.append(pl);
    }
    pts = [];
  };
  ys.forEach((y, i) => {
    if (!ups[i]) { flush(); return; }
    pts.push((i * 300 / n).toFixed(1) + "," + (38 - (y / max) * 36).toFixed(1));
  });
  flush();
  return max;
}

async function refreshRing() {
  if (!current) return;
  const started = Date.now();
  let d;
  try {
    d = await getJSON("/api/rings/" + encodeURIComponent(current));
  } catch (e) {
    setK("status", e.message, "bad");
    return;
  }
  $("#title").textContent = "Ring " + d.name;
  const r = d.report;
  let status = d.status + (d.error ? ": " + d.error : "");
  let cls = d.status === "live" ? "" : "warn";
  if (r && r.producer.stalled) { status = "STALLED (" + d.status + ")"; cls = "bad"; }
  setK("status", status, cls);
  $("#ring").dataset.status = d.status;
  if (r) {
    const p = r.producer;
    setK("pid", "pid " + p.pid);
    setK("epoch", p.epoch);
    setK("state", p.state);
    setK("source", p.source);
    setK("heartbeat", fmtDur(p.heartbeat_age_ns), p.stalled ? "bad" : "");
    setK("period", fmtDur(p.heartbeat_period_ns));
    setK("uptime", fmtDur(p.uptime_ns));
    setK("published", String(p.published));
    setK("rate", r.window_ns > 0 ? p.rate.toFixed(1) : "-");
    setK("dropped", String(r.drops.total), r.drops.total > 0 ? "warn" : "");
    setK("drop_rate", r.window_ns > 0 ? r.drops.rate.toFixed(1) : "-");
    const causes = Object.entries(r.drops.by_cause || {}).filter(([, n]) => n > 0).map(([c, n]) => c + " " + n);
    setK("causes", causes.length ? "(" + causes.join(", ") + ")" : "");
    const sc = r.slot_counts;
    setK("slots", `${r.slots} × ${(r.slot_capacity / 1024).toFixed(0)} KiB: ${sc.free} free, ${sc.writing} writing, ${sc.published} published, ${sc.held} held (quota ${r.hold_quota})`);
    setK("churn", `evictions ${r.evictions}, detaches ${r.detaches}, reclaims ${r.reclaims}, revoked holds ${r.revoked_holds}`);
    const tb = $("#consumers tbody");
    tb.replaceChildren();
    for (const c of r.consumers) {
      const tr = document.createElement("tr");
      tr.dataset.entry = c.entry;
      const cells = [
        ["entry", c.entry], ["name", c.name], ["pid", c.pid], ["mode", c.mode],
        ["state", c.state + (c.evict_reason ? " (" + c.evict_reason + ")" : "")],
        ["lag", c.lag], ["delivered", c.delivered], ["rate", r.window_ns > 0 ? c.rate.toFixed(1) + "/s" : "-"],
        ["skipped", c.skipped], ["missed", c.missed], ["held", c.held],
        ["slots", c.held_slots.length ? c.held_slots.join(",") : "-"], ["latency", fmtDur(c.latency_ns)],
        ["block_drops", c.block_drops], ["revoked", c.revoked_holds + c.revoked_seen],
      ];
      for (const [k, v] of cells) {
        const td = document.createElement("td");
        td.dataset.k = k;
        td.textContent = String(v);
        if (k === "state" && c.state !== "active") td.className = "bad";
        tr.append(td);
      }
      tb.append(tr);
    }
  }
  // When the figures shown were asked for (tests compare them with the ring).
  $("#ring").dataset.fetched = String(started);
  const h = d.history;
  setK("rate-max", "max " + spark($("#spark-rate"), h.rate, h.up).toFixed(0));
  setK("drops-max", "max " + spark($("#spark-drops"), h.drop_rate, h.up).toFixed(0));
}

function drawOverlay() {
  const img = $("#frame"), cv = $("#overlay");
  const w = img.clientWidth, h = img.clientHeight;
  cv.width = w; cv.height = h;
  const ctx = cv.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const f = lastFrame;
  if (!f || !f.defects || !f.defects.boxes) return;
  const sx = w / f.width, sy = h / f.height;
  ctx.lineWidth = 2;
  for (const b of f.defects.boxes) {
    ctx.strokeStyle = b.bright ? "#ff3b30" : "#00c8ff";
    ctx.strokeRect(b.x * sx - 2, b.y * sy - 2, b.w * sx + 4, b.h * sy + 4);
  }
}

async function refreshFrame() {
  if (!current) return;
  const img = $("#frame");
  try {
    const q = $("#levels").checked ? "?levels=1" : "";
    const r = await fetch("/api/rings/" + encodeURIComponent(current) + "/frame" + q, { cache: "no-store" });
    if (!r.ok) {
      $("#caption").textContent = "no frame: " + (await r.text()).trim();
      return;
    }
    const hd = r.headers;
    const blob = await r.blob();
    const url = URL.createObjectURL(blob);
    await new Promise((ok) => { img.onload = ok; img.onerror = ok; img.src = url; });
    if (frameURL) URL.revokeObjectURL(frameURL);
    frameURL = url;
    let defects = null;
    try { defects = JSON.parse(hd.get("X-Frame-Defects") || "null"); } catch (e) { defects = null; }
    lastFrame = {
      seq: hd.get("X-Frame-Seq"), epoch: hd.get("X-Frame-Epoch"),
      width: +hd.get("X-Frame-Width"), height: +hd.get("X-Frame-Height"), defects,
    };
    img.dataset.seq = lastFrame.seq;
    img.dataset.epoch = lastFrame.epoch;
    let cap = `frame ${lastFrame.seq} (id ${hd.get("X-Frame-Id")}) · ${lastFrame.width}×${lastFrame.height} ${hd.get("X-Frame-Format")} · epoch ${lastFrame.epoch}`;
    if (hd.has("X-Frame-Defects")) {
      cap += defects ? ` · ${defects.boxes.length} defects` : " · not analyzed";
    }
    $("#caption").textContent = cap;
    drawOverlay();
  } catch (e) {
    $("#caption").textContent = "no frame: " + e.message;
  }
}

// loop runs fn every ms, never two at once, whatever fn throws.
function loop(fn, ms) {
  const tick = async () => {
    try { await fn(); } catch (e) { console.error(e); }
    setTimeout(tick, ms);
  };
  tick();
}

function select() {
  current = ringFromHash();
  $("#ring").hidden = !current;
  $("#empty").hidden = !!current;
  for (const a of document.querySelectorAll("#rings a")) a.className = a.dataset.ring === current ? "on" : "";
  lastFrame = null;
  refreshRing();
  refreshFrame();
}

window.addEventListener("hashchange", select);
window.addEventListener("resize", drawOverlay);
select();
loop(refreshList, LIST_MS);
loop(refreshRing, RING_MS);
loop(refreshFrame, FRAME_MS);
