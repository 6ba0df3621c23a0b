"""The perceptron learning rule: convergence on separable data, cycling on XOR.

Rosenblatt's perceptron predicts ``step(w . x~)`` with x~ = (x, 1) (the bias folded
into the weights) and, on every mistake (y w . x~ <= 0, labels y in {-1, +1}), updates

    w <- w + y x~

Novikoff's theorem (1962): if some unit vector u separates the data with margin
gamma = min_i y_i u . x~_i > 0 and R = max_i ||x~_i||, the rule makes at most
(R / gamma)^2 mistakes, in any order, starting from w = 0. The largest gamma (the
max-margin separator, found here by solving the hard-margin SVM with SciPy) gives the
tightest bound; the separator used to make the data gives a looser one.

On XOR no separator exists and the rule never stops: from w = 0 with a fixed order
the weights are integer vectors and return to an earlier value, a cycle.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet.data import synthetic
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results

NAME = "perceptron"
CLAIM = (
    "the perceptron rule converges on separable data within (R/gamma)^2 mistakes; "
    "on XOR it never converges (the weights cycle)"
)

# the separator used to label the synthetic data: w . x + b > 0 -> class +1
TRUE_W = np.array([1.0, -0.7])
TRUE_B = 0.15


def augment(x: np.ndarray) -> np.ndarray:
    """x (N, d) -> x~ = (x, 1) (N, d + 1): the bias becomes one more weight."""
    return np.hstack([x, np.ones((len(x), 1))])


def perceptron(xa: np.ndarray, y: np.ndarray, max_epochs: int) -> dict:
    """Run the perceptron rule over (xa, y) in a fixed order until an epoch without
    mistakes or ``max_epochs``.

    xa: (N, d+1) augmented inputs; y: (N,) labels in {-1, +1}. Returns the final
    weights, mistakes per epoch, the total, whether it converged, and the weights at
    the end of each epoch (to detect a cycle).
    """
    w = np.zeros(xa.shape[1])
    per_epoch, ends = [], [w.copy()]
    for _ in range(max_epochs):
        mistakes = 0
        for xi, yi in zip(xa, y, strict=True):  # the rule is sequential by nature
            # prediction step(w . x~); a mistake when y w . x~ <= 0
            if yi * (w @ xi) <= 0:
                w += yi * xi  # w <- w + y x~
                mistakes += 1
        per_epoch.append(mistakes)
        ends.append(w.copy())
        if mistakes == 0:
            break
    return {
        "w": w,
        "mistakes_per_epoch": per_epoch,
        "total_mistakes": int(sum(per_epoch)),
        "converged": per_epoch[-1] == 0,
        "epoch_end_weights": ends,
    }


def find_cycle(ends: list[np.ndarray]) -> tuple[int, int] | None:
    """(first epoch, period) if the end-of-epoch weights repeat, else None."""
    seen: dict[bytes, int] = {}
    for i, w in enumerate(ends):
        key = w.tobytes()
        if key in seen:
            return seen[key], i - seen[key]
        seen[key] = i
    return None


def margin(u: np.ndarray, xa: np.ndarray, y: np.ndarray) -> float:
    """gamma(u) = min_i y_i u . x~_i / ||u||: the margin of separator u (< 0 if it errs)."""
    return float(np.min(y * (xa @ u)) / np.linalg.norm(u))


def max_margin_separator(xa: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hard-margin SVM through the origin of the augmented space:
    minimise ||v||^2 subject to y_i v . x~_i >= 1; the margin is then 1 / ||v||."""
    from scipy import optimize  # imported here: it is slow to import and only needed here

    start = np.linalg.lstsq(xa, y.astype(np.float64), rcond=None)[0]
    start *= 1.0 / max(np.min(y * (xa @ start)), 1e-3)  # scale toward feasibility
    res = optimize.minimize(
        lambda v: v @ v,
        start,
        jac=lambda v: 2 * v,
        constraints=[
            {"type": "ineq", "fun": lambda v: y * (xa @ v) - 1, "jac": lambda v: y[:, None] * xa}
        ],
        method="SLSQP",
        options={"maxiter": 500, "ftol": 1e-12},
    )
    return res.x


