// The network diagram: one node per unit, edges coloured by the weight's sign and
// thickened by its size, each hidden node showing its activation over the input plane.
import { CLASS_COLOURS, decodeB64, divergingRgb } from "./pg-state.js";
import { drawCurve } from "./pg-units.js";

const MAX_DRAWN_INPUTS = 16;  // wider inputs (images) are drawn as one block

export class NetworkPanel {
  constructor(root) {
    this.root = root;
    this.canvas = document.createElement("canvas"); this.canvas.id = "network";
    this.canvas.width = 640; this.canvas.height = 340;
    root.append(this.canvas);
    this.dataset = null; this.update = null;
  }

  setDataset(ds) { this.dataset = ds; this.update = null; this.draw(); }
  setUpdate(u) { this.update = u; this.draw(); }

  draw() {
    const ds = this.dataset;
    const ctx = this.canvas.getContext("2d");
    const W = this.canvas.width, H = this.canvas.height;
    ctx.clearRect(0, 0, W, H);
    if (!ds) return;
    const sizes = ds.layers, L = sizes.length;
    const bigInput = sizes[0] > MAX_DRAWN_INPUTS;
    const colX = (l) => 70 + (l * (W - 140)) / (L - 1);
    const most = Math.max(...sizes.map((n, l) => (l === 0 && bigInput ? 1 : n)));
    const node = Math.max(8, Math.min(38, (H - 40) / most - 6));
    const pos = sizes.map((n, l) => {
      const count = l === 0 && bigInput ? 1 : n;
      const gap = Math.min(node + 8, (H - 30) / count);
      const top = H / 2 - (gap * (count - 1)) / 2;
      return Array.from({ length: count }, (_, i) => [colX(l), top + i * gap]);
    });
    const net = this.update ? this.update.network : null;
    // edges first, under the nodes
    if (net) {
      net.forEach((layer, l) => {
        if (l === 0 && bigInput) return;
        const w = layer.weight;
        const nOut = w.length, nIn = w[0].length;
        if (nOut * nIn > 5000) return;
        let m = 1e-12;
        for (const row of w) for (const v of row) m = Math.max(m, Math.abs(v));
        for (let j = 0; j < nOut; j++) for (let i = 0; i < nIn; i++) {
          const v = w[j][i], a = Math.abs(v) / m;
          ctx.strokeStyle = v >= 0 ? `rgba(245,147,34,${0.15 + 0.75 * a})` : `rgba(8,119,189,${0.15 + 0.75 * a})`;
          ctx.lineWidth = 0.4 + 4 * a;
          ctx.beginPath(); ctx.moveTo(pos[l][i][0] + node / 2, pos[l][i][1]);
          ctx.lineTo(pos[l + 1][j][0] - node / 2, pos[l + 1][j][1]); ctx.stroke();
        }
      });
    }
    // nodes
    const maps = this.update ? this.update.units : [];
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "center";
    pos.forEach((column, l) => {
      column.forEach(([x, y], i) => {
        const left = x - node / 2, top = y - node / 2;
        let drawn = false;
        if (l === 0 && !bigInput && ds.feature_maps) drawn = this.map(ctx, ds.feature_maps.maps[i], ds.feature_maps.lo[i], ds.feature_maps.hi[i], ds.feature_maps.n, left, top, node);
        else if (l > 0 && l < L - 1 && maps[l - 1] && maps[l - 1].kind === "curve") {
          drawCurve(ctx, decodeB64(maps[l - 1].units[i]), left, top, node); drawn = true;
        } else if (l > 0 && l < L - 1 && maps[l - 1]) drawn = this.map(ctx, maps[l - 1].units[i], maps[l - 1].lo, maps[l - 1].hi, maps[l - 1].n, left, top, node);
        if (!drawn) {
          ctx.fillStyle = l === L - 1 && ds.classes ? CLASS_COLOURS[(sizes[l] === 1 ? 1 : i) % 10] : "#e5e7eb";
          ctx.fillRect(left, top, node, node);
        }
        ctx.strokeStyle = "#374151"; ctx.lineWidth = 1; ctx.strokeRect(left, top, node, node);
        if (l === 0) {
          ctx.fillStyle = "#374151"; ctx.textAlign = "right";
          if (bigInput) { ctx.textAlign = "center"; ctx.fillText(`${sizes[0]} pixels`, x, top - 6); }
          else ctx.fillText(ds.features[i], left - 4, y + 4);
          ctx.textAlign = "center";
        }
        if (l === L - 1 && ds.classes && sizes[l] > 1 && sizes[l] <= 12) {
          ctx.fillStyle = "#374151"; ctx.textAlign = "left";
          ctx.fillText(ds.classes[i], left + node + 4, y + 4); ctx.textAlign = "center";
        }
      });
      ctx.fillStyle = "#6b7280";
      const title = l === 0 ? "input" : l === L - 1 ? "output" : `hidden ${l}`;
      ctx.fillText(`${title} (${sizes[l]})`, colX(l), H - 6);
    });
  }

  map(ctx, b64, lo, hi, n, left, top, size) {
    if (!b64) return false;
    const data = decodeB64(b64);
    const img = ctx.createImageData(n, n);
    for (let k = 0; k < n * n; k++) {
      const c = divergingRgb(data[k], lo, hi);
      img.data.set([c[0], c[1], c[2], 255], k * 4);
    }
    const tmp = document.createElement("canvas"); tmp.width = n; tmp.height = n;
    tmp.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true; ctx.drawImage(tmp, left, top, size, size);
    return true;
  }
}
