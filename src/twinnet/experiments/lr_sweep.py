"""The learning-rate sweep: too high diverges or oscillates, too low crawls.

The MNIST MLP (784-512-256-10, ReLU) is trained for 2 epochs (batch 128, 844 steps
on the 54,000 training images) with Adam and with plain SGD at lr = 0.1, 0.01, 0.001
and 0.0001, from the same initial weights and data order, and the per-step training
loss of each run is kept. (Quick mode: scikit-learn's 8x8 digits, a 64-64-32-10 net,
4 epochs of batch 32.)

Each curve then gets one label from these rules, applied per optimiser ("first" is
the loss at step 1, the same for every run; "end" is the mean loss over the last 10%
of the steps, infinite if the loss ever became NaN or inf):

1. **best**: the run with the lowest end.
2. A larger lr than the best's is too high:
   **diverges** if the loss became NaN/inf or end >= 0.9 * first (it never got
   meaningfully below where it started); **oscillates** if end > 2 * best's end
   (it learns, but bounces around a poor level); otherwise **ok**.
3. A smaller lr than the best's: **too slow** if end > 2 * best's end; otherwise **ok**.

The rules use only the recorded curves and the order of the learning rates, so the
labels in results.json can be recomputed from the saved numbers.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from twinnet import losses, optim
from twinnet.experiments.common import (
    SEED,
    StepLosses,
    load_image_data,
    moving_average,
    print_table,
    pyplot,
    save_plot,
    save_results,
)
from twinnet.models import build_mlp
from twinnet.train import Trainer

NAME = "lr-sweep"
CLAIM = (
    "too high a learning rate diverges or oscillates and too low a one is too slow: on the "
    "MNIST MLP Adam at lr 0.1 diverges or oscillates, SGD at lr 0.0001 is too slow, and "
    "Adam's best lr lies inside the sweep"
)

LRS = (0.1, 0.01, 0.001, 0.0001)
OPTIMIZERS = ("adam", "sgd")


def make_optimizer(name: str, params, lr: float):
    if name == "adam":
        return optim.Adam(params, lr=lr)
    return optim.SGD(params, lr=lr)


def curve_stats(losses_: np.ndarray) -> dict:
    """first (step-1 loss), end (mean of the last 10% of steps; inf if the loss ever
    became NaN/inf) and peak (largest loss) of one curve."""
    n = len(losses_)
    w = max(3, n // 10)
    finite = bool(np.all(np.isfinite(losses_)))
    return {
        "first": float(losses_[0]),
        "end": float(np.mean(losses_[-w:])) if finite else math.inf,
        "peak": float(np.max(losses_)) if finite else math.inf,
        "finite": finite,
    }


def label_curves(curves: dict[float, np.ndarray]) -> dict[float, str]:
    """Label each lr's loss curve (one optimiser) with the rules in the module docstring."""
    stats = {lr: curve_stats(c) for lr, c in curves.items()}
    best = min(curves, key=lambda lr: stats[lr]["end"])
    best_end = stats[best]["end"]
    labels = {}
    for lr, s in stats.items():
        if lr == best:
            labels[lr] = "best"
        elif lr > best:  # too high
            if not s["finite"] or s["end"] >= 0.9 * s["first"]:
                labels[lr] = "diverges"
            elif s["end"] > 2 * best_end:
                labels[lr] = "oscillates"
            else:
                labels[lr] = "ok"
        else:  # too low
            labels[lr] = "too slow" if s["end"] > 2 * best_end else "ok"
    return labels


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Train every (optimiser, lr) pair, label the curves, plot them on one figure."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    splits = load_image_data(quick, data_dir)
    hidden = [64, 32] if quick else [512, 256]
    sizes = [splits.n_features, *hidden, splits.n_classes]
    epochs, batch = (4, 32) if quick else (2, 128)

    curves: dict[str, dict[float, np.ndarray]] = {o: {} for o in OPTIMIZERS}
    val_acc: dict[str, dict[float, float]] = {o: {} for o in OPTIMIZERS}
    for opt_name in OPTIMIZERS:
        for lr in LRS:
            model = build_mlp(sizes, "relu", rng=SEED)  # same start for every run
            rec = StepLosses()
            trainer = Trainer(
                model,
                losses.CrossEntropyLoss(),
                make_optimizer(opt_name, model.parameters(), lr),
                callbacks=[rec],
                seed=SEED,
            )
            with np.errstate(all="ignore"):  # a diverging run overflows on purpose
                trainer.fit(splits.train, epochs=epochs, batch_size=batch)
                val_acc[opt_name][lr] = trainer.evaluate(splits.val)["accuracy"]
            curves[opt_name][lr] = np.array(rec.losses)

    labels = {o: label_curves(curves[o]) for o in OPTIMIZERS}
    stats = {o: {lr: curve_stats(c) for lr, c in curves[o].items()} for o in OPTIMIZERS}
    rows = []
    for o in OPTIMIZERS:
        for lr in LRS:
            s = stats[o][lr]
            rows.append([o, lr, s["first"], s["peak"], s["end"], val_acc[o][lr], labels[o][lr]])
    print_table(
        ["optimizer", "lr", "loss step 1", "peak", "loss end", "val acc", "label"],
        rows,
        title=f"{splits.name}: MLP {'-'.join(map(str, sizes))}, {epochs} epochs, batch {batch}",
    )

    best = {o: next(lr for lr, lab in labels[o].items() if lab == "best") for o in OPTIMIZERS}
    holds = (
        labels["adam"][0.1] in ("diverges", "oscillates")
        and labels["sgd"][0.0001] == "too slow"
        and best["adam"] not in (max(LRS), min(LRS))
    )
    plot = _plot(out_dir, curves, labels, splits.name, sizes)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        dataset=splits.name,
        layers=sizes,
        epochs=epochs,
        batch_size=batch,
        steps=len(curves["adam"][LRS[0]]),
        labels={o: {str(lr): lab for lr, lab in labels[o].items()} for o in OPTIMIZERS},
        best_lr=best,
        curve_stats={o: {str(lr): s for lr, s in stats[o].items()} for o in OPTIMIZERS},
        val_accuracy={o: {str(lr): a for lr, a in val_acc[o].items()} for o in OPTIMIZERS},
        rules="see the module docstring of twinnet.experiments.lr_sweep",
        loss_curves={o: {str(lr): c for lr, c in curves[o].items()} for o in OPTIMIZERS},
    )


def _plot(out_dir, curves, labels, dataset, sizes) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colors = dict(zip(LRS, ["tab:red", "tab:orange", "tab:green", "tab:blue"], strict=True))
    for ax, o in zip(axes, OPTIMIZERS, strict=True):
        for lr, c in curves[o].items():
            w = max(3, len(c) // 50)
            with np.errstate(all="ignore"):
                ax.plot(
                    np.arange(1, len(c) + 1),
                    moving_average(c, w),
                    color=colors[lr],
                    label=f"lr {lr:g}: {labels[o][lr]}",
                )
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{'Adam' if o == 'adam' else 'SGD'}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss (moving average)")
    lo, hi = axes[0].get_ylim()
    axes[0].set_ylim(lo, min(hi, 20.0))  # a diverging run would squash the others
    fig.suptitle(f"learning-rate sweep, {dataset}, MLP {'-'.join(map(str, sizes))}", fontsize=10)
    return save_plot(fig, out_dir, "lr_sweep.png")
