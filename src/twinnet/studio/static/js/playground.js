// The playground page: one state object (in the URL), one WebSocket to the server's
// training session, and one small module per panel that only draws what arrives.
import { toQuery, fromQuery } from "./pg-state.js";
import { SettingsPanel } from "./pg-settings.js";
import { PlanePanel } from "./pg-plane.js";
import { NetworkPanel } from "./pg-network.js";
import { CurvesPanel } from "./pg-curves.js";
import { LayersPanel } from "./pg-layers.js";
import { showFindings, showImages, showConfusion } from "./pg-findings.js";
import { showUnits } from "./pg-units.js";
import { PresetsPanel } from "./pg-presets.js";

const $ = (id) => document.getElementById(id);
const studio = { state: null, dataset: null, update: null, updates: 0, errors: 0 };
window.studio = studio;  // for the browser tests and the curious

const options = await (await fetch("/api/playground/options")).json();
studio.state = fromQuery(location.search, options.defaults);

const settings = new SettingsPanel($("settings"), options, apply);
const plane = new PlanePanel($("plane"), drawPoint);
const network = new NetworkPanel($("network-box"));
const curves = new CurvesPanel($("curves"));
studio.curves = curves;
const layers = new LayersPanel($("layers"));
const presets = new PresetsPanel($("presets-menu"), $("preset-box"), options.presets, apply);
studio.presets = presets;
presets.recognise(studio.state);

