"""Random models from every layer type, each checked against its PyTorch twin.

Hypothesis draws the architecture (widths; blocks of Linear or SwiGLU, then an optional
norm, activation and dropout), the mode (train/eval), the loss, the batch size (1 where
the layers allow it) and a seed for all the numbers. Outputs, loss, every parameter
gradient and the input gradient must agree to max_rel < 1e-10 in float64 and < 1e-5 in
float32 (relative to each tensor's scale, see twinnet.twin.compare).

Degenerate layers, whose exact gradient is zero or nearly so and where both sides can
only return rounding noise amplified by up to 1/sqrt(eps), are not drawn: LayerNorm
over 1 or 2 features (its output is its bias, or +-1), BatchNorm in training mode on
a batch of 2 (its output is +-1 per feature), and bottlenecks of width 1.

float32 also gets a second chance, because some random networks are ill-conditioned in
float32 (about 1 draw in 150: cancellations, e.g. BatchNorm over values that barely
differ, where torch, which accumulates float32 statistics in float64, is a few times
more accurate): when the twin differs by more than 1e-5, every twinnet float32 result
must be within 3e-4 (of its kind's scale) of the float64 answer, or at most 10x as far
from it as torch's own float32 result. A 0.1% error in a backward fails both checks.

The examples are derandomized (the same draws on every run), so CI cannot flake on one
of the rare ill-conditioned draws that remain: offline runs of 5000 random draws each
found 0-1 in 5000 float64 draws above 1e-10 and 1 in 5000 float32 draws failing both
float32 checks, every one a gradient that is zero in exact arithmetic (a bias right
before BatchNorm) or amplified by a BatchNorm over nearly constant features.
"""

from __future__ import annotations

import copy
import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install 'twinnet[torch]'")

from twinnet import losses, nn, twin  # noqa: E402

compare_mod = importlib.import_module("twinnet.twin.compare")
pytestmark = pytest.mark.torch

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": nn.SiLU,
    "softmax": nn.Softmax,
    "identity": nn.Identity,
}
LOSSES = ("mse", "bce", "bce_logits", "bce_logits_pos_weight", "cross_entropy", "ce_smoothing")
WIDTHS = st.integers(2, 6)


