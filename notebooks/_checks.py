"""Checks for notebooks/exercises.ipynb: each compares your function with twinnet's own
implementation and with numbers worked out by hand, then prints "right" or
"wrong: <hint>".

A wrong answer never raises (the notebook keeps running), but every result is
recorded in ``RESULTS`` (exercise key -> {"ok": bool, "message": str});
``summary()`` prints them as one JSON line. With the environment variable
``TWINNET_STRICT_CHECKS=1`` a wrong answer raises ``AssertionError`` instead, which
is how the tests run the solutions notebook.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from twinnet import losses, nn
from twinnet.check import relative_error

# exercise key -> {"ok": bool, "message": str}, in the order the checks ran
RESULTS: dict[str, dict] = {}

EXERCISES = (
    "01_affine",
    "02_relu",
    "03_two_layer",
    "04_softmax_cross_entropy",
    "05_affine_backward",
    "06_numerical_gradient",
    "07_init_scales",
    "08_dropout",
    "09_layernorm",
    "10_debugging",
)

CAUSES = ("dead_relu", "vanishing_gradients", "healthy")


class Wrong(Exception):
    """Raised inside a check with the hint to show the learner."""


def _strict() -> bool:
    return os.environ.get("TWINNET_STRICT_CHECKS", "") not in ("", "0")


def _record(key: str, run) -> bool:
    """Run one check; print and record "right" or "wrong: <hint>"."""
    try:
        run()
    except Wrong as err:
        ok, message = False, f"wrong: {err}"
    except NotImplementedError:
        ok, message = False, "wrong: not implemented yet: replace `raise NotImplementedError` with your code"
    except Exception as err:  # the learner's code crashed: say how, keep the notebook going
        ok, message = False, f"wrong: your code raised {type(err).__name__}: {err}"
    else:
        ok, message = True, "right"
    RESULTS[key] = {"ok": ok, "message": message}
    print(f"exercise {key}: {message}")
    if not ok and _strict():
        raise AssertionError(f"exercise {key}: {message}")
    return ok


def summary() -> dict:
    """Print every recorded result as one JSON line (prefix ``RESULTS``) and return them."""
    right = sum(r["ok"] for r in RESULTS.values())
    print(f"{right} of {len(EXERCISES)} exercises right")
    print("RESULTS " + json.dumps(RESULTS, sort_keys=True))
    return RESULTS


# -- helpers -----------------------------------------------------------------------------
def _array(value, what: str) -> np.ndarray:
    if value is None:
        raise Wrong(f"{what} returned None: write the function body and return the result")
    if isinstance(value, list | tuple):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise Wrong(f"{what} should return a numpy array, got {type(value).__name__}")
    return value


def _close(got: np.ndarray, want: np.ndarray, tol: float = 1e-10) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    return got.shape == want.shape and bool(np.all(np.isfinite(got))) and relative_error(got, want) <= tol


def _same(
    got: np.ndarray, want: np.ndarray, what: str, hint: str = "", tol: float = 1e-10, mistakes=()
) -> None:
    """Pass when ``got`` equals ``want`` (relative error <= tol); otherwise raise Wrong with
    the hint of the first known mistake ``(what that mistake gives, hint)`` that ``got``
    equals, or a general hint."""
    if _close(got, want, tol):
        return
    for candidate, mistake_hint in mistakes:
        if _close(got, candidate, tol):
            raise Wrong(mistake_hint)
    if got.shape != want.shape:
        raise Wrong(f"{what} has shape {got.shape}, expected {want.shape}. {hint}".strip())
    if not np.all(np.isfinite(got)):
        raise Wrong(f"{what} contains NaN or inf. {hint}".strip())
    err = relative_error(got, want)
    raise Wrong(f"{what} differs from the reference (relative error {err:.1e}). {hint}".strip())


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _linear(w: np.ndarray, b: np.ndarray) -> nn.Linear:
    layer = nn.Linear(w.shape[1], w.shape[0], dtype=np.float64)
    layer.weight.data[...] = w
    layer.bias.data[...] = b
    return layer


# -- 1. one affine layer --------------------------------------------------------------------
def check_affine(affine_forward) -> bool:
    """``affine_forward(x, W, b)`` must equal ``nn.Linear``: y = x W^T + b."""

    def run():
        # by hand: x = [1, 2], W = [[1, 0], [0, 1], [1, 1]], b = [0.5, -0.5, 0] -> [1.5, 1.5, 3]
        x = np.array([[1.0, 2.0]])
        w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        b = np.array([0.5, -0.5, 0.0])
        no_bias = "the output equals x @ W.T: add the bias b"
        got = _array(affine_forward(x, w, b), "affine_forward")
        if got.shape in ((1, 2), (3, 1), (2,), (3,)):
            raise Wrong(f"output shape {got.shape}: W is (out, in) = (3, 2), so use x @ W.T (result (1, 3))")
        _same(got, np.array([[1.5, 1.5, 3.0]]), "affine_forward on the hand-worked example",
              "Expected [[1.5, 1.5, 3.0]] = x @ W.T + b.", mistakes=[(x @ w.T, no_bias)])
        rng = _rng(1)
        x, w, b = rng.normal(size=(5, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
        got = _array(affine_forward(x, w, b), "affine_forward")
        _same(got, _linear(w, b)(x), "affine_forward on a (5, 4) batch",
              "Compare with nn.Linear: y = x @ W.T + b.", mistakes=[(x @ w.T, no_bias)])

    return _record("01_affine", run)


# -- 2. ReLU and its derivative ---------------------------------------------------------------
def check_relu(relu, relu_grad) -> bool:
    """``relu(x)`` and ``relu_grad(x)`` (dy/dx elementwise, 0 at x = 0, as in PyTorch)."""

    def run():
        x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
        x_before = x.copy()
        y = _array(relu(x), "relu")
        if not np.array_equal(x, x_before):
            raise Wrong("relu changed its input in place; return a new array (np.maximum(x, 0))")
        _same(y, np.array([[0.0, 0.0, 0.0, 0.5, 3.0]]), "relu([-2, -0.5, 0, 0.5, 3])",
              "Expected [0, 0, 0, 0.5, 3].")
        g = _array(relu_grad(x), "relu_grad")
        _same(g, np.array([[0.0, 0.0, 0.0, 1.0, 1.0]]), "relu_grad([-2, -0.5, 0, 0.5, 3])",
              "Expected [0, 0, 0, 1, 1]: 1 where x > 0, else 0.",
              mistakes=[(np.array([[0.0, 0.0, 1.0, 1.0, 1.0]]),
                         "the derivative at exactly x = 0 must be 0 (PyTorch's convention, and twinnet's)")])
        # against nn.ReLU on random data: forward, and backward with dL/dy = 1
        x = _rng(2).normal(size=(6, 7))
        layer = nn.ReLU()
        _same(_array(relu(x), "relu"), layer(x), "relu on a random batch")
        _same(_array(relu_grad(x), "relu_grad"), layer.backward(np.ones_like(x)),
              "relu_grad on a random batch", "Compare with nn.ReLU().backward(ones).")

    return _record("02_relu", run)


# -- 3. a two-layer forward pass -----------------------------------------------------------
def check_two_layer(two_layer_forward) -> bool:
    """``two_layer_forward(x, W1, b1, W2, b2)`` = Linear -> ReLU -> Linear."""

    def run():
        rng = _rng(3)
        x = rng.normal(size=(8, 4))
        w1, b1 = rng.normal(size=(6, 4)), rng.normal(size=6)
        w2, b2 = rng.normal(size=(3, 6)), rng.normal(size=3)
        got = _array(two_layer_forward(x, w1, b1, w2, b2), "two_layer_forward")
        model = nn.Sequential(_linear(w1, b1), nn.ReLU(), _linear(w2, b2))
        want = model(x)
        _same(got, want, "two_layer_forward",
              "Expected max(x @ W1.T + b1, 0) @ W2.T + b2, as nn.Sequential(Linear, ReLU, Linear).",
              mistakes=[((x @ w1.T + b1) @ w2.T + b2, "no ReLU between the layers: h = max(x @ W1.T + b1, 0)"),
                        (np.maximum(want, 0),
                         "the ReLU belongs after the first layer only; the output layer gives raw logits")])

    return _record("03_two_layer", run)


# -- 4. softmax cross-entropy --------------------------------------------------------------
def check_softmax_cross_entropy(softmax_cross_entropy) -> bool:
    """``softmax_cross_entropy(logits, y)``: the mean over the batch, stable for big logits."""

    def run():
        # by hand: logits [0, 0] -> p = [0.5, 0.5], L = log 2
        got = softmax_cross_entropy(np.array([[0.0, 0.0]]), np.array([1]))
        if got is None:
            raise Wrong("softmax_cross_entropy returned None")
        if not math.isclose(float(got), math.log(2), rel_tol=1e-9):
            raise Wrong(f"for logits [[0, 0]] and label 1 the loss is log 2 = 0.6931, got {float(got):.6g}")
        rng = _rng(4)
        logits, y = rng.normal(size=(10, 5)) * 3, rng.integers(0, 5, size=10)
        want = losses.CrossEntropyLoss()(logits, y)
        got = float(softmax_cross_entropy(logits, y))
        if math.isclose(got, want * 10, rel_tol=1e-9):
            raise Wrong("that is the sum over the batch; take the mean (PyTorch's default)")
        if not math.isclose(got, want, rel_tol=1e-9):
            raise Wrong(
                f"loss {got:.6g}, expected {want:.6g} (losses.CrossEntropyLoss): "
                "mean over the batch of -log softmax(logits)[label]"
            )
        big = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 1000.0]])
        with np.errstate(all="ignore"):
            got = float(softmax_cross_entropy(big, np.array([0, 2])))
        want = losses.CrossEntropyLoss()(big, np.array([0, 2]))
        if not math.isfinite(got):
            raise Wrong("NaN or inf for logits of 1000: subtract each row's max before exp (log-sum-exp)")
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            raise Wrong(f"for logits of +-1000 the loss is {want:.6g}, got {got:.6g}: use log-sum-exp")

    return _record("04_softmax_cross_entropy", run)


# -- 5. the gradient of an affine layer ----------------------------------------------------
def check_affine_backward(affine_backward) -> bool:
    """``affine_backward(x, W, grad_out) -> (dx, dW, db)`` must equal ``nn.Linear.backward``."""

    def run():
        rng = _rng(5)
        x, w, b = rng.normal(size=(7, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
        g = rng.normal(size=(7, 3))  # a random upstream gradient, not just ones
        out = affine_backward(x, w, g)
        if out is None:
            raise Wrong("affine_backward returned None; return (dx, dW, db)")
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise Wrong("return a tuple of three arrays (dx, dW, db)")
        dx, dw, db = (_array(a, "affine_backward") for a in out)
        layer = _linear(w, b)
        layer(x)
        want_dx = layer.backward(g)
        if dw.shape == (4, 3):
            raise Wrong("dW has shape (in, out); it must match W, (out, in): dW = grad_out.T @ x")
        _same(dw, layer.weight.grad, "dW", "dL/dW = grad_out.T @ x, shape (out, in).")
        _same(db, layer.bias.grad, "db", "dL/db = grad_out.sum(axis=0).",
              mistakes=[(g.mean(axis=0), "db is the SUM of grad_out over the batch, not the mean")])
        _same(dx, want_dx, "dx", "dL/dx = grad_out @ W, shape (B, in).")

    return _record("05_affine_backward", run)


# -- 6. a finite-difference gradient check ------------------------------------------------
def check_numerical_gradient(numerical_gradient) -> bool:
    """``numerical_gradient(f, x, eps)``: centred differences, x left unchanged."""

    def run():
        x = _rng(6).normal(size=(3, 4))
        x_before = x.copy()

        def f(v):
            return float(np.sum(np.sin(v) * v**2))

        num = _array(numerical_gradient(f, x, 1e-5), "numerical_gradient")
        if not np.array_equal(x, x_before):
            raise Wrong("x was changed: restore each entry after nudging it (x[i] = old)")
        exact = np.cos(x) * x**2 + 2 * x * np.sin(x)
        if num.shape != x.shape:
            raise Wrong(f"the gradient must have x's shape {x.shape}, got {num.shape}")
        err = relative_error(num, exact)
        if err > 1e-8:
            one_sided = 1e-9 < err < 1e-4
            raise Wrong(
                f"relative error {err:.1e} against the exact gradient"
                + ("; use the centred difference (f(x+eps) - f(x-eps)) / (2 eps), error O(eps^2)"
                   if one_sided else "; nudge one entry at a time by +-eps")
            )
        # now check a real layer: dL/dW of nn.Linear with an MSE loss
        rng = _rng(7)
        layer = nn.Linear(4, 2, dtype=np.float64, rng=rng)
        xb, t = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
        loss_fn = losses.MSELoss()

        def loss_of_w(w):
            layer.weight.data[...] = w
            return loss_fn(layer(xb), t)

        w0 = layer.weight.data.copy()
        num = _array(numerical_gradient(loss_of_w, w0.copy(), 1e-6), "numerical_gradient")
        layer.weight.data[...] = w0
        layer.zero_grad()
        loss_fn(layer(xb), t)
        layer.backward(loss_fn.backward())
        err = relative_error(layer.weight.grad, num)
        if err > 1e-7:
            raise Wrong(f"on nn.Linear's weight the relative error is {err:.1e} (should be < 1e-7)")

    return _record("06_numerical_gradient", run)


# -- 7. Xavier vs He --------------------------------------------------------------------------
def check_init_scales(xavier_std, he_std) -> bool:
    """Standard deviations of Xavier-normal and He-normal (ReLU) weights."""

    def run():
        for fan_in, fan_out in ((256, 128), (784, 512), (10, 10)):
            xs, hs = xavier_std(fan_in, fan_out), he_std(fan_in)
            if xs is None or hs is None:
                raise Wrong("xavier_std or he_std returned None")
            want_x, want_h = math.sqrt(2 / (fan_in + fan_out)), math.sqrt(2 / fan_in)
            if math.isclose(float(xs), want_x**2, rel_tol=1e-9) or math.isclose(float(hs), want_h**2, rel_tol=1e-9):
                raise Wrong("that is the variance; return the standard deviation (its square root)")
            if not math.isclose(float(xs), want_x, rel_tol=1e-9):
                raise Wrong(f"xavier_std({fan_in}, {fan_out}) = {float(xs):.5g}, expected sqrt(2 / (fan_in + fan_out)) = {want_x:.5g}")
            if not math.isclose(float(hs), want_h, rel_tol=1e-9):
                raise Wrong(f"he_std({fan_in}) = {float(hs):.5g}, expected sqrt(2 / fan_in) = {want_h:.5g} (ReLU halves the variance)")
        # and twinnet's initialisers draw with those scales
        w = nn.init.xavier_normal((512, 784), rng=_rng(8), dtype=np.float64)
        if not math.isclose(w.std(), float(xavier_std(784, 512)), rel_tol=0.02):
            raise Wrong("xavier_std disagrees with nn.init.xavier_normal's spread")
        w = nn.init.kaiming_normal((512, 784), nonlinearity="relu", rng=_rng(9), dtype=np.float64)
        if not math.isclose(w.std(), float(he_std(784)), rel_tol=0.02):
            raise Wrong("he_std disagrees with nn.init.kaiming_normal(nonlinearity='relu')")

    return _record("07_init_scales", run)


# -- 8. dropout with inverted scaling -----------------------------------------------------
def check_dropout(dropout_forward) -> bool:
    """``dropout_forward(x, p, rng) -> (out, mask)``: zero with probability p, scale by 1/(1-p)."""

    def run():
        x = np.ones((400, 500))
        p = 0.3
        res = dropout_forward(x, p, _rng(10))
        if res is None:
            raise Wrong("dropout_forward returned None; return (out, mask)")
        if not isinstance(res, tuple | list) or len(res) != 2:
            raise Wrong("return a tuple (out, mask)")
        out, mask = (_array(a, "dropout_forward") for a in res)
        if out.shape != x.shape or mask.shape != x.shape:
            raise Wrong(f"out and mask must have x's shape {x.shape}")
        values = set(np.unique(np.round(mask, 12)).tolist())
        keep_scale = round(1 / (1 - p), 12)
        if values <= {0.0, 1.0}:
            raise Wrong("the mask holds 0/1: scale the kept units by 1/(1-p) so E[out] = x (inverted dropout)")
        if not values <= {0.0, keep_scale}:
            raise Wrong(f"mask entries must be 0 or 1/(1-p) = {1 / (1 - p):.4f}, got values like {sorted(values)[:4]}")
        dropped = float(np.mean(mask == 0))
        if abs(dropped - p) > 0.01:
            if abs(dropped - (1 - p)) < 0.01:
                raise Wrong(f"you drop {dropped:.2f} of the units: p is the probability of DROPPING, not keeping")
            raise Wrong(f"you drop {dropped:.3f} of the units, expected about p = {p}")
        _same(out, x * mask, "out", "out = x * mask.")
        if abs(out.mean() - 1.0) > 0.02:
            raise Wrong(f"the mean output is {out.mean():.3f}; inverted dropout keeps it at the input's mean (1)")
        # nn.Dropout with the same mask gives the same output and gradient
        layer = nn.Dropout(p)
        layer.fix_mask(mask != 0)
        _same(out, layer(x), "out vs nn.Dropout with your mask")
        res0 = dropout_forward(x, 0.0, _rng(11))
        out0 = _array(res0[0], "dropout_forward") if isinstance(res0, tuple | list) else None
        if out0 is None or not np.array_equal(out0, x):
            raise Wrong("with p = 0 dropout must return x unchanged")

    return _record("08_dropout", run)


# -- 9. LayerNorm for one example ---------------------------------------------------------
def check_layernorm(layernorm_one) -> bool:
    """``layernorm_one(x, gamma, beta, eps)`` for a 1-D x (D,): as ``nn.LayerNorm``."""

    def run():
        x = np.array([1.0, 2.0, 3.0])
        one, zero = np.ones(3), np.zeros(3)
        got = _array(layernorm_one(x, one, zero, 1e-5), "layernorm_one")
        # by hand: mean 2, biased variance 2/3, so x_hat = (x - 2) / sqrt(2/3 + 1e-5)
        want = (x - 2.0) / math.sqrt(2.0 / 3.0 + 1e-5)
        unbiased = "use the biased variance (divide by D, np.var's default), as LayerNorm does, not D - 1"
        _same(got, want, "layernorm_one([1, 2, 3])", "Expected (x - 2) / sqrt(2/3 + 1e-5) = [-1.2247, 0, 1.2247].",
              mistakes=[((x - 2.0) / math.sqrt(1.0 + 1e-5), unbiased),
                        ((x - 2.0) / 1.0, unbiased),
                        ((x - 2.0) / math.sqrt(2.0 / 3.0), "add eps inside the square root: sqrt(var + eps)"),
                        (x - 2.0, "divide by the standard deviation sqrt(var + eps)")])
        rng = _rng(12)
        x, g, b = rng.normal(size=8) * 4 + 1, rng.normal(size=8), rng.normal(size=8)
        layer = nn.LayerNorm(8, dtype=np.float64)
        layer.weight.data[...] = g
        layer.bias.data[...] = b
        got = _array(layernorm_one(x, g, b, 1e-5), "layernorm_one")
        want = layer(x[None, :])[0]
        _same(got, want, "layernorm_one with gamma and beta", "y = gamma * x_hat + beta.")

    return _record("09_layernorm", run)


# -- 10. a debugging checklist on broken runs ----------------------------------------------
def probe_batch(seed: int = 0, n: int = 512):
    """A fixed probe batch: 2-D points of three interleaved spirals (float32) and labels."""
    from twinnet.data import synthetic

    x, y = synthetic.spirals(np.random.default_rng(seed), n_samples=n)
    return np.asarray(x, dtype=np.float32), np.asarray(y)


def relu_net(seed: int, dead_linear: str | None = None, width: int = 64, depth: int = 4) -> nn.Sequential:
    """A He-initialised ReLU MLP 2 -> width x depth -> 3; ``dead_linear`` names a Linear
    layer whose bias is set to -30, which switches every unit after it off."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    d = 2
    for _ in range(depth):
        layers += [nn.Linear(d, width, init="kaiming_normal", rng=rng), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, 3, rng=rng))
    model = nn.Sequential(*layers)
    if dead_linear is not None:
        dict(model.named_modules())[dead_linear].bias.data[:] = -30.0
    return model


