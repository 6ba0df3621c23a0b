// uPlot charts for the runs page: the data come from /api/runs/NAME as columns.

import uPlot from "/static/vendor/uplot/uPlot.esm.js";

const COLORS = ["#2563eb", "#e8743b", "#15803d", "#9333ea", "#b91c1c", "#0891b2", "#a16207", "#475569"];

export function color(i) { return COLORS[i % COLORS.length]; }

// A line chart in `root`: x values, and [{label, values, dash}] series. Re-creates the
// chart when the series change, otherwise only swaps the data (no flicker while live).
export function lineChart(root, key, x, series, { xLabel = "epoch", yLog = false, height = 240 } = {}) {
  const width = Math.max(280, root.clientWidth || 480);
  const sig = JSON.stringify([series.map((s) => s.label), yLog, width]);
  const data = [x, ...series.map((s) => s.values)];
  root.dataset.points = String(x.length);
  if (root._plot && root._sig === sig) {
    root._plot.setData(data);
    return root._plot;
  }
  if (root._plot) root._plot.destroy();
  const opts = {
    width, height,
    scales: { x: { time: false }, y: yLog ? { distr: 3 } : {} },
    // whole epochs on the x axis (uPlot's default ticks would put 1.2, 1.4, ...)
    axes: [{ label: xLabel, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }, { size: 60 }],
    legend: { live: true },
    series: [{ label: xLabel }, ...series.map((s, i) => ({
      label: s.label, stroke: s.color || color(i), width: 2, dash: s.dash, spanGaps: true,
      points: { show: x.length < 40 },
    }))],
  };
  root.replaceChildren();
  root._plot = new uPlot(opts, data, root);
  root._sig = sig;
  root.dataset.key = key;
  return root._plot;
}

// A histogram (counts over bin edges) as a filled step chart: x = the edges, the last
// count repeated so that the last bin is drawn too.
export function histogramChart(root, key, edges, counts, { width = 300, height = 150, label = "count" } = {}) {
  if (root._plot) root._plot.destroy();
  const data = [edges, [...counts, counts[counts.length - 1] ?? 0]];
  root.replaceChildren();
  root._plot = new uPlot({
    width, height, legend: { show: false },
    scales: { x: { time: false } },
    axes: [{ size: 30 }, { size: 50 }],
    series: [{}, { label, stroke: COLORS[0], fill: "rgba(37, 99, 235, 0.25)", width: 1,
      paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } }],
  }, data, root);
  root.dataset.key = key;
  return root._plot;
}
