"""Diagnostics plots as PNGs in ``run_dir/plots/`` (matplotlib Agg, imported when plotting).

:func:`make_plots` draws whatever the run folder allows: the loss/accuracy curves from
``history.csv``, and from ``diagnostics.csv``/``histograms.json`` the gradient norm per
layer over time, the activation std per layer (over time and across depth), the dead
and saturated fractions, the update ratios, and the pre-activation histograms at the
first and last recorded step. Every file is written atomically.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinnet.diagnostics.stats import ACTIVATIONS, MODEL, RELU_FAMILY, SATURATING, layer_labels
from twinnet.train.plots import _pyplot
from twinnet.utils import atomic_write


@dataclass
class Plot:
    """One saved figure: its path, a title and a sentence on how to read it."""

    path: Path
    title: str
    caption: str


def _save(fig, path: Path, dpi: int = 100) -> None:
    """Save a PNG atomically and close the figure. Every figure here uses constrained
    layout (which makes room for the legends outside the axes), so the slower
    ``bbox_inches="tight"`` second drawing pass is not needed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    _pyplot().close(fig)
    atomic_write(path, buf.getvalue())


def _series(rows: list[dict]):
    """(layer, statistic) -> ([steps], [values]); the layer order; the types."""
    out: dict[tuple[str, str], tuple[list, list]] = defaultdict(lambda: ([], []))
    types: dict[str, str] = {}
    for r in rows:
        types.setdefault(r["layer"], r["layer_type"])
        steps, values = out[(r["layer"], r["statistic"])]
        steps.append(r["step"])
        values.append(r["value"])
    return out, [n for n in types if n != MODEL], types


def _colors(plt, n: int):
    cmap = plt.get_cmap("viridis")
    return [cmap(i / max(n - 1, 1) * 0.9) for i in range(n)]


def _short(label: str) -> str:
    return label.replace("layer ", "")


def _positive(steps, values):
    pairs = [(s, v) for s, v in zip(steps, values, strict=True) if math.isfinite(v) and v > 0]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _lines(ax, plt, series, names, statistic, labels, log=False, style="-o", legend=True):
    """One line per layer (colour by depth); returns how many were drawn."""
    drawn = 0
    for name, color in zip(names, _colors(plt, len(names)), strict=True):
        steps, values = series.get((name, statistic), ([], []))
        if log:
            steps, values = _positive(steps, values)
        if steps:
            ax.plot(steps, values, style, ms=2.5, lw=1.2, color=color, label=_short(labels[name]))
            drawn += 1
    if log and drawn:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if legend and drawn:
        _legend(ax)
    return drawn


