// The settings panel: a form built from the server's options; every change calls
// onChange(newState). The page never checks a value itself: the server validates
// (the same checks as a config file) and its message is shown in the error box.
import { asNumber } from "./pg-state.js";

const LABELS = {
  dataset: "Dataset", activation: "Activation", init: "Initialisation", loss: "Loss",
  optimizer: "Optimiser", lr: "Learning rate", schedule: "LR schedule", batch_size: "Batch size",
  weight_decay: "L2 / weight decay", clip_grad_norm: "Clip grad norm (0: off)", dropout: "Dropout", norm: "Normalisation",
  label_noise: "Label noise", val_fraction: "Validation share", seed: "Seed", epochs: "Epochs",
};
const CHOICES = { dataset: "datasets", activation: "activations", init: "inits", loss: "losses",
  optimizer: "optimizers", schedule: "schedules", norm: "norms" };
const NUMBERS = ["lr", "batch_size", "weight_decay", "clip_grad_norm", "dropout", "label_noise", "val_fraction", "seed", "epochs"];

export class SettingsPanel {
  constructor(root, options, onChange) {
    this.root = root; this.options = options; this.onChange = onChange;
    this.state = null;
  }

  render(state) {
    this.state = state;
    const o = this.options;
    const r = this.root;
    r.innerHTML = "";
    const section = (title) => { const h = document.createElement("h3"); h.textContent = title; r.append(h); };
    section("Data");
    r.append(this.select("dataset"));
    if (state.dataset === "drawn") r.append(this.drawTools());
    if (state.dataset === "upload") {
      const p = document.createElement("p"); p.className = "hint";
      p.textContent = "Drop a .csv (features, then the label in the last column) or an .npz (arrays x and y) anywhere on the page.";
      r.append(p);
    }
    if (o.plane_datasets.includes(state.dataset)) r.append(this.features(o.features));
    r.append(this.number("val_fraction"), this.number("label_noise"));
    section("Network");
    r.append(this.layersEditor());
    r.append(this.select("activation"), this.select("init"), this.select("norm"), this.number("dropout"));
    section("Training");
    r.append(this.select("loss"), this.select("optimizer"), this.number("lr"), this.select("schedule"),
      this.number("batch_size"), this.number("weight_decay"), this.number("clip_grad_norm"), this.number("epochs"), this.number("seed"));
  }

  set(key, value) { this.onChange({ ...this.state, [key]: value }); }

  row(key, input) {
    const div = document.createElement("div"); div.className = "field";
    const label = document.createElement("label"); label.textContent = LABELS[key] || key;
    label.htmlFor = input.id = `set-${key}`;
    div.append(label, input);
    return div;
  }

  select(key) {
    const s = document.createElement("select");
    for (const v of this.options[CHOICES[key]]) {
      const opt = document.createElement("option"); opt.value = v; opt.textContent = v; s.append(opt);
    }
    s.value = this.state[key];
    s.addEventListener("change", () => this.set(key, s.value));
    return this.row(key, s);
  }

  number(key) {
    const i = document.createElement("input"); i.type = "text"; i.inputMode = "decimal";
    i.value = this.state[key]; i.size = 8;
    i.addEventListener("change", () => this.set(key, asNumber(i.value)));
    return this.row(key, i);
  }

  features(names) {
    const div = document.createElement("div"); div.className = "field features";
    const label = document.createElement("label"); label.textContent = "Input features (2-D data)";
    div.append(label);
    const box = document.createElement("div"); box.className = "chips";
    for (const name of names) {
      const chip = document.createElement("button");
      chip.type = "button"; chip.textContent = name; chip.dataset.feature = name;
      chip.className = "chip" + (this.state.features.includes(name) ? " on" : "");
      chip.addEventListener("click", () => {
        const on = this.state.features.includes(name);
        this.set("features", on ? this.state.features.filter((f) => f !== name) : [...this.state.features, name]);
      });
      box.append(chip);
    }
    div.append(box);
    return div;
  }

  layersEditor() {
    const div = document.createElement("div"); div.className = "field layers";
    const label = document.createElement("label"); label.textContent = "Hidden layers (width each)";
    div.append(label);
    const box = document.createElement("div"); box.className = "layer-list";
    const hidden = this.state.hidden;
    hidden.forEach((w, i) => {
      const item = document.createElement("span"); item.className = "layer-item";
      const minus = this.tiny("−", `narrower layer ${i + 1}`, () => this.setWidth(i, w - 1));
      const val = document.createElement("input"); val.type = "text"; val.value = w; val.size = 2;
      val.className = "width"; val.setAttribute("aria-label", `width of hidden layer ${i + 1}`);
      val.addEventListener("change", () => this.setWidth(i, asNumber(val.value)));
      const plus = this.tiny("+", `wider layer ${i + 1}`, () => this.setWidth(i, w + 1));
      item.append(minus, val, plus);
      box.append(item);
    });
    div.append(box);
    const buttons = document.createElement("div"); buttons.className = "layer-buttons";
    buttons.append(
      this.tiny("+ layer", "add a hidden layer", () => this.set("hidden", [...hidden, hidden.at(-1) || 4]), "add-layer"),
      this.tiny("− layer", "remove the last hidden layer", () => this.set("hidden", hidden.slice(0, -1)), "remove-layer"));
    div.append(buttons);
    return div;
  }

  setWidth(i, w) { const h = [...this.state.hidden]; h[i] = w; this.set("hidden", h); }

  tiny(text, title, fn, id) {
    const b = document.createElement("button"); b.type = "button"; b.className = "tiny";
    b.textContent = text; b.title = title; if (id) b.id = id;
    b.addEventListener("click", fn);
    return b;
  }

  drawTools() {
    const div = document.createElement("div"); div.className = "field draw";
    const label = document.createElement("label"); label.textContent = "Draw: click the plane to add a point of class";
    const s = document.createElement("select"); s.id = "draw-class";
    for (let c = 0; c < 4; c++) { const o = document.createElement("option"); o.value = c; o.textContent = `class ${c}`; s.append(o); }
    const clear = this.tiny("clear points", "remove every drawn point", () => this.set("points", []));
    div.append(label, s, clear);
    const p = document.createElement("p"); p.className = "hint";
    p.textContent = `${this.state.points.length} points. Shift-click removes the nearest point.`;
    div.append(p);
    return div;
  }

  drawClass() { const s = this.root.querySelector("#draw-class"); return s ? Number(s.value) : 0; }
}
