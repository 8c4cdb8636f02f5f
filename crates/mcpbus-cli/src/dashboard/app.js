// The mcpbus dashboard: plain JavaScript, no framework, no build step.
// Every value from the server goes into the page through textContent or setAttribute, never
// as markup (the Content-Security-Policy forbids inline scripts anyway).
"use strict";

const BASE = document.body.dataset.base;
const POLL_MS = 1000;
const CHART_POINTS = 120;
const TAIL_ROWS = 200;

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function fmt(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 });
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  return `${m}m ${s % 60}s`;
}

// ---- snapshot: counters, topics, retained values, replica and Redis status ----

const rates = { samples: [], points: [], replica: null };

function recordRates(snap) {
  if (rates.replica !== snap.replica.id) {
    // Another process (a restart, another replica): its counters start over.
    rates.samples = [];
    rates.points = [];
    rates.replica = snap.replica.id;
  }
  const now = { t: snap.replica.uptimeMs, p: snap.counters.published, d: snap.counters.delivered };
  const prev = rates.samples[rates.samples.length - 1];
  rates.samples = [now];
  if (!prev || now.t <= prev.t) return;
  const secs = (now.t - prev.t) / 1000;
  rates.points.push({ p: (now.p - prev.p) / secs, d: (now.d - prev.d) / secs });
  if (rates.points.length > CHART_POINTS) rates.points.shift();
}

function pathOf(values, max) {
  const step = 800 / (CHART_POINTS - 1);
  const x0 = 800 - step * (values.length - 1);
  return values
    .map((v, i) => `${i ? "L" : "M"}${(x0 + i * step).toFixed(1)} ${(160 - (v / max) * 150).toFixed(1)}`)
    .join(" ");
}

function drawChart() {
  const pts = rates.points;
  const top = Math.max(1, ...pts.map((p) => Math.max(p.p, p.d)));
  // A round ceiling, so that the scale does not jitter with every point.
  const mag = 10 ** Math.floor(Math.log10(top));
  const max = [1, 2, 5, 10].map((k) => k * mag).find((v) => v >= top);
  $("chart-pub").setAttribute("d", pathOf(pts.map((p) => p.p), max));
  $("chart-del").setAttribute("d", pathOf(pts.map((p) => p.d), max));
  $("chart-max").textContent = `${fmt(max)}/s`;
  const chart = $("chart");
  const last = pts[pts.length - 1] || { p: 0, d: 0 };
  chart.dataset.samples = String(pts.length);
  chart.dataset.lastPublished = last.p.toFixed(2);
  chart.dataset.maxPublished = Math.max(0, ...pts.map((p) => p.p)).toFixed(2);
  $("c-pub-rate").textContent = fmt(last.p);
  $("c-del-rate").textContent = fmt(last.d);
}

function renderHeader(snap) {
  $("server-name").textContent = `${snap.server.name} ${snap.server.version} · ${snap.replica.listen}`;
  $("replica-id").textContent = snap.replica.id;
  $("uptime").textContent = duration(snap.replica.uptimeMs);
  const redis = $("redis");
  const r = snap.redis;
  if (!r.configured) {
    redis.textContent = "in memory (no Redis)";
    redis.className = "pill";
  } else if (r.ok) {
    redis.textContent = `Redis ok · ${r.latencyMs.toFixed(1)} ms · ${r.url}`;
    redis.className = "pill ok";
  } else {
    redis.textContent = `Redis error: ${r.error}`;
    redis.className = "pill bad";
  }
  redis.title = r.prefix ? `key prefix ${r.prefix}` : "";
}

function renderCards(snap) {
  const s = snap.sessions;
  $("c-sessions").textContent = fmt(s.sessions);
  $("c-subscribers").textContent = fmt(s.subscribers);
  $("c-subscriptions").textContent = fmt(s.subscriptions);
  $("c-push").textContent = fmt(s.pushStreams + s.listenStreams);
  $("c-webhooks").textContent = fmt(s.webhookSubscriptions);
  $("c-dropped").textContent = fmt(snap.counters.dropped);
  $("c-log").textContent = fmt(snap.redis.logLength);
  $("totals").textContent =
    `${fmt(snap.counters.published)} published, ${fmt(snap.counters.delivered)} delivered, ` +
    `${fmt(snap.counters.dropped)} dropped`;
}

function renderTopics(snap) {
  fill($("topics-body"), snap.topics.map((t) => {
    const tr = el("tr");
    tr.append(el("td", t.pattern), el("td", t.kind), el("td", t.retained ? "yes" : "no"),
      el("td", fmt(t.published), "num"), el("td", fmt(t.delivered), "num"),
      el("td", t.description || ""));
    return tr;
  }));
  const retained = snap.retained;
  $("retained-count").textContent = retained.total === null
    ? `(unreadable: ${retained.error})`
    : `(${retained.total})`;
  fill($("retained-body"), retained.values.map((v) => {
    const tr = el("tr");
    tr.append(el("td", v.topic), el("td", v.payload, "payload"), el("td", v.source || ""));
    return tr;
  }));
}

async function poll() {
  try {
    const r = await fetch(`${BASE}/api/snapshot`, { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) {
      location.reload(); // shows the login form
      return;
    }
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const snap = await r.json();
    recordRates(snap);
    drawChart();
    renderHeader(snap);
    renderCards(snap);
    renderTopics(snap);
    $("conn").textContent = "live";
    $("conn").className = "pill ok";
  } catch (e) {
    $("conn").textContent = `server unreachable (${e.message})`;
    $("conn").className = "pill bad";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// ---- live tail (Server-Sent Events) ----

const tail = { source: null, count: 0 };

function addTailRow(item) {
  const tr = el("tr", null, "fresh");
  tr.setAttribute("data-event-id", item.eventId || "");
  tr.setAttribute("data-topic", item.topic);
  const at = new Date(item.publishedAt);
  const time = at.toLocaleTimeString("en-GB", { hour12: false }) +
    "." + String(at.getMilliseconds()).padStart(3, "0");
  tr.append(el("td", time), el("td", item.topic), el("td", item.priority || "normal"),
    el("td", item.payload, "payload"));
  const body = $("tail-body");
  body.prepend(tr);
  while (body.rows.length > TAIL_ROWS) body.deleteRow(-1);
  tail.count += 1;
  $("tail-count").textContent = fmt(tail.count);
  $("tail-lost").textContent = fmt(item.lost);
}

function connectTail(pattern) {
  if (tail.source) tail.source.close();
  tail.count = 0;
  $("tail-body").replaceChildren();
  $("tail-count").textContent = "0";
  $("tail-lost").textContent = "0";
  const status = $("tail-status");
  status.textContent = "connecting…";
  status.dataset.state = "connecting";
  const url = `${BASE}/api/events?topic=${encodeURIComponent(pattern)}`;
  const source = new EventSource(url, { withCredentials: true });
  tail.source = source;
  source.addEventListener("ready", (e) => {
    status.textContent = `live on ${JSON.parse(e.data).topic}`;
    status.dataset.state = "live";
    status.dataset.pattern = pattern;
  });
  source.onmessage = (e) => addTailRow(JSON.parse(e.data));
  source.onerror = () => {
    const closed = source.readyState === EventSource.CLOSED;
    status.textContent = closed ? `refused: is ${pattern} a valid pattern?` : "reconnecting…";
    status.dataset.state = closed ? "closed" : "connecting";
  };
}

$("tail-form").addEventListener("submit", (e) => {
  e.preventDefault();
  connectTail($("tail-topic").value.trim() || "#");
});

connectTail($("tail-topic").value.trim() || "#");
poll();
