// The input plane: the decision boundary (or regression surface) the server computed,
// drawn on a canvas with the data points on top; click to draw points.
import { CLASS_COLOURS, hexToRgb, decodeB64, divergingRgb } from "./pg-state.js";
import uPlot from "../vendor/uplot/uPlot.esm.js";

const RGB = CLASS_COLOURS.map(hexToRgb);

export class PlanePanel {
  constructor(root, onClick) {
    this.root = root; this.onClick = onClick;
    this.canvas = document.createElement("canvas");
    this.canvas.id = "heatmap"; this.canvas.width = 400; this.canvas.height = 400;
    this.legend = document.createElement("div"); this.legend.className = "legend";
    this.curveBox = document.createElement("div"); this.curveBox.id = "fit-plot";
    root.append(this.canvas, this.curveBox, this.legend);
    this.dataset = null; this.output = null; this.drawnPoints = null; this.plot = null;
    this.canvas.addEventListener("click", (e) => this.click(e));
  }

  setDataset(ds) {
    this.dataset = ds; this.output = null;
    const oneD = ds.n_raw === 1;
    this.canvas.style.display = oneD ? "none" : "";
    this.curveBox.style.display = oneD ? "" : "none";
    if (this.plot) { this.plot.destroy(); this.plot = null; }
    this.legend.innerHTML = "";
    if (ds.classes) {
      ds.classes.forEach((name, c) => {
        const s = document.createElement("span");
        s.innerHTML = `<i style="background:${CLASS_COLOURS[c % 10]}"></i>${name}`;
        this.legend.append(s);
      });
      const note = document.createElement("span"); note.className = "muted";
      note.textContent = "● train  ○ validation"; this.legend.append(note);
    }
    this.draw();
  }

  showDrawing(points, extent) {
    this.dataset = null; this.output = null;
    this.drawnPoints = points; this.drawExtent = extent;
    this.canvas.style.display = ""; this.curveBox.style.display = "none";
    this.draw();
  }

  update(output) { this.output = output; this.draw(); }

  extent() { return this.dataset ? this.dataset.extent : this.drawExtent; }

  draw() {
    const ds = this.dataset;
    if (ds && ds.n_raw === 1) return this.drawCurve();
    const ctx = this.canvas.getContext("2d");
    const W = this.canvas.width, H = this.canvas.height;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    const out = this.output;
    if (out && (out.kind === "probs" || out.kind === "values")) {
      const n = out.n, data = decodeB64(out.data);
      const img = ctx.createImageData(n, n);
      for (let i = 0; i < n * n; i++) {
        let rgb;
        if (out.kind === "values") rgb = divergingRgb(data[i], out.lo, out.hi);
        else {
          const C = out.classes; let r = 0, g = 0, b = 0, best = 0;
          for (let c = 0; c < C; c++) {
            const p = data[i * C + c] / 255; best = Math.max(best, p);
            r += p * RGB[c % 10][0]; g += p * RGB[c % 10][1]; b += p * RGB[c % 10][2];
          }
          const a = 0.75 * Math.max(0, (best - 1 / C) / (1 - 1 / C));  // confident: strong colour
          rgb = [255 + (r - 255) * a, 255 + (g - 255) * a, 255 + (b - 255) * a];
        }
        img.data.set([rgb[0], rgb[1], rgb[2], 255], i * 4);
      }
      // draw the n x n image scaled to the canvas, smoothed
      const tmp = document.createElement("canvas"); tmp.width = n; tmp.height = n;
      tmp.getContext("2d").putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = true; ctx.drawImage(tmp, 0, 0, W, H);
    }
    const ext = this.extent();
    if (!ext) return;
    const px = (x) => ((x - ext[0]) / (ext[1] - ext[0])) * W;
    const py = (y) => ((ext[3] - y) / (ext[3] - ext[2])) * H;
    const many = ds && ds.train ? ds.train.length + ds.val.length : (this.drawnPoints || []).length;
    const radius = many > 150 ? 3.2 : 5;
    const dot = (p, hollow) => {
      const colour = CLASS_COLOURS[(p[2] | 0) % 10];
      ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), radius, 0, 2 * Math.PI);
      if (hollow) { ctx.fillStyle = "#fff"; ctx.fill(); ctx.strokeStyle = colour; ctx.lineWidth = 1.6; ctx.stroke(); }
      else { ctx.fillStyle = colour; ctx.fill(); ctx.strokeStyle = "#fff"; ctx.lineWidth = 1; ctx.stroke(); }
    };
    if (ds && ds.train) { ds.train.forEach((p) => dot(p, false)); ds.val.forEach((p) => dot(p, true)); }
    else if (this.drawnPoints) this.drawnPoints.forEach((p) => dot(p, false));
  }

  drawCurve() {
    const ds = this.dataset, out = this.output;
    const pts = [...ds.train].sort((a, b) => a[0] - b[0]);
    if (!this.plot) {
      const opts = { width: 400, height: 320, legend: { live: false }, scales: { x: { time: false } },
        series: [{ label: "x" },
          { label: "train data", stroke: "#0877bd", paths: () => null, points: { show: true, size: 3, fill: "#0877bd" } },
          { label: "network", stroke: "#f59322", width: 2, spanGaps: true, points: { show: false } }] };
      this.plot = new uPlot(opts, [[0], [null], [null]], this.curveBox);
    }
    if (!out || out.kind !== "curve") return;
    // one x axis: the fit's grid and the points, merged and sorted
    const xs = [...out.x, ...pts.map((p) => p[0])];
    const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
    const x = [], data = [], fit = [];
    for (const i of order) {
      x.push(xs[i]);
      if (i < out.x.length) { fit.push(out.y[i]); data.push(null); } else { fit.push(null); data.push(pts[i - out.x.length][1]); }
    }
    this.plot.setData([x, data, fit]);
  }

  click(e) {
    const ext = this.extent();
    if (!ext || !this.onClick) return;
    const r = this.canvas.getBoundingClientRect();
    const x = ext[0] + ((e.clientX - r.left) / r.width) * (ext[1] - ext[0]);
    const y = ext[3] - ((e.clientY - r.top) / r.height) * (ext[3] - ext[2]);
    this.onClick([Math.round(x * 100) / 100, Math.round(y * 100) / 100], e.shiftKey);
  }
}
