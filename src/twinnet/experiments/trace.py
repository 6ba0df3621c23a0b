"""``twinnet trace``: one forward and backward pass of a 2-2-1 network, step by step.

The default is the classic worked example: sigmoid units everywhere,

    W1 = [[0.1, 0.2], [0.3, 0.4]], b1 = [0, 0], W2 = [0.5, 0.6], b2 = 0,
    x = [0.5, 0.1], y = 1, loss L = 1/2 (y_hat - y)^2, learning rate 0.1,

which gives y_hat = 0.6427, L = 0.06383, delta2 = -0.08204, dL/dW2 = [-0.04246,
-0.04491] and dL/dW1 = [[-0.005122, -0.001024], [-0.006098, -0.00122]].

Every number is computed by twinnet's own layers (``nn.Linear`` and the activation's
forward and backward, in float64, and ``optim.SGD`` for the update); each line shows
the formula the layer implements beside the value, and the last line checks that
the engine's gradients equal the formulas computed directly. ``--x``, ``--y``,
``--w1``, ``--b1``, ``--w2``, ``--b2``, ``--activation relu|tanh|sigmoid`` and ``--lr``
set up your own exercise; the activation is used in the hidden and the output layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from twinnet import nn, optim

DEFAULTS = {
    "x": [0.5, 0.1],
    "y": 1.0,
    "w1": [0.1, 0.2, 0.3, 0.4],
    "b1": [0.0, 0.0],
    "w2": [0.5, 0.6],
    "b2": 0.0,
    "lr": 0.1,
}

# name -> (layer class, how the derivative is written, the derivative as a function of (z, a))
ACTIVATIONS = {
    "sigmoid": (nn.Sigmoid, "{a} (1 - {a})", lambda z, a: a * (1 - a)),
    "tanh": (nn.Tanh, "1 - {a}^2", lambda z, a: 1 - a * a),
    "relu": (nn.ReLU, "[{z} > 0]", lambda z, a: (z > 0).astype(z.dtype)),
}


def _vector(flag: str, value, size: int, shape_note: str = "") -> np.ndarray:
    """``value`` (a list of numbers, a string "0.1,0.2", a number, or None for the default)
    as a float64 array of ``size`` finite numbers; ValueError naming ``--flag`` otherwise."""
    key = flag.lstrip("-")
    if value is None:
        value = DEFAULTS[key]
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p != ""]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"{flag} must be comma-separated numbers, got {value!r}") from None
    elif isinstance(value, int | float):
        numbers = [float(value)]
    else:
        numbers = [float(v) for v in value]
    if len(numbers) != size:
        what = "number" if size == 1 else "numbers"
        raise ValueError(f"{flag} needs {size} {what}{shape_note}, got {len(numbers)}: {value!r}")
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{flag} must be finite numbers, got {value!r}")
    return np.array(numbers, dtype=np.float64)


def _fmt(v) -> str:
    """4 significant digits; vectors as [a, b], matrices as [[a, b], [c, d]]."""
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        x = float(a)
        return "0" if x == 0 else f"{x:.4g}"
    return "[" + ", ".join(_fmt(row) for row in a) + "]"


def trace(
    x: Sequence[float] | str | None = None,
    y: float | None = None,
    w1: Sequence[float] | str | None = None,
    b1: Sequence[float] | str | None = None,
    w2: Sequence[float] | str | None = None,
    b2: float | None = None,
    activation: str = "sigmoid",
    lr: float | None = None,
) -> tuple[str, dict]:
    """Compute the trace; return (the text to print, the values as a dict of arrays).

    ``w1`` is W1 row-major (4 numbers: W1 is 2x2, row i feeds hidden unit i); ``w2``
    has 2 numbers (W2 is 1x2). Raises ValueError on a wrong count or a non-number.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"--activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
        )
    xv = _vector("--x", x, 2, " (the network has 2 inputs)")
    yv = float(_vector("--y", y, 1)[0])
    W1 = _vector("--w1", w1, 4, " (W1 is 2x2, row-major: w11,w12,w21,w22)").reshape(2, 2)
    B1 = _vector("--b1", b1, 2, " (one per hidden unit)")
    W2 = _vector("--w2", w2, 2, " (W2 is 1x2: one weight per hidden unit)").reshape(1, 2)
    B2 = _vector("--b2", b2, 1)
    lr_v = float(_vector("--lr", lr, 1)[0])
    if lr_v < 0:
        raise ValueError(f"--lr must be >= 0, got {lr_v}")
    act_cls, dform, deriv = ACTIVATIONS[activation]

    # the network, built from twinnet's layers in float64
    rng = np.random.default_rng(0)  # initial values are overwritten below
    hidden = nn.Linear(2, 2, dtype=np.float64, rng=rng)
    output = nn.Linear(2, 1, dtype=np.float64, rng=rng)
    act1, act2 = act_cls(), act_cls()
    hidden.weight.data[:], hidden.bias.data[:] = W1, B1
    output.weight.data[:], output.bias.data[:] = W2, B2
    params = [hidden.weight, hidden.bias, output.weight, output.bias]

    # forward: the engine's layers, one at a time
    xb = xv.reshape(1, 2)  # a batch of one example (1, 2)
    z1 = hidden(xb)  # (1, 2)
    a1 = act1(z1)
    z2 = output(a1)  # (1, 1)
    y_hat = act2(z2)
    loss = 0.5 * float((y_hat[0, 0] - yv) ** 2)

    # backward: L = 1/2 (y_hat - y)^2  =>  dL/dy_hat = y_hat - y
    dl_dyhat = y_hat - yv  # (1, 1)
    delta2 = act2.backward(dl_dyhat)  # dL/dz2
    dl_da1 = output.backward(delta2)  # fills dL/dW2, dL/db2; returns W2^T delta2
    delta1 = act1.backward(dl_da1)  # dL/dz1
    hidden.backward(delta1)  # fills dL/dW1, dL/db1
    grads = {
        "dW1": hidden.weight.grad.copy(),
        "db1": hidden.bias.grad.copy(),
        "dW2": output.weight.grad.copy(),
        "db2": output.bias.grad.copy(),
    }

    # the same gradients from the formulas, directly (a check on the engine)
    d2 = deriv(z2, y_hat)
    f_delta2 = (y_hat - yv) * d2
    f_delta1 = (f_delta2 @ W2) * deriv(z1, a1)
    formula = {
        "dW1": f_delta1.T @ xb,
        "db1": f_delta1[0],
        "dW2": f_delta2.T @ a1,
        "db2": f_delta2[0],
    }
    check = max(float(np.max(np.abs(grads[k] - formula[k]))) for k in grads)

    # one gradient-descent step with the engine's optimiser, then the new loss
    optim.SGD(params, lr=lr_v).step()
    y_hat_new = act2(output(act1(hidden(xb))))
    loss_new = 0.5 * float((y_hat_new[0, 0] - yv) ** 2)

    name = activation
    d1_text = dform.format(a="a1", z="z1")
    d2_text = dform.format(a="y_hat", z="z2")
    lines: list[tuple[str, str, object] | str] = [
        f"Backpropagation step by step: a 2-2-1 network with {name} units in both layers",
        f"loss L = 1/2 (y_hat - y)^2, learning rate {lr_v:g}; computed by twinnet's nn.Linear and "
        f"nn.{act_cls.__name__} (forward and backward, float64)",
        "",
        "Inputs and weights",
        ("x", "", xv),
        ("y", "", yv),
        ("W1", "", W1),
        ("b1", "", B1),
        ("W2", "", W2[0]),
        ("b2", "", B2[0]),
        "",
        "Forward pass",
        ("z1", "W1 x + b1", z1[0]),
        ("a1", f"{name}(z1)", a1[0]),
        ("z2", "W2 a1 + b2", z2[0, 0]),
        ("y_hat", f"{name}(z2)", y_hat[0, 0]),
        ("L", "1/2 (y_hat - y)^2", loss),
        "",
        "Backward pass (chain rule, from the output back to the input)",
        ("dL/dy_hat", "y_hat - y", dl_dyhat[0, 0]),
        (f"{name}'(z2)", d2_text, d2[0, 0]),
        ("delta2", f"dL/dz2 = (y_hat - y) * {name}'(z2)", delta2[0, 0]),
        ("dL/dW2", "delta2 a1", grads["dW2"][0]),
        ("dL/db2", "delta2", grads["db2"][0]),
        ("dL/da1", "W2^T delta2", dl_da1[0]),
        (f"{name}'(z1)", d1_text, deriv(z1, a1)[0]),
        ("delta1", f"dL/dz1 = (W2^T delta2) * {name}'(z1)", delta1[0]),
        ("dL/dW1", "delta1 x^T", grads["dW1"]),
        ("dL/db1", "delta1", grads["db1"]),
        "",
        f"Gradient-descent update, w <- w - lr dL/dw with lr = {lr_v:g} (optim.SGD)",
        ("W1 <-", "W1 - lr dL/dW1", hidden.weight.data),
        ("b1 <-", "b1 - lr dL/db1", hidden.bias.data),
        ("W2 <-", "W2 - lr dL/dW2", output.weight.data[0]),
        ("b2 <-", "b2 - lr dL/db2", output.bias.data[0]),
        "",
        "Forward pass again with the new weights",
        ("y_hat", f"{name}(W2 {name}(W1 x + b1) + b2)", y_hat_new[0, 0]),
        ("L", f"1/2 (y_hat - y)^2   (was {_fmt(loss)})", loss_new),
    ]
    if d2[0, 0] == 0:
        lines += [
            "",
            f"Note: {name}'(z2) = 0, so no gradient reaches any weight and the update changes "
            "nothing: the output unit is inactive for this input (a 'dead' unit).",
        ]
    lines += [
        "",
        f"Check: the engine's gradients equal the formulas above (largest difference {check:.1e}).",
    ]

    def left(lab: str, f: str) -> str:
        if not f:
            return lab
        return f"{lab} {f}" if lab.endswith("<-") else f"{lab} = {f}"

    width = max(len(left(lab, f)) for lab, f, _ in (e for e in lines if isinstance(e, tuple)))
    out = []
    for entry in lines:
        if isinstance(entry, str):
            out.append(entry)
        else:
            lab, f, v = entry
            out.append(f"  {left(lab, f):<{width}} = {_fmt(v)}")
    values = {
        "z1": z1[0],
        "a1": a1[0],
        "z2": float(z2[0, 0]),
        "y_hat": float(y_hat[0, 0]),
        "loss": loss,
        "delta2": float(delta2[0, 0]),
        "dL/dW2": grads["dW2"][0],
        "dL/db2": float(grads["db2"][0]),
        "delta1": delta1[0],
        "dL/dW1": grads["dW1"],
        "dL/db1": grads["db1"],
        "W1_new": hidden.weight.data.copy(),
        "b1_new": hidden.bias.data.copy(),
        "W2_new": output.weight.data[0].copy(),
        "b2_new": float(output.bias.data[0]),
        "loss_after": loss_new,
        "engine_vs_formula": check,
    }
    return "\n".join(out), values


def run_trace(args) -> int:
    """``twinnet trace``: print the trace for the flags in ``args``; returns 0."""
    text, _ = trace(
        x=getattr(args, "x", None),
        y=getattr(args, "y", None),
        w1=getattr(args, "w1", None),
        b1=getattr(args, "b1", None),
        w2=getattr(args, "w2", None),
        b2=getattr(args, "b2", None),
        activation=getattr(args, "activation", None) or "sigmoid",
        lr=getattr(args, "lr", None),
    )
    print(text)
    return 0
