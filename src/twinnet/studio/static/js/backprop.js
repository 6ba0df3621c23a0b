// The Backprop page: the state is one plain object that round-trips through the URL;
// every number comes from /api/backprop (the server computes, the page shows).

import { renderCard, renderTable, renderChecks } from "./backprop_steps.js";
import { drawNetwork, explainEdge } from "./backprop_diagram.js";

const $ = (id) => document.getElementById(id);
const DATASET_KEYS = ["dataset", "layers", "activation", "init", "seed", "index"];
let options = null;
let result = null;
let state = {};  // {example, dataset, layers, activation, init, seed, index, lr, step, pg}
// example=playground: the playground's own URL keys, passed through as they are (pg)
const OWN = ["example", ...DATASET_KEYS, "lr", "step"];

function stateFromUrl() {
  const q = new URLSearchParams(location.search);
  const s = { ...options.defaults, example: "worked", lr: "0.1", step: 0 };
  s.pg = {};
  const playground = q.get("example") === "playground";
  for (const [k, v] of q) {
    // in playground mode every other key is the playground's (dataset, activation, seed, ...)
    if (playground ? ["example", "index", "lr", "step"].includes(k) : OWN.includes(k)) s[k] = v;
    else s.pg[k] = v;
  }
  s.step = Number(q.get("step") || 0);
  return s;
}

function writeUrl() {
  const q = new URLSearchParams();
  q.set("example", state.example);
  if (state.example === "dataset") for (const k of DATASET_KEYS) q.set(k, state[k]);
  if (state.example === "playground") { for (const [k, v] of Object.entries(state.pg)) q.set(k, v); q.set("index", state.index); }
  q.set("lr", state.lr);
  q.set("step", state.step);
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

function apiQuery() {
  const q = new URLSearchParams({ example: state.example, lr: state.lr });
  if (state.example === "dataset") for (const k of DATASET_KEYS) q.set(k, state[k]);
  if (state.example === "playground") { for (const [k, v] of Object.entries(state.pg)) q.set(k, v); q.set("index", state.index); }
  return q;
}

function fillForm() {
  for (const k of ["example", ...DATASET_KEYS, "lr"]) $(k).value = state[k];
  for (const e of document.querySelectorAll(".dataset-only, .playground-only")) {
    e.classList.toggle("hidden", !e.classList.contains(`${state.example}-only`));
  }
  const pg = new URLSearchParams(state.pg).toString();
  const summary = Object.entries(state.pg).map(([k, v]) => `${k}=${v}`).join(" \u00b7 ");
  $("pg-summary").replaceChildren(summary || "the playground's defaults", " ",
    Object.assign(document.createElement("a"), { href: `/${pg ? "?" + pg : ""}`, textContent: "open in the playground" }));
}

function readForm() {
  for (const k of ["example", ...DATASET_KEYS, "lr"]) state[k] = $(k).value.trim();
}

function show() {
  if (!result) return;
  const n = result.steps.length;
  state.step = Math.max(0, Math.min(n - 1, state.step));
  renderCard($("card"), result.steps[state.step], state.step, n);
  renderTable(document.querySelector("#steps tbody"), result.steps, state.step, go);
  drawNetwork($("net"), result, state.step, (k, i, j, revealed) => {
    $("edge-info").replaceChildren(...explainEdge(result, k, i, j, revealed).map((t) => Object.assign(document.createElement("div"), { textContent: t })));
  });
  $("counter").textContent = `${state.step + 1} / ${n}`;
  $("prev").disabled = $("first").disabled = state.step === 0;
  $("next").disabled = $("last").disabled = state.step === n - 1;
  writeUrl();
}

function go(step) {
  state.step = step;
  show();
}

async function load() {
  $("error").textContent = "";
  $("trace").disabled = true;
  try {
    const r = await fetch(`/api/backprop?${apiQuery()}`);
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || `the server answered ${r.status}`);
    result = body;
    $("edge-info").replaceChildren("Click a line of the diagram: its weight and how its gradient is made.");
    $("notes").textContent = result.notes.join(" ");
    renderChecks($("checks"), result);
    show();
  } catch (err) {
    $("error").textContent = err.message;  // the last good trace stays on the page
  } finally {
    $("trace").disabled = false;
  }
}

async function main() {
  options = await (await fetch("/api/backprop/options")).json();
  const fill = (id, names) => $(id).replaceChildren(...names.map((n) => new Option(n, n)));
  fill("dataset", options.datasets);
  fill("activation", options.activations);
  fill("init", options.inits);
  state = stateFromUrl();
  fillForm();
  $("example").addEventListener("change", () => { readForm(); fillForm(); });
  // a new dataset starts from layers that fit its inputs and outputs
  $("dataset").addEventListener("change", () => { $("layers").value = options.dataset_layers[$("dataset").value]; });
  $("settings").addEventListener("submit", (e) => {
    e.preventDefault();
    readForm();
    state.step = 0;
    load();
  });
  $("first").addEventListener("click", () => go(0));
  $("prev").addEventListener("click", () => go(state.step - 1));
  $("next").addEventListener("click", () => go(state.step + 1));
  $("last").addEventListener("click", () => go(result ? result.steps.length - 1 : 0));
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select")) return;
    if (e.key === "ArrowRight") go(state.step + 1);
    else if (e.key === "ArrowLeft") go(state.step - 1);
    else if (e.key === "Home") go(0);
    else if (e.key === "End" && result) go(result.steps.length - 1);
  });
  window.addEventListener("resize", show);
  await load();
  document.body.dataset.ready = "1";
}

main();
