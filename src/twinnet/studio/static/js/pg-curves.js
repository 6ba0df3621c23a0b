// Live curves (uPlot): train and validation loss, and accuracy for classification.
import uPlot from "../vendor/uplot/uPlot.esm.js";

function chart(root, title, yLabel, width) {
  const opts = {
    title, width, height: 190, legend: { live: false },
    scales: { x: { time: false } },
    axes: [{ label: "step" }, { label: yLabel, size: 56 }],
    series: [{ label: "step" },
      { label: "train", stroke: "#f59322", width: 2 },
      { label: "validation", stroke: "#0877bd", width: 2 }],  // dots only while the points are sparse
  };
  return new uPlot(opts, [[], [], []], root);
}

const KEYS = ["step", "train_loss", "val_loss", "train_accuracy", "val_accuracy"];
const MAX_POINTS = 4000;  // beyond this the older half is thinned to every other point

export class CurvesPanel {
  constructor(root) {
    this.root = root; this.loss = null; this.acc = null;
    this.data = Object.fromEntries(KEYS.map((k) => [k, []]));
    this.lossBox = document.createElement("div"); this.lossBox.id = "loss-plot";
    this.accBox = document.createElement("div"); this.accBox.id = "accuracy-plot";
    root.append(this.lossBox, this.accBox);
  }

  reset(classification) {
    this.data = Object.fromEntries(KEYS.map((k) => [k, []]));
    if (this.loss) this.loss.destroy();
    if (this.acc) { this.acc.destroy(); this.acc = null; }
    const width = Math.max(300, this.root.clientWidth - 4);
    this.loss = chart(this.lossBox, "Loss", "loss", width);
    if (classification) this.acc = chart(this.accBox, "Accuracy", "accuracy", width);
  }

  // one new point per snapshot (the same step again replaces it)
  add(point) {
    const d = this.data;
    if (d.step.length && d.step.at(-1) === point.step) for (const k of KEYS) d[k].pop();
    for (const k of KEYS) d[k].push(point[k]);
    if (d.step.length > MAX_POINTS) {
      const half = d.step.length >> 1;
      for (const k of KEYS) d[k] = d[k].slice(0, half).filter((_, i) => i % 2 === 0).concat(d[k].slice(half));
    }
    this.draw(d);
  }

  draw(curves) {
    if (!this.loss) return;
    this.loss.setData([curves.step, curves.train_loss, curves.val_loss]);
    if (this.acc) this.acc.setData([curves.step, curves.train_accuracy, curves.val_accuracy]);
  }
}
