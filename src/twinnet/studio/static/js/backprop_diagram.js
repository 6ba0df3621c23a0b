// The network diagram: one circle per unit, one line per weight. Before a layer's
// gradient is reached the lines show the weights (grey, thickness |w|); from then on
// they show dL/dw: orange > 0, blue < 0, thickness |dL/dw| (scaled to the largest).

import { fmt, fmtValue } from "./backprop_steps.js";

const NS = "http://www.w3.org/2000/svg";
const POS = "#e8743b", NEG = "#2a7ab0", GREY = "#b8bec8";

function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// the column whose units a step's vector belongs to (null: none)
function column(step, L) {
  const s = step.symbol;
  if (s === "x") return 0;
  if (s.startsWith("dL/da")) return Number(s.slice(5));
  if (/^(z|a|delta)\d+$/.test(s)) return Number(s.match(/\d+$/)[0]);
  if (/'\(z\d+\)$/.test(s)) return Number(s.match(/z(\d+)\)$/)[1]);
  if (["y_hat", "p", "dL/dy_hat"].includes(s)) return L;
  return null;
}

// the value of quantity `symbol` (a vector) from the trace's steps
function valueOf(result, symbol) {
  if (symbol === "x") return result.x;
  const s = result.steps.find((t) => t.symbol === symbol && t.phase !== "update");
  return s ? s.value : null;
}

// what one weight's line means: its value, and once its gradient is known, the chain rule
// dL/dW_k[i,j] = delta_k[i] * a_{k-1}[j] with the three numbers of the trace
export function explainEdge(result, k, i, j, revealed) {
  const w = result.params[`W${k}`][i][j];
  const name = `W${k}[${i + 1},${j + 1}]`;
  const lines = [`${name} = ${fmt(w)}: the weight from ${k === 1 ? result.inputs?.[j] || `x${j + 1}` : `unit ${j + 1} of layer ${k - 1}`} to ${k === result.sizes.length - 1 ? "output" : "unit"} ${i + 1} of layer ${k}`];
  if (!revealed) return [...lines, "Its gradient appears when the backward pass reaches layer " + k + "."];
  const a = k === 1 ? "x" : `a${k - 1}`;
  const d = valueOf(result, `delta${k}`), av = valueOf(result, a);
  const g = result.grads[`W${k}`][i][j];
  lines.push(`dL/d${name} = delta${k}[${i + 1}] \u00b7 ${a}[${j + 1}] = (${fmt(d[i])}) \u00b7 (${fmt(av[j])}) = ${fmt(g)}`);
  lines.push(`step: ${name} \u2190 ${fmt(w)} - ${result.lr} \u00b7 (${fmt(g)}) = ${fmt(result.updated[`W${k}`][i][j])}`);
  return lines;
}

export function drawNetwork(root, result, current, onEdge = () => {}) {
  const { sizes, steps, params, grads } = result;
  const L = sizes.length - 1;
  const W = root.clientWidth || 600, H = root.clientHeight || 400;
  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  root.replaceChildren();
  const step = steps[current];
  const colX = (k) => 70 + (k * (W - 140)) / L;
  const rowY = (k, i) => 40 + ((i + 0.5) * (H - 70)) / sizes[k];
  // gradients revealed so far: dL/dW_k steps at or before `current`
  const revealed = new Set(steps.slice(0, current + 1).filter((s) => /^dL\/dW\d+$/.test(s.symbol)).map((s) => Number(s.symbol.slice(5))));
  const gmax = Math.max(1e-300, ...Object.entries(grads).filter(([n]) => n[0] === "W").flatMap(([, g]) => g.flat().map(Math.abs)));
  const wmax = Math.max(1e-300, ...Object.entries(params).filter(([n]) => n[0] === "W").flatMap(([, w]) => w.flat().map(Math.abs)));
  const nEdges = sizes.slice(1).reduce((acc, n, k) => acc + n * sizes[k], 0);
  const edges = svg("g", {});
  const labels = svg("g", {});
  for (let k = 1; k <= L; k++) {
    const Wk = params[`W${k}`], Gk = grads[`W${k}`];
    const isCurrent = step.symbol === `dL/dW${k}` || step.symbol === `new W${k}`;
    for (let i = 0; i < sizes[k]; i++) {
      for (let j = 0; j < sizes[k - 1]; j++) {
        const show = revealed.has(k);
        const g = Gk[i][j], w = Wk[i][j];
        const width = show ? 1 + 8 * Math.abs(g) / gmax : 0.6 + 3 * Math.abs(w) / wmax;
        const x1 = colX(k - 1) + 18, y1 = rowY(k - 1, j), x2 = colX(k) - 18, y2 = rowY(k, i);
        const line = svg("line", { x1, y1, x2, y2, stroke: show ? (g > 0 ? POS : g < 0 ? NEG : GREY) : GREY,
          "stroke-width": width.toFixed(2), "stroke-opacity": show && isCurrent ? 1 : show ? 0.85 : 0.7,
          class: "edge", "data-layer": k, "data-i": i, "data-j": j });
        line.append(svg("title", {}, `W${k}[${i + 1},${j + 1}] = ${fmt(w)}` + (show ? `, dL/dW${k}[${i + 1},${j + 1}] = ${fmt(g)}` : "")));
        // a wide transparent line on top makes the thin ones easy to click
        const hit = svg("line", { x1, y1, x2, y2, stroke: "transparent", "stroke-width": 10, class: "edge-hit",
          "data-layer": k, "data-i": i, "data-j": j, style: "cursor:pointer" });
        hit.addEventListener("click", () => onEdge(k, i, j, show));
        edges.append(line, hit);
        if (show && nEdges <= 12) {  // a small network: write each gradient on its line
          const t = 0.3 + 0.4 * ((i + j) % 2);
          labels.append(svg("text", { x: x1 + t * (x2 - x1), y: y1 + t * (y2 - y1) - 3, class: "edge-label" }, fmt(g)));
        }
      }
    }
  }
  root.append(edges, labels);
  root.append(svg("text", { x: colX(L), y: H - 8, class: "col-label", id: "target" },
    `target y = ${fmtValue(result.y)}${result.loss.name === "cross_entropy" ? " (class index)" : ""}`));
  const col = column(step, L);
  const xs = result.x;
  for (let k = 0; k <= L; k++) {
    root.append(svg("text", { x: colX(k), y: 20, class: "col-label" },
      k === 0 ? "input x" : `${k === L ? "output" : "layer " + k} (${result.activations[k - 1]})`));
    for (let i = 0; i < sizes[k]; i++) {
      const g = svg("g", { class: "node" + (col === k ? " current" : ""), transform: `translate(${colX(k)},${rowY(k, i)})` });
      g.append(svg("circle", { r: 18 }));
      let value = null;
      if (col === k && Array.isArray(step.value) && step.value.length === sizes[k] && !Array.isArray(step.value[0])) value = step.value[i];
      else if (k === 0) value = xs[i];
      g.append(svg("text", { y: value === null ? 4 : -2 }, k === 0 ? (result.inputs || [])[i] || `x${i + 1}` : `${k === L && L > 0 ? "out" : "u"}${i + 1}`));
      if (value !== null) g.append(svg("text", { y: 11, class: "val" }, fmt(value)));
      root.append(g);
    }
  }
}
