// The runs page. State (selected run, compared runs, compared curve) is one plain object
// in the URL; every number comes from /api/runs (the server reads the run folders).

import { lineChart, color, histogramChart } from "./runs_charts.js";

const $ = (id) => document.getElementById(id);
const state = { run: "", compare: [], metric: "val_loss", stat: "" };
let runs = [];
let detail = null;  // the selected run's last answer
const histories = {};  // run name -> {version, columns}: for the overlay

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function fmt(v, kind) {
  if (v === null || v === undefined) return "";
  if (typeof v !== "number") return typeof v === "string" ? v : JSON.stringify(v);
  if (Number.isInteger(v)) return String(v);
  if (kind === "pct") return `${(100 * v).toFixed(1)}%`;
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

function readUrl() {
  const q = new URLSearchParams(location.search);
  state.run = q.get("run") || "";
  state.compare = (q.get("compare") || "").split(",").filter(Boolean);
  state.metric = q.get("metric") || "val_loss";
  state.stat = q.get("stat") || "";
}

function writeUrl() {
  const q = new URLSearchParams();
  if (state.run) q.set("run", state.run);
  if (state.compare.length) q.set("compare", state.compare.join(","));
  if (state.metric !== "val_loss") q.set("metric", state.metric);
  if (state.stat) q.set("stat", state.stat);
  history.replaceState(null, "", `${location.pathname}${q.toString() ? "?" + q : ""}`);
}

// the JSON answer of `url`; an Error with the server's message (or `missing` for a bare 404)
async function getJson(url, missing = "") {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || (r.status === 404 && missing) || `${url}: the server answered ${r.status}`);
  return body;
}

const runUrl = (name, version) => [`/api/runs/${encodeURIComponent(name)}?version=${encodeURIComponent(version)}`,
  `no run named ${JSON.stringify(name)} in the runs folder`];

// -- the list of runs ----------------------------------------------------------------------
function renderList() {
  const tbody = $("runs").querySelector("tbody");
  tbody.replaceChildren(...runs.map((r) => {
    const box = el("input", { type: "checkbox", title: "compare", "aria-label": `compare ${r.name}`,
      onchange: (e) => toggleCompare(r.name, e.target.checked) });
    box.checked = state.compare.includes(r.name);
    const acc = r.test_accuracy === null ? "" : `${(100 * r.test_accuracy).toFixed(1)}%`;
    return el("tr", { class: r.name === state.run ? "selected" : "", "data-run": r.name },
      el("td", {}, box),
      el("td", {}, el("a", { href: `?run=${encodeURIComponent(r.name)}`, onclick: (e) => { e.preventDefault(); select(r.name); } }, r.name),
        el("div", { class: "muted" }, `${r.dataset ?? "?"} ${JSON.stringify(r.layers ?? "")} ${r.activation ?? ""}`)),
      el("td", {}, el("span", { class: `status ${r.status}` }, r.status)),
      el("td", { class: "num" }, `${r.epochs_done}/${r.epochs ?? "?"}`),
      el("td", { class: "num" }, acc));
  }));
  if (!runs.length) {
    $("empty").hidden = false;
    $("empty").replaceChildren(el("p", {}, "No run folders here yet."),
      el("p", { class: "muted" }, "Train one in a terminal, e.g. ", el("code", {}, `twinnet train --dataset spirals --layers 2,16,16,3 --epochs 30 --out ${$("runs-dir").textContent}/spirals`)));
  } else $("empty").hidden = true;
}

async function refreshList() {
  const body = await getJson("/api/runs");
  $("runs-dir").textContent = body.runs_dir;
  runs = body.runs;
  state.compare = state.compare.filter((n) => runs.some((r) => r.name === n));
  renderList();
}

// -- one run -------------------------------------------------------------------------------
function kvTable(obj) {
  return el("table", { class: "data kv" }, ...Object.entries(obj).map(([k, v]) =>
    el("tr", {}, el("td", {}, k), el("td", { class: typeof v === "number" ? "num" : "" }, fmt(v)))));
}

