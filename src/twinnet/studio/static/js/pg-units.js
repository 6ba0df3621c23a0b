// Every hidden unit's activation over the input plane, one thumbnail per unit and a row
// per layer (the same maps as the diagram's nodes, larger). Orange: positive, blue: negative.
import { decodeB64, divergingRgb } from "./pg-state.js";

const SIZE = 42;  // css pixels per thumbnail

export function showUnits(root, units) {
  root.innerHTML = "";
  units.forEach((layer, l) => {
    const row = document.createElement("div"); row.className = "unit-row";
    const label = document.createElement("span"); label.className = "unit-label";
    label.textContent = `hidden ${l + 1}`;
    label.title = `values from ${layer.lo.toPrecision(3)} to ${layer.hi.toPrecision(3)}`;
    row.append(label);
    layer.units.forEach((b64, j) => {
      const c = document.createElement("canvas");
      c.style.width = c.style.height = `${SIZE}px`; c.title = `hidden ${l + 1}, unit ${j + 1}`;
      if (layer.kind === "curve") {  // 1-D data: the unit's output along x
        c.width = c.height = 2 * SIZE;
        drawCurve(c.getContext("2d"), decodeB64(b64), 0, 0, 2 * SIZE);
        row.append(c); return;
      }
      c.width = layer.n; c.height = layer.n;
      const ctx = c.getContext("2d"); const img = ctx.createImageData(layer.n, layer.n);
      const data = decodeB64(b64);
      for (let k = 0; k < data.length; k++) {
        const rgb = divergingRgb(data[k], layer.lo, layer.hi);
        img.data.set([rgb[0], rgb[1], rgb[2], 255], k * 4);
      }
      ctx.putImageData(img, 0, 0);
      row.append(c);
    });
    root.append(row);
  });
}

// a unit's values (0..255 of its layer's range) as a line in the size x size box at (left, top)
export function drawCurve(ctx, data, left, top, size) {
  ctx.fillStyle = "#fff"; ctx.fillRect(left, top, size, size);
  ctx.strokeStyle = "#0877bd"; ctx.lineWidth = Math.max(1, size / 30);
  ctx.beginPath();
  for (let k = 0; k < data.length; k++) {
    const x = left + (k / (data.length - 1)) * size, y = top + size - 2 - (data[k] / 255) * (size - 4);
    if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  }
  ctx.stroke();
}