@st.composite
def cases(draw, dtype):
    """(model, loss_fn, x, y, description) for one random network."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    width = n_in = draw(WIDTHS)
    layers: list[nn.Module] = []
    desc = [f"in={width}"]
    has_batchnorm = False
    for _ in range(draw(st.integers(1, 3))):
        out, bias = draw(WIDTHS), draw(st.booleans())
        if draw(st.booleans()):
            layers.append(nn.Linear(width, out, bias=bias, dtype=dtype, rng=rng))
            desc.append(f"Linear({width},{out},bias={bias})")
        else:
            hidden = draw(WIDTHS)
            layers.append(nn.SwiGLU(width, hidden, out, bias=bias, dtype=dtype, rng=rng))
            desc.append(f"SwiGLU({width},{hidden},{out},bias={bias})")
        width = out
        norm = draw(st.sampled_from([None, "batch", "layer"] if width > 2 else [None, "batch"]))
        if norm == "batch":
            momentum = draw(st.sampled_from([0.1, 0.5]))
            layers.append(nn.BatchNorm1d(width, momentum=momentum, dtype=dtype))
            has_batchnorm = True
        elif norm == "layer":
            layers.append(nn.LayerNorm(width, dtype=dtype))
        activation = draw(st.sampled_from(sorted(ACTIVATIONS)))
        layers.append(ACTIVATIONS[activation]())
        p = draw(st.sampled_from([0.0, 0.0, 0.2, 0.5]))
        if p > 0:
            layers.append(nn.Dropout(p, rng=rng.integers(2**32)))
        desc.append(f"{norm or '-'} {activation}{f' dropout {p}' if p else ''}")

    loss_name = draw(st.sampled_from(LOSSES))
    if loss_name == "bce":
        layers.append(nn.Sigmoid())  # BCELoss takes probabilities
    model = nn.Sequential(*layers)
    # random values everywhere, so the norms' affine parameters and running stats matter
    for _, prm in model.named_parameters():
        prm.data[...] = rng.normal(size=prm.shape) * 0.7
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm1d):
            mod.running_mean[...] = rng.normal(size=mod.num_features)
            mod.running_var[...] = rng.uniform(0.3, 2.0, size=mod.num_features)
    training = draw(st.booleans())
    model.train(training)
    batch = draw(st.integers(3 if (training and has_batchnorm) else 1, 6))

    x = rng.normal(size=(batch, n_in)).astype(dtype)
    if loss_name == "mse":
        loss_fn, y = losses.MSELoss(), rng.normal(size=(batch, width))
    elif loss_name == "bce":
        loss_fn, y = losses.BCELoss(), rng.integers(0, 2, (batch, width)).astype(np.float64)
    elif loss_name == "bce_logits":
        loss_fn, y = losses.BCEWithLogitsLoss(), rng.uniform(size=(batch, width))  # soft labels
    elif loss_name == "bce_logits_pos_weight":
        loss_fn = losses.BCEWithLogitsLoss(pos_weight=rng.uniform(0.2, 3.0, size=width))
        y = rng.integers(0, 2, (batch, width)).astype(np.float64)
    else:
        smoothing = 0.15 if loss_name == "ce_smoothing" else 0.0
        loss_fn = losses.CrossEntropyLoss(label_smoothing=smoothing)
        y = rng.integers(0, width, batch)
    description = (
        f"{' | '.join(desc)} | loss={loss_name} | batch={batch} | "
        f"{'train' if training else 'eval'} | seed={seed}"
    )
    return model, loss_fn, x, y, description


def forward_backward_all(model, loss_fn, x, y) -> tuple[dict, dict, dict]:
    """(twinnet float32, torch float32, torch float64) results: outputs, loss, gradients.

    The torch runs reuse the dropout masks twinnet drew; float64 is the reference answer.
    """
    ours, lf = copy.deepcopy((model, loss_fn))
    ours.zero_grad()
    out = ours(x)
    loss = lf(out, y)
    grad_x = ours.backward(lf.backward())
    results = [
        {"output": out, "loss": loss, "input": grad_x}
        | {n: p.grad for n, p in ours.named_parameters()}
    ]
    for dtype in (torch.float32, torch.float64):
        theirs = compare_mod._share_dropout_masks(ours, twin.to_torch(ours)).to(dtype)
        xt = torch.from_numpy(x).to(dtype).requires_grad_(True)
        o = theirs(xt)
        loss_t = twin.loss_to_torch(loss_fn, dtype)(
            o, twin.target_to_torch(loss_fn, y, o.shape, dtype)
        )
        loss_t.backward()
        grads = {n: p.grad for n, p in theirs.named_parameters()}
        results.append({"output": o, "loss": loss_t, "input": xt.grad} | grads)
    return tuple(
        {
            k: np.asarray(v.detach().numpy() if torch.is_tensor(v) else v, np.float64)
            for k, v in r.items()
        }
        for r in results
    )


def float32_accuracy_problems(case) -> list[str]:
    """Quantities where twinnet's float32 result is off the float64 answer by more than
    3e-4 of the scale of its kind AND by more than 10x torch's own float32 error."""
    ours, theirs, exact = forward_backward_all(*case[:4])
    grad_scale = max(np.abs(v).max() for k, v in exact.items() if k not in ("output", "loss"))
    problems = []
    for k in ours:
        scale = np.abs(exact[k]).max() if k in ("output", "loss") else grad_scale
        err_ours = np.abs(ours[k] - exact[k]).max()
        err_torch = np.abs(theirs[k] - exact[k]).max()
        if not err_ours <= max(3e-4 * scale, 10 * err_torch):
            problems.append(f"{k}: twinnet off by {err_ours:.2e}, torch by {err_torch:.2e}")
    return problems


def check(case, limit, second_chance=False):
    model, loss_fn, x, y, description = case
    report = twin.compare(model, loss_fn, x, y)
    n_rows = 3 + len(model.parameters()) + len(list(model.named_buffers()))
    assert len(report.rows) == n_rows
    if report.max_rel < limit:
        return
    if second_chance:
        problems = float32_accuracy_problems(case)
        assert not problems, f"{description}\n{report}\nfloat32 accuracy: {problems}"
        return
    raise AssertionError(f"{description}\n{report}")


@settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(cases(np.float64))
def test_random_models_agree_float64(case):
    check(case, 1e-10)


@settings(
    max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(cases(np.float32))
def test_random_models_agree_float32(case):
    check(case, 1e-5, second_chance=True)


def test_second_chance_still_catches_a_broken_backward(monkeypatch):
    """The float32 fallback is not a free pass: a 0.1% error in a backward fails it."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(4, 6, dtype=np.float32, rng=rng),
        nn.Tanh(),
        nn.Linear(6, 3, dtype=np.float32, rng=rng),
    )
    case = (
        model,
        losses.CrossEntropyLoss(),
        rng.normal(size=(5, 4)).astype(np.float32),
        rng.integers(0, 3, 5),
        "",
    )
    assert float32_accuracy_problems(case) == []
    right = nn.Tanh.backward
    monkeypatch.setattr(nn.Tanh, "backward", lambda self, g: right(self, g) * np.float32(1.001))
    problems = float32_accuracy_problems(case)
    assert any(w.startswith("0.weight") for w in problems)
    with pytest.raises(AssertionError, match="float32 accuracy"):
        check(case, 1e-5, second_chance=True)
