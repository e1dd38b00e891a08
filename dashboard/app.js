// Nazar dashboard: hosts, their metrics as charts, and alerts. Plain
// JavaScript against the public API; the key stays in this browser.
"use strict";

const state = { key: localStorage.getItem("nazar.key") || "", host: null };
const $ = (sel) => document.querySelector(sel);

function say(text) { $("#message").textContent = text || ""; }

async function api(path) {
  if (!state.key) { throw new Error("Enter an API key with the read scope."); }
  const r = await fetch(path, { headers: { Authorization: `Bearer ${state.key}` } });
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${r.status}: ${detail}`);
  }
  return r.json();
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

async function loadHosts() {
  const data = await api("api/v1/hosts");
  const hosts = Array.isArray(data) ? data : data.hosts || [];
  const body = $("#hosts tbody");
  body.replaceChildren();
  for (const h of hosts) {
    const tr = document.createElement("tr");
    cell(tr, h.host);
    cell(tr, h.status || "", h.status);
    cell(tr, ago(h.last_sample));
    cell(tr, h.series ?? h.series_count ?? "");
    const rate = h.samples_per_second ?? h.sample_rate;
    cell(tr, rate != null ? Number(rate).toFixed(2) : "");
    cell(tr, Object.entries(h.labels || {}).map(([k, v]) => `${k}=${v}`).join(", "), "labels");
    tr.addEventListener("click", () => showHost(h.host));
    body.appendChild(tr);
  }
  if (!hosts.length) say("No hosts yet: start an agent or push samples.");
}

async function showHost(host) {
  state.host = host;
  $("#host-detail").hidden = false;
  $("#host-name").textContent = host;
  const data = await api(`api/v1/series?host=${encodeURIComponent(host)}&limit=1000`);
  const series = Array.isArray(data) ? data : data.series || [];
  const names = [...new Set(series.map((s) => s.metric))].sort();
  const select = $("#metric");
  select.replaceChildren(...names.map((n) => new Option(n, n)));
  const preferred = names.find((n) => n === "cpu.usage_percent");
  if (preferred) select.value = preferred;
  await drawChart();
}

async function drawChart() {
  const metric = $("#metric").value;
  if (!state.host || !metric) return;
  const range = Number($("#range").value);
  const end = Date.now() / 1000;
  const params = new URLSearchParams({
    host: state.host, metric, start: String(end - range), end: String(end), agg: $("#agg").value,
  });
  if (range > 3600) params.set("step", String(Math.max(60, Math.round(range / 400))));
  const data = await api(`api/v1/query?${params}`);
  renderSvg(data.series || [], end - range, end);
}

function renderSvg(series, t0, t1) {
  const W = 900, H = 260, P = 40;
  const pts = series.flatMap((s) => s.points);
  const chart = $("#chart");
  if (!pts.length) { chart.textContent = "No data in this range."; return; }
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => P + ((t - t0) / (t1 - t0)) * (W - 2 * P);
  const y = (v) => H - P + 10 - ((v - lo) / (hi - lo)) * (H - 2 * P);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const add = (name, attrs, text) => {
    const el = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text) el.textContent = text;
    svg.appendChild(el);
  };
  add("line", { x1: P, y1: H - P + 10, x2: W - P, y2: H - P + 10, class: "axis" });
  add("text", { x: 2, y: y(hi) + 4 }, hi.toPrecision(4));
  add("text", { x: 2, y: y(lo) + 4 }, lo.toPrecision(4));
  add("text", { x: P, y: H - 4 }, new Date(t0 * 1000).toLocaleString());
  add("text", { x: W - P - 120, y: H - 4 }, new Date(t1 * 1000).toLocaleString());
  for (const s of series) {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    add("path", { d, class: "line" });
  }
  chart.replaceChildren(svg);
}

async function loadAlerts() {
  const data = await api("api/v1/alerts?limit=200");
  const alerts = Array.isArray(data) ? data : data.alerts || [];
  const body = $("#alerts tbody");
  body.replaceChildren();
  for (const a of alerts) {
    const tr = document.createElement("tr");
    cell(tr, a.state, a.state);
    cell(tr, a.severity);
    cell(tr, a.rule_name || a.rule || "");
    cell(tr, a.host || "");
    cell(tr, a.metric || "");
    cell(tr, ago(a.started_at));
    cell(tr, a.explanation || "");
    body.appendChild(tr);
  }
  if (!alerts.length) say("No alerts.");
}

async function route() {
  const view = location.hash === "#alerts" ? "alerts" : "hosts";
  $("#hosts-view").hidden = view !== "hosts";
  $("#alerts-view").hidden = view !== "alerts";
  document.querySelectorAll("nav a[data-view]").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  say("");
  try {
    await (view === "alerts" ? loadAlerts() : loadHosts());
  } catch (e) { say(e.message); }
}

$("#key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.key = $("#key").value.trim();
  localStorage.setItem("nazar.key", state.key);
  $("#key").value = "";
  route();
});
for (const id of ["#metric", "#range", "#agg"]) {
  $(id).addEventListener("change", () => drawChart().catch((e) => say(e.message)));
}
window.addEventListener("hashchange", route);
setInterval(() => { if (state.key) route(); }, 30000);
route();
