// Nazar dashboard: hosts, their metrics as charts, and alerts. Plain
// JavaScript against the public API, without dependencies or a build step.
// The API key is kept in this browser's localStorage only and sent as a
// bearer token to the API of the server that served this page. Data from the
// API is only ever inserted as text (textContent, text nodes, attributes),
// never parsed as HTML.
"use strict";

const KEY_STORAGE = "nazar.key";
const REFRESH_MS = 30000;
const TIMEOUT_MS = 15000;
// Range (seconds) → query step in seconds; null asks for the raw samples.
const STEPS = { 3600: null, 21600: 60, 86400: 300, 604800: 1800, 2592000: 7200 };
const COLORS = ["#0f766e", "#2563eb", "#c2410c", "#7c3aed", "#be185d", "#4d7c0f", "#0e7490",
  "#a16207"];
const UNITS = [
  [/_bytes_per_sec$/, "bytes/s"], [/_ops_per_sec$/, "ops/s"], [/_errors_per_sec$/, "errors/s"],
  [/_drops_per_sec$/, "packets/s"], [/_per_sec(ond)?$/, "/s"], [/_percent$/, "%"],
  [/_bytes(_total)?$/, "bytes"], [/_seconds(_total)?$/, "s"], [/^system\.load\d+$/, "load"],
];

const $ = (sel) => document.querySelector(sel);
const state = {
  key: readKey(), view: "hosts", host: null, metric: null, alertId: null, authFailed: false,
  busy: false, lastRefresh: 0, chart: null, seq: { hosts: 0, detail: 0, chart: 0, alerts: 0 },
};

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

function readKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ""; } catch (e) { return ""; }
}

function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
  } catch (e) { /* storage disabled: the key lives until the page is closed */ }
}

/** Creates an element; string children become text nodes, never HTML. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) node.setAttribute(k, v);
  node.append(...children.filter((c) => c != null));
  return node;
}

function say(text) {
  const m = $("#message");
  m.textContent = text || "";
  m.hidden = !text;
}

function empty(sel, text) {
  $(sel).textContent = text || "";
  $(sel).hidden = !text;
}

async function api(path) {
  if (!state.key) throw new ApiError("no key", 0);
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  let r;
  try {
    r = await fetch(path, {
      headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" },
      signal: ctrl.signal, cache: "no-store", credentials: "omit",
    });
  } catch (e) {
    throw new ApiError(ctrl.signal.aborted
      ? `The API did not answer within ${TIMEOUT_MS / 1000} s.`
      : "Cannot reach the Nazar API: the server is down or the network is unavailable.", -1);
  } finally {
    clearTimeout(timer);
  }
  if (!r.ok) {
    let detail = "";
    try {
      const body = await r.json();
      detail = body.detail || body.title || "";
    } catch (e) { /* not JSON */ }
    const more = detail ? `: ${detail}${/[.!?]$/.test(detail) ? "" : "."}` : ".";
    const text = {
      401: `The API key was rejected (HTTP 401)${more} Check the key and enter it again.`,
      403: `This API key lacks the read scope (HTTP 403)${more}`,
      503: `The service is temporarily unavailable (HTTP 503)${more} Retrying.`,
    }[r.status] || `The API answered HTTP ${r.status}${more}`;
    throw new ApiError(text, r.status);
  }
  return r.json();
}

// ---- formatting --------------------------------------------------------------

function unitOf(metric) {
  for (const [re, unit] of UNITS) if (re.test(metric)) return unit;
  return "";
}

function num(x) {
  const a = Math.abs(x);
  return new Intl.NumberFormat(undefined, {
    maximumSignificantDigits: 4, notation: a >= 1e6 || (a > 0 && a < 1e-3) ? "compact" : "standard",
  }).format(x);
}