def _legend(ax) -> None:
    """Legend outside the axes on the right, so it never hides a line."""
    n = len(ax.get_legend_handles_labels()[0])
    ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
        ncol=max(1, -(-n // 24)),
    )


def plot_history(run_dir: Path, out_dir: Path) -> Plot | None:
    """Loss and accuracy per epoch, train vs validation (from history.csv)."""
    path = run_dir / "history.csv"
    if not path.is_file():
        return None
    from twinnet.train.history import History
    from twinnet.train.plots import plot_curves

    history = History.from_csv(path)
    if not len(history) or "epoch" not in history.columns:
        return None
    target = out_dir / "curves.png"
    plot_curves(history, target)
    return Plot(
        target,
        "Loss and accuracy",
        "Per epoch, training vs validation set. A validation "
        "loss that rises while the training loss falls is overfitting.",
    )


def plot_diagnostics(rows: list[dict], histograms: list[dict], out_dir: Path) -> list[Plot]:
    """Every diagnostics figure that the rows allow; returns the saved plots."""
    plt = _pyplot()
    series, names, types = _series(rows)
    labels = layer_labels(list(types.items()))
    acts = [n for n in names if types[n] in ACTIVATIONS]
    plots: list[Plot] = []

    # gradient norms: each parameterised layer's weight, and each layer's input gradient
    weighted = [n for n in names if (n, "weight_grad_norm") in series]
    fig, axes = plt.subplots(2, 1, figsize=(8, 7.5), constrained_layout=True)
    _lines(axes[0], plt, series, weighted, "weight_grad_norm", labels, log=True)
    axes[0].set_title("||dL/dW|| per layer (weights)")
    _lines(axes[1], plt, series, names, "grad_input_norm", labels, log=True)
    axes[1].set_title("||dL/dx|| per layer (its input)")
    _save(fig, out_dir / "grad_norms.png")
    plots.append(
        Plot(
            out_dir / "grad_norms.png",
            "Gradient norms",
            "Log scale. Lines that sit orders of "
            "magnitude apart across depth mean vanishing (early layers far below) or exploding "
            "gradients.",
        )
    )

    # activation std: over time, and across depth at the first and last record
    shown = [n for n in (acts or names) if (n, "act_std") in series]
    if shown:  # no act_std recorded: nothing to draw (a log axis of nothing fails)
        fig, axes = plt.subplots(2, 1, figsize=(8, 7.5), constrained_layout=True)
        _lines(axes[0], plt, series, shown, "act_std", labels, log=True)
        axes[0].set_title("activation std over time")
        steps = sorted({r["step"] for r in rows})
        for step, style in ((steps[0], "-o"), (steps[-1], "-s")):
            values = []
            for n in shown:
                s, v = series.get((n, "act_std"), ([], []))
                values.append(dict(zip(s, v, strict=True)).get(step, math.nan))
            axes[1].plot(range(len(shown)), values, style, ms=4, label=f"step {step}")
        axes[1].set_xticks(range(len(shown)), shown, fontsize=7, rotation=90 if len(shown) > 16 else 0)
        axes[1].set_xlabel("layer")
        axes[1].set_yscale("log")
        axes[1].grid(alpha=0.3)
        _legend(axes[1])
        axes[1].set_title("activation std across depth")
        _save(fig, out_dir / "activation_std.png")
        plots.append(
            Plot(
                out_dir / "activation_std.png",
                "Activation scale",
                "Std of each layer's output. "
                "Across depth it should stay roughly level; a steady fall or rise signals an "
                "initialisation that shrinks or grows the signal.",
            )
        )

    # dead (ReLU family) and saturated (sigmoid/tanh) fractions
    relus = [n for n in names if types[n] in RELU_FAMILY and (n, "dead_fraction") in series]
    sats = [n for n in names if types[n] in SATURATING and (n, "saturated_fraction") in series]
    if relus or sats:
        fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
        dead = {n: f"{labels[n]} dead" for n in relus}
        saturated = {n: f"{labels[n]} saturated" for n in sats}
        _lines(ax, plt, series, relus, "dead_fraction", dead, legend=False)
        _lines(ax, plt, series, sats, "saturated_fraction", saturated, style="--s", legend=False)
        _legend(ax)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("fraction of units")
        ax.set_title("dead (ReLU) and saturated (sigmoid/tanh) units")
        _save(fig, out_dir / "dead_saturated.png")
        plots.append(
            Plot(
                out_dir / "dead_saturated.png",
                "Dead and saturated units",
                "A ReLU unit is "
                "dead when it outputs 0 for every probe example; a sigmoid/tanh unit is saturated "
                "when its local gradient is below 0.01 on 99% of them.",
            )
        )

    # update ratio ||Δw|| / ||w||
    updated = [n for n in names if (n, "weight_update_ratio") in series]
    if updated:
        fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
        if _lines(ax, plt, series, updated, "weight_update_ratio", labels, log=True):
            for y, text in ((1e-2, "too high: 1e-2"), (1e-3, "typical: 1e-3"), (1e-5, "too low: 1e-5")):
                ax.axhline(y, color="#555555", ls="--", lw=1.0, zorder=1)
                ax.annotate(  # on a white box over the line, left inside the axes
                    text,
                    (0.01, y),
                    xycoords=("axes fraction", "data"),
                    fontsize=10,
                    color="#333333",
                    va="center",
                    ha="left",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9},
                    zorder=5,
                )
        ax.set_title("update ratio ||Δw|| / ||w|| (weights)")
        _save(fig, out_dir / "update_ratio.png")
        plots.append(
            Plot(
                out_dir / "update_ratio.png",
                "Update ratio",
                "The size of each optimiser step "
                "relative to the weights. Around 1e-3 is healthy; above 1e-2 the learning rate is "
                "likely too high, below 1e-5 too low.",
            )
        )

    if histograms:
        plots.append(_plot_histograms(plt, histograms, labels, out_dir / "histograms.png"))
    return plots