def sigmoid_net(seed: int, depth: int = 10, width: int = 64) -> nn.Sequential:
    """A deep sigmoid MLP with PyTorch's default init: its first layers get almost no gradient."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    d = 2
    for _ in range(depth):
        layers += [nn.Linear(d, width, rng=rng), nn.Sigmoid()]
        d = width
    layers.append(nn.Linear(d, 3, rng=rng))
    return nn.Sequential(*layers)


def broken_run():
    """The broken network of exercise 10, with its loss and probe batch."""
    return relu_net(seed=10, dead_linear="4"), losses.CrossEntropyLoss(), probe_batch()


def debugging_cases():
    """(model, expected cause, accepted layer names) for the check of exercise 10."""
    return [
        (relu_net(10, dead_linear="4"), "dead_relu", {"4", "5"}),
        (relu_net(11, dead_linear="0"), "dead_relu", {"0", "1"}),
        (relu_net(12, dead_linear="2"), "dead_relu", {"2", "3"}),
        (sigmoid_net(13), "vanishing_gradients", None),
        (relu_net(14), "healthy", None),
        (relu_net(15, depth=3), "healthy", None),
    ]


def check_debugging(diagnose) -> bool:
    """``diagnose(model, loss_fn, x, y) -> {"cause": ..., "layer": ...}`` on several runs."""

    def run():
        x, y = probe_batch()
        for i, (model, cause, layers) in enumerate(debugging_cases(), 1):
            answer = diagnose(model, losses.CrossEntropyLoss(), x, y)
            if answer is None:
                raise Wrong("diagnose returned None; return {'cause': ..., 'layer': ...}")
            if not isinstance(answer, dict) or "cause" not in answer:
                raise Wrong("return a dict with keys 'cause' and 'layer'")
            if answer["cause"] not in CAUSES:
                raise Wrong(f"cause must be one of {CAUSES}, got {answer['cause']!r}")
            if answer["cause"] != cause:
                hint = {
                    "dead_relu": "look at dead_fraction of each ReLU layer in collect_stats(...).rows",
                    "vanishing_gradients": "compare weight_grad_norm of the first and the last Linear layer",
                    "healthy": "a healthy network has no dead layer and first/last gradient ratio above 1e-3",
                }[cause]
                raise Wrong(f"case {i}: you said {answer['cause']!r}, but it is not: {hint}")
            if layers is not None and str(answer.get("layer")) not in layers:
                raise Wrong(
                    f"case {i}: right cause, but layer {answer.get('layer')!r} is not where it starts: "
                    "name the FIRST ReLU layer whose units are all dead (or the Linear just before it)"
                )

    return _record("10_debugging", run)