function renderRun(d) {
  $("run").hidden = false;
  $("run-name").textContent = d.name;
  const c = d.config;
  const done = (d.history.columns.epoch || []).length;
  $("run-sub").replaceChildren(el("span", { class: `status ${d.status}`, id: "run-status" }, d.status), "  ",
    `${c.dataset} · layers ${JSON.stringify(c.layers)} · ${c.activation} · ${c.optimizer} lr ${c.lr} · `,
    el("span", { id: "run-epochs" }, `epoch ${done} of ${c.epochs}`), " · ",
    el("a", { href: `/runs/${encodeURIComponent(d.name)}/report`, target: "_blank" }, "full report"));
  const h = d.history.columns;
  const x = h.epoch || [];
  const pick = (names) => names.filter((n) => h[n]).map((n) => ({ label: n, values: h[n], dash: n.startsWith("val") ? [6, 4] : undefined }));
  lineChart($("chart-loss"), "loss", x, pick(["train_loss", "val_loss"]));
  const acc = pick(["train_accuracy", "val_accuracy"]);
  $("chart-acc").parentElement.hidden = acc.length === 0;
  if (acc.length) lineChart($("chart-acc"), "acc", x, acc);
  const diag = d.diagnostics;
  const f = $("findings");
  if (diag.findings.length) {
    f.replaceChildren(...diag.findings.map((x) => el("div", { class: `finding ${x.severity}` }, el("strong", {}, x.severity), ": ", x.message)));
  } else if (diag.note) {
    f.replaceChildren(el("div", { class: "note-box" }, diag.note));
  } else {
    f.replaceChildren(el("div", { class: "ok-box" }, "No recorded statistic crossed a danger line (dead units, saturation, vanishing or exploding gradients, update ratio, activation scale, non-finite values)."));
  }
  if (diag.note && diag.findings.length) f.append(el("div", { class: "note-box" }, diag.note));
  $("metrics").replaceChildren(d.metrics ? kvTable(d.metrics) : el("p", { class: "muted" }, d.status === "training" ? "Still training: metrics.json is written at the end." : "No metrics.json (the run did not finish: continue it with twinnet train --resume)."));
  $("config").replaceChildren(kvTable(c));
  if (diag.layers) {
    $("layers-step").textContent = `(last record, step ${diag.layers.step}; "median": the update ratio the learning-rate finding judges; red: beyond its line)`;
    $("layers").replaceChildren(el("table", { class: "data layers" },
      el("tr", {}, el("th", {}, "layer"), ...diag.layers.headers.map((hd) => el("th", {}, hd))),
      ...diag.layers.rows.map((r) => el("tr", {}, el("td", {}, r.layer),
        ...r.cells.map((cell) => el("td", { class: cell.bad ? "bad" : "", title: cell.how }, fmt(cell.value, cell.kind)))))));
  } else {
    $("layers-step").textContent = "";
    $("layers").replaceChildren(el("p", { class: "muted" }, "Not recorded (train with --diagnostics)."));
  }
  const stats = Object.keys(diag.series);
  const sel = $("series-stat");
  sel.parentElement.parentElement.hidden = stats.length === 0;
  if (stats.length) {
    if (!stats.includes(state.stat)) state.stat = stats[0];
    if (sel.options.length !== stats.length) sel.replaceChildren(...stats.map((s) => new Option(diag.series[s].title, s)));
    sel.value = state.stat;
    const s = diag.series[state.stat];
    lineChart($("chart-series"), `series-${state.stat}`, s.steps,
      Object.entries(s.layers).map(([label, values]) => ({ label, values })),
      { xLabel: "step", yLog: ["weight_grad_norm", "weight_update_ratio"].includes(state.stat), height: 220 });
  }
  renderHistograms(diag.histograms);
  $("files").textContent = `Files: ${d.files.join(", ")}`;
}

