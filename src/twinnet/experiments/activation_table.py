"""The activation table: range, largest derivative and saturation, measured.

For each activation, twinnet's own layer is evaluated on a fine grid z in [-10, 10]
(step 1e-4, float64): ``forward`` gives f(z) and ``backward`` of a vector of ones
gives f'(z). From these we read

- the **range**: the smallest value f reaches (the largest when bounded above); the
  negative dips of GELU (-0.170 at z = -0.75) and SiLU (-0.278 at z = -1.28);
- the **largest derivative** max f'(z), and where it is reached;
- **saturation**: the sides where |f'(z)| < 0.01 at |z| = 10 (both tails for sigmoid
  and tanh), and where f' is exactly 0 (ReLU's negative side: dead units). GELU and
  SiLU also flatten on the negative side (f' -> 0 as z -> -inf), although the text's
  table says "No"; their derivative is small there but never exactly 0.

Every derivative is also checked against a centred finite difference of ``forward``,
and the maxima of GELU' = Phi(z) + z phi(z) and SiLU' = s + z s (1 - s) against a
root of their second derivative found with SciPy (independent of the grid).

The chapter's table gives GELU's largest derivative as "<= 1.08"; measured, it is
1.1289 (at z = sqrt(2) = 1.414). SiLU's "<= 1.10" holds: 1.0998 at z = 2.3994.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from twinnet import nn
from twinnet.experiments.common import print_table, pyplot, save_plot, save_results

NAME = "activation-table"
CLAIM = (
    "measured on a grid: max f' is 0.25 for sigmoid, 1 for tanh and ReLU, 1.129 for GELU "
    "(the text says <= 1.08) and 1.0998 for SiLU; sigmoid/tanh saturate at both tails"
)

# name -> (layer, what the chapter's table says: range, max derivative, saturates)
ACTIVATIONS = {
    "sigmoid": (nn.Sigmoid, "(0, 1)", "0.25", "yes (both tails)"),
    "tanh": (nn.Tanh, "(-1, 1)", "1.0", "yes (both tails)"),
    "relu": (nn.ReLU, "[0, inf)", "1.0", "no (positive)"),
    "leaky_relu": (nn.LeakyReLU, "-", "-", "-"),
    "gelu": (nn.GELU, "~[-0.17, inf)", "<= 1.08", "no"),
    "silu": (nn.SiLU, "~[-0.28, inf)", "<= 1.10", "no"),
}
SATURATED = 0.01  # |f'| below this counts as saturated


def f_and_df(layer_cls, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(z) and f'(z) from the layer's forward and its backward of ones."""
    layer = layer_cls()
    f = layer(z)
    return f, layer.backward(np.ones_like(z))


