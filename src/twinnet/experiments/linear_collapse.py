"""Linear collapse: stacked linear layers without activations are one linear map.

A network z = W_L (... (W_2 (W_1 x + b_1) + b_2) ...) + b_L is, by associativity,

    z = W x + b,   W = W_L ... W_2 W_1,   b = sum_l (W_L ... W_{l+1}) b_l,

so depth adds parameters but no expressive power: the trained deep linear net equals
the single matrix W (checked in float64 to rounding), and, like logistic regression,
it cannot exceed 75% on XOR or separate interleaved spirals. The same depth and width
with ReLU between the layers fits both.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn, optim
from twinnet.experiments.common import (
    SEED,
    fit_full_batch,
    print_table,
    pyplot,
    save_plot,
    save_results,
)
from twinnet.train import metrics as M

NAME = "linear-collapse"
CLAIM = (
    "a deep network without activations equals one matrix (the product of its weights) "
    "and cannot fit XOR or spirals; the same depth with ReLU can"
)

HIDDEN = (16, 16, 16)  # three hidden layers


def build(n_in: int, n_out: int, relu: bool, seed: int) -> nn.Sequential:
    """n_in-16-16-16-n_out in float64, ReLU between the layers or nothing at all."""
    rng = np.random.default_rng(seed)
    sizes = [n_in, *HIDDEN, n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b, dtype=np.float64, rng=rng))
        if relu and i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def collapse(model: nn.Sequential) -> tuple[np.ndarray, np.ndarray]:
    """The single (W, b) of a stack of Linear layers: W = W_L ... W_1, b = fold of biases."""
    w_eff, b_eff = None, None
    for layer in model:
        if not isinstance(layer, nn.Linear):
            raise ValueError(f"collapse needs only Linear layers, found {type(layer).__name__}")
        w, b = layer.weight.data, layer.bias.data
        # x -> W_l (W x + b) + b_l  =  (W_l W) x + (W_l b + b_l)
        w_eff = w.copy() if w_eff is None else w @ w_eff
        b_eff = b.copy() if b_eff is None else w @ b_eff + b
    return w_eff, b_eff


def _fit(model, x, y, task: str, steps: int) -> float:
    loss = losses.BCEWithLogitsLoss() if task == "binary" else losses.CrossEntropyLoss()
    fit_full_batch(model, loss, optim.Adam(model.parameters(), lr=0.01), x, y, steps)
    return M.accuracy(model(x), y, task)


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    steps = 600 if quick else 3000
    xor = data.load("xor", seed=SEED)
    spirals = data.load("spirals", seed=SEED, n_samples=300 if quick else 1500)
    problems = {
        "xor": (xor.train.x.astype(np.float64), xor.train.y, "binary", 1),
        "spirals": (spirals.train.x.astype(np.float64), spirals.train.y, "multiclass", 3),
    }
    rows, numbers, models = [], {}, {}
    for pname, (x, y, task, n_out) in problems.items():
        for relu in (False, True):
            model = build(x.shape[1], n_out, relu, SEED)
            acc = _fit(model, x, y, task, steps)
            kind = "ReLU" if relu else "linear"
            entry = {"accuracy": acc, "params": model.num_parameters()}
            if not relu:
                w_eff, b_eff = collapse(model)
                single = x @ w_eff.T + b_eff  # the one-matrix model
                entry["max_diff_vs_single_matrix"] = float(np.max(np.abs(model(x) - single)))
                entry["single_matrix_shape"] = list(w_eff.shape)
                entry["single_matrix_accuracy"] = M.accuracy(single, y, task)
            numbers[f"{pname}_{kind}"] = entry
            models[(pname, kind)] = model
            rows.append(
                [pname, kind, entry["params"], acc, entry.get("max_diff_vs_single_matrix")]
            )
    print_table(
        ["data", "network", "params", "train accuracy", "max |net - W x - b|"],
        rows,
        title=f"depth 4 ({'-'.join(map(str, HIDDEN))} hidden), Adam, {steps} full-batch steps",
    )
    plot = _plot(out_dir, problems, models)
    lin_x, relu_x = numbers["xor_linear"], numbers["xor_ReLU"]
    lin_s, relu_s = numbers["spirals_linear"], numbers["spirals_ReLU"]
    holds = (
        lin_x["max_diff_vs_single_matrix"] < 1e-10
        and lin_s["max_diff_vs_single_matrix"] < 1e-10
        and lin_x["accuracy"] <= 0.75
        and lin_s["accuracy"] < 0.6
        and relu_x["accuracy"] == 1.0
        and relu_s["accuracy"] > 0.9
    )
    return save_results(
        out_dir, NAME, CLAIM, holds, quick, started, [plot], steps=steps, **numbers
    )


def _plot(out_dir: Path, problems, models) -> str:
    """Decision regions of the linear and ReLU nets on both problems."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(6.4, 6))
    for row, (pname, (x, y, task, _)) in enumerate(problems.items()):
        lo, hi = x.min(axis=0) - 0.3, x.max(axis=0) + 0.3
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
        for col, kind in enumerate(("linear", "ReLU")):
            ax = axes[row][col]
            model = models[(pname, kind)]
            pred = M.predict_labels(model(grid), task).reshape(gx.shape)
            ax.imshow(pred, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), alpha=0.35,
                      cmap="viridis", interpolation="nearest", aspect="auto")
            ax.scatter(x[:, 0], x[:, 1], c=y, s=12 if len(x) > 10 else 80, cmap="viridis",
                       edgecolors="k", linewidths=0.3)
            acc = M.accuracy(model(x), y, task)
            ax.set_title(f"{pname}, depth-4 {kind} net: {acc:.0%}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return save_plot(fig, out_dir, "linear_collapse.png")
