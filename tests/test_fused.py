"""The compiled Adam loop (twinnet.optim.fused) against the NumPy passes it stands in for.

The loop must give bit-identical weights and moments, whatever the dtype, weight decay
or beta1 (which picks the branch of torch's lerp), and must step aside whenever it
cannot be used (numba missing or disabled, amsgrad, non-contiguous arrays, small
parameters).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from twinnet import optim
from twinnet.nn.parameter import Parameter
from twinnet.optim import fused

pytest.importorskip(
    "numba", reason="numba not installed (pip install twinnet[fast]); Adam uses the NumPy passes"
)


@pytest.fixture(scope="module")
def kernel():
    """The compiled loop (once per module: loading it from numba's cache takes 0.3 s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TWINNET_FUSED", raising=False)
        return fused._compile()


@pytest.fixture
def kernel_calls(monkeypatch, kernel):
    """Turn the loop on, and record the size of every array it updates."""
    sizes = []

    def counting(w, *rest):
        sizes.append(w.size)
        kernel(w, *rest)

    monkeypatch.setattr(fused, "_adam_kernel", counting)
    return sizes


def numpy_only(monkeypatch):
    monkeypatch.setattr(fused, "_adam_kernel", False)


def adam_run(cls, kwargs, shapes, dtype, seed=0, steps=25):
    """Weights and moments after ``steps`` Adam steps on random gradients of every scale."""
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.normal(size=s).astype(dtype)) for s in shapes]
    opt = cls(params, **kwargs)
    for step in range(steps):
        opt.param_groups[0]["lr"] = kwargs.get("lr", 1e-3) * (1 + step % 3)  # as a scheduler would
        opt.zero_grad()
        for p in params:
            scale = 10.0 ** rng.integers(-9, 3, size=p.shape)
            p.grad[...] = rng.normal(size=p.shape) * scale
            p.grad.flat[:: 7] = 0.0  # coordinates without gradient, as after a dead ReLU
        opt.step()
    return [p.data.copy() for p in params], [
        {k: v.copy() for k, v in opt.state.get(p, {}).items() if isinstance(v, np.ndarray)} for p in params
    ]


CASES = list(
    itertools.product(
        [np.float32, np.float64],
        [("Adam", {}), ("Adam", {"weight_decay": 0.1}), ("AdamW", {}), ("AdamW", {"weight_decay": 0.3})],
        [(0.9, 0.999), (0.3, 0.99)],  # beta1 = 0.3: torch's lerp takes its other branch
    )
)


@pytest.mark.parametrize(
    "dtype, opt_case, betas", CASES, ids=[f"{d.__name__}-{o[0]}{o[1]}-b{b[0]}" for d, o, b in CASES]
)
def test_loop_is_bit_identical_to_numpy_passes(monkeypatch, kernel_calls, dtype, opt_case, betas):
    cls, kwargs = getattr(optim, opt_case[0]), {**opt_case[1], "betas": betas, "lr": 1e-2}
    monkeypatch.setattr(fused, "MIN_SIZE", 0)
    shapes = [(37, 11), (11,)]
    w_loop, s_loop = adam_run(cls, kwargs, shapes, dtype)
    assert sorted(set(kernel_calls)) == [11, 37 * 11]  # both parameters went through the loop
    numpy_only(monkeypatch)
    w_np, s_np = adam_run(cls, kwargs, shapes, dtype)
    for a, b in zip(w_loop, w_np, strict=True):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    for a, b in zip(s_loop, s_np, strict=True):
        assert a.keys() == b.keys() == {"exp_avg", "exp_avg_sq"}
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert not np.array_equal(w_loop[0], adam_run(cls, kwargs, shapes, dtype, steps=0)[0][0])  # moved


