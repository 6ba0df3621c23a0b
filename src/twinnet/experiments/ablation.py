"""Ablation: what width, depth, activation, optimiser and normalisation each buy on MNIST.

A full grid over five factors would be hundreds of runs, so this is the usual
one-factor-at-a-time design: a baseline configuration, then rows that change exactly
one factor and keep everything else (data, epochs, batch size, seed, initial-weight
seed) fixed. Each row reports test accuracy, training seconds and parameter count.

Baseline: 784-256-256-10 (width 256, 2 hidden layers), ReLU, Adam lr 1e-3, no
normalisation, batch 128, 3 epochs on the 54,000 MNIST training images (the other
6,000 are the validation split, unused here), tested on the 10,000 test images.
Quick mode: scikit-learn's digits, width 32, a handful of rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from twinnet import losses, optim
from twinnet.experiments.common import (
    SEED,
    load_image_data,
    print_table,
    pyplot,
    save_plot,
    save_results,
)
from twinnet.models import build_mlp
from twinnet.train import Trainer

NAME = "ablation"
CLAIM = (
    "at a fixed training budget, sigmoid hidden units trail ReLU and the widest net beats "
    "the narrowest; the table shows what each other single change buys"
)


@dataclass(frozen=True)
class Config:
    """One row of the ablation: the five factors."""

    width: int = 256
    depth: int = 2  # hidden layers
    activation: str = "relu"
    optimizer: str = "adam"
    norm: str = "none"

    def label(self) -> str:
        return f"{self.depth}x{self.width} {self.activation} {self.optimizer} norm={self.norm}"


# optimiser name -> (factory, lr)
OPTIMIZERS = {
    "adam": (lambda p: optim.Adam(p, lr=1e-3), 1e-3),
    "adamw": (lambda p: optim.AdamW(p, lr=1e-3, weight_decay=0.01), 1e-3),
    "sgd": (lambda p: optim.SGD(p, lr=0.1), 0.1),
    "momentum": (lambda p: optim.SGD(p, lr=0.01, momentum=0.9), 0.01),
}


def grid(quick: bool) -> list[tuple[str, Config]]:
    """(factor changed, config) rows: the baseline first, then one change per row."""
    base = Config(width=32) if quick else Config()
    if quick:
        changes = [
            ("width", {"width": 128}),
            ("depth", {"depth": 1}),
            ("activation", {"activation": "sigmoid"}),
            ("optimizer", {"optimizer": "sgd"}),
            ("norm", {"norm": "batch"}),
        ]
    else:
        changes = [
            ("width", {"width": 64}),
            ("width", {"width": 1024}),
            ("depth", {"depth": 1}),
            ("depth", {"depth": 4}),
            ("activation", {"activation": "tanh"}),
            ("activation", {"activation": "sigmoid"}),
            ("activation", {"activation": "gelu"}),
            ("optimizer", {"optimizer": "sgd"}),
            ("optimizer", {"optimizer": "momentum"}),
            ("optimizer", {"optimizer": "adamw"}),
            ("norm", {"norm": "batch"}),
            ("norm", {"norm": "layer"}),
        ]
    return [("baseline", base)] + [(factor, replace(base, **kw)) for factor, kw in changes]


def train_one(cfg: Config, splits, epochs: int, batch: int) -> dict:
    """Train one configuration; return accuracy, loss, seconds, parameters."""
    sizes = [splits.n_features] + [cfg.width] * cfg.depth + [splits.n_classes]
    model = build_mlp(sizes, cfg.activation, norm=cfg.norm, init="auto", rng=SEED)
    make_opt, lr = OPTIMIZERS[cfg.optimizer]
    trainer = Trainer(model, losses.CrossEntropyLoss(), make_opt(model.parameters()), seed=SEED)
    t0 = time.perf_counter()
    trainer.fit(splits.train, epochs=epochs, batch_size=batch)
    seconds = time.perf_counter() - t0
    test = trainer.evaluate(splits.test)
    return {
        "accuracy": test["accuracy"],
        "loss": test["loss"],
        "seconds": seconds,
        "params": model.num_parameters(),
        "lr": lr,
        "layers": sizes,
    }


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Train every row, print the table, plot accuracy per row."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    splits = load_image_data(quick, data_dir)
    epochs, batch = (4, 32) if quick else (3, 128)
    rows = []
    for factor, cfg in grid(quick):
        r = train_one(cfg, splits, epochs, batch)
        rows.append({"factor": factor, **cfg.__dict__, **r})

    base_acc = rows[0]["accuracy"]
    print_table(
        [
            "changed",
            "width",
            "depth",
            "activation",
            "optimizer",
            "norm",
            "params",
            "test acc",
            "vs base",
            "seconds",
        ],
        [
            [
                r["factor"],
                r["width"],
                r["depth"],
                r["activation"],
                r["optimizer"],
                r["norm"],
                r["params"],
                r["accuracy"],
                r["accuracy"] - base_acc,
                r["seconds"],
            ]
            for r in rows
        ],
        title=f"ablation on {splits.name} ({len(splits.train)} train, {len(splits.test)} test), "
        f"{epochs} epochs, batch {batch}; init 'auto' (He for ReLU/GELU, Xavier for tanh/sigmoid)",
    )

    best_gain = max(r["accuracy"] for r in rows) - base_acc
    sigmoid_acc = next(r["accuracy"] for r in rows if r["activation"] == "sigmoid")
    # the widest and narrowest nets among the baseline and the width rows
    by_width = sorted(
        (r for r in rows if r["factor"] in ("baseline", "width")), key=lambda r: r["width"]
    )
    narrow, wide = by_width[0], by_width[-1]
    holds = base_acc > sigmoid_acc and wide["accuracy"] > narrow["accuracy"]
    plot = _plot(out_dir, rows, splits.name)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        dataset=splits.name,
        train_size=len(splits.train),
        test_size=len(splits.test),
        epochs=epochs,
        batch_size=batch,
        baseline=rows[0],
        rows=rows,
        baseline_accuracy=base_acc,
        sigmoid_accuracy=sigmoid_acc,
        best_gain_over_baseline=best_gain,
        narrowest={"width": narrow["width"], "accuracy": narrow["accuracy"]},
        widest={"width": wide["width"], "accuracy": wide["accuracy"]},
    )


def _plot(out_dir, rows, dataset) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(rows) + 1.2))
    labels = [
        ("baseline" if r["factor"] == "baseline" else f"{r['factor']}: {r[r['factor']]}")
        for r in rows
    ]
    accs = [100 * r["accuracy"] for r in rows]
    colors = ["k" if r["factor"] == "baseline" else f"C{i % 10}" for i, r in enumerate(rows)]
    ax.barh(range(len(rows)), accs, color=colors, alpha=0.8)
    for i, r in enumerate(rows):
        ax.text(
            accs[i],
            i,
            f" {accs[i]:.2f}%  {r['params'] / 1e3:.0f}k params  {r['seconds']:.1f}s",
            va="center",
            fontsize=7,
        )
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    lo, hi = min(accs), max(accs)
    ax.set_xlim(max(0.0, lo - 1), hi + (hi - lo + 1) * 0.9)  # room for the labels
    ax.set_xticks([t for t in ax.get_xticks() if lo - 1 <= t <= 100])
    ax.axvline(accs[0], color="k", ls=":", lw=1)
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(f"one-factor-at-a-time ablation, {dataset}", fontsize=10)
    return save_plot(fig, out_dir, "ablation.png")
