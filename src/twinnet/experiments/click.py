"""Click prediction: an MLP against logistic regression on tabular data.

The synthetic click set (``data.load("click")``, 20 standardised features, about 24%
clicks) draws each label from a logit with interactions (x0 x1, x4 x5), curvature
(-x2^2, sin(pi x3), -|x6|), five linear terms and eight pure-noise features. Logistic
regression can only use the linear part; a 20-64-32-1 ReLU MLP (one logit,
BCEWithLogitsLoss, i.e. a sigmoid output fused into the loss) can learn the rest.

Both are trained with Adam and early stopping on the validation loss (best weights
restored), then scored on validation and test: ROC AUC (ranking quality) and log
loss (calibrated probabilities). The true logit gives the best score any model could
reach on these samples (the "oracle" row).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn, optim
from twinnet.data import synthetic
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.models import build_mlp
from twinnet.train import EarlyStopping, Trainer
from twinnet.train import metrics as M

NAME = "click"
CLAIM = "on the click data a 20-64-32-1 MLP beats logistic regression on validation and test AUC"


def roc_curve(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) as the threshold sweeps down the scores."""
    order = np.argsort(-scores.reshape(-1), kind="mergesort")
    yy = y.reshape(-1)[order].astype(bool)
    tpr = np.concatenate([[0.0], np.cumsum(yy) / max(yy.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(~yy) / max((~yy).sum(), 1)])
    return fpr, tpr


def true_logit(splits, x_scaled: np.ndarray) -> np.ndarray:
    """The generating logit, from features scaled as (x - shift) / scale: undo, evaluate."""
    info = splits.scaler_info
    raw = x_scaled.astype(np.float64) * np.asarray(info["scale"]) + np.asarray(info["shift"])
    return synthetic.click_logit(raw)


def train(model, splits, lr: float, epochs: int):
    """Adam + early stopping on val_loss (patience 5, best weights restored)."""
    trainer = Trainer(
        model,
        losses.BCEWithLogitsLoss(),
        optim.Adam(model.parameters(), lr=lr),
        callbacks=[EarlyStopping("val_loss", patience=5)],
        task="binary",
        seed=SEED,
    )
    history = trainer.fit(splits.train, splits.val, epochs=epochs, batch_size=128)
    return trainer, history


def scores_of(trainer, splits) -> dict:
    out = {}
    for split in ("val", "test"):
        ds = getattr(splits, split)
        s = trainer.predict(ds.x)
        out[split] = {
            "auc": M.roc_auc(s, ds.y),
            "log_loss": M.log_loss(s, ds.y, "binary"),
            "accuracy": M.accuracy(s, ds.y, "binary"),
        }
    return out


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Train both models, score them, plot ROC curves and validation loss."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    splits = data.load("click", seed=SEED)
    epochs = 4 if quick else 60

    mlp = build_mlp([splits.n_features, 64, 32, 1], "relu", rng=SEED)
    mlp_trainer, mlp_hist = train(mlp, splits, lr=1e-3, epochs=epochs)
    logistic = nn.Linear(splits.n_features, 1, rng=np.random.default_rng(SEED))
    log_trainer, log_hist = train(logistic, splits, lr=1e-2, epochs=epochs)

    res = {
        "MLP 20-64-32-1": scores_of(mlp_trainer, splits),
        "logistic regression": scores_of(log_trainer, splits),
    }
    oracle = {}
    for split in ("val", "test"):
        ds = getattr(splits, split)
        z = true_logit(splits, ds.x)
        oracle[split] = {
            "auc": M.roc_auc(z, ds.y),
            "log_loss": M.log_loss(z, ds.y, "binary"),
            "accuracy": M.accuracy(z, ds.y, "binary"),
        }
    rows = [
        [
            name,
            r["val"]["auc"],
            r["test"]["auc"],
            r["val"]["log_loss"],
            r["test"]["log_loss"],
            r["test"]["accuracy"],
        ]
        for name, r in {**res, "oracle (true logit)": oracle}.items()
    ]
    print_table(
        ["model", "val AUC", "test AUC", "val log loss", "test log loss", "test acc"],
        rows,
        title=f"click prediction ({len(splits.train)} train / {len(splits.val)} val / "
        f"{len(splits.test)} test, {np.mean(splits.train.y):.1%} clicks)",
    )

    m, lr_ = res["MLP 20-64-32-1"], res["logistic regression"]
    holds = m["val"]["auc"] > lr_["val"]["auc"] and m["test"]["auc"] > lr_["test"]["auc"]
    plot = _plot(out_dir, splits, mlp_trainer, log_trainer, mlp_hist, log_hist)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        sizes={"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        click_rate_train=float(np.mean(splits.train.y)),
        mlp=m,
        logistic=lr_,
        oracle=oracle,
        mlp_epochs=len(mlp_hist),
        logistic_epochs=len(log_hist),
        mlp_params=mlp.num_parameters(),
        logistic_params=logistic.num_parameters(),
        auc_gain_test=m["test"]["auc"] - lr_["test"]["auc"],
    )


def _plot(out_dir, splits, mlp_trainer, log_trainer, mlp_hist, log_hist) -> str:
    plt = pyplot()
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    ds = splits.test
    for name, scores, style in (
        ("MLP", mlp_trainer.predict(ds.x), "C0-"),
        ("logistic", log_trainer.predict(ds.x), "C3-"),
        ("oracle (true logit)", true_logit(splits, ds.x), "k:"),
    ):
        fpr, tpr = roc_curve(scores, ds.y)
        a0.plot(fpr, tpr, style, label=f"{name}: AUC {M.roc_auc(scores, ds.y):.3f}")
    a0.plot([0, 1], [0, 1], color="grey", lw=0.8)
    a0.set_xlabel("false positive rate")
    a0.set_ylabel("true positive rate")
    a0.set_title("test ROC", fontsize=10)
    a0.legend(fontsize=8, loc="lower right")
    a0.set_aspect("equal")
    for name, h, style in (("MLP", mlp_hist, "C0"), ("logistic", log_hist, "C3")):
        a1.plot(h["epoch"], h["train_loss"], f"{style}--", label=f"{name} train")
        a1.plot(h["epoch"], h["val_loss"], f"{style}-", label=f"{name} val")
    a1.set_xlabel("epoch")
    a1.set_ylabel("log loss")
    a1.set_title("training (early stopping on val loss)", fontsize=10)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=8)
    return save_plot(fig, out_dir, "click.png")
