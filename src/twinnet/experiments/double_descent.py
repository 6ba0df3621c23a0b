"""Double descent: test error against hidden width, through the interpolation threshold.

Classical lore says test error is U-shaped in model size; with noisy labels the
modern picture (Belkin et al. 2019, Nakkiran et al. 2019) adds a second descent:
the error peaks where the model has just enough capacity to fit (interpolate) every
training label, noise included, and falls again as the model grows further.

Data: 1,000 MNIST training images with 20% of their labels replaced by a random
wrong class; the test set is the clean 10,000 images. (Quick mode: 400 of
scikit-learn's 8x8 digits, tested on 100.)

Two one-hidden-layer ReLU nets d-w-10, at many widths w:

- **random features, least squares**: the hidden layer (``nn.Linear`` with He
  weights, then ``nn.ReLU``) stays at its random initial values and the output
  layer is the minimum-norm least-squares fit to the one-hot labels. It interpolates
  once w >= n (the number of training samples); exactly at w = n the fit is forced
  through every noisy label with huge weights, and the test error peaks.
- **trained MLP**: every weight trained with Adam (full batch, cross-entropy) until
  the training loss is below 1e-3 or a step limit; it interpolates at roughly
  w (d + 11) + 10 = n * 10 parameters.

A curve counts as non-monotonic when some width's test error is at least 2 points
above the best error at a smaller width and also above the best at a larger width.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn, optim
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.models import build_mlp

NAME = "double-descent"
CLAIM = (
    "with 20% label noise, test error vs hidden width is non-monotonic: it peaks where the "
    "net starts to interpolate the training set and descends again"
)

NOISE = 0.2
TOL = 0.02


def noisy_subset(quick: bool, data_dir=None):
    """(x, y_noisy, x_test, y_test, n_flipped, name): a small training set with label noise."""
    if quick:
        splits = data.load("digits", seed=SEED, n_samples=500, val_fraction=0.0)
    else:
        splits = data.load("mnist", seed=SEED, data_dir=data_dir, n_samples=1000, val_fraction=0.0)
    x, y = splits.train.x, splits.train.y.copy()
    rng = np.random.default_rng([SEED, 7])
    flip = rng.random(len(y)) < NOISE
    k = splits.n_classes
    y[flip] = (y[flip] + rng.integers(1, k, flip.sum())) % k  # a different class, uniformly
    return x, y, splits.test.x, splits.test.y, int(flip.sum()), splits.name, k


def random_features_error(width: int, x, y, x_test, y_test, k: int) -> tuple[float, float]:
    """(train error, test error) of a d-width-k net: random He hidden layer, min-norm
    least-squares output layer on one-hot targets."""
    hidden = nn.Linear(
        x.shape[1],
        width,
        bias=False,
        init="kaiming_normal",
        dtype=np.float64,
        rng=np.random.default_rng([SEED, width]),
    )
    relu = nn.ReLU()
    h = relu(hidden(x.astype(np.float64)))  # (n, width)
    h_test = relu(hidden(x_test.astype(np.float64)))
    onehot = np.eye(k)[y]  # (n, k)
    # min ||B|| subject to minimising ||h B - onehot||: the pseudo-inverse solution
    coef = np.linalg.lstsq(h, onehot, rcond=None)[0]  # (width, k)
    train_err = float(np.mean(np.argmax(h @ coef, axis=1) != y))
    test_err = float(np.mean(np.argmax(h_test @ coef, axis=1) != y_test))
    return train_err, test_err


def trained_error(
    width: int, x, y, x_test, y_test, k: int, max_steps: int
) -> tuple[float, float, int]:
    """(train error, test error, steps) of a d-width-k ReLU MLP trained with full-batch Adam."""
    model = build_mlp([x.shape[1], width, k], "relu", rng=SEED)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = losses.CrossEntropyLoss()
    steps = 0
    while steps < max_steps:
        loss = loss_fn(model(x), y)
        if loss < 1e-3:
            break
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
        steps += 1
    train_err = float(np.mean(np.argmax(model(x), axis=1) != y))
    test_err = float(np.mean(np.argmax(model(x_test), axis=1) != y_test))
    return train_err, test_err, steps


def non_monotonic(errors: list[float], tol: float = TOL) -> tuple[bool, int | None]:
    """(flag, index of the highest peak): a peak is an error >= tol above the best error at
    some smaller width and above the best error at some larger width."""
    best_peak, best_height = None, 0.0
    for i in range(1, len(errors) - 1):
        height = min(errors[i] - min(errors[:i]), errors[i] - min(errors[i + 1 :]))
        if height >= tol and height > best_height:
            best_peak, best_height = i, height
    return best_peak is not None, best_peak


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Sweep the width for both nets, flag non-monotonic curves, plot test error vs width."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    x, y, x_test, y_test, n_flipped, name, k = noisy_subset(quick, data_dir)
    n, d = x.shape
    rf_widths = sorted(
        {
            max(1, int(round(n * f)))
            for f in (0.125, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 4)
        }
    )
    mlp_widths = [1, 4, 16, 64] if quick else [1, 2, 4, 6, 8, 10, 12, 16, 24, 32, 64, 128]
    max_steps = 500 if quick else 4000
    mlp_threshold = (n * k - k) / (d + k + 1)  # width where parameters = n * k

    rf = [random_features_error(w, x, y, x_test, y_test, k) for w in rf_widths]
    mlp = [trained_error(w, x, y, x_test, y_test, k, max_steps) for w in mlp_widths]
    rf_test = [t for _, t in rf]
    mlp_test = [t for _, t, _ in mlp]
    rf_flag, rf_peak = non_monotonic(rf_test)
    mlp_flag, mlp_peak = non_monotonic(mlp_test)

    print_table(
        ["width", "width / n", "train err", "test err"],
        [[w, w / n, tr, te] for w, (tr, te) in zip(rf_widths, rf, strict=True)],
        title=f"random features + min-norm least squares, {name}: n = {n} "
        f"({n_flipped} labels flipped), test {len(y_test)}",
    )
    print_table(
        ["width", "params", "params / (n k)", "steps", "train err", "test err"],
        [
            [w, w * (d + k + 1) + k, (w * (d + k + 1) + k) / (n * k), s, tr, te]
            for w, (tr, te, s) in zip(mlp_widths, mlp, strict=True)
        ],
        title=f"trained MLP {d}-w-{k} (Adam, full batch, until loss < 1e-3 or {max_steps} steps)",
    )
    for label, flag, peak, widths, errs in (
        ("random features", rf_flag, rf_peak, rf_widths, rf_test),
        ("trained MLP", mlp_flag, mlp_peak, mlp_widths, mlp_test),
    ):
        shape = "non-monotonic" if flag else "monotonic (no second descent seen)"
        where = f": peak {errs[peak]:.3f} at width {widths[peak]}" if flag else ""
        print(f"{label}: test error {shape}{where}")

    plot = _plot(out_dir, n, rf_widths, rf, mlp_widths, mlp, mlp_threshold, name)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        rf_flag,
        quick,
        started,
        [plot],
        dataset=name,
        n_train=n,
        n_test=len(y_test),
        label_noise=NOISE,
        labels_flipped=n_flipped,
        non_monotonic=rf_flag,
        random_features={
            "widths": rf_widths,
            "train_error": [a for a, _ in rf],
            "test_error": rf_test,
            "non_monotonic": rf_flag,
            "peak_width": None if rf_peak is None else rf_widths[rf_peak],
            "interpolation_threshold_width": n,
        },
        trained_mlp={
            "widths": mlp_widths,
            "train_error": [a for a, _, _ in mlp],
            "test_error": mlp_test,
            "steps": [s for _, _, s in mlp],
            "max_steps": max_steps,
            "non_monotonic": mlp_flag,
            "peak_width": None if mlp_peak is None else mlp_widths[mlp_peak],
            "interpolation_threshold_width_params_eq_nk": mlp_threshold,
        },
        tolerance=TOL,
    )


def _plot(out_dir, n, rf_widths, rf, mlp_widths, mlp, mlp_threshold, name) -> str:
    plt = pyplot()
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4.2))
    a0.semilogx(rf_widths, [t for _, t in rf], "o-C3", label="test error")
    a0.semilogx(rf_widths, [t for t, _ in rf], "s--C0", label="train error")
    a0.axvline(n, color="grey", ls=":", label=f"width = n = {n}")
    a0.set_title("random features + min-norm least squares", fontsize=10)
    ticks = [w for w in rf_widths if w / n in (0.125, 0.25, 0.5, 1, 2, 4)]
    a0.set_xticks(ticks, [str(w) for w in ticks])
    a0.minorticks_off()
    a1.semilogx(mlp_widths, [t for _, t, _ in mlp], "o-C3", label="test error")
    a1.semilogx(mlp_widths, [t for t, _, _ in mlp], "s--C0", label="train error")
    a1.axvline(mlp_threshold, color="grey", ls=":", label="params = n x classes")
    a1.set_title("MLP, all weights trained (Adam)", fontsize=10)
    for ax in (a0, a1):
        ax.set_xlabel("hidden width")
        ax.set_ylabel("error")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(
        f"double descent, {name}, {n} training samples, {NOISE:.0%} label noise", fontsize=10
    )
    return save_plot(fig, out_dir, "double_descent.png")
