"""``maximize=True`` for SGD, Adam and AdamW: torch's semantics, step by step.

torch negates the gradient first, before the weight decay: the step ascends the
objective whose gradient is in ``p.grad``. Driven on a concave objective
g(x) = -(0.5 x^T A x - b^T x), whose gradient ``-(A x - b)`` is put in ``p.grad``.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_optim import NO_TORCH, X0, A, B, quad_grad
from twinnet import optim
from twinnet.nn.parameter import Parameter
from twinnet.optim import fused

CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.02, momentum=0.9, dampening=0.2, weight_decay=0.05)),
    ("SGD", dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1, betas=(0.8, 0.99))),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
]
IDS = [f"{cls}-{'-'.join(map(str, kw.values()))}" for cls, kw in CONFIGS]


def ascent_grad(x: np.ndarray) -> np.ndarray:
    # dg/dx for the concave g = -f
    return -quad_grad(x)


@pytest.mark.torch
@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=IDS)
def test_maximize_matches_torch_step_by_step(cls, kwargs):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    p = Parameter(X0.copy())
    opt = getattr(optim, cls)([p], maximize=True, **kwargs)
    t = torch.tensor(X0.copy(), requires_grad=True)
    topt = getattr(torch.optim, cls)([t], maximize=True, foreach=False, **kwargs)
    for step in range(60):
        p.grad[...] = ascent_grad(p.data)
        opt.step()
        t.grad = torch.tensor(ascent_grad(t.detach().numpy()))
        topt.step()
        diff = np.max(np.abs(p.data - t.detach().numpy()))
        assert diff < 1e-12, f"step {step}: {diff}"
    if not kwargs.get("weight_decay"):
        assert concave(p.data) > concave(X0) + 1.0  # it climbed


def concave(x: np.ndarray) -> float:
    # g(x) = -(0.5 x^T A x - b^T x)
    return -(0.5 * x @ A @ x - B @ x)


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maximize_is_minimising_the_negated_gradient_exactly(cls, kwargs, dtype):
    """Without torch: ascending with grad is bit for bit descending with -grad."""
    a, b = Parameter(X0.astype(dtype)), Parameter(X0.astype(dtype))
    up = getattr(optim, cls)([a], maximize=True, **kwargs)
    down = getattr(optim, cls)([b], **kwargs)
    for _ in range(30):
        a.grad[...] = ascent_grad(a.data.astype(np.float64))
        b.grad[...] = -a.grad
        up.step()
        down.step()
        np.testing.assert_array_equal(a.data, b.data)


def test_maximize_adam_large_parameter_skips_the_fused_loop(monkeypatch):
    """The compiled loop has no maximize: a large maximising Adam must not use it, and
    still equals the (possibly fused) descent on -grad bit for bit."""
    calls = []
    monkeypatch.setattr(fused, "adam_step", lambda *a, **k: calls.append(1) or False)
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=fused.MIN_SIZE).astype(np.float32)
    a = Parameter(x0.copy())
    up = optim.Adam([a], lr=1e-2, maximize=True)
    a.grad[...] = rng.normal(size=a.shape)
    up.step()
    assert calls == []
    b = Parameter(x0.copy())
    down = optim.Adam([b], lr=1e-2)
    b.grad[...] = -a.grad
    down.step()
    assert calls == [1]
    np.testing.assert_array_equal(a.data, b.data)


def test_maximize_is_in_the_state_dict_and_validated():
    p = Parameter(X0.copy())
    opt = optim.SGD([p], lr=0.1, maximize=True)
    assert opt.state_dict()["param_groups"][0]["maximize"] is True
    with pytest.raises(TypeError, match="maximize must be a bool, got str 'yes'"):
        optim.Adam([p], maximize="yes")
    with pytest.raises(TypeError, match="unexpected keyword argument 'maximize'"):
        optim.RMSprop([p], maximize=True)  # not (yet) for RMSprop and Adagrad
