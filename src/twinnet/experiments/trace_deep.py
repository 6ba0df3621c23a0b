"""``twinnet trace --sizes 2-3-3-1``: the step-by-step trace of a deeper (or wider-output)
network, printed from :func:`twinnet.experiments.trace_net.trace_network`.

The weights follow a fixed pattern so that every exercise is reproducible by hand: in
every layer W = 0.1, 0.2, ..., 0.9, 0.1, ... row by row, biases 0; the loss is the worked
example's L = 1/2 sum_k (y_hat_k - y_k)^2 with y_k = ``--y`` for every output.
"""

from __future__ import annotations

import numpy as np

from twinnet import nn
from twinnet.experiments.trace_net import DEFAULT_X, trace_network, vector_arg

_LAYER = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "linear": None}
_PHASES = {
    "forward": "Forward pass",
    "loss": "Loss",
    "backward": "Backward pass (chain rule, from the output back to the input)",
    "update": "Gradient-descent update, w <- w - lr dL/dw (optim.SGD)",
}


def pattern_model(sizes: list[int], activation: str, output: str) -> nn.Sequential:
    """Linear layers with the pattern weights, ``activation`` after each hidden layer and
    ``output`` ("linear": none) after the last, float64."""
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        lin = nn.Linear(n_in, n_out, dtype=np.float64, rng=0)
        lin.weight.data[...] = (0.1 * (1 + np.arange(n_out * n_in) % 9)).reshape(n_out, n_in)
        lin.bias.data[...] = 0.0
        layers.append(lin)
        act = _LAYER[output if k == len(sizes) - 2 else activation]
        if act is not None:
            layers.append(act())
    return nn.Sequential(*layers)


def _fmt(v) -> str:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        x = float(a)
        return "0" if x == 0 else f"{x:.4g}"
    if a.ndim == 1 and a.size == 1:
        return _fmt(a[0])
    return "[" + ", ".join(_fmt(row) for row in a) + "]"


def trace_deep(sizes: list[int], x, y, activation: str, output: str, lr) -> tuple[str, dict]:
    """(the text, the trace_network dict) for the pattern network of ``sizes``."""
    n_in, k_out = sizes[0], sizes[-1]
    d = {"x": [DEFAULT_X[i % len(DEFAULT_X)] for i in range(n_in)], "y": 1.0, "lr": 0.1}
    inputs = "input" if n_in == 1 else "inputs"
    xv = vector_arg("--x", x, n_in, f" (the network has {n_in} {inputs})", d)
    yv = float(vector_arg("--y", y, 1, "", d)[0])
    lr_v = float(vector_arg("--lr", lr, 1, "", d)[0])
    if lr_v < 0:
        raise ValueError(f"--lr must be >= 0, got {lr_v}")
    t = trace_network(pattern_model(sizes, activation, output), xv, [yv] * k_out, loss="half_squared", lr=lr_v)
    units = (f"{activation} units in every layer" if activation == output
             else f"{activation} hidden units and {output} output units")  # fmt: skip
    lines = [
        f"Backpropagation step by step: a {'-'.join(map(str, sizes))} network with {units}",
        f"loss L = 1/2 sum_k (y_hat_k - y_k)^2, learning rate {lr_v:g}; computed by twinnet's "
        "nn.Linear and activation layers (forward and backward, float64)",
        "",
        "Inputs and weights (W = 0.1, 0.2, ..., 0.9, 0.1, ... row by row in every layer; b = 0)",
        f"  x = {_fmt(t['x'])}",
        f"  y = {_fmt(t['y'])}",
    ]
    for name, value in t["params"].items():
        lines.append(f"  {name} = {_fmt(value)}")
    rows = [(s["phase"], s["symbol"], s["formula"], s["value"]) for s in t["steps"]]
    width = max(len(f"{sym} = {f}") for _, sym, f, _ in rows)
    phase = None
    for ph, sym, f, v in rows:
        if ph != phase:
            lines += ["", _PHASES[ph] if ph != "update" else _PHASES[ph].replace("(optim", f"with lr = {lr_v:g} (optim")]
            phase = ph
        left = f"{sym.removeprefix('new ')} <- {f}" if sym.startswith("new ") else f"{sym} = {f}"
        lines.append(f"  {left:<{width}} = {_fmt(v)}")
    lines += ["", f"Check: the engine's gradients equal the formulas above (largest difference {t['engine_vs_formula']:.1e})."]
    return "\n".join(lines), t
