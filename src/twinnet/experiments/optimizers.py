"""Optimisers side by side: SGD, SGD + momentum, RMSprop, Adam and AdamW.

The same 2-64-64-3 ReLU MLP (same initial weights, same mini-batches) is trained on
the three-arm spirals with each optimiser, and the loss on the whole training set is
recorded every few steps.

Left panel: every optimiser at the same learning rate (1e-3) and the same number of
steps. Plain SGD moves each weight by lr * gradient, and gradients here are small,
so it crawls; momentum accumulates about 1/(1 - 0.9) = 10 steps' worth; RMSprop, Adam
and AdamW divide by a running RMS of the gradient, so each weight moves by about lr
per step whatever the gradient's scale.

Right panel: each optimiser at a conventional learning rate for it (SGD 0.1,
momentum 0.01 with 0.9, adaptive methods 1e-3): tuned, SGD with momentum is
competitive again.
"""

from __future__ import annotations

import time
from pathlib import Path

from twinnet import data, losses, optim
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.models import build_mlp
from twinnet.train import Callback, Trainer

NAME = "optimizers"
CLAIM = (
    "on the same problem at the same lr and step budget the loss falls for SGD, momentum, "
    "RMSprop, Adam and AdamW, and Adam ends at least 25% below plain SGD"
)

EQUAL_LR = 1e-3
OPTIMIZERS = {
    "SGD": lambda p, lr: optim.SGD(p, lr=lr),
    "SGD + momentum 0.9": lambda p, lr: optim.SGD(p, lr=lr, momentum=0.9),
    "RMSprop": lambda p, lr: optim.RMSprop(p, lr=lr),
    "Adam": lambda p, lr: optim.Adam(p, lr=lr),
    "AdamW (wd 0.01)": lambda p, lr: optim.AdamW(p, lr=lr, weight_decay=0.01),
}
TUNED_LR = {
    "SGD": 0.1,
    "SGD + momentum 0.9": 0.01,
    "RMSprop": 1e-3,
    "Adam": 1e-3,
    "AdamW (wd 0.01)": 1e-3,
}


class FullLoss(Callback):
    """Every ``every`` steps, the loss on the whole training set (a smooth curve)."""

    def __init__(self, x, y, every: int):
        self.x, self.y, self.every = x, y, every
        self.steps: list[int] = []
        self.losses: list[float] = []

    def _record(self, trainer):
        self.steps.append(trainer.global_step)
        self.losses.append(float(trainer.loss_fn(trainer.model(self.x), self.y)))

    def on_fit_begin(self, trainer):
        self._record(trainer)

    def on_batch_end(self, trainer, logs):
        if trainer.global_step % self.every == 0:
            self._record(trainer)


def train_curve(
    name: str, lr: float, splits, epochs: int, every: int
) -> tuple[list[int], list[float]]:
    """(steps, full training loss) for one optimiser at one lr."""
    sizes = [splits.n_features, 64, 64, splits.n_classes]
    model = build_mlp(sizes, "relu", rng=SEED)
    rec = FullLoss(splits.train.x, splits.train.y, every)
    trainer = Trainer(
        model,
        losses.CrossEntropyLoss(),
        OPTIMIZERS[name](model.parameters(), lr),
        callbacks=[rec],
        seed=SEED,
    )
    trainer.fit(splits.train, epochs=epochs, batch_size=32)
    return rec.steps, rec.losses


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Train with each optimiser at the equal lr and at its tuned lr; plot loss vs step."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    splits = data.load("spirals", seed=SEED)
    epochs = 10 if quick else 60
    every = 10 if quick else 20

    equal = {n: train_curve(n, EQUAL_LR, splits, epochs, every) for n in OPTIMIZERS}
    tuned = {n: train_curve(n, TUNED_LR[n], splits, epochs, every) for n in OPTIMIZERS}
    steps = equal["SGD"][0][-1]

    rows = [[n, equal[n][1][0], equal[n][1][-1], TUNED_LR[n], tuned[n][1][-1]] for n in OPTIMIZERS]
    print_table(
        ["optimizer", "loss at start", f"end, lr {EQUAL_LR:g}", "tuned lr", "end, tuned lr"],
        rows,
        title=f"spirals, MLP 2-64-64-3, {steps} steps of batch 32: training loss",
    )

    first = {n: c[1][0] for n, c in equal.items()}
    last = {n: c[1][-1] for n, c in equal.items()}
    decreases = {n: last[n] < first[n] for n in OPTIMIZERS}
    holds = all(decreases.values()) and last["Adam"] < 0.75 * last["SGD"]
    plot = _plot(out_dir, equal, tuned, steps)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        dataset="spirals",
        layers=[2, 64, 64, 3],
        steps=steps,
        batch_size=32,
        equal_lr=EQUAL_LR,
        loss_start=first,
        loss_end_equal_lr=last,
        loss_decreases=decreases,
        tuned_lr=TUNED_LR,
        loss_end_tuned_lr={n: c[1][-1] for n, c in tuned.items()},
        curves_equal_lr={n: {"step": c[0], "loss": c[1]} for n, c in equal.items()},
        curves_tuned_lr={n: {"step": c[0], "loss": c[1]} for n, c in tuned.items()},
    )


def _plot(out_dir, equal, tuned, steps) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, curves, title in (
        (axes[0], equal, f"same learning rate ({EQUAL_LR:g})"),
        (axes[1], tuned, "conventional learning rate for each"),
    ):
        for n, (s, l) in curves.items():
            label = n if curves is equal else f"{n}, lr {TUNED_LR[n]:g}"
            ax.plot(s, l, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss (whole training set)")
    fig.suptitle(f"optimisers on the spirals, MLP 2-64-64-3, {steps} steps", fontsize=10)
    return save_plot(fig, out_dir, "optimizers.png")
