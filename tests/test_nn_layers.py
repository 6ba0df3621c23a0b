"""Layers: forward values against formulas written here, dtypes, extreme values, bad input.

Gradients are checked against finite differences in test_gradcheck.py and against
PyTorch in test_vs_torch_layers.py; here each forward is compared with its textbook
formula, and every layer is put through the same dtype and error checks.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from twinnet import nn

F32, F64 = np.float32, np.float64
D_IN = 4  # every layer in LAYERS takes 4 features

# name -> factory(dtype, rng): one of every layer, in the configurations worth telling apart
LAYERS = {
    "Linear": lambda dt, rng: nn.Linear(D_IN, 3, dtype=dt, rng=rng),
    "Linear-no-bias": lambda dt, rng: nn.Linear(D_IN, 3, bias=False, dtype=dt, rng=rng),
    "Sigmoid": lambda dt, rng: nn.Sigmoid(),
    "Tanh": lambda dt, rng: nn.Tanh(),
    "ReLU": lambda dt, rng: nn.ReLU(),
    "LeakyReLU": lambda dt, rng: nn.LeakyReLU(0.1),
    "GELU": lambda dt, rng: nn.GELU(),
    "GELU-tanh": lambda dt, rng: nn.GELU("tanh"),
    "SiLU": lambda dt, rng: nn.SiLU(),
    "Softmax": lambda dt, rng: nn.Softmax(),
    "Identity": lambda dt, rng: nn.Identity(),
    "SwiGLU": lambda dt, rng: nn.SwiGLU(D_IN, 5, 3, dtype=dt, rng=rng),
    "BatchNorm1d": lambda dt, rng: nn.BatchNorm1d(D_IN, dtype=dt),
    "BatchNorm1d-eval": lambda dt, rng: nn.BatchNorm1d(D_IN, dtype=dt).eval(),
    "LayerNorm": lambda dt, rng: nn.LayerNorm(D_IN, dtype=dt),
    "Dropout": lambda dt, rng: nn.Dropout(0.5, rng=0),
    "Sequential": lambda dt, rng: nn.Sequential(
        nn.Linear(D_IN, 3, dtype=dt, rng=rng), nn.ReLU(), nn.Linear(3, 2, dtype=dt, rng=rng)
    ),
}
# layers with parameters, so with a dtype of their own that the input must match
TYPED_LAYERS = [
    "Linear",
    "Linear-no-bias",
    "SwiGLU",
    "BatchNorm1d",
    "BatchNorm1d-eval",
    "LayerNorm",
]


def make(name, dtype=F32, seed=0):
    return LAYERS[name](dtype, np.random.default_rng(seed))


# -- forward values ---------------------------------------------------------------------------
X = np.array([[-3.0, -0.5, 0.0, 0.25, 2.0], [1e-3, -1e-3, 7.0, -7.0, 0.5]])


def elementwise(f, x):
    return np.vectorize(f)(x)


@pytest.mark.parametrize(
    ("layer", "formula"),
    [
        (nn.Sigmoid(), lambda v: 1 / (1 + math.exp(-v))),
        (nn.Tanh(), math.tanh),
        (nn.ReLU(), lambda v: max(v, 0.0)),
        (nn.LeakyReLU(), lambda v: v if v > 0 else 0.01 * v),
        (nn.LeakyReLU(0.2), lambda v: v if v > 0 else 0.2 * v),
        (nn.GELU(), lambda v: v * 0.5 * (1 + math.erf(v / math.sqrt(2)))),
        (
            nn.GELU("tanh"),
            lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))),
        ),
        (nn.SiLU(), lambda v: v / (1 + math.exp(-v))),
        (nn.Identity(), lambda v: v),
    ],
    ids=[
        "Sigmoid",
        "Tanh",
        "ReLU",
        "LeakyReLU",
        "LeakyReLU-0.2",
        "GELU",
        "GELU-tanh",
        "SiLU",
        "Identity",
    ],
)
def test_activation_forward_matches_formula(layer, formula):
    np.testing.assert_allclose(layer(X), elementwise(formula, X), rtol=1e-14, atol=1e-300)


def test_softmax_forward():
    e = np.exp(X)
    np.testing.assert_allclose(nn.Softmax()(X), e / e.sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(nn.Softmax(dim=0)(X), e / e.sum(axis=0, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(nn.Softmax()(X).sum(axis=1), 1.0, rtol=1e-15)


def test_linear_forward_is_x_wT_plus_b(rng):
    layer = nn.Linear(3, 2, dtype=F64, rng=rng)
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)  # PyTorch's layout
    layer.weight.data[...] = [[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]]
    layer.bias.data[...] = [0.5, -2.0]
    x = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, -2.0]])
    # row 0: (1+2+3+0.5, -1+0+0.5-2); row 1: (2-6+0.5, -2-1-2)
    np.testing.assert_array_equal(layer(x), [[6.5, -2.5], [-3.5, -5.0]])
    assert nn.Linear(3, 2, bias=False, rng=rng).bias is None


def test_swiglu_forward_is_down_of_silu_gate_times_up(rng):
    layer = nn.SwiGLU(3, 5, dtype=F64, rng=rng)
    x = rng.normal(size=(4, 3))
    g, u = layer.gate(x), layer.up(x)
    expected = layer.down(g / (1 + np.exp(-g)) * u)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-14)
    assert layer(x).shape == (4, 3) and nn.SwiGLU(3, 5, 2, rng=rng)(x.astype(F32)).shape == (4, 2)


# -- ReLU family exactly at the kink ----------------------------------------------------------
def test_relu_gradient_at_exactly_zero_is_zero():
    # PyTorch's convention: the subgradient at 0 is 0 (not 1, not 0.5)
    layer = nn.ReLU()
    x = np.array([[0.0, -0.0, 1.0, -1.0]])
    assert np.array_equal(layer(x), [[0.0, 0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(layer.backward(np.full((1, 4), 3.0)), [[0.0, 0.0, 3.0, 0.0]])


def test_leaky_relu_gradient_at_exactly_zero_is_the_slope():
    # PyTorch: x > 0 ? grad : grad * negative_slope, so x = 0 takes the slope
    layer = nn.LeakyReLU(0.1)
    layer(np.array([[0.0, 2.0, -2.0]]))
    np.testing.assert_allclose(layer.backward(np.ones((1, 3))), [[0.1, 1.0, 0.1]])


# -- dtypes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_dtype_is_kept_through_forward_and_backward(name, dtype, rng):
    layer = make(name, dtype)
    if name == "BatchNorm1d-eval":  # non-trivial running statistics, still in the layer's dtype
        layer.running_mean[...] = rng.normal(size=D_IN)
        layer.running_var[...] = rng.uniform(0.5, 2.0, size=D_IN)
    x = rng.normal(size=(5, D_IN)).astype(dtype)
    y = layer(x)
    assert y.dtype == dtype
    grad_x = layer.backward(rng.normal(size=y.shape).astype(dtype))
    assert grad_x.dtype == dtype and grad_x.shape == x.shape
    assert np.all(np.isfinite(grad_x)) and np.any(grad_x != 0)
    for pname, p in layer.named_parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype, pname
        assert p.grad.shape == p.data.shape and np.any(p.grad != 0), pname
    for bname, b in layer.named_buffers():
        if bname.endswith(("running_mean", "running_var")):
            assert b.dtype == dtype, bname


# -- extreme values ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_sigmoid_saturates_exactly_without_overflow(dtype):
    layer = nn.Sigmoid()
    x = np.array([[-1e4, -1e3, 0.0, 1e3, 1e4]], dtype=dtype)
    with np.errstate(all="raise"):  # no overflow warning either
        y = layer(x)
    np.testing.assert_array_equal(y, [[0.0, 0.0, 0.5, 1.0, 1.0]])
    grad = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(grad)) and grad[0, 2] == 0.25 and grad[0, 0] == grad[0, -1] == 0


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_softmax_of_large_values_is_finite(dtype):
    x = np.array([[1e4, 1e4 + 1, 1e4 - 1], [-1e4, 0.0, 1e4], [3e38, 3e38, 3e38]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise"):
        y = nn.Softmax()(x)
    assert y.dtype == dtype and np.all(np.isfinite(y))
    e = np.exp([1.0, 2.0, 0.0])  # a softmax is unchanged by shifting its inputs
    np.testing.assert_allclose(y[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_array_equal(y[1], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(y[2], 1 / 3, rtol=1e-6)


@pytest.mark.parametrize("name", ["Tanh", "ReLU", "LeakyReLU", "GELU", "GELU-tanh", "SiLU"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_activations_stay_finite_at_plus_minus_1e4(name, dtype):
    layer = make(name)
    x = np.array([[-1e4, 1e4]], dtype=dtype)
    y = layer(x)
    grad = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad)), (y, grad)
    # tanh saturates at 1; the others pass large positive inputs through with slope 1
    top, slope = (1.0, 0.0) if name == "Tanh" else (1e4, 1.0)
    assert y[0, 1] == pytest.approx(top) and grad[0, 1] == pytest.approx(slope)


# -- Dropout ----------------------------------------------------------------------------------
def test_dropout_train_mask_values_and_scale():
    layer = nn.Dropout(0.25, rng=0)
    x = np.ones((200, 50), dtype=F32)
    y = layer(x)
    assert y.dtype == F32
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02  # drop rate p
    assert abs(y.mean() - 1.0) < 0.03  # inverted scaling keeps the expectation
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 2.0)), 2 * layer.mask)


def test_dropout_same_seed_same_mask_and_eval_is_identity(rng):
    x = rng.normal(size=(6, 7))
    a, b = nn.Dropout(0.5, rng=3), nn.Dropout(0.5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a(x), b(x))
    assert not np.array_equal(a(x), b.eval()(x))
    layer = nn.Dropout(0.5, rng=3).eval()
    assert layer(x) is x
    g = rng.normal(size=x.shape)
    assert layer.backward(g) is g
    assert nn.Dropout(0.0)(x) is x


def test_dropout_fix_mask_accepts_flags_or_scaled_masks(rng):
    x = rng.normal(size=(3, 4))
    keep = rng.random((3, 4)) > 0.5
    layer = nn.Dropout(0.5)
    layer.fix_mask(keep)  # 0/1 keep flags, scaled by 1/(1-p) inside
    np.testing.assert_allclose(layer(x), x * keep * 2.0)
    np.testing.assert_allclose(layer(x), x * keep * 2.0)  # reused on every forward
    layer.fix_mask(keep * 2.0)  # an already scaled mask is taken as it is
    np.testing.assert_allclose(layer(x), x * keep * 2.0)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), keep * 2.0)
    layer.fix_mask(None)  # back to random masks
    assert {layer(np.ones((50, 50))).max()} == {2.0}


# -- BatchNorm1d and LayerNorm ----------------------------------------------------------------
def test_batchnorm_normalises_and_updates_running_stats(rng):
    layer = nn.BatchNorm1d(3, momentum=0.1, dtype=F64)
    x = rng.normal(loc=[1.0, -2.0, 5.0], scale=[0.5, 2.0, 3.0], size=(8, 3))
    y = layer(x)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-5), rtol=1e-12)
    # running = 0.9 * running + 0.1 * batch, with the unbiased variance (ddof=1)
    np.testing.assert_allclose(layer.running_mean, 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-12)
    assert layer.num_batches_tracked == 1

    layer.eval()  # eval mode: the running statistics, and no update
    layer.weight.data[...] = [2.0, 1.0, 0.5]
    layer.bias.data[...] = [0.0, 1.0, -1.0]
    mean, var = layer.running_mean.copy(), layer.running_var.copy()
    x1 = rng.normal(size=(1, 3))  # a batch of 1 is fine in eval mode
    expected = (x1 - mean) / np.sqrt(var + 1e-5) * [2.0, 1.0, 0.5] + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(layer(x1), expected, rtol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, mean)
    assert layer.num_batches_tracked == 1


def test_layernorm_normalises_each_example_the_same_in_train_and_eval(rng):
    layer = nn.LayerNorm(6, dtype=F64)
    x = rng.normal(loc=3.0, scale=4.0, size=(5, 6))
    y = layer(x)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(layer.eval()(x), y)
    assert layer(rng.normal(size=(2, 3, 6))).shape == (2, 3, 6)  # any leading axes


# -- bad input: every message names the layer and the offending value -------------------------
def test_linear_rejects_wrong_feature_count():
    layer = nn.Linear(784, 10)
    x = np.zeros((2, 783), dtype=F32)
    msg = r"Linear\(in_features=784, out_features=10, bias=True\) expects 784 features .*\(2, 783\)"
    with pytest.raises(ValueError, match=msg):
        layer(x)


@pytest.mark.parametrize("name", ["Linear", "SwiGLU", "BatchNorm1d", "LayerNorm"])
def test_parametrised_layers_reject_wrong_feature_count(name):
    layer = make(name)
    with pytest.raises(ValueError, match=re.escape(repr(layer)) + r".*4 features.*\(2, 3\)"):
        layer(np.zeros((2, 3), dtype=F32))


@pytest.mark.parametrize("name", ["Linear", "SwiGLU", "BatchNorm1d"])
def test_batch_layers_reject_wrong_number_of_axes(name):
    layer = make(name)
    with pytest.raises(
        ValueError, match=re.escape(repr(layer)) + r".*\(batch, 4\), got shape \(4,\)"
    ):
        layer(np.zeros(4, dtype=F32))


@pytest.mark.parametrize("name", list(LAYERS))
def test_integer_input_is_rejected(name):
    layer = make(name)
    first = layer[0] if isinstance(layer, nn.Sequential) else layer
    with pytest.raises(TypeError, match=re.escape(repr(first)) + r".*floating-point.*int64"):
        layer(np.ones((2, D_IN), dtype=np.int64))


@pytest.mark.parametrize("name", list(LAYERS))
def test_non_array_input_is_rejected(name):
    layer = make(name)
    with pytest.raises(TypeError, match=r"expects a numpy array, got list"):
        layer([[1.0] * D_IN] * 2)


@pytest.mark.parametrize(("layer_dtype", "x_dtype"), [(F32, F64), (F64, F32)])
@pytest.mark.parametrize("name", TYPED_LAYERS)
def test_input_dtype_must_match_the_layer(name, layer_dtype, x_dtype):
    # never a silent float32 -> float64 upcast (nor a float64 model fed float32 data)
    layer = make(name, layer_dtype)
    want, got = np.dtype(layer_dtype).name, np.dtype(x_dtype).name
    msg = re.escape(repr(layer)) + f" has {want} (weights|parameters) but got {got} input"
    with pytest.raises(TypeError, match=msg):
        layer(np.ones((2, D_IN), dtype=x_dtype))


def test_parameter_free_normalisation_takes_any_float_dtype(rng):
    x = rng.normal(size=(3, 4))
    assert nn.BatchNorm1d(4, affine=False, track_running_stats=False)(x).dtype == F64
    assert nn.LayerNorm(4, elementwise_affine=False)(x.astype(F32)).dtype == F32


@pytest.mark.parametrize("name", list(LAYERS))
def test_backward_before_forward_is_an_error(name):
    layer = make(name)
    last = layer[-1] if isinstance(layer, nn.Sequential) else layer
    msg = re.escape(repr(last)) + r".*backward called before forward"
    with pytest.raises(RuntimeError, match=msg):
        layer.backward(np.ones((2, 3), dtype=F32))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), "0.5"])
def test_dropout_probability_outside_0_1(p):
    with pytest.raises(ValueError, match=re.escape(f"Dropout p must be in [0, 1), got {p!r}")):
        nn.Dropout(p)


def test_dropout_fixed_mask_of_wrong_shape():
    layer = nn.Dropout(0.5)
    layer.fix_mask(np.ones((2, 3)))
    with pytest.raises(
        ValueError, match=r"Dropout\(p=0.5\).*mask has shape \(2, 3\), input \(2, 4\)"
    ):
        layer(np.ones((2, 4)))


def test_batchnorm_batch_of_one_in_train_mode():
    layer = nn.BatchNorm1d(3)
    msg = re.escape(repr(layer)) + r" needs more than 1 example .*training mode.*\(1, 3\)"
    with pytest.raises(ValueError, match=msg):
        layer(np.ones((1, 3), dtype=F32))
    assert layer.num_batches_tracked == 0  # nothing was updated
    layer.eval()(np.ones((1, 3), dtype=F32))  # fine in eval mode


@pytest.mark.parametrize(
    ("build", "error", "msg"),
    [
        (lambda: nn.Linear(0, 3), ValueError, r"in_features must be a positive integer, got 0"),
        (
            lambda: nn.Linear(3, 2.5),
            ValueError,
            r"out_features must be a positive integer, got 2.5",
        ),
        (
            lambda: nn.Linear(3, 2, init="glorot"),
            ValueError,
            r"unknown init 'glorot'; expected one of",
        ),
        (
            lambda: nn.Linear(3, 2, dtype=np.int32),
            TypeError,
            r"dtype must be a floating type, got int32",
        ),
        (lambda: nn.GELU("fast"), ValueError, r"approximate must be 'none' or 'tanh', got 'fast'"),
        (lambda: nn.LeakyReLU(float("inf")), ValueError, r"negative_slope must be finite, got inf"),
        (lambda: nn.BatchNorm1d(0), ValueError, r"num_features must be a positive integer, got 0"),
        (lambda: nn.BatchNorm1d(3, eps=0), ValueError, r"eps must be > 0, got 0"),
        (
            lambda: nn.BatchNorm1d(3, momentum=1.5),
            ValueError,
            r"momentum must be in \[0, 1\], got 1.5",
        ),
        (
            lambda: nn.LayerNorm((2, 3)),
            ValueError,
            r"last axis only; got normalized_shape=\(2, 3\)",
        ),
        (lambda: nn.LayerNorm(3, eps=-1.0), ValueError, r"eps must be > 0, got -1.0"),
        (
            lambda: nn.Sequential(nn.ReLU(), "relu"),
            TypeError,
            r"Module instances, got str at position 1",
        ),
    ],
)
def test_bad_constructor_arguments(build, error, msg):
    with pytest.raises(error, match=msg):
        build()
