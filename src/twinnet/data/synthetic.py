"""Synthetic datasets made in code from a random generator: xor, click, spirals, sine.

Each function takes a ``np.random.Generator`` and returns ``(x, y)`` as float64
features (N, d) and labels: int64 class indices (N,) for classification, float64
(N, 1) for regression. ``data.load`` splits, scales and casts them; the same seed
always gives the same arrays.
"""

from __future__ import annotations

import numpy as np

# the four corners of the unit square and their XOR labels
XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0], dtype=np.int64)

CLICK_FEATURES = 20
# fixed coefficients of the linear terms x7..x11 of the click logit
CLICK_LINEAR = np.array([0.8, -0.6, 0.5, -0.4, 0.3])
# makes about 24% of the samples positive (a click)
CLICK_BIAS = -0.3


def xor(rng: np.random.Generator, n_samples: int | None = None, noise: float = 0.1):
    """The XOR problem. ``n_samples=None``: the classic four points (0/1 inputs).

    Otherwise ``n_samples`` >= 4 points: the four exact corners, then copies of the
    corners in turn with Gaussian noise of standard deviation ``noise`` added; each
    keeps its corner's label. Returns x (N, 2) float64, y (N,) int64 in {0, 1}.
    """
    if n_samples is None:
        return XOR_X.copy(), XOR_Y.copy()
    corner = np.arange(n_samples) % 4  # (N,)
    x = XOR_X[corner].copy()
    x[4:] += noise * rng.standard_normal((n_samples - 4, 2))
    return x, XOR_Y[corner]


def click_logit(x: np.ndarray) -> np.ndarray:
    """The true log-odds of a click for features x (N, 20) -> (N,).

    logit = bias + x0*x1 - x2^2 + sin(pi*x3) + x4*x5 - |x6| + [x7..x11] . w,
    w = (0.8, -0.6, 0.5, -0.4, 0.3); x12..x19 are noise the model must ignore.
    A linear model sees only the last term, so it scores a clearly lower AUC than
    this logit (about 0.70 against 0.89).
    """
    return (
        CLICK_BIAS
        + x[:, 0] * x[:, 1]
        - x[:, 2] ** 2
        + np.sin(np.pi * x[:, 3])
        + x[:, 4] * x[:, 5]
        - np.abs(x[:, 6])
        + x[:, 7:12] @ CLICK_LINEAR
    )


def click(rng: np.random.Generator, n_samples: int = 20000):
    """Synthetic click prediction: 20 standard-normal features, y ~ Bernoulli(sigmoid(logit)).

    See ``click_logit`` for the logit. Returns x (N, 20) float64, y (N,) int64 in {0, 1},
    about 24% ones.
    """
    x = rng.standard_normal((n_samples, CLICK_FEATURES))  # (N, 20)
    p = 1.0 / (1.0 + np.exp(-click_logit(x)))  # (N,)
    y = (rng.random(n_samples) < p).astype(np.int64)
    return x, y


def spirals(
    rng: np.random.Generator,
    n_samples: int = 1500,
    n_arms: int = 3,
    noise: float = 0.2,
    turns: float = 1.0,
):
    """``n_arms`` interleaved spirals in the plane, one class per arm.

    Arm k: radius r = t for t evenly spaced in [0, 1], angle = 2*pi*(turns*t + k/n_arms)
    plus Gaussian noise of ``noise`` radians. Classes are as balanced as ``n_samples``
    allows. Returns x (N, 2) float64 in [-1, 1], y (N,) int64 in 0..n_arms-1.
    """
    counts = [n_samples // n_arms + (k < n_samples % n_arms) for k in range(n_arms)]
    xs, ys = [], []
    for k, n in enumerate(counts):
        t = np.linspace(0.0, 1.0, n)
        angle = 2 * np.pi * (turns * t + k / n_arms) + noise * rng.standard_normal(n)
        xs.append(np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1))
        ys.append(np.full(n, k, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def sine(rng: np.random.Generator, n_samples: int = 1000, noise: float = 0.1):
    """Regression: x ~ U[-1, 1], y = sin(pi*x) + N(0, noise^2).

    Returns x (N, 1), y (N, 1) float64."""
    x = rng.uniform(-1.0, 1.0, (n_samples, 1))
    y = np.sin(np.pi * x) + noise * rng.standard_normal((n_samples, 1))
    return x, y


# the chapter's generate_click_data: its logit coefficients, as printed
CLICK_BOOK_SEED = 42
CLICK_BOOK_ROWS = 10_000


def click_book_logit(x: np.ndarray) -> np.ndarray:
    """The chapter's click logit for features x (N, >= 12) -> (N,):

    0.5 x0 x1 - 0.3 x2^2 + 0.8 sin(pi x3) + 0.4 x4 x5 - 0.2 |x6| + 0.1 (x7 + ... + x11).
    """
    return (
        0.5 * x[:, 0] * x[:, 1]
        - 0.3 * x[:, 2] ** 2
        + 0.8 * np.sin(x[:, 3] * np.pi)
        + 0.4 * x[:, 4] * x[:, 5]
        - 0.2 * np.abs(x[:, 6])
        + 0.1 * np.sum(x[:, 7:12], axis=1)
    )


def click_book(rng: np.random.Generator, n_samples: int = CLICK_BOOK_ROWS, n_features: int = 20):
    """The chapter's click data, drawn as its ``generate_click_data`` draws it: x from
    ``rng.standard_normal((n, d))``, then y = ``rng.binomial(1, sigmoid(logit))``, about
    42% ones. Returns x (N, d) float64, y (N,) int64."""
    if n_features < 12:
        raise ValueError(f"click-book needs n_features >= 12 (the logit uses x0..x11), got {n_features}")
    x = rng.standard_normal((n_samples, n_features))
    p = 1.0 / (1.0 + np.exp(-click_book_logit(x)))
    y = rng.binomial(1, p).astype(np.int64)
    return x, y


def generate_click_data(
    n_samples: int = CLICK_BOOK_ROWS, n_features: int = 20, seed: int = CLICK_BOOK_SEED
) -> dict[str, np.ndarray]:
    """The chapter's function, same arrays: ``default_rng(seed)``, ``click_book``, and
    the first 70% / next 15% / last 15% of the rows as train / val / test (no
    shuffling, no scaling). Also returns each split's true click probability
    (``p_train``, ...), which the chapter's version does not: the Bayes-optimal scores."""
    x, y = click_book(np.random.default_rng(seed), n_samples, n_features)
    p = 1.0 / (1.0 + np.exp(-click_book_logit(x)))
    n_train, n_val = int(0.7 * n_samples), int(0.15 * n_samples)
    cuts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val),
            "test": slice(n_train + n_val, None)}  # fmt: skip
    out = {}
    for split, s in cuts.items():
        out[f"X_{split}"], out[f"y_{split}"], out[f"p_{split}"] = x[s], y[s], p[s]
    return out
