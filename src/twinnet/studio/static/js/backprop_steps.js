// The step card and the table of every quantity so far. Numbers come from /api/backprop;
// this module only formats them (4 significant digits, as `twinnet trace` prints).

export function fmt(v) {
  if (v === 0) return "0";
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a < 1e-4 || a >= 1e6) return v.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(4)));
}

export function fmtValue(value) {
  if (!Array.isArray(value)) return fmt(value);
  if (value.length === 1 && !Array.isArray(value[0])) return fmt(value[0]);
  return "[" + value.map(fmtValue).join(", ") + "]";
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// a vector or a matrix as a bracketed table (a single number as text)
function valueNode(value) {
  if (!Array.isArray(value) || (value.length === 1 && !Array.isArray(value[0]))) {
    return el("span", { class: "num" }, fmtValue(value));
  }
  const rows = Array.isArray(value[0]) ? value : [value];
  const t = el("table", { class: "matrix" });
  for (const r of rows) t.append(el("tr", {}, ...r.map((v) => el("td", {}, fmt(v)))));
  return t;
}

const PHASE = { forward: "forward pass", loss: "loss", backward: "backward pass", update: "gradient step" };

export function renderCard(card, step, index, total) {
  card.replaceChildren(
    el("div", {}, el("span", { class: `phase ${step.phase}` }, PHASE[step.phase]),
      el("span", { class: "muted" }, `  step ${index + 1} of ${total}` + (step.layer ? `, layer ${step.layer}` : ""))),
    el("div", { class: "eq", "data-symbol": step.symbol },
      el("span", { class: "sym" }, step.symbol), " = ", el("span", { class: "formula" }, step.formula), " = ",
      valueNode(step.value)),
    el("div", { class: "note" }, step.note || ""),
  );
}

export function renderTable(tbody, steps, current, onPick) {
  tbody.replaceChildren(...steps.slice(0, current + 1).map((s, i) => {
    const tr = el("tr", { "data-symbol": s.symbol, "data-phase": s.phase, class: i === current ? "current" : "" },
      el("td", {}, String(i + 1)), el("td", {}, el("span", { class: `phase ${s.phase}` }, s.phase)),
      el("td", {}, s.symbol), el("td", { class: "formula" }, s.formula),
      el("td", { class: "value" }, fmtValue(s.value)));
    tr.addEventListener("click", () => onPick(i));
    return tr;
  }));
}

export function renderChecks(box, result) {
  const t = result.torch;
  const badges = [];
  if (t && t.available) {
    const ok = t.max_abs_diff < 1e-10;
    badges.push(el("span", { class: `badge ${ok ? "ok" : "bad"}`, id: "torch-badge" },
      `${ok ? "\u2713" : "\u2717"} checked by PyTorch ${t.torch_version}: largest difference ${fmt(t.max_abs_diff)} ` +
      "(output, loss and every gradient of this example, autograd in float64)"));
  } else {
    badges.push(el("span", { class: "badge off", id: "torch-badge" }, `not checked by PyTorch: ${t ? t.reason : "no answer"}`));
  }
  badges.push(el("span", { class: "badge ok" },
    `engine's backward = the formulas: largest difference ${fmt(result.engine_vs_formula)}`));
  box.replaceChildren(...badges);
}