def gelu_max_derivative() -> tuple[float, float]:
    """(z*, GELU'(z*)) where GELU''(z) = phi(z) (2 - z^2) = 0, i.e. z* = sqrt(2)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    z = brentq(lambda t: norm.pdf(t) * (2 - t * t), 0.5, 3.0, xtol=1e-14)
    return z, float(norm.cdf(z) + z * norm.pdf(z))


def silu_max_derivative() -> tuple[float, float]:
    """(z*, SiLU'(z*)) where SiLU''(z) = s(1-s)(2 + z(1 - 2s)) = 0, s = sigmoid(z)."""
    from scipy.optimize import brentq

    def s(t):
        return 1 / (1 + math.exp(-t))

    z = brentq(lambda t: 2 + t * (1 - 2 * s(t)), 1.0, 4.0, xtol=1e-14)
    return z, s(z) + z * s(z) * (1 - s(z))


def measure(name: str, layer_cls, z: np.ndarray) -> dict:
    f, df = f_and_df(layer_cls, z)
    h = 1e-6
    numeric = (f_and_df(layer_cls, z + h)[0] - f_and_df(layer_cls, z - h)[0]) / (2 * h)
    away_from_kink = np.abs(z) > 1e-5  # ReLU-family derivatives jump at 0
    i_max = int(np.argmax(df))
    bounded_above = bool(df[-1] < SATURATED)
    sides = [s for s, d in (("negative", df[0]), ("positive", df[-1])) if abs(d) < SATURATED]
    zero_side = "z < 0" if np.all(df[z < 0] == 0) else None
    return {
        "min_f": float(f.min()),
        "argmin_f": float(z[int(np.argmin(f))]),
        "max_f": float(f.max()) if bounded_above else None,  # None: grows without bound
        "max_derivative": float(df[i_max]),
        "argmax_derivative": float(z[i_max]),
        "saturates": sides,
        "derivative_exactly_zero": zero_side,
        "backward_vs_finite_difference": float(
            np.max(np.abs(df - numeric)[away_from_kink])
        ),
    }


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    step = 1e-3 if quick else 1e-4
    z = np.arange(-10.0, 10.0 + step / 2, step)
    table = {name: measure(name, spec[0], z) for name, spec in ACTIVATIONS.items()}
    rows = []
    for name, m in table.items():
        upper = "inf" if m["max_f"] is None else f"{m['max_f']:.4g}"
        lower = "0" if abs(m["min_f"]) < 1e-3 else f"{m['min_f']:.4g}"
        sat = " and ".join(m["saturates"]) or "no"
        if m["derivative_exactly_zero"]:
            sat += f" (f' = 0 for {m['derivative_exactly_zero']}: dead units)"
        text = ACTIVATIONS[name]
        rows.append([name, f"[{lower}, {upper}]", f"{m['max_derivative']:.5g}",
                     round(m["argmax_derivative"], 4),
                     sat, text[2]])
    print_table(
        ["activation", "range on [-10, 10]", "max f'", "at z", "saturates (|f'|<0.01)",
         "text says"],
        rows,
        title=f"measured with twinnet's layers on z in [-10, 10], step {step:g}",
    )
    z_gelu, d_gelu = gelu_max_derivative()
    z_silu, d_silu = silu_max_derivative()
    print(f"SciPy root of f'': GELU' max {d_gelu:.6f} at z = {z_gelu:.6f}; "
          f"SiLU' max {d_silu:.6f} at z = {z_silu:.6f}")
    plot = _plot(out_dir, z)
    tol = 1e-6
    holds = (
        abs(table["sigmoid"]["max_derivative"] - 0.25) < tol
        and abs(table["tanh"]["max_derivative"] - 1.0) < tol
        and table["relu"]["max_derivative"] == 1.0
        and abs(table["gelu"]["max_derivative"] - d_gelu) < 1e-5
        and round(d_gelu, 3) == 1.129
        and abs(table["silu"]["max_derivative"] - d_silu) < 1e-5
        and round(d_silu, 4) == 1.0998
        and table["sigmoid"]["saturates"] == ["negative", "positive"]
        and table["tanh"]["saturates"] == ["negative", "positive"]
        and table["relu"]["derivative_exactly_zero"] == "z < 0"
        and all(m["backward_vs_finite_difference"] < 1e-6 for m in table.values())
    )
    return save_results(
        out_dir, NAME, CLAIM, holds, quick, started, [plot], grid_step=step,
        table=table, gelu_max_derivative_scipy={"z": z_gelu, "value": d_gelu},
        silu_max_derivative_scipy={"z": z_silu, "value": d_silu},
        text_says={k: {"range": v[1], "max_derivative": v[2], "saturates": v[3]}
                   for k, v in ACTIVATIONS.items()},
    )


def _plot(out_dir: Path, z: np.ndarray) -> str:
    plt = pyplot()
    zz = z[(z >= -5) & (z <= 5)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, (cls, *_rest) in ACTIVATIONS.items():
        f, df = f_and_df(cls, zz)
        ax1.plot(zz, f, label=name)
        ax2.plot(zz, df, label=name)
    ax1.set_ylim(-1.5, 3)
    ax1.set_title("f(z)")
    ax2.axhline(1.08, color="grey", ls=":", lw=1)
    ax2.text(-4.9, 1.1, "the text's GELU bound 1.08", fontsize=7, color="grey")
    ax2.set_title("f'(z) from each layer's backward")
    for ax in (ax1, ax2):
        ax.set_xlabel("z")
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return save_plot(fig, out_dir, "activation_table.png")
