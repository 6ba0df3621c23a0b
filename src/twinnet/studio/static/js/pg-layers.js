// Per layer, from the diagnostics' probe (twinnet.diagnostics.collect_stats): the
// pre-activation histogram, dead and saturated share, gradient norm, update-to-weight ratio.

const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : Number(v).toPrecision(digits));
const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(100 * v)}%`);

export class LayersPanel {
  constructor(root) { this.root = root; }

  update(layers) {
    const table = document.createElement("table"); table.className = "data layers-table";
    table.innerHTML = "<thead><tr><th class='left'>layer</th><th>histogram of the input</th><th>dead</th><th>saturated</th><th>‖∇W‖</th><th>‖ΔW‖/‖W‖</th></tr></thead>";
    const body = document.createElement("tbody");
    for (const layer of layers) {
      const s = layer.stats;
      const isActivation = "histogram" in layer;
      const hasWeight = "weight_grad_norm" in s;
      if (!isActivation && !hasWeight) continue;
      const tr = document.createElement("tr");
      const name = document.createElement("td"); name.className = "left"; name.textContent = layer.label;
      const hist = document.createElement("td");
      if (isActivation) hist.append(this.histogram(layer.histogram));
      tr.append(name, hist);
      const cells = [
        "dead_fraction" in s ? pct(s.dead_fraction) : "",
        "saturated_fraction" in s ? pct(s.saturated_fraction) : "",
        hasWeight ? fmt(s.weight_grad_norm) : "",
        hasWeight ? fmt(s.weight_update_ratio, 2) : "",
      ];
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
      if ((s.dead_fraction || 0) >= 0.25 || (s.saturated_fraction || 0) > 0.5) tr.className = "warn";
      body.append(tr);
    }
    table.append(body);
    this.root.replaceChildren(table);
  }

  histogram(h) {
    const c = document.createElement("canvas"); c.width = 120; c.height = 30; c.className = "hist";
    const ctx = c.getContext("2d");
    const max = Math.max(1, ...h.counts), n = h.counts.length, bw = c.width / n;
    ctx.fillStyle = "#6b7fa8";
    h.counts.forEach((k, i) => { const hh = (k / max) * (c.height - 2); ctx.fillRect(i * bw, c.height - hh, bw - 0.5, hh); });
    c.title = `from ${h.edges[0]} to ${h.edges.at(-1)}`;
    return c;
  }
}
