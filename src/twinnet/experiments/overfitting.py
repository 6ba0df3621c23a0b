"""Optimisation failure versus overfitting, and three regularisers one at a time.

A 64-256-256-10 ReLU MLP (about 85,000 weights) learns from only 100 of the 8x8
digits. Training works perfectly as *optimisation*: the training loss goes to almost
0. But the validation loss (on 360 other digits) bottoms out after a few epochs and
then rises while the training loss keeps falling: the net memorises its 100 examples
(overfitting, not an optimisation failure; an optimisation failure is a training
loss that stays high). twinnet's diagnostics finding ``overfitting`` says so.

Then the same run with one change each:

- **L2**: ``optim.L2Penalty(lam)`` adds lam/2 ||w||^2 to the loss (weights only);
- **dropout**: ``nn.Dropout(0.5)`` after each hidden ReLU;
- **early stopping**: ``EarlyStopping("val_loss", patience=10)``, best weights restored.

Measured, they help in different ways: L2 and early stopping end with a lower
validation loss than the unregularised run; dropout (p = 0.5) ends with a higher
validation accuracy, but its validation loss still rises late in training (the
surviving predictions grow over-confident on the digits it gets wrong), so the
finding fires for it too.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn, optim
from twinnet.diagnostics.findings import overfitting
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.train import EarlyStopping, Trainer

NAME = "overfitting"
CLAIM = (
    "a big net on 100 digits overfits (val loss rises while train loss falls; the diagnostics "
    "finding says so); L2 and early stopping lower the final val loss, dropout raises val accuracy"
)

N_TRAIN, WIDTH, L2_LAMBDA, LR = 100, 256, 1e-2, 3e-3


def build(n_in: int, n_out: int, dropout: float = 0.0) -> nn.Sequential:
    rng = np.random.default_rng(SEED)
    layers: list[nn.Module] = []
    for a in (n_in, WIDTH):
        layers += [nn.Linear(a, WIDTH, rng=rng), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout, rng=rng))
    layers.append(nn.Linear(WIDTH, n_out, rng=rng))
    return nn.Sequential(*layers)


def fit(splits, train, variant: str, epochs: int):
    model = build(splits.n_features, splits.n_classes, dropout=0.5 if variant == "dropout" else 0.0)
    callbacks = [EarlyStopping("val_loss", patience=10)] if variant == "early stopping" else []
    regularizers = [optim.L2Penalty(L2_LAMBDA, skip_1d=True)] if variant == "L2" else []
    trainer = Trainer(model, losses.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=LR),
                      callbacks=callbacks, regularizers=regularizers, seed=SEED)  # fmt: skip
    history = trainer.fit(train, splits.val, epochs=epochs, batch_size=32).history
    final = trainer.evaluate(splits.val)  # the model as it ends (early stopping: the best)
    return history, final


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    epochs = 80 if quick else 300
    splits = data.load("digits", seed=SEED)
    train = (splits.train.x[:N_TRAIN], splits.train.y[:N_TRAIN])
    results, rows, histories = {}, [], {}
    for variant in ("none", "L2", "dropout", "early stopping"):
        h, final = fit(splits, train, variant, epochs)
        val = h["val_loss"]
        best = int(np.argmin(val))
        found = overfitting(h)
        results[variant] = {
            "epochs_run": len(val),
            "final_train_loss": h["train_loss"][-1],
            "best_val_loss": val[best],
            "best_epoch": best + 1,
            "final_val_loss": final["loss"],
            "final_val_accuracy": final["accuracy"],
            "finding": str(found[0]) if found else None,
        }
        histories[variant] = h
        rows.append([variant, len(val), h["train_loss"][-1], val[best], best + 1, final["loss"],
                     final["accuracy"], "overfitting" if found else "-"])  # fmt: skip
    print_table(
        ["regulariser", "epochs", "final train loss", "best val loss", "at epoch",
         "final val loss", "final val acc", "finding"],
        rows, title=f"64-{WIDTH}-{WIDTH}-10 ReLU on {N_TRAIN} digits (val {len(splits.val)}), Adam lr {LR:g}",
    )  # fmt: skip
    if results["none"]["finding"]:
        print(results["none"]["finding"])
    plot = _plot(out_dir, histories)
    base = results["none"]
    parts = {
        "overfits": bool(base["finding"] is not None and base["final_train_loss"] < 0.05
                         and base["final_val_loss"] > 1.1 * base["best_val_loss"]),
        "l2_lowers_val_loss": bool(results["L2"]["final_val_loss"] < base["final_val_loss"]),
        "early_stopping_lowers_val_loss": bool(
            results["early stopping"]["final_val_loss"] < base["final_val_loss"]),
        "dropout_raises_val_accuracy": bool(
            results["dropout"]["final_val_accuracy"] > base["final_val_accuracy"]),
        "dropout_lowers_val_loss": bool(
            results["dropout"]["final_val_loss"] < base["final_val_loss"]),  # not claimed
    }  # fmt: skip
    holds = all(v for k, v in parts.items() if k != "dropout_lowers_val_loss")
    return save_results(out_dir, NAME, CLAIM, holds, quick, started, [plot], n_train=N_TRAIN, claim_parts=parts, lr=LR,
                        epochs=epochs, l2_lambda=L2_LAMBDA, variants=results,
                        histories={k: {c: h[c] for c in ("train_loss", "val_loss")}
                                   for k, h in histories.items()})  # fmt: skip


def _plot(out_dir: Path, histories: dict) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), sharey=True)
    for ax, (variant, h) in zip(axes, histories.items(), strict=True):
        ep = np.arange(1, len(h["val_loss"]) + 1)
        ax.semilogy(ep, h["train_loss"], label="train")
        ax.semilogy(ep, h["val_loss"], label="validation")
        ax.set_title("no regulariser" if variant == "none" else variant, fontsize=10)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("cross-entropy")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_plot(fig, out_dir, "overfitting.png")
