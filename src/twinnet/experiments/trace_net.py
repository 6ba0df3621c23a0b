"""``trace_network``: one example's forward and backward pass through any small MLP, step by step.

``twinnet trace`` prints the 2-2-1 worked example; this is the same walk for any small
``nn.Sequential`` of ``Linear`` layers and elementwise activations (up to
:data:`MAX_UNITS` units a layer, up to :data:`MAX_LINEAR` Linear layers), returned as
plain data (lists and floats, JSON-ready) for the studio's Backprop page::

    t = trace_network(model, x=[0.5, 0.1], y=[1.0], loss="half_squared", lr=0.1)
    for s in t["steps"]:
        print(s["phase"], s["symbol"], "=", s["formula"], "=", s["value"])

Notation: Linear layer k (1-based) computes z_k = W_k a_{k-1} + b_k with a_0 = x; its
activation gives a_k = f(z_k); the network's output is y_hat. Backward, delta_k = dL/dz_k,
dL/dW_k = delta_k a_{k-1}^T, dL/db_k = delta_k, dL/da_{k-1} = W_k^T delta_k and
delta_{k-1} = dL/da_{k-1} * f'(z_{k-1}). Every number comes from twinnet's own layers
(forward, then backward one module at a time, float64); ``engine_vs_formula`` is the
largest difference between the engine's gradients and the formulas above computed
directly with NumPy; :func:`torch_check` asks the PyTorch twin (autograd) for the same
gradients.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from twinnet import losses, nn, optim

MAX_UNITS = 8  # units a layer the page draws legibly (inputs included)
MAX_LINEAR = 6  # Linear layers

_SQ2PI = math.sqrt(2.0 / math.pi)

DEFAULT_X = (0.5, 0.1, 0.3, 0.2)  # the inputs twinnet trace uses, cycled for more inputs


def vector_arg(flag: str, value, size: int, shape_note: str, defaults: dict) -> np.ndarray:
    """``value`` (a list of numbers, a string "0.1,0.2", a number, or None for the default)
    as a float64 array of ``size`` finite numbers (None takes ``defaults[flag]``); ValueError
    naming ``--flag`` otherwise. ``twinnet trace`` reads its flags with it."""
    key = flag.lstrip("-")
    if value is None:
        value = defaults[key]
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



def _sig(z):
    return special.expit(z)


def _gelu_tanh_slope(z):
    t = np.tanh(_SQ2PI * (z + 0.044715 * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _SQ2PI * (1 + 3 * 0.044715 * z * z)


# activation name -> (what it computes, its derivative written out, the derivative f'(z, a))
# written from the formulas, independently of the engine's backward (a check on it)
ACTIVATIONS = {
    "sigmoid": ("1 / (1 + exp(-z))", "{a} (1 - {a})", lambda z, a, m: a * (1 - a)),
    "tanh": ("tanh(z)", "1 - {a}^2", lambda z, a, m: 1 - a * a),
    "relu": ("max(0, z)", "[{z} > 0]", lambda z, a, m: (z > 0).astype(np.float64)),
    "leaky_relu": (
        "z if z > 0 else slope z",
        "1 if {z} > 0 else {slope}",
        lambda z, a, m: np.where(z > 0, 1.0, m.negative_slope),
    ),
    "gelu": (
        "z Phi(z)",
        "Phi({z}) + {z} phi({z})",
        lambda z, a, m: 0.5 * (1 + special.erf(z / math.sqrt(2))) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
    ),
    "gelu_tanh": (
        "0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))",
        "0.5 (1 + t) + 0.5 {z} (1 - t^2) sqrt(2/pi) (1 + 0.134 {z}^2)",
        lambda z, a, m: _gelu_tanh_slope(z),
    ),
    "silu": ("z sigmoid(z)", "s (1 + {z} (1 - s)), s = sigmoid({z})", lambda z, a, m: _sig(z) * (1 + z * (1 - _sig(z)))),
    "identity": ("z", "1", lambda z, a, m: np.ones_like(z)),
}


def activation_name(module) -> str | None:
    """The ACTIVATIONS key of an activation module (None if it is not one)."""
    if isinstance(module, nn.GELU):
        return "gelu_tanh" if module.approximate == "tanh" else "gelu"
    table = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu",
             nn.SiLU: "silu", nn.Identity: "identity"}  # fmt: skip
    return table.get(type(module))


# loss name -> (the formula, what the loss assumes the network outputs, dL/d(output) written out)
LOSSES = {
    "half_squared": ("1/2 sum_k (y_hat_k - y_k)^2", "a prediction y_hat", "y_hat - y"),
    "mse": ("1/K sum_k (y_hat_k - y_k)^2 over the K outputs (MSELoss)", "a prediction y_hat", "2 (y_hat - y) / K"),
    "bce_logits": (
        "-[y log p + (1 - y) log(1 - p)], p = sigmoid(y_hat) (BCEWithLogitsLoss)",
        "a logit y_hat (the loss applies the sigmoid)",
        "sigmoid(y_hat) - y",
    ),
    "cross_entropy": (
        "-log p_y, p = softmax(y_hat) (CrossEntropyLoss)",
        "logits y_hat (the loss applies the softmax)",
        "softmax(y_hat) - onehot(y)",
    ),
}


class TraceError(ValueError):
    """The model, example or loss cannot be traced; the message says what was expected."""


def _layers(model) -> list[tuple[nn.Linear, nn.Module | None, str]]:
    """[(Linear, its activation module or None, activation name)] with the checks."""
    mods = list(model) if isinstance(model, nn.Sequential) else None
    if not mods:
        raise TraceError(f"the model must be a non-empty nn.Sequential, got {type(model).__name__}")
    out: list = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            out.append([m, None, "identity"])
        elif activation_name(m) is not None and out and out[-1][1] is None:
            out[-1][1], out[-1][2] = m, activation_name(m)
        else:
            raise TraceError(
                f"the step-by-step trace handles Linear layers, each followed by at most one of "
                f"{', '.join(ACTIVATIONS)}; got {type(m).__name__} at position {i}"
            )
    if not isinstance(mods[0], nn.Linear):
        raise TraceError("the model must start with a Linear layer")
    if len(out) > MAX_LINEAR:
        raise TraceError(f"the trace shows up to {MAX_LINEAR} Linear layers, got {len(out)}")
    sizes = [out[0][0].in_features] + [lin.out_features for lin, _, _ in out]
    if max(sizes) > MAX_UNITS:
        raise TraceError(f"the trace shows up to {MAX_UNITS} units a layer, got layers {sizes}")
    return [tuple(e) for e in out]


def _vec(v) -> list:
    return np.asarray(v, dtype=np.float64).tolist()


def trace_network(model, x, y, loss: str = "half_squared", lr: float = 0.1) -> dict:
    """The forward and backward pass of one example ``x`` (n_in,) with target ``y`` through
    ``model`` (float64 parameters), then one SGD step with ``lr``. ``y``: the target vector
    (K numbers) for half_squared/mse, a 0/1 number for bce_logits, a class index for
    cross_entropy. The parameters are left as they were (their .grad holds this example's gradients). Returns a JSON-ready dict: ``sizes``,
    ``activations``, ``loss``, ``x``, ``y``, ``params``, ``steps`` (each ``phase``,
    ``symbol``, ``formula``, ``value``, ``layer``, ``note``), ``grads``, ``updated``,
    ``loss_value``, ``loss_after``, ``engine_vs_formula``. Raises TraceError."""
    layers = _layers(model)
    if loss not in LOSSES:
        raise TraceError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr >= 0):
        raise TraceError(f"lr must be a number >= 0, got {lr!r}")
    for lin, _, _ in layers:
        if lin.weight.data.dtype != np.float64:
            raise TraceError(f"the trace needs a float64 model, got {lin.weight.data.dtype}")
    n_in, k_out = layers[0][0].in_features, layers[-1][0].out_features
    xv = np.asarray(x, dtype=np.float64).reshape(-1)
    if xv.shape != (n_in,) or not np.all(np.isfinite(xv)):
        raise TraceError(f"x must be {n_in} finite numbers (the network's inputs), got {np.asarray(x).tolist()!r}")
    target, y_show = _target(loss, y, k_out)
    if layers[-1][2] != "identity" and loss in ("bce_logits", "cross_entropy"):
        raise TraceError(f"loss {loss} takes logits: the last Linear layer must have no activation, got {layers[-1][2]}")
    L = len(layers)
    steps: list[dict] = []

    def add(phase, symbol, formula, value, layer, note=""):
        steps.append({"phase": phase, "symbol": symbol, "formula": formula, "value": _vec(value),
                      "layer": layer, "note": note})  # fmt: skip

    # forward: the engine's modules one at a time, a batch of one example (1, n)
    xb = xv.reshape(1, n_in)
    a_prev, prev_name = xb, "x"
    zs, acts = [], []
    for k, (lin, act, name) in enumerate(layers, start=1):
        z = lin(a_prev)  # (1, n_k)
        add("forward", f"z{k}", f"W{k} {prev_name} + b{k}", z[0], k,
            f"each unit of layer {k} sums its weighted inputs and its bias")  # fmt: skip
        a = act(z) if act is not None else z
        out_name = "y_hat" if k == L else f"a{k}"
        if act is not None and name != "identity":
            add("forward", out_name, f"{name}(z{k})", a[0], k, f"{name}(z) = {ACTIVATIONS[name][0]}")
        elif k == L:
            add("forward", "y_hat", f"z{k}", a[0], k, "the output layer has no activation")
        else:
            add("forward", out_name, f"z{k}", a[0], k, "identity: no activation")
        zs.append(z)
        acts.append(a)
        a_prev, prev_name = a, out_name
    y_hat = acts[-1]

    # the loss (the engine's loss classes) and dL/dy_hat, or dL/dz_L for the logit losses
    loss_value, grad, p = _loss(loss, y_hat, target, k_out)
    if p is not None:
        add("loss", "p", "sigmoid(y_hat)" if loss == "bce_logits" else "softmax(y_hat)", p[0], L,
            "the probabilities the loss reads from the logits")  # fmt: skip
    add("loss", "L", LOSSES[loss][0], loss_value, L,
        f"y = {y_show}; the loss assumes {LOSSES[loss][1]}")  # fmt: skip

    # backward: from the output back to the input, one module at a time
    add("backward", "dL/dy_hat", LOSSES[loss][2], grad[0], L,
        "how the loss changes when the output moves")  # fmt: skip
    g = grad
    grads: dict[str, list] = {}
    slopes: list[np.ndarray] = [None] * L
    for k in range(L, 0, -1):
        lin, act, name = layers[k - 1]
        if act is not None and name != "identity":
            dpre = act.backward(g)
            # elementwise, so backward of ones is the local slope f'(z) (shown beside the formula)
            slopes[k - 1] = act.backward(np.ones_like(g))
            d_in = "dL/dy_hat" if k == L else f"dL/da{k}"
            a_sym = "y_hat" if k == L else f"a{k}"
            form = ACTIVATIONS[name][1].format(a=a_sym, z=f"z{k}", slope=getattr(act, "negative_slope", ""))
            add("backward", f"{name}'(z{k})", form, slopes[k - 1][0], k, "the slope of the activation at z")
            add("backward", f"delta{k}", f"dL/dz{k} = {d_in} * {name}'(z{k})", dpre[0], k,
                "chain rule: the gradient arriving at the unit times its slope")  # fmt: skip
        else:
            dpre = act.backward(g) if act is not None else g
            slopes[k - 1] = np.ones_like(g)
            add("backward", f"delta{k}", f"dL/dz{k} = " + ("dL/dy_hat" if k == L else f"dL/da{k}"),
                dpre[0], k, "no activation: the gradient passes through unchanged")  # fmt: skip
        lin.weight.grad[...] = 0
        if lin.bias is not None:
            lin.bias.grad[...] = 0
        g = lin.backward(dpre)  # fills dL/dW_k, dL/db_k; returns W_k^T delta_k
        a_sym = "x" if k == 1 else f"a{k - 1}"
        add("backward", f"dL/dW{k}", f"delta{k} {a_sym}^T", lin.weight.grad, k,
            f"the weight from unit j of {a_sym} to unit i of layer {k} gets delta{k}[i] {a_sym}[j]")  # fmt: skip
        grads[f"W{k}"] = _vec(lin.weight.grad)
        if lin.bias is not None:
            add("backward", f"dL/db{k}", f"delta{k}", lin.bias.grad, k, "a bias sees an input of 1")
            grads[f"b{k}"] = _vec(lin.bias.grad)
        if k > 1:
            add("backward", f"dL/da{k - 1}", f"W{k}^T delta{k}", g[0], k - 1,
                f"each unit of layer {k - 1} collects the deltas it feeds, weighted")  # fmt: skip

    check = _formula_check(layers, xb, zs, acts, grad, grads)
    params = {}
    for k, (lin, _, _) in enumerate(layers, start=1):
        params[f"W{k}"] = _vec(lin.weight.data)
        if lin.bias is not None:
            params[f"b{k}"] = _vec(lin.bias.data)
    updated, loss_after = _sgd_step(model, layers, xb, loss, target, k_out, lr)
    for name, new in updated.items():
        add("update", f"new {name}", f"{name} - lr dL/d{name}", new, int(name[1:]), f"lr = {lr:g}")
    add("update", "L", "loss after the step", loss_after, L, f"was {loss_value:.6g}")
    return {
        "sizes": [n_in] + [lin.out_features for lin, _, _ in layers],
        "activations": [name for _, _, name in layers],
        "loss": {"name": loss, "formula": LOSSES[loss][0], "assumes": LOSSES[loss][1]},
        "x": _vec(xv),
        "y": y_show,
        "lr": float(lr),
        "params": params,
        "steps": steps,
        "grads": grads,
        "updated": updated,
        "loss_value": float(loss_value),
        "loss_after": float(loss_after),
        "engine_vs_formula": check,
    }


def _target(loss: str, y, k_out: int):
    """(the target array for the engine's loss, the target as shown)."""
    if loss == "cross_entropy":
        if isinstance(y, list | tuple | np.ndarray):
            y = np.asarray(y).reshape(-1)[0] if np.size(y) == 1 else y
        if isinstance(y, bool) or not isinstance(y, int | np.integer) or not 0 <= int(y) < k_out:
            raise TraceError(f"y must be a class index 0..{k_out - 1}, got {y!r}")
        return np.array([int(y)]), int(y)
    yv = np.asarray(y, dtype=np.float64).reshape(-1)
    if yv.shape != (k_out,) or not np.all(np.isfinite(yv)):
        raise TraceError(f"y must be {k_out} finite numbers (the network's outputs), got {y!r}")
    if loss == "bce_logits" and not np.all((yv >= 0) & (yv <= 1)):
        raise TraceError(f"y must be in [0, 1] for bce_logits, got {yv.tolist()}")
    return yv.reshape(1, k_out), yv.tolist() if k_out > 1 else float(yv[0])


def _loss(loss: str, y_hat, target, k_out: int):
    """(L, dL/dy_hat (1, K), probabilities or None), from the engine's loss classes."""
    if loss in ("half_squared", "mse"):
        fn = losses.MSELoss()  # mean over the K outputs of the one example
        value = fn(y_hat, target)
        grad = fn.backward()
        if loss == "half_squared":  # 1/2 sum = K/2 mean
            return 0.5 * k_out * value, 0.5 * k_out * grad, None
        return value, grad, None
    if loss == "bce_logits":
        fn = losses.BCEWithLogitsLoss()
        value = fn(y_hat, target)
        return value, fn.backward(), _sig(y_hat)
    fn = losses.CrossEntropyLoss()
    value = fn(y_hat, target)
    e = np.exp(y_hat - y_hat.max())
    return value, fn.backward(), e / e.sum()


def _formula_check(layers, xb, zs, acts, grad, grads) -> float:
    """Largest difference between the engine's gradients and the formulas, in NumPy."""
    worst = 0.0
    delta = None
    for k in range(len(layers), 0, -1):
        lin, act, name = layers[k - 1]
        up = grad if k == len(layers) else delta @ layers[k][0].weight.data  # W_{k+1}^T delta_{k+1}
        delta = up * ACTIVATIONS[name][2](zs[k - 1], acts[k - 1], act)
        a_prev = xb if k == 1 else acts[k - 2]
        worst = max(worst, float(np.max(np.abs(delta.T @ a_prev - np.asarray(grads[f"W{k}"])))))
        if f"b{k}" in grads:
            worst = max(worst, float(np.max(np.abs(delta[0] - np.asarray(grads[f"b{k}"])))))
    return worst


def _sgd_step(model, layers, xb, loss, target, k_out, lr):
    """One step of optim.SGD from the gradients just computed; the model is restored after."""
    params = [p for lin, _, _ in layers for p in (lin.weight, lin.bias) if p is not None]
    saved = [p.data.copy() for p in params]
    optim.SGD(params, lr=lr).step()
    updated = {}
    for k, (lin, _, _) in enumerate(layers, start=1):
        updated[f"W{k}"] = _vec(lin.weight.data)
        if lin.bias is not None:
            updated[f"b{k}"] = _vec(lin.bias.data)
    loss_after = _loss(loss, model(xb), target, k_out)[0]
    for p, d in zip(params, saved, strict=True):
        p.data[...] = d
    return updated, loss_after


def torch_check(model, x, y, loss: str = "half_squared") -> dict:
    """The same example through the PyTorch twin (``twin.to_torch`` + autograd):
    ``{"available": True, "max_abs_diff": ..., "diffs": {"output": ..., "loss": ...,
    "W1": ...}}``, or ``{"available": False, "reason": ...}`` without torch."""
    try:
        import torch

        from twinnet import twin
    except ImportError:
        return {"available": False, "reason": "PyTorch is not installed (pip install 'twinnet[torch]')"}
    t = trace_network(model, x, y, loss=loss, lr=0.0)
    layers = _layers(model)
    tm = twin.to_torch(model)
    xt = torch.tensor(np.asarray(t["x"]).reshape(1, -1), dtype=torch.float64)
    out = tm(xt)
    if loss == "cross_entropy":
        lt = torch.nn.functional.cross_entropy(out, torch.tensor([int(t["y"])]))
    else:
        yt = torch.tensor(np.asarray(t["y"], dtype=np.float64).reshape(1, -1))
        if loss == "half_squared":
            lt = 0.5 * ((out - yt) ** 2).sum()
        elif loss == "mse":
            lt = torch.nn.functional.mse_loss(out, yt)
        else:
            lt = torch.nn.functional.binary_cross_entropy_with_logits(out, yt)
    lt.backward()
    named = dict(tm.named_parameters())
    index = {id(m): i for i, m in enumerate(model)}
    diffs = {
        "output": float(np.max(np.abs(out.detach().numpy()[0] - np.asarray(t["steps"][_last_forward(t)]["value"])))),
        "loss": abs(float(lt.item()) - t["loss_value"]),
    }
    for k, (lin, _, _) in enumerate(layers, start=1):
        i = index[id(lin)]
        diffs[f"W{k}"] = float(np.max(np.abs(named[f"{i}.weight"].grad.numpy() - np.asarray(t["grads"][f"W{k}"]))))
        if lin.bias is not None:
            diffs[f"b{k}"] = float(np.max(np.abs(named[f"{i}.bias"].grad.numpy() - np.asarray(t["grads"][f"b{k}"]))))
    return {"available": True, "max_abs_diff": max(diffs.values()), "diffs": diffs,
            "torch_version": torch.__version__}  # fmt: skip


def _last_forward(t: dict) -> int:
    return max(i for i, s in enumerate(t["steps"]) if s["phase"] == "forward")
