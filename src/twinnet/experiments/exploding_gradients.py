"""Exploding gradients, and the standard fix: clip the gradient norm.

An 8-hidden-layer ReLU network (width 32) whose weights start at twice He's scale
(Var(w) = 8 / n_in instead of 2 / n_in) multiplies the signal variance by about 4 per
layer, so its output and its gradients are huge from the first step (gradient norm
~1e5 on the sine regression). Plain gradient descent then takes a step of size
lr * ||g|| far beyond the region where the loss is approximately linear, and the
loss overflows to inf/NaN within a few steps.

``optim.clip_grad_norm_(params, max_norm=1)`` between ``backward`` and ``step``
rescales the gradient to norm at most 1 (direction kept), so each step moves the
weights by at most lr; the same network, data and learning rate then trains.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn, optim
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results

NAME = "exploding-gradients"
CLAIM = (
    "a deep net with too-large initial weights has exploding gradients and plain gradient "
    "descent diverges; clip_grad_norm_ at the same learning rate makes it train"
)

DEPTH, WIDTH, SCALE, LR, MAX_NORM = 8, 32, 2.0, 1e-3, 1.0


def build(seed: int = SEED) -> nn.Sequential:
    """1-32x8-1 ReLU net in float64, He-normal weights multiplied by SCALE."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    n_in = 1
    for _ in range(DEPTH):
        layer = nn.Linear(n_in, WIDTH, init="kaiming_normal", dtype=np.float64, rng=rng)
        layer.weight.data *= SCALE
        layers += [layer, nn.ReLU()]
        n_in = WIDTH
    layers.append(nn.Linear(n_in, 1, dtype=np.float64, rng=rng))
    return nn.Sequential(*layers)


def grad_norm(net) -> float:
    """||g||: the 2-norm of all gradients as one vector (before any clipping)."""
    return math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in net.parameters()))


def train(x, y, steps: int, clip: float | None) -> dict:
    """Full-batch SGD on MSE; returns the loss and the unclipped gradient norm per step
    (NaN after the loss stops being finite)."""
    net = build()
    opt = optim.SGD(net.parameters(), lr=LR)
    loss_fn = losses.MSELoss()
    loss_curve, norms = np.full(steps, np.nan), np.full(steps, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):  # the unclipped run overflows
        for t in range(steps):
            loss_curve[t] = loss_fn(net(x), y)
            if not math.isfinite(loss_curve[t]):
                break
            opt.zero_grad()
            net.backward(loss_fn.backward())
            norms[t] = grad_norm(net)
            if clip is not None:
                optim.clip_grad_norm_(net.parameters(), max_norm=clip)
            opt.step()
    finite = np.isfinite(loss_curve)
    return {
        "first_loss": float(loss_curve[0]),
        "final_loss": float(loss_curve[-1]),
        "diverged": bool(not finite.all()),
        "steps_until_non_finite": int(np.argmin(finite)) if not finite.all() else None,
        "first_grad_norm": float(norms[0]),
        "max_grad_norm": float(np.nanmax(norms)) if np.isfinite(norms).any() else None,
        "loss_curve": loss_curve,
        "grad_norm_curve": norms,
    }


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    steps = 300 if quick else 3000
    splits = data.load("sine", seed=SEED, n_samples=256)
    x, y = splits.train.x.astype(np.float64), splits.train.y.astype(np.float64)
    plain = train(x, y, steps, clip=None)
    clipped = train(x, y, steps, clip=MAX_NORM)
    rows = [
        ["no clipping", plain["first_grad_norm"], plain["max_grad_norm"], plain["first_loss"],
         plain["final_loss"], plain["steps_until_non_finite"]],
        [f"clip_grad_norm_ {MAX_NORM:g}", clipped["first_grad_norm"], clipped["max_grad_norm"],
         clipped["first_loss"], clipped["final_loss"], clipped["steps_until_non_finite"]],
    ]
    print_table(
        ["run", "grad norm step 0", "max grad norm", "first loss", "final loss", "NaN at step"],
        rows,
        title=f"1-{WIDTH}x{DEPTH}-1 ReLU, He x {SCALE:g} init, SGD lr {LR:g}, {steps} steps, sine",
    )
    plot = _plot(out_dir, plain, clipped)
    holds = (
        plain["first_grad_norm"] > 1e3
        and plain["diverged"]
        and not clipped["diverged"]
        and clipped["final_loss"] < 0.01 * clipped["first_loss"]
        and clipped["final_loss"] < float(np.var(y))  # better than predicting the mean
    )
    thin = max(1, steps // 300)
    for r in (plain, clipped):
        r["loss_curve"] = r["loss_curve"][::thin]
        r["grad_norm_curve"] = r["grad_norm_curve"][::thin]
    return save_results(
        out_dir, NAME, CLAIM, holds, quick, started, [plot], steps=steps, lr=LR,
        max_norm=MAX_NORM, init_scale=SCALE, target_variance=float(np.var(y)),
        no_clipping=plain, clipped=clipped,
    )


def _plot(out_dir: Path, plain: dict, clipped: dict) -> str:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, r in (("no clipping", plain), (f"clip_grad_norm_({MAX_NORM:g})", clipped)):
        ax1.semilogy(r["grad_norm_curve"], label=label)
        ax2.semilogy(r["loss_curve"], label=label)
    ax1.axhline(MAX_NORM, color="grey", ls=":", lw=1, label="max_norm")
    ax1.set_title("gradient norm before clipping")
    ax2.set_title("training loss (MSE); the unclipped run ends in NaN")
    for ax in (ax1, ax2):
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_plot(fig, out_dir, "exploding_gradients.png")
