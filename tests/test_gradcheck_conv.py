"""The convolutional layers against centred finite differences in float64, plus hand-worked
examples and the errors a user can cause.

Shapes are drawn with hypothesis (batch sizes include 1) over a grid of strides,
paddings, dilations and groups; every tensor (weights, bias, input) must reach a relative
error below 1e-7 under an MSE loss against a random target (so each layer receives a
random upstream gradient).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twinnet import check, losses, nn

F64 = np.float64
TOL = 1e-7
# few examples per grid point: the grid itself gives the coverage, and the suite stays fast
CONV_SETTINGS = settings(max_examples=4, deadline=None, derandomize=True)
seeds = st.integers(0, 2**32 - 1)


def check_layer(layer, x, rng):
    """Gradcheck ``layer`` alone under an MSE loss with a random target; return the report."""
    target = rng.normal(size=layer(x).shape)
    report = check.gradcheck(layer, losses.MSELoss(), x, target)
    assert report.passed, f"\n{report}"
    assert report.max_rel_error < TOL, f"\n{report}"
    return report


def distinct_values(rng, shape):
    """Entries at least 1e-3 apart (a shuffled grid plus small noise): no window of a max
    pool has two maxima within eps, so finite differences never switch the arg-max."""
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size / 2) * 0.05 + rng.uniform(-0.01, 0.01, size)
    return values.reshape(shape)


def image_size(kernel, stride, padding, dilation):
    """Strategy for a height or width that the window fits at least once (and up to 3 times more)."""
    smallest = max(1, dilation * (kernel - 1) + 1 - 2 * padding)
    return st.integers(smallest, smallest + 3 * stride)


# (kernel, stride, padding, dilation, groups)
CONV_GRID = [
    (1, 1, 0, 1, 1),
    (3, 1, 0, 1, 1),
    (3, 1, 1, 1, 1),
    (3, 2, 1, 1, 1),
    (2, 2, 0, 1, 2),
    (3, 1, 2, 2, 1),
    (2, 3, 1, 2, 2),
    (3, 1, 1, 1, 3),  # depthwise when there is one channel per group
]


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "groups"), CONV_GRID)
@CONV_SETTINGS
@given(data=st.data(), seed=seeds)
def test_conv2d(kernel, stride, padding, dilation, groups, data, seed):
    rng = np.random.default_rng(seed)
    n = data.draw(st.integers(1, 2), label="batch")
    c_in = groups * data.draw(st.integers(1, 2), label="in per group")
    c_out = groups * data.draw(st.integers(1, 2), label="out per group")
    h = data.draw(image_size(kernel, stride, padding, dilation), label="height")
    w = data.draw(image_size(kernel, stride, padding, dilation), label="width")
    bias = data.draw(st.booleans(), label="bias")
    layer = nn.Conv2d(
        c_in, c_out, kernel, stride, padding, dilation, groups, bias, dtype=F64, rng=rng
    )
    report = check_layer(layer, rng.normal(size=(n, c_in, h, w)), rng)
    expected = ["weight", "bias", "input"] if bias else ["weight", "input"]
    assert [c.name for c in report.checks] == expected


def test_conv2d_rectangular_kernel_stride_padding_dilation(rng):
    layer = nn.Conv2d(
        2, 3, (2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2), dtype=F64, rng=rng
    )
    check_layer(layer, rng.normal(size=(2, 2, 5, 7)), rng)


# (kernel, stride, padding, dilation)
POOL_GRID = [(2, None, 0, 1), (2, 1, 0, 1), (3, 2, 1, 1), (3, 1, 1, 1), (2, 2, 1, 2), (3, 3, 0, 1)]


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation"), POOL_GRID)
@CONV_SETTINGS
@given(data=st.data(), seed=seeds)
def test_maxpool2d(kernel, stride, padding, dilation, data, seed):
    rng = np.random.default_rng(seed)
    step = kernel if stride is None else stride
    # (at least one window's span: a window lying wholly in the padding would output -inf)
    h = data.draw(image_size(kernel, step, 0, dilation), label="height")
    w = data.draw(image_size(kernel, step, 0, dilation), label="width")
    n, c = (
        data.draw(st.integers(1, 2), label="batch"),
        data.draw(st.integers(1, 2), label="channels"),
    )
    layer = nn.MaxPool2d(kernel, stride, padding, dilation)
    check_layer(layer, distinct_values(rng, (n, c, h, w)), rng)


@pytest.mark.parametrize(("kernel", "stride", "padding", "_"), [g for g in POOL_GRID if g[3] == 1])
@pytest.mark.parametrize("count_include_pad", [True, False])
@CONV_SETTINGS
@given(data=st.data(), seed=seeds)
def test_avgpool2d(kernel, stride, padding, _, count_include_pad, data, seed):
    rng = np.random.default_rng(seed)
    step = kernel if stride is None else stride
    h = data.draw(image_size(kernel, step, padding, 1), label="height")
    w = data.draw(image_size(kernel, step, padding, 1), label="width")
    layer = nn.AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)
    check_layer(layer, rng.normal(size=(2, 2, h, w)), rng)


@pytest.mark.parametrize("size", [1, (2, 3)])
@CONV_SETTINGS
@given(h=st.integers(3, 7), w=st.integers(3, 7), seed=seeds)
def test_adaptive_avgpool2d(size, h, w, seed):
    rng = np.random.default_rng(seed)
    check_layer(nn.AdaptiveAvgPool2d(size), rng.normal(size=(2, 2, h, w)), rng)


@pytest.mark.parametrize("training", [True, False])
@CONV_SETTINGS
# (at least 4 values per channel: with 2, x_hat = +-1 and dL/dx is ~0, a ratio of rounding noise)
@given(n=st.integers(1, 3), h=st.integers(2, 4), w=st.integers(2, 4), seed=seeds)
def test_batchnorm2d(training, n, h, w, seed):
    rng = np.random.default_rng(seed)
    layer = nn.BatchNorm2d(3, dtype=F64)
    layer.weight.data[...] = rng.uniform(0.5, 2.0, size=3)
    layer.bias.data[...] = rng.normal(size=3)
    layer.running_mean[...] = rng.normal(size=3)
    layer.running_var[...] = rng.uniform(0.5, 2.0, size=3)
    layer.train(training)
    check_layer(layer, rng.normal(1.0, 2.0, size=(n, 3, h, w)), rng)


def test_flatten_and_residual_block(rng):
    block = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, dtype=F64, rng=rng),
        nn.Tanh(),
        nn.Conv2d(3, 2, 1, dtype=F64, rng=rng),
    )
    model = nn.Sequential(
        nn.Residual(block), nn.Flatten(), nn.Linear(2 * 4 * 5, 3, dtype=F64, rng=rng)
    )
    report = check_layer(model, rng.normal(size=(2, 2, 4, 5)), rng)
    assert report.checks[0].name == "0.block.0.weight"


# -- hand-worked examples -------------------------------------------------------------------
def test_conv2d_by_hand():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]
    layer = nn.Conv2d(1, 1, 2, dtype=F64)
    layer.weight.data[...] = [[1.0, 2.0], [3.0, 4.0]]
    layer.bias.data[...] = 0.5
    y = layer(x)
    # y00 = 1*1 + 2*2 + 3*4 + 4*5 = 37, then each step right adds 10 and each step down 30
    np.testing.assert_array_equal(y, [[[[37.5, 47.5], [67.5, 77.5]]]])
    dx = layer.backward(np.ones_like(y))
    # dL/dW[i, j] = sum of the inputs the tap (i, j) saw: 1+2+4+5, 2+3+5+6, ...
    np.testing.assert_array_equal(layer.weight.grad, [[[[12.0, 16.0], [24.0, 28.0]]]])
    assert layer.bias.grad.tolist() == [4.0]
    # dL/dx[p] = sum of the weights that touched p: the centre saw all four taps
    np.testing.assert_array_equal(dx, [[[[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]]])


def test_pools_by_hand():
    x = np.array(
        [[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 1.0], [0.0, 2.0, 6.0, 6.0], [7.0, 1.0, 3.0, 2.0]]
    )
    x = x.reshape(1, 1, 4, 4)
    pool = nn.MaxPool2d(2)
    np.testing.assert_array_equal(pool(x), [[[[5.0, 8.0], [7.0, 6.0]]]])
    dx = pool.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    expected = np.zeros((4, 4))
    expected[0, 1], expected[1, 2], expected[3, 0] = 10, 20, 30
    expected[2, 2] = 40  # the tie 6, 6: the first in row-major order wins
    np.testing.assert_array_equal(dx[0, 0], expected)
    avg = nn.AvgPool2d(2)
    np.testing.assert_array_equal(avg(x), [[[[13 / 4, 11 / 4], [10 / 4, 17 / 4]]]])
    np.testing.assert_array_equal(avg.backward(np.full((1, 1, 2, 2), 4.0)), np.ones((1, 1, 4, 4)))
    # padding 1, count_include_pad: the corner window holds one real value and three zeros
    assert nn.AvgPool2d(2, padding=1)(x)[0, 0, 0, 0] == 1.0 / 4
    assert nn.AvgPool2d(2, padding=1, count_include_pad=False)(x)[0, 0, 0, 0] == 1.0


# -- errors a user can cause ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nn.Conv2d(3, 4, 0), "kernel_size must be an int >= 1"),
        (lambda: nn.Conv2d(3, 4, 3, groups=2), "divisible by groups"),
        (lambda: nn.Conv2d(3, 4, 3, padding="same"), "padding must be an int"),
        (lambda: nn.Conv2d(3, 4, 3, stride=(1, 2, 3)), "stride must be an int >= 1"),
        (lambda: nn.Conv2d(0, 4, 3), "in_channels must be a positive integer"),
        (lambda: nn.MaxPool2d(2, padding=2), "at most half the kernel size"),
        (lambda: nn.AvgPool2d(3, divisor_override=0), "divisor_override must be a positive int"),
        (lambda: nn.AdaptiveAvgPool2d(0), "output_size must be an int >= 1"),
        (lambda: nn.Residual(np.zeros(3)), "Residual expects a Module"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError if "Module" not in message else TypeError, match=message):
        make()


def test_bad_inputs(rng):
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 3, height, width\)"):
        conv(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\), got shape \(2, 1, 5, 5\)"):
        conv(np.zeros((2, 1, 5, 5), np.float32))
    with pytest.raises(TypeError, match="float32 parameters but got float64 input"):
        conv(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match="too small for kernel"):
        conv(np.zeros((2, 3, 2, 5), np.float32))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        conv.backward(np.zeros((2, 4, 3, 3), np.float32))
    conv(np.zeros((2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"dL/dy of the output's shape \(2, 4, 3, 3\)"):
        conv.backward(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match="keeps the shape"):
        nn.Residual(nn.Conv2d(3, 4, 1))(np.zeros((1, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(3)(np.zeros((1, 3, 1, 1), np.float32))
    with pytest.raises(ValueError, match="cannot flatten axes 1..-1"):
        nn.Flatten()(np.zeros(3))