def separable_data(n: int, rng: np.random.Generator, min_margin: float = 0.05):
    """n points uniform in [-1, 1]^2 labelled by TRUE_W . x + TRUE_B, keeping only points
    at least ``min_margin`` from that line. Returns x (n, 2), y (n,) in {-1, +1}."""
    xs = []
    norm = np.linalg.norm(TRUE_W)
    while sum(len(a) for a in xs) < n:
        cand = rng.uniform(-1, 1, (4 * n, 2))
        dist = (cand @ TRUE_W + TRUE_B) / norm
        xs.append(cand[np.abs(dist) >= min_margin])
    x = np.concatenate(xs)[:n]
    y = np.where(x @ TRUE_W + TRUE_B > 0, 1, -1)
    return x, y


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Perceptron on separable data (with the bound) and on XOR (with the cycle)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    rng = np.random.default_rng(SEED)
    n = 60 if quick else 400
    x, y = separable_data(n, rng)
    xa = augment(x)
    sep = perceptron(xa, y, max_epochs=10_000)

    r = float(np.max(np.linalg.norm(xa, axis=1)))  # R = max ||x~||
    u_true = np.append(TRUE_W, TRUE_B)
    gamma_true = margin(u_true, xa, y)
    u_max = max_margin_separator(xa, y)
    gamma_max = margin(u_max, xa, y)
    bound_max = (r / gamma_max) ** 2
    bound_true = (r / gamma_true) ** 2

    # XOR with labels in {-1, +1}
    xor_x, xor_y01 = synthetic.XOR_X, synthetic.XOR_Y
    xor_y = 2 * xor_y01 - 1
    xor_epochs = 50 if quick else 200
    xor = perceptron(augment(xor_x), xor_y, max_epochs=xor_epochs)
    cycle = find_cycle(xor["epoch_end_weights"])

    print_table(
        [
            "data",
            "points",
            "R",
            "margin gamma",
            "bound (R/gamma)^2",
            "mistakes",
            "epochs",
            "converged",
        ],
        [
            [
                "separable, max-margin gamma",
                n,
                r,
                gamma_max,
                bound_max,
                sep["total_mistakes"],
                len(sep["mistakes_per_epoch"]),
                sep["converged"],
            ],
            [
                "separable, generating line",
                n,
                r,
                gamma_true,
                bound_true,
                sep["total_mistakes"],
                len(sep["mistakes_per_epoch"]),
                sep["converged"],
            ],
            ["XOR", 4, np.sqrt(3), None, None, xor["total_mistakes"], xor_epochs, xor["converged"]],
        ],
        title="Perceptron learning rule (w <- w + y x on each mistake)",
    )
    if cycle is not None:
        first, period = cycle
        print(
            f"XOR: the weights after epoch {first + period} equal those after epoch {first}: "
            f"a cycle of {period} epoch(s), {xor['mistakes_per_epoch'][-1]} mistakes in every epoch"
        )

    plot = _plot(out_dir, x, y, sep, u_max, gamma_max, xor)
    holds = (
        sep["converged"]
        and sep["total_mistakes"] <= bound_max
        and not xor["converged"]
        and cycle is not None
    )
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        separable={
            "points": n,
            "R": r,
            "gamma_max_margin": gamma_max,
            "gamma_generating_line": gamma_true,
            "bound_max_margin": bound_max,
            "bound_generating_line": bound_true,
            "mistakes": sep["total_mistakes"],
            "epochs": len(sep["mistakes_per_epoch"]),
            "converged": sep["converged"],
            "mistakes_per_epoch": sep["mistakes_per_epoch"],
            "final_weights": sep["w"],
        },
        xor={
            "epochs": xor_epochs,
            "converged": xor["converged"],
            "mistakes": xor["total_mistakes"],
            "mistakes_per_epoch_last": xor["mistakes_per_epoch"][-1],
            "cycle_start_epoch": None if cycle is None else cycle[0],
            "cycle_period_epochs": None if cycle is None else cycle[1],
            "weights_in_cycle": []
            if cycle is None
            else xor["epoch_end_weights"][cycle[0] : cycle[0] + cycle[1]],
        },
    )


def _plot(out_dir, x, y, sep, u_max, gamma_max, xor) -> str:
    plt = pyplot()
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    a0.scatter(*x[y > 0].T, s=12, c="tab:red", label="+1")
    a0.scatter(*x[y < 0].T, s=12, c="tab:blue", label="-1")
    xs = np.linspace(-1, 1, 2)
    for u, style, label in ((sep["w"], "k-", "perceptron"), (u_max, "g--", "max-margin separator")):
        if abs(u[1]) > 1e-12:
            a0.plot(xs, -(u[0] * xs + u[2]) / u[1], style, label=label)
    a0.set_xlim(-1, 1)
    a0.set_ylim(-1, 1)
    a0.set_title(
        f"separable data: {sep['total_mistakes']} mistakes, max-margin gamma = {gamma_max:.3f}",
        fontsize=9,
    )
    a0.legend(fontsize=8, loc="lower right")
    a0.set_aspect("equal")
    a1.plot(
        np.arange(1, len(sep["mistakes_per_epoch"]) + 1),
        sep["mistakes_per_epoch"],
        "o-",
        ms=3,
        label="separable: reaches 0",
    )
    a1.plot(
        np.arange(1, len(xor["mistakes_per_epoch"]) + 1),
        xor["mistakes_per_epoch"],
        "s-",
        ms=3,
        label="XOR: never 0",
    )
    a1.set_xscale("log")
    a1.set_xlabel("epoch")
    a1.set_ylabel("mistakes in the epoch")
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    return save_plot(fig, out_dir, "perceptron.png")
