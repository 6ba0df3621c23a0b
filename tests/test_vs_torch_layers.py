"""Every layer and loss against its PyTorch counterpart, through one helper.

``helper_test`` follows tinygrad's ``helper_test_op``: the same weights on both sides,
then for each input batch it compares the forward output, pushes the SAME random
upstream gradient back through both (never ``.sum()``, which only checks dL/dy = 1),
and compares the input gradient, every parameter gradient and every buffer: shape,
dtype and values, in float64 (relative 1e-10) and float32 (relative 1e-5).
Weights are copied to torch here, by name; this file does not use ``twinnet.twin``.
"""

from __future__ import annotations

import numpy as np
import pytest

from twinnet import losses, nn

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
F = torch.nn.functional
pytestmark = pytest.mark.torch

F32, F64 = np.float32, np.float64
DTYPES = pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
RTOL = {np.dtype(F64): 1e-10, np.dtype(F32): 1e-5}
TORCH_DTYPE = {np.dtype(F64): torch.float64, np.dtype(F32): torch.float32}


def assert_same(ours, theirs, rtol, what):
    """Same shape, same dtype, same values up to rtol (relative to the tensor's largest entry
    too, so entries that are differences of nearly equal numbers are judged fairly)."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, torch {theirs.dtype}"
    scale = float(np.abs(theirs).max()) if theirs.size else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=what)


def helper_test(ours, theirs, xs, target=None, *, seed=2024, torch_seed=None):
    """Compare ``ours`` (a twinnet layer or loss) with ``theirs`` (torch) on each x in ``xs``.

    Layers: ``ours(x)`` vs ``theirs(x)``, then backward of a random dL/dy. Losses (when
    ``target`` is given): ``ours(x, target)`` vs ``theirs(x, target)``, then backward of a
    random scalar dL_total/dL. Parameter gradients are compared after every step, so they
    must also accumulate like torch's; buffers (BatchNorm's running statistics) too.
    ``torch_seed`` re-seeds torch before each torch forward (Dropout draws its mask then).
    ``seed`` draws the upstream gradients: keep it apart from the seed of the inputs (the
    ``rng`` fixture's 0), or dL/dy can come out proportional to x, which a normalisation
    layer maps to dL/dx ~ 0 and so compares nothing.
    """
    xs = xs if isinstance(xs, list) else [xs]
    dtype = xs[0].dtype
    rtol = RTOL[dtype]
    is_loss = target is not None
    rng = np.random.default_rng(seed)

    if not is_loss:  # identical weights and buffers, by name, and the same mode
        theirs.to(TORCH_DTYPE[dtype])
        theirs.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
        )
        theirs.train(ours.training)
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]

    for step, x in enumerate(xs):
        x_t = torch.from_numpy(x.copy()).requires_grad_(True)
        if torch_seed is not None:
            torch.manual_seed(torch_seed)
        if is_loss:
            out, out_t = ours(x, target), theirs(x_t, torch.from_numpy(np.asarray(target)))
            assert type(out) is float, f"step {step}: a loss returns a Python float"
            np.testing.assert_allclose(out, out_t.item(), rtol=rtol, err_msg=f"step {step}: loss")
            g = float(rng.normal())
            grad_x = g * ours.backward()
            out_t.backward(torch.tensor(g, dtype=TORCH_DTYPE[dtype]))
        else:
            out, out_t = ours(x), theirs(x_t)
            assert_same(out, out_t, rtol, f"step {step}: output")
            g = rng.normal(size=out.shape).astype(dtype)
            grad_x = ours.backward(g)
            out_t.backward(torch.from_numpy(g.copy()))
        assert_same(grad_x, x_t.grad, rtol, f"step {step}: input gradient")
        if is_loss:
            continue
        their_params = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert_same(p.data, their_params[name], rtol, f"step {step}: {name}")
            assert_same(p.grad, their_params[name].grad, rtol, f"step {step}: {name}.grad")
        their_buffers = dict(theirs.named_buffers())
        for name, b in ours.named_buffers():
            assert_same(b, their_buffers[name], rtol, f"step {step}: buffer {name}")


def batches(rng, dtype, shape, n=1, loc=0.0, scale=1.0):
    return [rng.normal(loc, scale, size=shape).astype(dtype) for _ in range(n)]


# -- Linear -----------------------------------------------------------------------------------
@DTYPES
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 6])
def test_linear(dtype, bias, batch, rng):
    ours = nn.Linear(5, 3, bias=bias, dtype=dtype, rng=rng)
    helper_test(ours, torch.nn.Linear(5, 3, bias=bias), batches(rng, dtype, (batch, 5), n=2))


# -- activations ------------------------------------------------------------------------------
ACTIVATIONS = {
    "Sigmoid": (nn.Sigmoid, torch.nn.Sigmoid),
    "Tanh": (nn.Tanh, torch.nn.Tanh),
    "ReLU": (nn.ReLU, torch.nn.ReLU),
    "LeakyReLU": (nn.LeakyReLU, torch.nn.LeakyReLU),
    "LeakyReLU-0.2": (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    "GELU": (nn.GELU, torch.nn.GELU),
    "GELU-tanh": (lambda: nn.GELU("tanh"), lambda: torch.nn.GELU(approximate="tanh")),
    "SiLU": (nn.SiLU, torch.nn.SiLU),
    "Softmax": (nn.Softmax, lambda: torch.nn.Softmax(dim=-1)),
    "Softmax-dim0": (lambda: nn.Softmax(dim=0), lambda: torch.nn.Softmax(dim=0)),
    "Identity": (nn.Identity, torch.nn.Identity),
}


@DTYPES
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation(name, dtype, rng):
    ours, theirs = ACTIVATIONS[name]
    x = 3 * rng.normal(size=(6, 5))
    x[0, :3] = [0.0, -1e-3, 1e-3]  # the kink: at exactly 0, ReLU's gradient is 0 in both
    x[1, :2] = [-40.0, 40.0]  # saturated
    helper_test(ours(), theirs(), [x.astype(dtype), x[:1].astype(dtype)])


# -- SwiGLU -----------------------------------------------------------------------------------
class TorchSwiGLU(torch.nn.Module):
    """The reference: down(silu(gate(x)) * up(x))."""

    def __init__(self, d_in, hidden, d_out, bias):
        super().__init__()
        self.gate = torch.nn.Linear(d_in, hidden, bias=bias)
        self.up = torch.nn.Linear(d_in, hidden, bias=bias)
        self.down = torch.nn.Linear(hidden, d_out, bias=bias)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


@DTYPES
@pytest.mark.parametrize(("d_out", "bias"), [(None, True), (3, False)])
def test_swiglu(dtype, d_out, bias, rng):
    ours = nn.SwiGLU(4, 7, d_out, bias=bias, dtype=dtype, rng=rng)
    theirs = TorchSwiGLU(4, 7, d_out or 4, bias)
    helper_test(ours, theirs, batches(rng, dtype, (5, 4), n=2) + batches(rng, dtype, (1, 4)))


# -- normalisation ----------------------------------------------------------------------------
def randomise_affine(layer, rng):
    layer.weight.data[...] = rng.uniform(0.5, 2.0, size=layer.weight.shape)
    if getattr(layer, "bias", None) is not None:
        layer.bias.data[...] = rng.normal(size=layer.bias.shape)


@DTYPES
@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_batchnorm_train_then_eval(dtype, momentum, rng):
    ours = nn.BatchNorm1d(4, momentum=momentum, dtype=dtype)
    randomise_affine(ours, rng)
    theirs = torch.nn.BatchNorm1d(4, momentum=momentum)
    # several training steps: running statistics (and num_batches_tracked) compared after each.
    # The smallest batch, 2, only in float64: there x_hat = +-1 almost exactly, dL/dx is a
    # difference of nearly equal terms about 1e-4 of dL/dy, and float32 keeps ~3 digits of it
    small = 2 if dtype == F64 else 3
    xs = batches(rng, dtype, (8, 4), n=4, loc=2.0, scale=3.0) + batches(rng, dtype, (small, 4))
    helper_test(ours, theirs, xs)
    assert int(ours.num_batches_tracked) == 5
    assert not np.allclose(ours.running_mean, 0) and not np.allclose(ours.running_var, 1)
    ours.eval()  # the eval forward and backward with those running statistics, batch of 1 too
    helper_test(
        ours, theirs, batches(rng, dtype, (5, 4), n=2) + batches(rng, dtype, (1, 4)), seed=1
    )


@DTYPES
@pytest.mark.parametrize(("affine", "track"), [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_options(dtype, affine, track, training, rng):
    ours = nn.BatchNorm1d(3, affine=affine, track_running_stats=track, dtype=dtype)
    if affine:
        randomise_affine(ours, rng)
    theirs = torch.nn.BatchNorm1d(3, affine=affine, track_running_stats=track)
    ours.train(training)
    helper_test(ours, theirs, batches(rng, dtype, (6, 3), n=2, loc=1.0, scale=2.0))


@DTYPES
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"bias": False}, {"elementwise_affine": False}],
    ids=["affine", "no-bias", "plain"],
)
@pytest.mark.parametrize("shape", [(5, 6), (1, 6), (2, 3, 6)])
def test_layernorm(dtype, kwargs, shape, rng):
    ours = nn.LayerNorm(6, dtype=dtype, **kwargs)
    if ours.elementwise_affine:
        randomise_affine(ours, rng)
    helper_test(
        ours, torch.nn.LayerNorm(6, **kwargs), batches(rng, dtype, shape, n=2, loc=1.0, scale=3.0)
    )


# -- Dropout ----------------------------------------------------------------------------------
@DTYPES
@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropout_with_torchs_mask(dtype, p, rng):
    theirs = torch.nn.Dropout(p)
    torch.manual_seed(123)  # read the mask torch will draw: dropout of ones is 0 or 1/(1-p)
    keep = theirs(torch.ones(7, 5, dtype=TORCH_DTYPE[np.dtype(dtype)])).numpy() != 0
    assert 0 < keep.mean() < 1
    ours = nn.Dropout(p)
    ours.fix_mask(keep)
    helper_test(ours, theirs, batches(rng, dtype, (7, 5), n=2), torch_seed=123)


@DTYPES
def test_dropout_eval(dtype, rng):
    helper_test(nn.Dropout(0.5).eval(), torch.nn.Dropout(0.5), batches(rng, dtype, (4, 3)))


# -- a whole model ----------------------------------------------------------------------------
@DTYPES
def test_sequential_mlp(dtype, rng):
    # (a bias straight before BatchNorm would have gradient 0 up to rounding: Tanh in between)
    ours = nn.Sequential(
        nn.Linear(6, 8, dtype=dtype, rng=rng),
        nn.Tanh(),
        nn.BatchNorm1d(8, dtype=dtype),
        nn.GELU(),
        nn.SwiGLU(8, 5, dtype=dtype, rng=rng),
        nn.LayerNorm(8, dtype=dtype),
        nn.LeakyReLU(0.1),
        nn.Linear(8, 3, dtype=dtype, rng=rng),
        nn.Softmax(),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(6, 8),
        torch.nn.Tanh(),
        torch.nn.BatchNorm1d(8),
        torch.nn.GELU(),
        TorchSwiGLU(8, 5, 8, True),
        torch.nn.LayerNorm(8),
        torch.nn.LeakyReLU(0.1),
        torch.nn.Linear(8, 3),
        torch.nn.Softmax(dim=-1),
    )
    helper_test(ours, theirs, batches(rng, dtype, (10, 6), n=3))


# -- losses -----------------------------------------------------------------------------------
@DTYPES
@pytest.mark.parametrize("shape", [(1, 1), (5, 3)])
def test_mse_loss(dtype, shape, rng):
    target = rng.normal(size=shape).astype(dtype)
    helper_test(losses.MSELoss(), torch.nn.MSELoss(), batches(rng, dtype, shape, n=2), target)


@DTYPES
def test_bce_loss(dtype, rng):
    p = rng.uniform(0.01, 0.99, size=(6, 2)).astype(dtype)
    target = rng.uniform(size=(6, 2)).astype(dtype)  # soft targets as well as 0/1
    target[:3] = rng.integers(0, 2, size=(3, 2))
    helper_test(losses.BCELoss(), torch.nn.BCELoss(), [p], target)


@DTYPES
def test_bce_loss_clamps_exactly_like_torch_at_0_and_1(dtype):
    # log clamped at -100 in the loss, p (1 - p) floored at 1e-12 in the gradient
    p = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1e-30, 1 - 1e-7]], dtype=dtype)
    target = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.25], [1.0, 0.0]], dtype=dtype)
    helper_test(losses.BCELoss(), torch.nn.BCELoss(), [p], target)


@DTYPES
@pytest.mark.parametrize("pos_weight", [None, [0.5, 2.0, 4.0]])
def test_bce_with_logits_loss(dtype, pos_weight, rng):
    z = 4 * rng.normal(size=(5, 3))
    z[0] = [1e4, -1e4, 30.0]  # far out on both sides
    target = rng.integers(0, 2, size=(5, 3)).astype(dtype)
    target[1] = [0.3, 0.5, 1.0]  # soft targets
    weight = (
        None if pos_weight is None else torch.tensor(pos_weight, dtype=TORCH_DTYPE[np.dtype(dtype)])
    )
    helper_test(
        losses.BCEWithLogitsLoss(pos_weight),
        torch.nn.BCEWithLogitsLoss(pos_weight=weight),
        [z.astype(dtype)],
        target,
    )


@DTYPES
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("batch", [1, 7])
def test_cross_entropy_loss(dtype, smoothing, batch, rng):
    logits = 3 * rng.normal(size=(batch, 4))
    logits[0] = [1e4, 0.0, -1e4, 5.0]  # 1e4 apart
    labels = rng.integers(0, 4, size=batch)
    labels[0] = 2  # the very unlikely class
    helper_test(
        losses.CrossEntropyLoss(label_smoothing=smoothing),
        torch.nn.CrossEntropyLoss(label_smoothing=smoothing),
        [logits.astype(dtype)],
        labels,
    )