// the pre-activation histograms of the last record: one small chart per activation layer
function renderHistograms(h) {
  const box = $("histograms");
  box.parentElement.hidden = !h;
  if (!h) return;
  $("histograms-step").textContent = h.step !== undefined ? `(last record, step ${h.step})` : "";
  const sig = JSON.stringify([h.step, h.layers.map((l) => l.layer)]);
  if (box.dataset.sig === sig) return;  // unchanged: keep the charts
  box.dataset.sig = sig;
  box.replaceChildren(...(h.note ? [el("p", { class: "muted" }, h.note)] : []));
  for (const l of h.layers) {
    const chart = el("div", { class: "hist-chart" });
    box.append(el("div", { class: "hist" }, el("div", { class: "hist-title" }, l.layer +
      (l.nonfinite ? ` (${l.nonfinite} non-finite)` : "")), chart));
    histogramChart(chart, l.layer, l.edges, l.counts);
  }
}

async function pollRun() {
  if (!state.run) return;
  const name = state.run;
  const v = detail && detail.name === name ? detail.version : "";
  const d = await getJson(...runUrl(name, v));
  if (name !== state.run) return;
  if (d.unchanged) {
    if (detail.status !== d.status) { detail.status = d.status; renderRun(detail); }
    return;
  }
  detail = d;
  histories[name] = { version: d.version, columns: d.history.columns };
  renderRun(d);
  renderCompare();
}

async function select(name) {
  state.run = name;
  detail = null;
  writeUrl();
  renderList();
  $("error").textContent = "";
  try { await pollRun(); } catch (err) { $("error").textContent = err.message; $("run").hidden = true; }
}

// -- overlay of several runs ---------------------------------------------------------------
function toggleCompare(name, on) {
  state.compare = on ? [...new Set([...state.compare, name])] : state.compare.filter((n) => n !== name);
  writeUrl();
  refreshCompare();
}

async function refreshCompare() {
  for (const name of state.compare) {
    const known = histories[name] ? histories[name].version : "";
    const d = await getJson(...runUrl(name, known));
    if (!d.unchanged) histories[name] = { version: d.version, columns: d.history.columns };
  }
  renderCompare();
}

function renderCompare() {
  const names = state.compare.filter((n) => histories[n]);
  $("compare").hidden = names.length < 2;
  if (names.length < 2) return;
  const metrics = [...new Set(names.flatMap((n) => Object.keys(histories[n].columns)))].filter((m) => !["epoch", "step"].includes(m));
  const sel = $("compare-metric");
  if ([...sel.options].map((o) => o.value).join() !== metrics.join()) sel.replaceChildren(...metrics.map((m) => new Option(m, m)));
  if (!metrics.includes(state.metric)) state.metric = metrics.includes("val_loss") ? "val_loss" : metrics[0];
  sel.value = state.metric;
  const xs = [...new Set(names.flatMap((n) => histories[n].columns.epoch || []))].sort((a, b) => a - b);
  const series = names.map((n, i) => {
    const cols = histories[n].columns;
    const at = new Map((cols.epoch || []).map((e, j) => [e, (cols[state.metric] || [])[j] ?? null]));
    return { label: n, values: xs.map((e) => at.has(e) ? at.get(e) : null), color: color(i) };
  });
  $("compare-names").textContent = `${names.length} runs`;
  lineChart($("compare-chart"), `compare-${state.metric}`, xs, series, { height: 280 });
}

// -- start ---------------------------------------------------------------------------------
async function main() {
  readUrl();
  $("series-stat").addEventListener("change", (e) => { state.stat = e.target.value; writeUrl(); if (detail) renderRun(detail); });
  $("compare-metric").addEventListener("change", (e) => { state.metric = e.target.value; writeUrl(); renderCompare(); });
  try {
    await refreshList();
    if (state.run) await select(state.run);
    await refreshCompare();
  } catch (err) {
    $("error").textContent = err.message;
  }
  document.body.dataset.ready = "1";
  // live: the selected run every second, the list and the compared runs every 2 seconds
  setInterval(() => pollRun().then(() => { if (detail) $("error").textContent = ""; }, (err) => { $("error").textContent = err.message; }), 1000);
  setInterval(() => refreshList().then(refreshCompare).catch((err) => { $("error").textContent = err.message; }), 2000);
}

main();
