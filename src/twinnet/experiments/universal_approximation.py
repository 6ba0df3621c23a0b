"""Universal approximation: one hidden layer, wider and wider, fits any continuous function.

A one-hidden-layer ReLU net with w units, x -> sum_k v_k relu(x - c_k) + b, is a
continuous piecewise-linear function with kinks at the c_k. With kinks spaced
2/w apart over [-1, 1], the best such function is within about (2/w)^2 max|f''| / 8
of a smooth f: the max error falls like width^-2 (a slope of -2 on a log-log plot).
A sharper function (larger f'') needs more units before the error starts falling.

Two fits for each width 1, 2, 4, ..., 1024 and two targets, sin(pi x) and the sharp
step tanh(20 x):

- **least squares**: the hidden layer (``nn.Linear(1, w)`` + ``nn.ReLU``) has
  weights 1 and kinks at c_k = -1 + 2k/w, and the output layer is solved exactly by
  least squares on the hidden activations (the best output layer for those units);
- **Adam**: the whole net trained end to end from random weights (widths up to 256),
  which shows how much of that capacity gradient descent actually reaches.

The max error is measured on a grid 5x finer than the fitting grid.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import losses, nn, optim
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results

NAME = "universal-approximation"
CLAIM = (
    "one hidden layer approximates sin(pi x) and a sharp step ever better as it widens: "
    "the max error falls with width (about width^-2 once wide enough)"
)

TARGETS = {
    "sin(pi x)": lambda x: np.sin(np.pi * x),
    "tanh(20 x)": lambda x: np.tanh(20.0 * x),
}


def spline_net(width: int, x: np.ndarray, y: np.ndarray) -> nn.Sequential:
    """A 1-width-1 ReLU net with evenly spaced kinks on [-1, 1] and the output layer
    fitted to (x, y) by least squares. x, y: (N, 1) float64."""
    rng = np.random.default_rng(SEED)  # the values are overwritten below
    hidden = nn.Linear(1, width, dtype=np.float64, rng=rng)
    hidden.weight.data[:] = 1.0
    hidden.bias.data[:] = -(-1.0 + 2.0 * np.arange(width) / width)  # kink of unit k at c_k
    out = nn.Linear(width, 1, dtype=np.float64, rng=rng)
    net = nn.Sequential(hidden, nn.ReLU(), out)
    h = net[1](hidden(x))  # (N, width) hidden activations
    design = np.hstack([h, np.ones((len(x), 1))])  # (N, width + 1): weights and bias
    coef = np.linalg.lstsq(design, y, rcond=None)[0]  # (width + 1, 1)
    out.weight.data[:] = coef[:-1].T
    out.bias.data[:] = coef[-1]
    return net


def train_net(width: int, x: np.ndarray, y: np.ndarray, steps: int) -> nn.Sequential:
    """A 1-width-1 ReLU net trained end to end with Adam (cosine lr from 0.01)."""
    rng = np.random.default_rng(SEED)
    net = nn.Sequential(
        nn.Linear(1, width, dtype=np.float64, rng=rng),
        nn.ReLU(),
        nn.Linear(width, 1, dtype=np.float64, rng=rng),
    )
    opt = optim.Adam(net.parameters(), lr=0.01)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    loss_fn = losses.MSELoss()
    for _ in range(steps):
        loss_fn(net(x), y)
        opt.zero_grad()
        net.backward(loss_fn.backward())
        opt.step()
        sched.step()
    return net


def loglog_slope(widths, errors) -> float:
    """Least-squares slope of log(error) against log(width)."""
    return float(np.polyfit(np.log(widths), np.log(errors), 1)[0])


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Fit both targets at every width; plot max error vs width (log-log)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    n_grid = 513 if quick else 2049
    x = np.linspace(-1.0, 1.0, n_grid)[:, None]  # fitting grid (N, 1)
    x_eval = np.linspace(-1.0, 1.0, 5 * n_grid - 4)[:, None]  # 5x finer, for the max error
    widths = [2**i for i in range(9 if quick else 11)]  # 1 .. 256 (quick) or 1024
    adam_widths = [1, 4, 16, 64] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256]
    steps = 300 if quick else 4000
    x_train = np.linspace(-1.0, 1.0, 257)[:, None]  # plenty for gradient descent

    ls_err, adam_err = {}, {}
    for name, f in TARGETS.items():
        ls_err[name] = [
            float(np.max(np.abs(spline_net(w, x, f(x))(x_eval) - f(x_eval)))) for w in widths
        ]
        adam_err[name] = [
            float(np.max(np.abs(train_net(w, x_train, f(x_train), steps)(x_eval) - f(x_eval))))
            for w in adam_widths
        ]

    rows = []
    for i, w in enumerate(widths):
        row = [w]
        for name in TARGETS:
            row.append(ls_err[name][i])
            row.append(adam_err[name][adam_widths.index(w)] if w in adam_widths else None)
        rows.append(row)
    headers = ["width"]
    for name in TARGETS:
        headers += [f"{name} least sq.", f"{name} Adam"]
    print_table(headers, rows, title=f"max |f - net| on [-1, 1]; Adam: {steps} steps")

    # slope over the widths where the error is already falling (the last five)
    slopes = {name: loglog_slope(widths[-5:], ls_err[name][-5:]) for name in TARGETS}
    print(
        f"log-log slope over widths {widths[-5]}..{widths[-1]}: "
        + ", ".join(f"{n} {s:.2f}" for n, s in slopes.items())
    )
    decreasing = {
        n: bool(all(b <= a * (1 + 1e-9) for a, b in zip(e, e[1:], strict=False)))
        for n, e in ls_err.items()
    }
    holds = all(decreasing.values()) and all(e[-1] < e[0] / 100 for e in ls_err.values())
    holds = holds and all(adam_err[n][-1] < adam_err[n][0] for n in TARGETS)
    plot = _plot(out_dir, widths, ls_err, adam_widths, adam_err, steps)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        widths=widths,
        max_error_least_squares=ls_err,
        adam_widths=adam_widths,
        adam_steps=steps,
        max_error_adam=adam_err,
        loglog_slope_last_5_widths=slopes,
        least_squares_error_never_increases=decreasing,
    )


def _plot(out_dir, widths, ls_err, adam_widths, adam_err, steps) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for (name, e), color in zip(ls_err.items(), ["C0", "C3"], strict=True):
        ax.loglog(widths, e, "o-", color=color, label=f"{name}: least-squares output layer")
        ax.loglog(
            adam_widths,
            adam_err[name],
            "s--",
            color=color,
            alpha=0.7,
            label=f"{name}: Adam, {steps} steps",
        )
    w = np.array(widths[-5:], dtype=float)
    ax.loglog(w, 2.0 * ls_err["sin(pi x)"][-5] * (w / w[0]) ** -2, "k:", lw=1, label="slope -2")
    ax.set_xlabel("hidden units (width)")
    ax.set_ylabel("max error on [-1, 1]")
    ax.set_title("one hidden layer: max error vs width", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save_plot(fig, out_dir, "universal_approximation.png")
