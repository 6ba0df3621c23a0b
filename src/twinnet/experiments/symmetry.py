"""Symmetry breaking: with equal initial weights every hidden unit learns the same thing.

If all hidden units start with the same incoming and outgoing weights, they compute
the same activation, receive the same delta (delta_j = w2_j * f'(z_j) * delta2 is the
same for every j) and so the same update: after any number of gradient steps the
rows of W1 are still identical, and the layer behaves like a single unit. A random
initialisation breaks the tie.

We train a 2-8-1 tanh network on noisy XOR (200 points) with full-batch gradient
descent from three starts: every weight 0 (nothing reaches W1 at all: dL/da1 =
W2^T delta2 = 0, and dL/dW2 = delta2 a1 = 0 because a1 = tanh(0) = 0), every weight
0.5 (the rows move, together), and PyTorch's default random init. We record the
spread of the hidden units, max_j |W1[j] - W1[0]|, at every step.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn, optim
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.train import metrics as M

NAME = "symmetry-breaking"
CLAIM = (
    "with zero or constant initialisation all hidden units stay identical during training "
    "(the layer acts as one unit); random initialisation breaks the symmetry"
)

HIDDEN = 8
STARTS = {  # name -> constant for every weight and bias, or None for random
    "zero": 0.0,
    "constant 0.5": 0.5,
    "random (default)": None,
}


def build(constant: float | None, seed: int = SEED) -> nn.Sequential:
    """2-8-1 tanh net in float64; every parameter set to ``constant`` unless it is None."""
    rng = np.random.default_rng(seed)
    net = nn.Sequential(
        nn.Linear(2, HIDDEN, dtype=np.float64, rng=rng),
        nn.Tanh(),
        nn.Linear(HIDDEN, 1, dtype=np.float64, rng=rng),
    )
    if constant is not None:
        for p in net.parameters():
            p.data[...] = constant
    return net


def unit_spread(net: nn.Sequential) -> float:
    """How different the hidden units are: max over units j of |[W1[j], b1[j], W2[:, j]]
    - the same for unit 0|."""
    first, last = net[0], net[2]
    units = np.hstack([first.weight.data, first.bias.data[:, None], last.weight.data.T])
    return float(np.max(np.abs(units - units[0])))


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    steps = 500 if quick else 5000
    splits = data.load("xor", seed=SEED, n_samples=200)
    x, y = splits.train.x.astype(np.float64), splits.train.y
    loss_fn = losses.BCEWithLogitsLoss()
    results, rows, nets = {}, [], {}
    for name, constant in STARTS.items():
        net = build(constant)
        opt = optim.SGD(net.parameters(), lr=0.5)
        spread, loss_curve = np.zeros(steps + 1), np.zeros(steps)
        spread[0] = unit_spread(net)
        for t in range(steps):
            loss_curve[t] = loss_fn(net(x), y)
            opt.zero_grad()
            net.backward(loss_fn.backward())
            opt.step()
            spread[t + 1] = unit_spread(net)
        acc = M.accuracy(net(x), y, "binary")
        w1_moved = float(np.max(np.abs(net[0].weight.data - (constant or 0.0))))
        results[name] = {
            "accuracy": acc,
            "final_loss": float(loss_curve[-1]),
            "max_unit_spread": float(spread.max()),
            "final_unit_spread": float(spread[-1]),
            "w1_moved_from_start": w1_moved if constant is not None else None,
            "spread_curve": spread[:: max(1, steps // 100)],
            "loss_curve": loss_curve[:: max(1, steps // 100)],
        }
        nets[name] = net
        rows.append([name, acc, loss_curve[-1], spread.max(), spread[-1]])
    print_table(
        ["initialisation", "train accuracy", "final loss", "max unit spread", "final spread"],
        rows,
        title=f"2-{HIDDEN}-1 tanh on noisy XOR, gradient descent lr 0.5, {steps} steps",
    )
    plot = _plot(out_dir, results, steps)
    zero, const, rand = (results[k] for k in STARTS)
    holds = (
        zero["max_unit_spread"] == 0.0
        and const["max_unit_spread"] < 1e-9
        and const["w1_moved_from_start"] > 0.01  # the rows did learn, all alike
        and rand["final_unit_spread"] > 0.1
        and rand["accuracy"] > max(zero["accuracy"], const["accuracy"])
    )
    return save_results(out_dir, NAME, CLAIM, holds, quick, started, [plot], steps=steps,
                        hidden_units=HIDDEN, starts=results)


def _plot(out_dir: Path, results: dict, steps: int) -> str:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, r in results.items():
        t = np.linspace(0, steps, len(r["spread_curve"]))
        ax1.plot(t, r["spread_curve"], label=name)
        ax2.plot(np.linspace(0, steps, len(r["loss_curve"])), r["loss_curve"], label=name)
    ax1.set_xlabel("gradient step")
    ax1.set_ylabel("max_j |unit j - unit 0| (weights)")
    ax1.set_title("how different the 8 hidden units are")
    ax2.set_xlabel("gradient step")
    ax2.set_ylabel("training loss (BCE)")
    ax2.set_title("loss")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return save_plot(fig, out_dir, "symmetry_breaking.png")
