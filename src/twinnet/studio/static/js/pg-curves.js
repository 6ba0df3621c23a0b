// Live curves (uPlot): train and validation loss, and accuracy for classification.
import uPlot from "../vendor/uplot/uPlot.esm.js";

function chart(root, title, yLabel, width) {
  const opts = {
    title, width, height: 190, legend: { live: false },
    scales: { x: { time: false } },
    axes: [{ label: "step" }, { label: yLabel, size: 56 }],
    series: [{ label: "step" },
      { label: "train", stroke: "#f59322", width: 2, points: { show: false } },
      { label: "validation", stroke: "#0877bd", width: 2, points: { show: false } }],
  };
  return new uPlot(opts, [[], [], []], root);
}

export class CurvesPanel {
  constructor(root) {
    this.root = root; this.loss = null; this.acc = null;
    this.lossBox = document.createElement("div"); this.lossBox.id = "loss-plot";
    this.accBox = document.createElement("div"); this.accBox.id = "accuracy-plot";
    root.append(this.lossBox, this.accBox);
  }

  reset(classification) {
    if (this.loss) this.loss.destroy();
    if (this.acc) { this.acc.destroy(); this.acc = null; }
    const width = Math.max(300, this.root.clientWidth - 4);
    this.loss = chart(this.lossBox, "Loss", "loss", width);
    if (classification) this.acc = chart(this.accBox, "Accuracy", "accuracy", width);
  }

  update(curves) {
    if (!this.loss) return;
    this.loss.setData([curves.step, curves.train_loss, curves.val_loss]);
    if (this.acc) this.acc.setData([curves.step, curves.train_accuracy, curves.val_accuracy]);
  }
}
