"""Initialisation and the variance of activations through depth.

A Linear layer with n inputs of second moment q and weights of variance v outputs
pre-activations of variance n v q. A ReLU keeps half of a symmetric input's second
moment, so layer after layer the pre-activation variance is multiplied by

    n v / 2        (the per-layer gain)

- He / Kaiming, v = 2/n: gain 1, the variance stays put at any depth;
- Xavier / Glorot, v = 2/(n_in + n_out) = 1/n for a square layer: gain 1/2, it halves
  every layer (Xavier is derived for symmetric activations like tanh, not ReLU);
- v = 0.001 with n = 256: gain 0.128, it vanishes; v = 1: gain 128, it explodes.

We push a batch of standard-normal inputs through 10 Linear(256, 256) + ReLU layers
(twinnet's own layers, float64, zero biases) and record the variance of each layer's
pre-activations, averaged over a few random networks.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from twinnet import nn
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results

NAME = "init-variance"
CLAIM = (
    "through 10 ReLU layers of width 256, He init keeps the activation variance within "
    "2x of layer 1, Xavier halves it each layer, var 0.001 vanishes and var 1 explodes"
)

DEPTH = 10
WIDTH = 256


def _normal_init(var: float):
    """An init callable for ``nn.Linear``: N(0, var) weights."""

    def init(shape, rng, dtype):
        return rng.normal(0.0, math.sqrt(var), size=shape).astype(dtype)

    init.__name__ = f"normal(var={var:g})"
    return init


# name -> weight variance for a square (256 x 256) layer
SCHEMES = {
    "too small (var 0.001)": 0.001,
    "too large (var 1)": 1.0,
    "Xavier (var 2/(n_in+n_out))": 2.0 / (WIDTH + WIDTH),
    "He (var 2/n_in)": 2.0 / WIDTH,
}


def layer_variances(var: float, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Variance of the pre-activations z_l = W_l a_{l-1} of each of the DEPTH layers."""
    layers = []
    for _ in range(DEPTH):
        layers += [
            nn.Linear(WIDTH, WIDTH, init=_normal_init(var), dtype=np.float64, rng=rng),
            nn.ReLU(),
        ]
    net = nn.Sequential(*layers)
    out = []
    h = x  # (B, 256)
    for layer in net:
        h = layer(h)
        if isinstance(layer, nn.Linear):
            out.append(h.var())
    return np.array(out)


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Measure the per-layer variance for each scheme, plot it on a log scale."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    batch = 256 if quick else 2048
    n_nets = 3 if quick else 10
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((batch, WIDTH))  # inputs of variance 1

    variances = {}
    for name, var in SCHEMES.items():
        runs = np.stack([layer_variances(var, x, rng) for _ in range(n_nets)])  # (nets, depth)
        variances[name] = runs
    # mean over networks of the variance at each layer, and last/first ratios
    mean = {k: v.mean(axis=0) for k, v in variances.items()}
    ratio = {k: float(m[-1] / m[0]) for k, m in mean.items()}
    gain = {k: WIDTH * var / 2 for k, var in SCHEMES.items()}

    rows = [
        [k, SCHEMES[k], gain[k], m[0], m[4], m[-1], ratio[k], gain[k] ** (DEPTH - 1)]
        for k, m in mean.items()
    ]
    print_table(
        [
            "init",
            "Var(W)",
            "gain n v/2",
            "var layer 1",
            "layer 5",
            "layer 10",
            "10 / 1",
            "theory gain^9",
        ],
        rows,
        title=f"pre-activation variance, {DEPTH} x Linear({WIDTH},{WIDTH}) + ReLU, "
        f"mean of {n_nets} networks, batch {batch}",
    )

    small, large, xavier, he = (ratio[k] for k in SCHEMES)  # in the order of SCHEMES
    per_net_he = variances["He (var 2/n_in)"]
    per_net_he_ratio = per_net_he[:, -1] / per_net_he[:, 0]
    holds = 0.5 <= he <= 2.0 and xavier < 0.5 and small < 1e-3 and large > 1e3
    plot = _plot(out_dir, mean, variances)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        depth=DEPTH,
        width=WIDTH,
        batch=batch,
        networks=n_nets,
        weight_variance=SCHEMES,
        per_layer_gain_theory=gain,
        variance_per_layer=mean,
        last_over_first=ratio,
        he_last_over_first_per_network=per_net_he_ratio,
    )


def _plot(out_dir, mean, variances) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    depth = np.arange(1, DEPTH + 1)
    for (name, m), marker in zip(mean.items(), "v^os", strict=True):
        line = ax.semilogy(depth, m, marker=marker, label=name)[0]
        lo, hi = variances[name].min(axis=0), variances[name].max(axis=0)
        ax.fill_between(depth, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("layer")
    ax.set_ylabel("variance of pre-activations")
    ax.set_xticks(depth)
    ax.set_title("activation variance through 10 ReLU layers (width 256)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_plot(fig, out_dir, "init_variance.png")