let socket = null;
connect();
settings.render(studio.state);
showDrawn();

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/playground`);
  socket.onopen = () => send({ type: "settings", settings: studio.state });
  socket.onmessage = (e) => receive(JSON.parse(e.data));
  socket.onclose = () => { setStatus("disconnected: reload the page to reconnect", "stopped"); };
}

function send(msg) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg)); }

function apply(state) {
  studio.state = state;
  const q = toQuery(state, options.defaults);
  history.replaceState(null, "", q ? `?${q}` : location.pathname);
  settings.render(state);
  showDrawn();
  send({ type: "settings", settings: state });
}

// drawn points are shown at once, before (or without) the server accepting them
function showDrawn() {
  if (studio.state.dataset === "drawn") plane.showDrawing(studio.state.points, options.draw_extent);
}

function drawPoint(xy, remove) {
  if (studio.state.dataset !== "drawn") return;
  let points = [...studio.state.points];
  if (remove) {
    let best = -1, bestD = Infinity;
    points.forEach((p, i) => { const d = (p[0] - xy[0]) ** 2 + (p[1] - xy[1]) ** 2; if (d < bestD) { bestD = d; best = i; } });
    if (best >= 0) points.splice(best, 1);
  } else points.push([xy[0], xy[1], settings.drawClass()]);
  apply({ ...studio.state, points });
}

function receive(msg) {
  if (msg.type === "error") { studio.errors++; return showError(msg.message); }
  if (msg.type === "uploaded") return apply({ ...studio.state, dataset: "upload" });
  if (msg.type === "dataset") return onDataset(msg);
  if (msg.type === "update") return onUpdate(msg);
}

function showError(text) {
  const e = $("error"); e.textContent = text; e.hidden = !text;
  for (const el of document.querySelectorAll(".bad")) el.classList.remove("bad");
  const key = /config key '(\w+)'/.exec(text || "");  // outline the setting the message names
  if (key && $(`set-${key[1]}`)) $(`set-${key[1]}`).classList.add("bad");
}

function onDataset(ds) {
  studio.dataset = ds; studio.update = null;
  showError("");
  plane.setDataset(ds);
  network.setDataset(ds);
  curves.reset(ds.task !== "regression");
  const images = Boolean(ds.images);
  $("images-panel").hidden = !images;
  $("plane-panel").hidden = images;
  showImages($("images"), ds.images, null, ds.classes || []);
  (images ? $("images-panel") : $("findings-panel")).append($("confusion-box"));  // room for 10 classes
  backpropLink(ds.backprop);
  $("data-summary").textContent = `${ds.name}: ${ds.n_train} training and ${ds.n_val} validation examples, ` +
    `${ds.task}${ds.classes ? `, ${ds.classes.length} classes` : ""}; network ${ds.layers.join("–")}`;
}

function onUpdate(u) {
  studio.update = u; studio.updates++;
  $("step-count").textContent = u.step;
  $("epoch-count").textContent = u.epoch.toFixed(2);
  $("train-loss").textContent = u.train.loss === null ? "–" : u.train.loss.toFixed(4);
  $("val-loss").textContent = u.val.loss === null ? "–" : u.val.loss.toFixed(4);
  const acc = u.val.accuracy;
  $("val-acc").textContent = acc === undefined || acc === null ? "–" : `${(100 * acc).toFixed(1)}%`;
  $("val-acc").parentElement.hidden = acc === undefined;  // regression: no accuracy
  setStatus(u.message || u.state, u.state);
  if (studio.dataset && studio.dataset.name === studio.state.dataset) plane.update(u.output);
  network.setUpdate(u);
  curves.add(u.point);
  layers.update(u.layers);
  $("units-panel").hidden = !u.units.length;
  showUnits($("units"), u.units);
  showFindings($("findings"), u.findings);
  if (studio.dataset && studio.dataset.images) showImages($("images"), studio.dataset.images, u.predictions, studio.dataset.classes);
  showConfusion($("confusion"), u.confusion, (studio.dataset && studio.dataset.classes) || []);
}

// the Backprop page traces the network the playground starts from (same URL keys), when it
// is small enough for it: the server says why not (the backprop page's own limit)
function backpropLink(whyNot) {
  const a = $("backprop-link");
  const q = toQuery(studio.state, options.defaults);
  a.classList.toggle("disabled", Boolean(whyNot));
  a.setAttribute("aria-disabled", String(Boolean(whyNot)));
  if (whyNot) a.removeAttribute("href");
  else a.href = `/backprop?example=playground${q ? `&${q}` : ""}`;
  a.title = whyNot || "this network's forward and backward pass, step by step, on one training example";
}

function setStatus(text, state) {
  const s = $("status"); s.textContent = text; s.dataset.state = state;
  $("start").disabled = state === "running" || state === "finished" || state === "stopped";  // stopped: Reset
  $("pause").disabled = state !== "running";
}

$("start").onclick = () => send({ type: "start" });
$("pause").onclick = () => send({ type: "pause" });
$("step").onclick = () => send({ type: "step" });
$("reset").onclick = () => send({ type: "reset" });

// export: the TOML for `twinnet train --config` and the Python that builds the model
for (const [id, key, file] of [["export-toml", "toml", "playground.toml"], ["export-python", "python", "playground.py"]]) {
  $(id).onclick = () => {
    if (!studio.dataset) return;
    $("export-text").textContent = studio.dataset.export[key];
    $("export-title").textContent = key === "toml" ? "TOML for twinnet train --config" : "Python that builds this model";
    $("export-download").onclick = () => download(file, studio.dataset.export[key]);
    $("export-dialog").showModal();
  };
}
$("export-copy").onclick = () => navigator.clipboard && navigator.clipboard.writeText($("export-text").textContent);
$("export-close").onclick = () => $("export-dialog").close();
$("share").onclick = () => { navigator.clipboard && navigator.clipboard.writeText(location.href); $("share").textContent = "Link copied"; };

function download(name, text) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  a.download = name; a.click(); URL.revokeObjectURL(a.href);
}

// a dropped .csv or .npz becomes the "upload" dataset (parsed and checked by the server)
document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dropping"); });
document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
document.addEventListener("drop", async (e) => {
  e.preventDefault(); document.body.classList.remove("dropping");
  const file = e.dataTransfer.files[0];
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bin = ""; for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  send({ type: "upload", name: file.name, data: btoa(bin) });
});
