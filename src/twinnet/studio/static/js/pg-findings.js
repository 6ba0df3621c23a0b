// Findings in plain words (twinnet.diagnostics.findings on the records so far), and for
// image data a grid of validation examples with predictions and a confusion matrix.
import { decodeB64 } from "./pg-state.js";

export function showFindings(root, findings) {
  root.innerHTML = "";
  if (!findings.length) {
    const p = document.createElement("p"); p.className = "muted";
    p.textContent = "No findings so far: no layer crosses a danger line.";
    root.append(p); return;
  }
  for (const f of findings) {
    const div = document.createElement("div"); div.className = `finding ${f.severity}`;
    div.textContent = f.message; root.append(div);
  }
}

export function showImages(root, images, predictions, classes) {
  root.innerHTML = "";
  if (!images) return;
  const data = decodeB64(images.data), side = images.side, size = side * side;
  const grid = document.createElement("div"); grid.className = "image-grid";
  for (let k = 0; k < images.count; k++) {
    const cell = document.createElement("figure");
    const c = document.createElement("canvas"); c.width = side; c.height = side;
    const ctx = c.getContext("2d"); const img = ctx.createImageData(side, side);
    for (let i = 0; i < size; i++) { const v = 255 - data[k * size + i]; img.data.set([v, v, v, 255], i * 4); }
    ctx.putImageData(img, 0, 0);
    const cap = document.createElement("figcaption");
    const truth = images.labels[k], pred = predictions ? predictions[k] : null;
    cap.textContent = pred === null ? classes[truth] : `${classes[pred]}`;
    cap.className = pred === null ? "" : pred === truth ? "right" : "wrong";
    cap.title = `true: ${classes[truth]}`;
    cell.append(c, cap); grid.append(cell);
  }
  root.append(grid);
}

export function showConfusion(root, matrix, classes) {
  root.innerHTML = "";
  if (!matrix) return;
  const max = Math.max(1, ...matrix.flat());
  const t = document.createElement("table"); t.className = "confusion";
  const head = document.createElement("tr");
  head.innerHTML = "<th>true \\ predicted</th>" + classes.map((c) => `<th>${c}</th>`).join("");
  t.append(head);
  matrix.forEach((row, i) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = classes[i]; tr.append(th);
    row.forEach((v, j) => {
      const td = document.createElement("td"); td.textContent = v;
      const a = v / max;
      td.style.background = i === j ? `rgba(25,169,121,${a})` : `rgba(214,69,80,${a})`;
      if (a > 0.55) td.style.color = "#fff";
      tr.append(td);
    });
    t.append(tr);
  });
  root.append(t);
}