def test_numba_is_loaded_by_a_large_parameter_then_serves_all(monkeypatch, kernel):
    monkeypatch.delenv("TWINNET_FUSED", raising=False)
    monkeypatch.setattr(fused, "_adam_kernel", None)
    small = [(100, 100), (100,)]  # 10000 values < MIN_SIZE: not worth loading numba
    adam_run(optim.Adam, {}, small, np.float32, steps=2)
    assert fused._adam_kernel is None
    sizes = []
    monkeypatch.setattr(fused, "_compile", lambda: lambda w, *rest: (sizes.append(w.size), kernel(w, *rest)))
    large = [(512, 256), (512,)]  # 131072 values >= MIN_SIZE
    w_loop, _ = adam_run(optim.Adam, {}, large, np.float32, steps=3)
    assert sizes == [512 * 256, 512] * 3  # loaded by the weight, then used for the bias too
    numpy_only(monkeypatch)
    w_np, _ = adam_run(optim.Adam, {}, large, np.float32, steps=3)
    for a, b in zip(w_loop, w_np, strict=True):
        np.testing.assert_array_equal(a, b)


def test_loop_steps_aside(monkeypatch, kernel_calls):
    monkeypatch.setattr(fused, "MIN_SIZE", 0)
    w = np.ones((4, 6), np.float32)
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False, step=1)
    strided_grad = np.ones((4, 12), np.float32)[:, ::2]
    assert not fused.adam_step(w, strided_grad, np.zeros_like(w), np.zeros_like(w), **kw)
    float64_grad = np.ones((4, 6))
    assert not fused.adam_step(w, float64_grad, np.zeros_like(w), np.zeros_like(w), **kw)
    assert kernel_calls == [] and np.all(w == 1)  # nothing changed
    # amsgrad keeps a running maximum the loop does not have: the NumPy passes run
    p = Parameter(np.ones((4, 6)))
    opt = optim.Adam([p], amsgrad=True)
    p.grad[...] = 1.0
    opt.step()
    assert kernel_calls == [] and "max_exp_avg_sq" in opt.state[p]
    # TWINNET_FUSED=0 turns it off before it is compiled
    monkeypatch.setenv("TWINNET_FUSED", "0")
    monkeypatch.setattr(fused, "_adam_kernel", None)
    assert not fused.adam_step(w, np.ones_like(w), np.zeros_like(w), np.zeros_like(w), **kw)
    assert fused._adam_kernel is False


@pytest.mark.torch
@pytest.mark.parametrize("cls, kwargs", [("Adam", {}), ("Adam", {"weight_decay": 0.01}), ("AdamW", {})])
def test_loop_matches_torch_on_a_large_parameter(kernel_calls, cls, kwargs):
    torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
    rng = np.random.default_rng(7)
    w0 = rng.normal(size=(300, 300))  # 90000 values: the loop's path
    ours = Parameter(w0.copy())
    theirs = torch.tensor(w0.copy(), requires_grad=True)
    opt, topt = getattr(optim, cls)([ours], lr=1e-2, **kwargs), getattr(torch.optim, cls)([theirs], lr=1e-2, **kwargs)
    for _ in range(20):
        g = rng.normal(size=w0.shape)
        opt.zero_grad()
        ours.grad[...] = g
        opt.step()
        theirs.grad = torch.tensor(g)
        topt.step()
    assert kernel_calls == [90000] * 20
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=0, atol=1e-13)


def test_loop_compiles_without_a_writable_cache(monkeypatch):
    import numba

    real_njit = numba.njit

    def njit(*args, cache=False, **kwargs):
        if cache:  # what numba raises when neither the package folder nor ~/.cache is writable
            raise RuntimeError("cannot cache function '_adam_loop': no locator available")
        return real_njit(*args, **kwargs)

    monkeypatch.delenv("TWINNET_FUSED", raising=False)
    monkeypatch.setattr(numba, "njit", njit)
    kernel = fused._compile()
    w, g = np.ones(5, np.float32), np.full(5, 0.5, np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    f32 = np.float32
    kernel(w, g, m, v, False, f32(0.1), f32(-0.9), f32(0.999), f32(0.001), f32(-0.01), f32(0.001**0.5), f32(1e-8),
           False, f32(0), False, f32(1))
    # first step: m = 0.1 g, v = 0.001 g^2, w = 1 - 0.01 * 0.1 g / (sqrt(0.001 g^2) / sqrt(0.001) + eps) ~ 1 - 0.001
    np.testing.assert_allclose(w, 1 - 0.001, rtol=1e-6)
    np.testing.assert_allclose(m, 0.05, rtol=1e-6)
