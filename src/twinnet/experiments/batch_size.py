"""Batch size: full-batch gradient descent, plain SGD (batch 1) and mini-batches.

The same 64-32-10 ReLU network (same initial weights) is trained with plain SGD at
the same learning rate with three batch sizes: all training examples (one step per
epoch: gradient descent), 1 (one step per example) and 32. We record the training
loss over the whole training set after every epoch and the wall-clock seconds spent
training, and the validation accuracy at the end.

The **gradient noise** is measured at the initial weights: with g the full-batch
gradient and g_B the gradient of a random batch of B examples (drawn without
replacement), E ||g_B - g||^2 = (tr Sigma / B) (N - B) / (N - 1), Sigma the
per-example gradient covariance: the noise falls as 1/B (and is 0 for B = N).

What this shows: per epoch, small batches make far more progress (many more steps);
per second, mini-batches win, because a batch of 32 costs barely more than a batch of
1 (the Python overhead per step dominates) while its gradient is 32 times less noisy.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn, optim
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.train import metrics as M

NAME = "batch-size"
CLAIM = (
    "per epoch batch 1 learns fastest and full-batch slowest; per second mini-batches "
    "(32) beat both; gradient noise E||g_B - g||^2 falls as 1/B"
)

LR = 0.05
MINI = 32


def build(n_in: int, n_out: int) -> nn.Sequential:
    rng = np.random.default_rng(SEED)
    return nn.Sequential(nn.Linear(n_in, 32, rng=rng), nn.ReLU(), nn.Linear(32, n_out, rng=rng))


def flat_grad(model, loss_fn, x, y) -> np.ndarray:
    """The gradient of the mean loss over (x, y), all parameters as one vector."""
    model.zero_grad()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    return np.concatenate([p.grad.astype(np.float64).ravel() for p in model.parameters()])


def gradient_noise(model, loss_fn, x, y, sizes, draws: int, rng) -> dict[int, float]:
    """E ||g_B - g||^2 over ``draws`` random batches of each size B (without replacement)."""
    g = flat_grad(model, loss_fn, x, y)
    out = {}
    for b in sizes:
        if b >= len(x):
            out[b] = float(np.sum((flat_grad(model, loss_fn, x, y) - g) ** 2))
            continue
        sq = [np.sum((flat_grad(model, loss_fn, x[idx], y[idx]) - g) ** 2)
              for idx in (rng.choice(len(x), b, replace=False) for _ in range(draws))]  # fmt: skip
        out[b] = float(np.mean(sq))
    model.zero_grad()
    return out


def train(x, y, xv, yv, batch: int, epochs: int, n_classes: int) -> dict:
    model = build(x.shape[1], n_classes)
    loss_fn = losses.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=LR)
    rng = np.random.default_rng(SEED + 1)
    loss_curve, seconds = [loss_fn(model(x), y)], [0.0]
    spent = 0.0
    for _ in range(epochs):
        tick = time.perf_counter()
        perm = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = perm[s : s + batch]
            loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
        spent += time.perf_counter() - tick
        seconds.append(spent)
        loss_curve.append(loss_fn(model(x), y))  # not timed: the whole training set
    return {
        "loss_per_epoch": loss_curve,
        "seconds": seconds,
        "steps_per_epoch": -(-len(x) // batch),
        "final_train_loss": loss_curve[-1],
        "val_accuracy": M.accuracy(model(xv), yv, "multiclass"),
    }


def loss_at_time(run: dict, t: float) -> float:
    """Training loss reached within ``t`` seconds of training (last epoch finished by t)."""
    done = [loss for loss, s in zip(run["loss_per_epoch"], run["seconds"], strict=True) if s <= t]
    return float(done[-1])


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    splits = data.load("digits", seed=SEED)
    x, y, xv, yv = splits.train.x, splits.train.y, splits.val.x, splits.val.y
    n = len(x)
    epochs = {n: 60, 1: 3, MINI: 20} if quick else {n: 300, 1: 20, MINI: 100}
    names = {n: f"full batch ({n})", 1: "SGD, batch 1", MINI: f"mini-batch {MINI}"}
    runs = {b: train(x, y, xv, yv, b, epochs[b], splits.n_classes) for b in (n, 1, MINI)}
    noise = gradient_noise(build(x.shape[1], splits.n_classes), losses.CrossEntropyLoss(),
                           x, y, (1, 4, MINI, 128, n), 100 if quick else 400,
                           np.random.default_rng(SEED))  # fmt: skip
    # compare per second at the time the fastest run needs for its epochs
    budget = min(r["seconds"][-1] for r in runs.values())
    rows = []
    for b, r in runs.items():
        per_epoch = r["seconds"][-1] / epochs[b]
        rows.append([names[b], r["steps_per_epoch"], r["loss_per_epoch"][1],
                     r["loss_per_epoch"][min(3, epochs[b])], per_epoch, loss_at_time(r, budget),
                     r["final_train_loss"], r["val_accuracy"]])  # fmt: skip
    print_table(
        ["run", "steps/epoch", "loss after 1 epoch", "after 3 epochs", "s/epoch",
         f"loss at {budget:.2f} s", "final loss", "val accuracy"],
        rows, title=f"digits, 64-32-10 ReLU, SGD lr {LR}, same init",
    )  # fmt: skip
    print_table(["batch size B", "E||g_B - g||^2", "x B"],
                [[b, v, v * b] for b, v in noise.items()],
                title="gradient noise at the initial weights (x B is about constant: 1/B)")
    plot = _plot(out_dir, runs, names, noise)
    one_epoch = {b: r["loss_per_epoch"][1] for b, r in runs.items()}
    at_budget = {b: loss_at_time(r, budget) for b, r in runs.items()}
    ratio = noise[1] / noise[MINI]
    expected_ratio = MINI * (n - 1) / (n - MINI)  # from the formula above
    parts = {
        "per_epoch": bool(one_epoch[1] < one_epoch[MINI] < one_epoch[n]),
        "per_second": bool(at_budget[MINI] < min(at_budget[1], at_budget[n])),  # wall clock
        "noise_1_over_B": bool(0.5 * expected_ratio < ratio < 2 * expected_ratio and noise[n] < 1e-20),
    }
    holds = all(parts.values())
    return save_results(
        out_dir, NAME, CLAIM, holds, quick, started, [plot], lr=LR, n_train=n, claim_parts=parts,
        epochs={names[b]: e for b, e in epochs.items()}, time_budget_seconds=budget,
        loss_after_one_epoch={names[b]: v for b, v in one_epoch.items()},
        loss_at_time_budget={names[b]: v for b, v in at_budget.items()},
        gradient_noise=noise, noise_ratio_1_vs_32=ratio, noise_ratio_expected=expected_ratio,
        runs={names[b]: r for b, r in runs.items()},
    )  # fmt: skip


def _plot(out_dir, runs, names, noise) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for b, r in runs.items():
        axes[0].semilogy(np.arange(len(r["loss_per_epoch"])), r["loss_per_epoch"], label=names[b])
        axes[1].semilogy(r["seconds"], r["loss_per_epoch"], label=names[b])
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel("training seconds")
    for ax in axes[:2]:
        ax.set_ylabel("training loss")
        ax.legend(fontsize=8)
    bs = np.array(list(noise))
    vals = np.array(list(noise.values()))
    keep = vals > 0
    axes[2].loglog(bs[keep], vals[keep], "o-", label="measured")
    axes[2].loglog(bs[keep], vals[0] / bs[keep], "k:", label="1/B")
    axes[2].set_xlabel("batch size B")
    axes[2].set_ylabel("E ||g_B - g||^2")
    axes[2].set_title("gradient noise")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return save_plot(fig, out_dir, "batch_size.png")