def shared_edges(records: list[dict]) -> np.ndarray:
    """One set of bin edges for several histograms of a layer: their whole range, in
    bins as wide as the widest recorded bin (so no recorded bin is split into finer
    ones than it measured)."""
    lo = min(float(h["edges"][0]) for h in records)
    hi = max(float(h["edges"][-1]) for h in records)
    width = max((float(h["edges"][-1]) - float(h["edges"][0])) / max(len(h["counts"]), 1) for h in records)
    if not width > 0:
        return np.array([lo - 0.5, hi + 0.5])
    n = max(1, math.ceil((hi - lo) / width - 1e-9))
    return lo + width * np.arange(n + 1)


def rebin(counts, edges, new_edges) -> np.ndarray:
    """Counts of bins ``edges`` moved onto ``new_edges``, each bin's count spread evenly
    over its width (the cumulative count, interpolated at the new edges)."""
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(counts, dtype=np.float64))])
    return np.diff(np.interp(new_edges, np.asarray(edges, dtype=np.float64), cumulative))


def _plot_histograms(plt, histograms: list[dict], labels: dict, path: Path) -> Plot:
    steps = sorted({h["step"] for h in histograms})
    layers = list(dict.fromkeys(h["layer"] for h in histograms))
    first, last = steps[0], steps[-1]
    cols = min(len(layers), 3)
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4 * cols, 2.8 * rows + 0.4), squeeze=False, constrained_layout=True
    )
    by_key = {(h["step"], h["layer"]): h for h in histograms}
    for ax, layer in zip(axes.flat, layers, strict=False):
        pair = [h for h in (by_key.get((first, layer)), by_key.get((last, layer))) if h is not None]
        edges = shared_edges(pair)
        for step, fill, color in ((first, True, "tab:blue"), (last, False, "tab:orange")):
            h = by_key.get((step, layer))
            if h is None:
                continue
            # the first record filled, the last as an outline on top, so both stay visible
            ax.stairs(
                rebin(h["counts"], h["edges"], edges),
                edges,
                fill=fill,
                alpha=0.5 if fill else 1.0,
                lw=1.6,
                color=color,
                label=f"step {step}",
            )
        ax.set_title(labels.get(layer, layer), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(layers) :]:
        ax.axis("off")
    fig.suptitle("pre-activation histograms (input of each activation layer)", fontsize=10)
    _save(fig, path)
    return Plot(
        path,
        "Pre-activation histograms",
        f"First (step {first}) and last (step {last}) record, on the same bins so their "
        "heights compare (counts re-binned from the recorded bins, spread evenly within each). "
        "Mass far in the flat tails of a sigmoid/tanh means saturation; mass entirely below 0 "
        "before a ReLU means dead units.",
    )


def make_plots(run_dir: str | Path) -> list[Plot]:
    """Draw every plot the run folder allows into ``run_dir/plots/``; returns them."""
    from twinnet.diagnostics.callback import read_diagnostics, read_histograms

    run_dir = Path(run_dir)
    out_dir = run_dir / "plots"
    out_dir.mkdir(exist_ok=True)
    plots = []
    curves = plot_history(run_dir, out_dir)
    if curves is not None:
        plots.append(curves)
    if (run_dir / "diagnostics.csv").is_file():
        rows = read_diagnostics(run_dir)
        if rows:
            plots += plot_diagnostics(rows, read_histograms(run_dir), out_dir)
    return plots
