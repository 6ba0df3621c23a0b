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
set up your own exercise; the activation is used in the hidden and the output layer
unless ``--output linear|sigmoid|tanh|relu`` picks the output unit's own (``linear``:
y_hat = z2, the regression output). ``--sizes 1-1-1`` (or 3-2-1, ...: inputs, hidden
units, one output) traces another network; weights not given default to the pattern
of the worked example (W1 = 0.1, 0.2, ... row by row, W2 = 0.5, 0.6, ..., b = 0).
``--explain W1[1,2]`` (1-based, as w12; also b1[i], W2[j], b2) writes one weight's
gradient out as the chain-rule product, factor by factor, and its update.

Deeper networks (``--sizes 2-3-3-1``, up to 5 hidden layers of up to 8 units) are traced
by the general walk, :func:`twinnet.experiments.trace_net.trace_network` (the one the
studio's Backprop page shows), with pattern weights (see ``trace_deep``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from twinnet import nn, optim
from twinnet.experiments.trace_net import DEFAULT_X, vector_arg

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
# the output unit may also be linear (y_hat = z2): a regression output
OUTPUTS = {**ACTIVATIONS, "linear": (nn.Identity, "1", lambda z, a: np.ones_like(z))}
MAX_UNITS = 8  # inputs or hidden units a trace prints legibly


def all_sizes(sizes: str | Sequence[int] | None) -> list[int]:
    """``"2-3-3-1"`` -> [2, 3, 3, 1]: inputs, 1 to 5 hidden layers of 1..MAX_UNITS units, one output."""
    if sizes is None:
        return [2, 2, 1]
    parts = sizes.replace(",", "-").split("-") if isinstance(sizes, str) else list(sizes)
    try:
        n = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--sizes must look like 2-2-1 (inputs-hidden-...-1), got {sizes!r}") from None
    if not 3 <= len(n) <= 7 or n[-1] != 1 or not all(1 <= k <= MAX_UNITS for k in n):
        raise ValueError(
            f"--sizes must be inputs-hidden-...-1 with 1 to 5 hidden layers of 1..{MAX_UNITS} units "
            f"and one output (e.g. 2-2-1, 1-1-1 or 2-3-3-1), got {sizes!r}"
        )
    return n


def _defaults(n_in: int, n_h: int) -> dict:
    """The worked example's values for 2-2-1; the same pattern for other sizes."""
    return {
        "x": [DEFAULT_X[i % len(DEFAULT_X)] for i in range(n_in)],
        "y": 1.0,
        "w1": [round(0.1 * (k + 1), 10) for k in range(n_h * n_in)],
        "b1": [0.0] * n_h,
        "w2": [round(0.5 + 0.1 * j, 10) for j in range(n_h)],
        "b2": 0.0,
        "lr": 0.1,
    }


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
    output: str | None = None,
    sizes: str | Sequence[int] | None = None,
    explain: str | None = None,
) -> tuple[str, dict]:
    """Compute the trace; return (the text to print, the values as a dict of arrays).

    ``w1`` is W1 row-major (4 numbers for 2-2-1: W1 is 2x2, row i feeds hidden unit i);
    ``w2`` has one number per hidden unit (W2 is 1xH). ``output``: the output unit's
    activation (default: ``activation``; ``"linear"`` for none). ``sizes``: "N-H-1", or
    deeper ("2-3-3-1": the general walk, pattern weights, no ``w1``..``explain``).
    ``explain``: one parameter, e.g. "W1[1,2]", whose gradient is written out factor by
    factor. Raises ValueError on a wrong count, a non-number or an unknown name.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"--activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
        )
    output = output or activation
    if output not in OUTPUTS:
        raise ValueError(f"--output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    n = all_sizes(sizes)
    if len(n) > 3:  # a deeper network: the general walk
        from twinnet.experiments.trace_deep import trace_deep

        given = [f for f, v in (("--w1", w1), ("--b1", b1), ("--w2", w2), ("--b2", b2), ("--explain", explain)) if v is not None]
        if given:
            raise ValueError(f"{given[0]} is for inputs-hidden-1 networks; {sizes} takes its weights from the pattern")
        return trace_deep(n, x, y, activation, output, lr)
    n_in, n_h = n[0], n[1]
    d = _defaults(n_in, n_h)
    w1_note = (" (W1 is 2x2, row-major: w11,w12,w21,w22)" if (n_in, n_h) == (2, 2)
               else f" (W1 is {n_h}x{n_in}, row-major: row i feeds hidden unit i)")  # fmt: skip
    inputs = "input" if n_in == 1 else "inputs"
    xv = vector_arg("--x", x, n_in, f" (the network has {n_in} {inputs})", d)
    yv = float(vector_arg("--y", y, 1, "", d)[0])
    W1 = vector_arg("--w1", w1, n_h * n_in, w1_note, d).reshape(n_h, n_in)
    B1 = vector_arg("--b1", b1, n_h, " (one per hidden unit)", d)
    W2 = vector_arg("--w2", w2, n_h, f" (W2 is 1x{n_h}: one weight per hidden unit)", d).reshape(1, n_h)
    B2 = vector_arg("--b2", b2, 1, "", d)
    lr_v = float(vector_arg("--lr", lr, 1, "", d)[0])
    if lr_v < 0:
        raise ValueError(f"--lr must be >= 0, got {lr_v}")
    act_cls, dform, deriv = ACTIVATIONS[activation]
    out_cls, dform2, deriv2 = OUTPUTS[output]
    picked = _parse_explain(explain, n_in, n_h) if explain else None

    # the network, built from twinnet's layers in float64
    rng = np.random.default_rng(0)  # initial values are overwritten below
    hidden = nn.Linear(n_in, n_h, dtype=np.float64, rng=rng)
    output_layer = nn.Linear(n_h, 1, dtype=np.float64, rng=rng)
    act1, act2 = act_cls(), out_cls()
    hidden.weight.data[:], hidden.bias.data[:] = W1, B1
    output_layer.weight.data[:], output_layer.bias.data[:] = W2, B2
    params = [hidden.weight, hidden.bias, output_layer.weight, output_layer.bias]

    # forward: the engine's layers, one at a time
    xb = xv.reshape(1, n_in)  # a batch of one example (1, N)
    z1 = hidden(xb)  # (1, H)
    a1 = act1(z1)
    z2 = output_layer(a1)  # (1, 1)
    y_hat = act2(z2)
    loss = 0.5 * float((y_hat[0, 0] - yv) ** 2)

    # backward: L = 1/2 (y_hat - y)^2  =>  dL/dy_hat = y_hat - y
    dl_dyhat = y_hat - yv  # (1, 1)
    delta2 = act2.backward(dl_dyhat)  # dL/dz2
    dl_da1 = output_layer.backward(delta2)  # fills dL/dW2, dL/db2; returns W2^T delta2
    delta1 = act1.backward(dl_da1)  # dL/dz1
    hidden.backward(delta1)  # fills dL/dW1, dL/db1
    grads = {
        "dW1": hidden.weight.grad.copy(),
        "db1": hidden.bias.grad.copy(),
        "dW2": output_layer.weight.grad.copy(),
        "db2": output_layer.bias.grad.copy(),
    }

    # the same gradients from the formulas, directly (a check on the engine)
    d2 = deriv2(z2, y_hat)
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
    y_hat_new = act2(output_layer(act1(hidden(xb))))
    loss_new = 0.5 * float((y_hat_new[0, 0] - yv) ** 2)

    name, name2 = activation, output
    d1_text = dform.format(a="a1", z="z1")
    d2_text = dform2.format(a="y_hat", z="z2")
    net = f"{n_in}-{n_h}-1"
    units = (f"{name} units in both layers" if name == name2
             else f"{name} hidden units and a {name2} output unit")  # fmt: skip
    layers_used = " and ".join(dict.fromkeys(f"nn.{c.__name__}" for c in (act_cls, out_cls)))
    lines: list[tuple[str, str, object] | str] = [
        f"Backpropagation step by step: a {net} network with {units}",
        f"loss L = 1/2 (y_hat - y)^2, learning rate {lr_v:g}; computed by twinnet's nn.Linear and "
        f"{layers_used} (forward and backward, float64)",
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
        ("y_hat", "z2" if name2 == "linear" else f"{name2}(z2)", y_hat[0, 0]),
        ("L", "1/2 (y_hat - y)^2", loss),
        "",
        "Backward pass (chain rule, from the output back to the input)",
        ("dL/dy_hat", "y_hat - y", dl_dyhat[0, 0]),
        (f"{name2}'(z2)", d2_text, d2[0, 0]),
        ("delta2", f"dL/dz2 = (y_hat - y) * {name2}'(z2)", delta2[0, 0]),
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
        ("W2 <-", "W2 - lr dL/dW2", output_layer.weight.data[0]),
        ("b2 <-", "b2 - lr dL/db2", output_layer.bias.data[0]),
        "",
        "Forward pass again with the new weights",
        ("y_hat", (f"W2 {name}(W1 x + b1) + b2" if name2 == "linear"
                   else f"{name2}(W2 {name}(W1 x + b1) + b2)"), y_hat_new[0, 0]),  # fmt: skip
        ("L", f"1/2 (y_hat - y)^2   (was {_fmt(loss)})", loss_new),
    ]
    if d2[0, 0] == 0:
        lines += [
            "",
            f"Note: {name2}'(z2) = 0, so no gradient reaches any weight and the update changes "
            "nothing: the output unit is inactive for this input (a 'dead' unit).",
        ]
    if picked is not None:
        lines += ["", *_explain(picked, xv, yv, y_hat[0, 0], d2[0, 0], W2[0], deriv(z1, a1)[0],
                                a1[0], grads, params, lr_v, name, name2)]  # fmt: skip
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
        "W2_new": output_layer.weight.data[0].copy(),
        "b2_new": float(output_layer.bias.data[0]),
        "loss_after": loss_new,
        "engine_vs_formula": check,
    }
    if picked is not None:
        values["explained"] = picked[3]
    return "\n".join(out), values


_EXPLAIN = re.compile(r"^\s*(W1|b1|W2|b2)\s*(?:\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\])?\s*$", re.I)


def _parse_explain(text: str, n_in: int, n_h: int) -> tuple[str, int, int, str]:
    """"W1[1,2]" -> ("W1", 0, 1, "W1[1,2]"): the parameter and 0-based indices."""
    m = _EXPLAIN.match(text)
    wants = {"W1": 2, "b1": 1, "W2": 1, "b2": 0}
    key = m.group(1)[0].upper() + m.group(1)[1] if m else None
    key = {"W1": "W1", "B1": "b1", "W2": "W2", "B2": "b2"}.get(key or "")
    given = [int(g) for g in (m.group(2), m.group(3)) if g is not None] if m else []
    if key is None or len(given) != wants[key]:
        raise ValueError(
            f"--explain must name one parameter as W1[i,j], b1[i], W2[j] or b2 (1-based), got {text!r}"
        )
    limits = {"W1": (n_h, n_in), "b1": (n_h,), "W2": (n_h,), "b2": ()}[key]
    if any(not 1 <= g <= lim for g, lim in zip(given, limits, strict=True)):
        raise ValueError(f"--explain {text}: indices must be within {limits} (1-based)")
    i, j = (given + [1, 1])[:2]
    label = key + (f"[{','.join(map(str, given))}]" if given else "")
    return key, i - 1, j - 1, label


def _explain(picked, xv, y, y_hat, d2, w2, d1, a1, grads, params, lr, name, name2) -> list[str]:
    """One weight's gradient as the chain-rule product, each factor with its value."""
    key, i, j, label = picked
    factors = [("(y_hat - y)", y_hat - y), (f"{name2}'(z2)", d2)]
    if key == "W2":
        factors.append((f"a1[{i + 1}]", a1[i]))
    elif key in ("W1", "b1"):
        factors += [(f"W2[{i + 1}]", w2[i]), (f"{name}'(z1[{i + 1}])", d1[i])]
        if key == "W1":
            factors.append((f"x[{j + 1}]", xv[j]))
    engine = {"W1": grads["dW1"][i, j], "b1": grads["db1"][i], "W2": grads["dW2"][0, i],
              "b2": grads["db2"][0]}[key]  # fmt: skip
    product = float(np.prod([v for _, v in factors]))
    param = {"W1": params[0], "b1": params[1], "W2": params[2], "b2": params[3]}[key]
    new = float(param.data.reshape(-1)[{"W1": i * len(xv) + j, "b1": i, "W2": i, "b2": 0}[key]])
    old = new + lr * engine
    why = {
        "W1": f"W1[{i + 1},{j + 1}] multiplies x[{j + 1}] into hidden unit {i + 1}, whose "
        f"output reaches y_hat through W2[{i + 1}]",
        "b1": f"b1[{i + 1}] shifts hidden unit {i + 1}, whose output reaches y_hat through W2[{i + 1}]",
        "W2": f"W2[{i + 1}] multiplies hidden output a1[{i + 1}] into z2",
        "b2": "b2 shifts z2 directly",
    }[key]
    return [
        f"One weight, step by step: dL/d{label} ({why})",
        f"  dL/d{label} = " + " * ".join(f for f, _ in factors),
        f"  {'':>{len(label) + 4}} = " + " * ".join(f"({_fmt(v)})" for _, v in factors),
        f"  {'':>{len(label) + 4}} = {_fmt(product)}   (the engine's backward: {_fmt(engine)})",
        f"  update: {label} <- {_fmt(old)} - {lr:g} * ({_fmt(engine)}) = {_fmt(new)}",
    ]


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
        output=getattr(args, "output", None),
        sizes=getattr(args, "sizes", None),
        explain=getattr(args, "explain", None),
    )
    print(text)
    return 0
