// Drives the mcpbus dashboard in headless Chromium (Debian's `chromium`, through playwright-core:
// no browser download) for crates/mcpbus-cli/tests/dashboard_chromium.rs.
//
//   node dashboard.mjs BASE_URL PUBLISH_TOKEN SCREENSHOT_PATH
//
// Env: MCPBUS_CHROMIUM (default /usr/bin/chromium); MCPBUS_DASHBOARD_LOAD_SECS, how long the
// load before the screenshot lasts (default 6). Prints one JSON summary line last.
// Checks: a published event appears in the page's tail within a second (measured in the page),
// the rates chart moves, the topic filter filters; under a steady load, a screenshot is taken.
import { chromium } from "playwright-core";

const [base, token, screenshot] = process.argv.slice(2);
if (!base || !token || !screenshot) {
  console.error("usage: node dashboard.mjs BASE_URL PUBLISH_TOKEN SCREENSHOT_PATH");
  process.exit(2);
}
const executablePath = process.env.MCPBUS_CHROMIUM || "/usr/bin/chromium";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const summary = { ok: false };
let seq = 0;

async function publish(topic, payload, eventId) {
  const r = await fetch(`${base}/publish`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ topic, payload, eventId }),
  });
  if (r.status !== 200) throw new Error(`POST /publish ${topic}: ${r.status} ${await r.text()}`);
}

// Publishes from the page itself and measures, with the page's clock, how long until the
// event's row is in the tail.
async function publishAndTime(page, topic) {
  const id = `dash-${Date.now()}-${seq++}`;
  return page.evaluate(async ({ token, topic, id }) => {
    const body = document.getElementById("tail-body");
    const has = () => body.querySelector(`tr[data-event-id="${id}"]`) !== null;
    const seen = new Promise((resolve) => {
      const obs = new MutationObserver(() => {
        if (has()) { obs.disconnect(); resolve(performance.now()); }
      });
      obs.observe(body, { childList: true });
    });
    const t0 = performance.now();
    const r = await fetch("/publish", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ topic, payload: { probe: id }, eventId: id }),
    });
    const t1 = await Promise.race([seen, new Promise((r) => setTimeout(() => r(null), 5000))]);
    return { id, status: r.status, latencyMs: t1 === null ? null : t1 - t0 };
  }, { token, topic, id });
}

async function waitFor(page, what, fn, arg, timeout = 10000) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    throw new Error(`timed out waiting for ${what}: ${e.message.split("\n")[0]}`);
  }
}

const tailLive = (pattern) =>
  document.getElementById("tail-status").dataset.state === "live" &&
  document.getElementById("tail-status").dataset.pattern === pattern;

async function setFilter(page, pattern) {
  await page.fill("#tail-topic", pattern);
  await page.click("#tail-form button");
  await waitFor(page, `the tail on ${pattern}`, tailLive, pattern);
}

async function run(page) {
  const started = Date.now();
  await page.goto(`${base}/dashboard`);
  await waitFor(page, "the tail to open", tailLive, "#");
  await waitFor(page, "the first snapshot", () =>
    document.querySelectorAll("#topics-body tr").length > 0);
  summary.topics = await page.$$eval("#topics-body tr td:first-child", (tds) => tds.map((t) => t.textContent));

  // 1. A published event shows in the tail within a second.
  const probes = [];
  for (let i = 0; i < 5; i++) probes.push(await publishAndTime(page, "alerts/critical"));
  summary.latenciesMs = probes.map((p) => p.latencyMs);
  summary.maxLatencyMs = Math.max(...probes.map((p) => p.latencyMs ?? Infinity));
  summary.publishStatuses = probes.map((p) => p.status);

  // 2. The chart moves: its path changes and it shows a published rate above zero.
  const before = await page.getAttribute("#chart-pub", "d");
  for (let i = 0; i < 30; i++) {
    await publish("files/src/main.rs", { change: i }, `chart-${Date.now()}-${i}`);
    await sleep(50);
  }
  await waitFor(page, "a published rate on the chart",
    () => Number(document.getElementById("chart").dataset.maxPublished) > 0);
  summary.chartPathChanged = (await page.getAttribute("#chart-pub", "d")) !== before;
  summary.chartMaxPublished = Number(await page.getAttribute("#chart", "data-max-published"));

  // 3. The topic filter filters.
  await setFilter(page, "alerts/+");
  const other = `filtered-out-${Date.now()}`;
  const kept = `filtered-in-${Date.now()}`;
  await publish("build/status", { state: "filtered" }, other);
  await publish("alerts/warning", { state: "kept" }, kept);
  await waitFor(page, "the alerts/warning event", (id) =>
    document.querySelector(`#tail-body tr[data-event-id="${id}"]`) !== null, kept);
  await sleep(300);
  summary.filter = await page.$$eval("#tail-body tr", (rows) => rows.map((r) => r.dataset.topic));
  summary.filteredOut = !summary.filter.includes("build/status");

  // 4. Under a steady load (the test holds a few subscribed sessions), a screenshot.
  await setFilter(page, "#");
  await publish("build/status", { state: "green", commit: "4f2c9e1", durationSecs: 312 }, `b-${Date.now()}`);
  await publish("deploy/status", { env: "production", version: "1.8.2", state: "rolled out" }, `d-${Date.now()}`);
  const topics = ["alerts/critical", "alerts/warning", "files/src/lib.rs", "files/docs/index.md"];
  const until = Date.now() + 1000 * Number(process.env.MCPBUS_DASHBOARD_LOAD_SECS || 6);
  let n = 0;
  while (Date.now() < until) {
    const topic = topics[n % topics.length];
    await publish(topic, { n, note: `load ${n}` }, `load-${Date.now()}-${n}`);
    n++;
    await sleep(20);
  }
  summary.loadEvents = n;
  await sleep(1200); // one more snapshot on the chart
  summary.tailRows = await page.$$eval("#tail-body tr", (rows) => rows.length);
  summary.sessions = Number((await page.textContent("#c-sessions")).replace(/,/g, ""));
  await page.screenshot({ path: screenshot, fullPage: false });
  summary.screenshot = screenshot;
  summary.elapsedMs = Date.now() - started;
  summary.ok = true;
}

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  summary.browser = browser.version();
  await run(page);
  summary.pageErrors = errors;
} catch (e) {
  summary.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