function fmt(v, unit) {
  if (v == null || !Number.isFinite(v)) return "–";
  if (unit === "bytes" || unit === "bytes/s") {
    const names = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let x = Math.abs(v), i = 0;
    while (x >= 1024 && i < names.length - 1) { x /= 1024; i += 1; }
    return `${num(Math.sign(v) * x)} ${names[i]}${unit === "bytes/s" ? "/s" : ""}`;
  }
  if (unit === "%") return `${num(v)}%`;
  return unit && unit !== "load" ? `${num(v)} ${unit}` : num(v);
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function dateTime(iso) {
  return new Date(iso).toLocaleString(undefined, { hourCycle: "h23" });
}

function clock(date, withDate) {
  const opts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (withDate) Object.assign(opts, { month: "short", day: "numeric" });
  return date.toLocaleString(undefined, opts);
}

// ---- routing: #hosts, #hosts/<host>, #hosts/<host>/<metric>, #alerts, #alerts/<id> --
// (a leading slash is accepted too: notifications link to #/alerts/<id>)

function parseHash() {
  try {
    const [view, a, b] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    if (view === "alerts") return ["alerts", /^\d+$/.test(a || "") ? Number(a) : null, null];
    return ["hosts", a || null, b || null];
  } catch (e) {
    return ["hosts", null, null];
  }
}

function hostHash(host, metric) {
  return `#hosts/${encodeURIComponent(host)}${metric ? `/${encodeURIComponent(metric)}` : ""}`;
}

function route() {
  const [view, host, metric] = parseHash();
  state.view = view;
  state.alertId = view === "alerts" ? host : null;
  if (view === "hosts") {
    if (host !== state.host) state.metric = null;
    state.host = host;
    if (metric) state.metric = metric;
  }
  for (const a of document.querySelectorAll("nav a[data-view]")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $("#hosts-view").hidden = view !== "hosts";
  $("#alerts-view").hidden = view !== "alerts";
  return refresh();
}

function selectHost(host, metric) {
  const target = hostHash(host, metric);
  if (location.hash === target) refresh(); else location.hash = target;
}

// ---- loading -------------------------------------------------------------------

async function refresh() {
  showKeyState();
  if (!state.key) {
    say("");
    clearData();
    empty(state.view === "alerts" ? "#alerts-empty" : "#hosts-empty",
      "Enter an API key with the read scope (above) to see hosts and alerts.");
    return;
  }
  state.busy = true;
  try {
    if (state.view === "alerts") await Promise.all([loadAlerts(), loadAlert()]);
    else await Promise.all([loadHosts(), state.host ? loadDetail() : hideDetail()]);
    state.authFailed = false;
    state.lastRefresh = Date.now();
    say("");
    const now = new Date().toLocaleTimeString(undefined, { hourCycle: "h23" });
    $("#updated").textContent = `Updated ${now}`;
  } catch (e) {
    if (e.status === 401) state.authFailed = true;
    if (e.status === 401 || e.status === 403) { clearData(); empty("#hosts-empty", ""); }
    say(e.message);
  } finally {
    state.busy = false;
  }
}

function clearData() {
  $("#hosts tbody").replaceChildren();
  $("#alerts tbody").replaceChildren();
  $("#hosts").hidden = true;
  $("#alerts").hidden = true;
  $("#alert-detail").hidden = true;
  empty("#alerts-empty", "");
  hideDetail();
  $("#updated").textContent = "";
}

function showKeyState() {
  $("#forget").hidden = !state.key;
  $("#key").required = !state.key;
  $("#key").placeholder = state.key ? "saved; paste another to replace" : "nzr_… (read scope)";
}

async function loadHosts() {
  const my = ++state.seq.hosts;
  const data = await api("api/v1/hosts");
  if (my !== state.seq.hosts) return;
  const hosts = (Array.isArray(data) ? data : data.hosts || [])
    .slice().sort((a, b) => a.host.localeCompare(b.host));
  $("#hosts tbody").replaceChildren(...hosts.map(hostRow));
  $("#hosts").hidden = !hosts.length;
  empty("#hosts-empty", hosts.length ? ""
    : "No hosts yet. Start nazar-agent on a machine, or push samples to POST /api/v1/metrics.");
}

function hostRow(h) {
  const status = ["up", "stale"].includes(h.status) ? h.status : "unknown";
  const rate = h.samples_per_second ?? h.sample_rate;
  const labels = Object.entries(h.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  const name = el("button", { type: "button", class: "link" }, h.host);
  name.addEventListener("click", () => selectHost(h.host));
  const tr = el("tr", { "aria-current": h.host === state.host ? "true" : null },
    el("th", { scope: "row" }, name),
    el("td", {}, el("span", { class: `badge ${status}` }, status)),
    el("td", { title: h.last_sample || "" }, ago(h.last_sample)),
    el("td", { class: "num" }, String(h.series_count ?? h.series ?? "")),
    el("td", { class: "num" }, rate != null ? Number(rate).toFixed(2) : ""),
    el("td", { class: "labels" }, labels));
  tr.addEventListener("click", (ev) => { if (!ev.target.closest("button")) selectHost(h.host); });
  return tr;
}

function hideDetail() {
  state.chart = null;
  $("#host-detail").hidden = true;
}

async function loadDetail() {
  const my = ++state.seq.detail;
  const host = state.host;
  $("#host-detail").hidden = false;
  $("#host-name").textContent = host;
  const data = await api(`api/v1/series?host=${encodeURIComponent(host)}&limit=10000`);
  if (my !== state.seq.detail) return;
  const series = Array.isArray(data) ? data : data.series || [];
  const names = [...new Set(series.map((s) => s.metric))].sort();
  const select = $("#metric");
  select.replaceChildren(...names.map((n) => {
    const unit = unitOf(n);
    return new Option(unit ? `${n} (${unit})` : n, n);
  }));
  select.disabled = !names.length;
  if (!names.length) {
    state.chart = null;
    $("#chart").replaceChildren();
    $("#legend").replaceChildren();
    $("#chart-summary").textContent = "";
    empty("#chart-empty", `No metrics stored for ${host}.`);
    return;
  }
  const metric = [state.metric, "cpu.usage_percent"].find((n) => names.includes(n)) || names[0];
  state.metric = metric;
  select.value = metric;
  await drawChart();
}

async function drawChart() {
  const { host, metric } = state;
  if (!host || !metric) return;
  const my = ++state.seq.chart;
  const range = Number($("#range").value);
  const step = STEPS[range] ?? null;
  $("#agg").disabled = step == null;
  $("#agg").title = step == null ? "The last hour shows the raw samples." : "";
  const end = Math.floor(Date.now() / 1000) + 1; // the end is exclusive
  const start = end - range;
  const params = new URLSearchParams({ host, metric, start: String(start), end: String(end) });
  if (step) { params.set("step", String(step)); params.set("agg", $("#agg").value); }
  const data = await api(`api/v1/query?${params}`);
  if (my !== state.seq.chart) return;
  state.chart = [data.series || [], start, end, data.step ?? step];
  renderChart(...state.chart);
}

async function loadAlerts() {
  const my = ++state.seq.alerts;
  const params = new URLSearchParams({ limit: "200" });
  if ($("#alert-filter").value === "open") params.set("state", "open");
  let data;
  try {
    data = await api(`api/v1/alerts?${params}`);
  } catch (e) {
    if (e.status !== 404) throw e;
    data = null;
  }
  if (my !== state.seq.alerts) return;
  const alerts = data == null ? [] : Array.isArray(data) ? data : data.items || data.alerts || [];
  $("#alerts tbody").replaceChildren(...alerts.map(alertRow));
  $("#alerts").hidden = !alerts.length;
  empty("#alerts-empty", data == null ? "This server does not provide alerts yet."
    : alerts.length ? "" : $("#alert-filter").value === "open" ? "No open alerts." : "No alerts.");
}

function alertRow(a) {
  const known = ["pending", "firing", "nodata", "resolved", "normal"];
  const st = known.includes(a.state) ? a.state : "unknown";
  let host = a.host || "";
  if (a.host) {
    host = el("button", { type: "button", class: "link" }, a.host);
    host.addEventListener("click", () => selectHost(a.host, a.metric));
  }
  const rule = a.rule_name || a.rule || "";
  return el("tr", { "aria-current": a.id === state.alertId ? "true" : null },
    el("td", {}, el("span", { class: `badge ${st}` }, a.state || ""),
      a.acked_at ? el("span", { class: "muted" }, " acked") : null),
    el("td", {}, a.severity || ""),
    el("td", {}, a.id != null ? el("a", { href: `#alerts/${Number(a.id)}` }, rule) : rule),
    el("td", {}, host),
    el("td", {}, a.metric || ""),
    el("td", { title: a.started_at || "" }, ago(a.started_at)),
    el("td", { class: "num" }, a.value != null ? fmt(a.value, unitOf(a.metric || "")) : ""),
    el("td", { class: "explanation" }, a.explanation || ""));
}

async function loadAlert() {
  const id = state.alertId;
  if (id == null) { $("#alert-detail").hidden = true; return; }
  let a;
  try {
    a = await api(`api/v1/alerts/${id}`);
  } catch (e) {
    if (e.status !== 404) throw e;
    a = null;
  }
  if (id !== state.alertId) return;
  $("#alert-detail").hidden = false;
  if (!a) {
    $("#alert-name").textContent = `Alert ${id} was not found.`;
    $("#alert-fields").replaceChildren();
    $("#transitions").hidden = true;
    return;
  }
  const unit = unitOf(a.metric || "");
  const exp = a.expected || {};
  const expected = exp.low != null && exp.high != null
    ? `${fmt(exp.low, unit)} to ${fmt(exp.high, unit)}`
    : exp.high != null ? `at most ${fmt(exp.high, unit)}`
      : exp.low != null ? `at least ${fmt(exp.low, unit)}` : null;
  let host = a.host || null;
  if (a.host) {
    host = el("button", { type: "button", class: "link" }, a.host);
    host.addEventListener("click", () => selectHost(a.host, a.metric));
  }
  const when = (iso) => (iso ? `${dateTime(iso)} (${ago(iso)})` : null);
  const fields = [
    ["State", a.state], ["Severity", a.severity], ["Host", host], ["Metric", a.metric],
    ["Labels", Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || null],
    ["Started", when(a.started_at)], ["Fired", when(a.fired_at)],
    ["Resolved", when(a.resolved_at)], ["Value", a.value != null ? fmt(a.value, unit) : null],
    ["Expected", expected], ["Score", a.score != null ? num(a.score) : null],
    ["Explanation", a.explanation], ["Contributors", (a.contributors || []).join(", ") || null],
    ["Acknowledged", a.acked_at ? `${when(a.acked_at)} by ${a.acked_by || "?"}`
      + (a.ack_comment ? `: ${a.ack_comment}` : "") : null],
  ].filter(([, v]) => v != null && v !== "");
  $("#alert-name").textContent = `Alert ${a.id}: ${a.rule_name || ""}`;
  $("#alert-fields").replaceChildren(
    ...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const transitions = a.transitions || [];
  $("#transitions tbody").replaceChildren(...transitions.map((t) => el("tr", {},
    el("td", { title: t.at }, dateTime(t.at)),
    el("td", {}, t.from || ""), el("td", {}, t.to || ""),
    el("td", { class: "num" }, t.value != null ? fmt(t.value, unit) : ""),
    el("td", { class: "explanation" }, t.explanation || ""))));
  $("#transitions").hidden = !transitions.length;
}

// ---- chart -----------------------------------------------------------------------

function niceTicks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  const ticks = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step / 2; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

function timeTicks(t0, t1, most) {
  const steps = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172800, 604800];
  const step = steps.find((s) => (t1 - t0) / s <= most) || 604800;
  const offset = -new Date(t0 * 1000).getTimezoneOffset() * 60; // align to local time
  const ticks = [];
  for (let t = Math.ceil((t0 + offset) / step) * step - offset; t < t1; t += step) ticks.push(t);
  return { ticks, withDate: step >= 86400 || t1 - t0 > 86400 };
}

function gapOf(points, step) {
  if (step) return step * 2.5;
  const dts = [];
  for (let i = 1; i < points.length; i += 1) dts.push(points[i][0] - points[i - 1][0]);
  if (dts.length < 2) return Infinity;
  dts.sort((a, b) => a - b);
  return 3 * dts[Math.floor(dts.length / 2)];
}

function renderChart(series, t0, t1, step) {
  const { host, metric } = state;
  const unit = unitOf(metric);
  const chart = $("#chart");
  let lo = Infinity, hi = -Infinity, count = 0, last = null;
  for (const s of series) {
    for (const [, v] of s.points) {
      if (!Number.isFinite(v)) continue;
      lo = Math.min(lo, v); hi = Math.max(hi, v); count += 1;
    }
    const final = s.points[s.points.length - 1];
    if (final) last = final[1];
  }
  $("#legend").replaceChildren();
  if (!count) {
    chart.replaceChildren();
    $("#chart-summary").textContent = "";
    empty("#chart-empty", `No data for ${metric} in the ${$("#range").selectedOptions[0].text}.`
      + (step ? " Ranges over an hour read the rollups, which trail real time by a minute or two."
        : ""));
    return;
  }
  empty("#chart-empty", "");
  const [dataLo, dataHi] = [lo, hi];
  if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  if (lo > 0 && lo < hi - lo) lo = 0;
  const yTicks = niceTicks(lo, hi, 4);
  lo = yTicks[0]; hi = yTicks[yTicks.length - 1];

  // Drawn at the container's width, so that the text keeps its size on any screen.
  const W = Math.max(320, Math.round(chart.clientWidth || 960)), H = W < 600 ? 240 : 300;
  const L = 76, R = 24, T = 14, B = 30;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + ((hi - v) / (hi - lo)) * (H - T - B);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${metric} on ${host}: ${count} points from ${fmt(dataLo, unit)}`
    + ` to ${fmt(dataHi, unit)}`);
  const add = (name, attrs, text) => {
    const node = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    svg.appendChild(node);
    return node;
  };
  for (const v of yTicks) {
    add("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" });
    add("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end" }, fmt(v, unit));
  }
  const { ticks, withDate } = timeTicks(t0, t1, Math.max(2, Math.floor((W - L - R) / 110)));
  for (const t of ticks) {
    add("line", { x1: x(t), x2: x(t), y1: T, y2: H - B, class: "grid" });
    add("text", { x: x(t), y: H - B + 18, "text-anchor": "middle", class: "time" },
      clock(new Date(t * 1000), withDate));
  }
  add("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" });
  series.forEach((s, i) => {
    const gap = gapOf(s.points, step);
    let d = "", prev = null, run = 0;
    for (const [t, v] of s.points) {
      if (!Number.isFinite(v)) { prev = null; continue; }
      const jump = prev === null || t - prev > gap;
      if (jump && run === 1) d += "h0"; // a lone point: drawn as a dot by the round cap
      run = jump ? 1 : run + 1;
      d += `${jump ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      prev = t;
    }
    if (run === 1) d += "h0";
    const path = add("path", { d, class: "line", stroke: COLORS[i % COLORS.length] });
    const title = document.createElementNS(ns, "title");
    title.textContent = seriesName(s);
    path.appendChild(title);
  });
  chart.replaceChildren(svg);

  const resolution = step ? `${$("#agg").selectedOptions[0].text} per ${duration(step)}`
    : "raw samples";
  $("#chart-summary").textContent = series.length === 1
    ? `Last ${fmt(last, unit)} · min ${fmt(dataLo, unit)} · max ${fmt(dataHi, unit)} · `
      + `${count} points · ${resolution}`
    : `${series.length} series · ${count} points · min ${fmt(dataLo, unit)} · `
      + `max ${fmt(dataHi, unit)} · ${resolution}`;
  if (series.length > 1) {
    const shown = series.slice(0, 12).map((s, i) => {
      const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.background = COLORS[i % COLORS.length];
      return el("li", {}, swatch, seriesName(s));
    });
    if (series.length > 12) shown.push(el("li", {}, `… and ${series.length - 12} more`));
    $("#legend").replaceChildren(...shown);
  }
}

function seriesName(s) {
  const labels = Object.entries(s.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return labels || s.metric || "";
}

function duration(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? "day" : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? "hour" : `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return seconds === 60 ? "minute" : `${seconds / 60} minutes`;
  return `${seconds} s`;
}

// ---- events ----------------------------------------------------------------------

$("#key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("#key").value.trim();
  if (!key) return;
  state.key = key;
  storeKey(key);
  $("#key").value = "";
  refresh();
});
$("#forget").addEventListener("click", () => {
  state.key = "";
  storeKey("");
  state.authFailed = false;
  refresh();
  $("#key").focus();
});
$("#metric").addEventListener("change", () => {
  state.metric = $("#metric").value;
  history.replaceState(null, "", hostHash(state.host, state.metric));
  drawChart().catch((e) => say(e.message));
});
for (const id of ["#range", "#agg"]) {
  $(id).addEventListener("change", () => drawChart().catch((e) => say(e.message)));
}
$("#alert-filter").addEventListener("change", () => refresh());
$("#reload").addEventListener("click", () => refresh());
window.addEventListener("hashchange", route);
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (state.chart && !$("#host-detail").hidden) renderChart(...state.chart);
  }, 150);
});
window.addEventListener("storage", (ev) => { // the key set or forgotten in another tab
  if (ev.key !== KEY_STORAGE && ev.key !== null) return;
  state.key = readKey();
  state.authFailed = false;
  refresh();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.key && Date.now() - state.lastRefresh > REFRESH_MS) refresh();
});
setInterval(() => {
  if ($("#auto").checked && state.key && !state.authFailed && !state.busy && !document.hidden) {
    refresh();
  }
}, REFRESH_MS);
route();
