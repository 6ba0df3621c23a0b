"""The convolutional layers against their PyTorch counterparts, through the one helper.

``helper_test`` (from test_vs_torch_layers) copies the weights by name, compares the
output, pushes the same random dL/dy through both sides and compares dL/dx, every
parameter gradient and every buffer: float64 to 1e-10, float32 to 1e-5 of each
tensor's largest entry (a conv output sums C/groups * kh * kw products; float32
rounding of such sums stays near 1e-7 relative, well inside 1e-5).
"""

from __future__ import annotations

import numpy as np
import pytest

from twinnet import nn

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
from test_vs_torch_layers import DTYPES, F32, F64, batches, helper_test  # noqa: E402

pytestmark = pytest.mark.torch

# (kernel, stride, padding, dilation, groups) over which every layer is compared
CONV_GRID = [
    (3, 1, 0, 1, 1),
    (3, 1, 1, 1, 1),
    (3, 2, 1, 1, 1),
    ((2, 3), (2, 1), (1, 0), 1, 1),
    (3, 1, 2, 2, 1),
    (1, 1, 0, 1, 2),
    (3, 2, 1, (1, 2), 2),
    (2, 1, 0, 1, 4),  # depthwise: groups == in_channels
    (5, 3, 2, 1, 1),  # stride > 1 that leaves the last row and column unread
]


@DTYPES
@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "groups"), CONV_GRID)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(dtype, kernel, stride, padding, dilation, groups, bias, rng):
    args = dict(
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=bias,
    )
    ours = nn.Conv2d(4, 8, dtype=dtype, rng=rng, **args)
    theirs = torch.nn.Conv2d(4, 8, **args)
    # two steps: the parameter gradients must accumulate like torch's; a batch of 1 too
    helper_test(
        ours, theirs, batches(rng, dtype, (3, 4, 9, 10), n=2) + batches(rng, dtype, (1, 4, 9, 10))
    )


def test_conv2d_input_grad_false_fills_weights_only(rng):
    ours = nn.Conv2d(2, 3, 3, padding=1, dtype=F64, rng=rng)
    x = rng.normal(size=(2, 2, 5, 5))
    g = rng.normal(size=ours(x).shape)
    full = ours.backward(g)
    w_grad = ours.weight.grad.copy()
    ours.zero_grad()
    ours.input_grad = False
    ours(x)
    assert ours.backward(g) is None and full.shape == x.shape
    np.testing.assert_array_equal(ours.weight.grad, w_grad)


POOL_GRID = [
    (2, None, 0, 1),
    (3, 1, 1, 1),
    (3, 2, 1, 1),
    ((2, 3), (1, 2), (1, 1), 1),
    (3, 2, 0, 1),
    (2, 1, 1, 2),  # dilated (max pooling only)
]


@DTYPES
@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation"), POOL_GRID)
def test_maxpool2d(dtype, kernel, stride, padding, dilation, rng):
    ours = nn.MaxPool2d(kernel, stride, padding, dilation)
    theirs = torch.nn.MaxPool2d(kernel, stride, padding, dilation)
    helper_test(ours, theirs, batches(rng, dtype, (2, 3, 7, 8), n=2))


@DTYPES
def test_maxpool2d_ties_as_torch(dtype, rng):
    # small integers: many windows hold several equal maxima, in overlapping windows too
    x = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(dtype)
    for kernel, stride, padding in [(2, 1, 0), (3, 1, 1), (2, 2, 1), (3, 2, 0)]:
        helper_test(
            nn.MaxPool2d(kernel, stride, padding), torch.nn.MaxPool2d(kernel, stride, padding), [x]
        )


@DTYPES
def test_maxpool2d_nan_and_minus_inf_as_torch(dtype, rng):
    """torch sends a NaN window's gradient to its last NaN, and an all -inf window's
    (with padding) to its first real entry: the same entries get the gradient here."""
    x = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(dtype)
    x[0, 0, :2, :2] = np.nan
    x[0, 1, 0, 1] = np.nan
    x[1, 0] = -np.inf
    for kernel, stride, padding in [(2, 1, 0), (3, 1, 1), (2, 2, 1)]:
        ours = nn.MaxPool2d(kernel, stride, padding)
        x_t = torch.from_numpy(x.copy()).requires_grad_(True)
        y_t = torch.nn.functional.max_pool2d(x_t, kernel, stride, padding)
        y = ours(x)
        # NaN where torch has NaN, -inf likewise
        np.testing.assert_array_equal(y, y_t.detach().numpy())
        g = rng.normal(size=y.shape).astype(dtype)
        y_t.backward(torch.from_numpy(g))
        dx = ours.backward(g)
        assert np.isfinite(dx).all()
        np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-6, atol=1e-6)
        # routing is exact: every upstream gradient lands somewhere (sum preserved)
        assert abs(dx.sum() - g.sum()) < 1e-4


@DTYPES
@pytest.mark.parametrize(("kernel", "stride", "padding", "_"), POOL_GRID[:5])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avgpool2d(dtype, kernel, stride, padding, _, count_include_pad, rng):
    ours = nn.AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)
    theirs = torch.nn.AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)
    helper_test(ours, theirs, batches(rng, dtype, (2, 3, 7, 8), n=2))


@DTYPES
def test_avgpool2d_divisor_override(dtype, rng):
    helper_test(
        nn.AvgPool2d(3, 2, 1, divisor_override=4),
        torch.nn.AvgPool2d(3, 2, 1, divisor_override=4),
        batches(rng, dtype, (2, 2, 6, 5)),
    )


@DTYPES
@pytest.mark.parametrize("size", [1, (1, 1), 2, (3, 2), (7, 5)])
def test_adaptive_avgpool2d(dtype, size, rng):
    # 7x5 -> 3x2 has overlapping regions; 7x5 -> 7x5 is the identity
    helper_test(
        nn.AdaptiveAvgPool2d(size),
        torch.nn.AdaptiveAvgPool2d(size),
        batches(rng, dtype, (2, 3, 7, 5), n=2),
    )


@DTYPES
@pytest.mark.parametrize(
    ("start", "end", "shape"), [(1, -1, (2, 3, 4, 5)), (0, -1, (2, 3, 4)), (1, 2, (2, 3, 4, 5))]
)
def test_flatten(dtype, start, end, shape, rng):
    helper_test(nn.Flatten(start, end), torch.nn.Flatten(start, end), batches(rng, dtype, shape))


def randomise_affine(layer, rng):
    layer.weight.data[...] = rng.uniform(0.5, 2.0, size=layer.weight.shape)
    layer.bias.data[...] = rng.normal(size=layer.bias.shape)


@DTYPES
@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_batchnorm2d_train_then_eval(dtype, momentum, rng):
    ours = nn.BatchNorm2d(3, momentum=momentum, dtype=dtype)
    randomise_affine(ours, rng)
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum)
    # running statistics (unbiased over N*H*W) and num_batches_tracked after every step
    # the smallest batch, 2 values per channel, only in float64 (as for BatchNorm1d: there
    # dL/dx is a difference of nearly equal terms, and float32 keeps ~3 digits of it)
    small = (1, 3, 2, 1) if dtype == F64 else (1, 3, 3, 1)
    xs = batches(rng, dtype, (4, 3, 5, 6), n=3, loc=2.0, scale=3.0) + batches(rng, dtype, small)
    helper_test(ours, theirs, xs)
    assert int(ours.num_batches_tracked) == 4
    ours.eval()
    helper_test(
        ours, theirs, batches(rng, dtype, (2, 3, 5, 6)) + batches(rng, dtype, (1, 3, 1, 1)), seed=1
    )


@DTYPES
@pytest.mark.parametrize(("affine", "track"), [(False, True), (True, False)])
def test_batchnorm2d_options(dtype, affine, track, rng):
    ours = nn.BatchNorm2d(3, affine=affine, track_running_stats=track, dtype=dtype)
    theirs = torch.nn.BatchNorm2d(3, affine=affine, track_running_stats=track)
    helper_test(ours, theirs, batches(rng, dtype, (3, 3, 4, 4), n=2, loc=1.0, scale=2.0))


class TorchResidual(torch.nn.Module):
    """The reference: x + block(x)."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return x + self.block(x)


@DTYPES
def test_small_resnet_cnn(dtype, rng):
    """A whole CNN: conv, BatchNorm2d, a residual block, pools, flatten, linear."""
    kw = dict(dtype=dtype, rng=rng)
    ours = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False, **kw),  # a bias before BatchNorm has gradient 0
        nn.BatchNorm2d(4, dtype=dtype),
        nn.ReLU(),
        nn.Residual(
            nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, **kw), nn.Tanh(), nn.Conv2d(4, 4, 1, **kw))
        ),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, groups=2, **kw),
        nn.AvgPool2d(2, 1),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 3, **kw),
    )
    T = torch.nn
    theirs = T.Sequential(
        T.Conv2d(1, 4, 3, padding=1, bias=False),
        T.BatchNorm2d(4),
        T.ReLU(),
        TorchResidual(T.Sequential(T.Conv2d(4, 4, 3, padding=1), T.Tanh(), T.Conv2d(4, 4, 1))),
        T.MaxPool2d(2),
        T.Conv2d(4, 6, 3, groups=2),
        T.AvgPool2d(2, 1),
        T.AdaptiveAvgPool2d(2),
        T.Flatten(),
        T.Linear(24, 3),
    )
    helper_test(ours, theirs, batches(rng, dtype, (3, 1, 10, 10), n=2))


def test_conv2d_default_init_matches_torchs_bounds(rng):
    # torch: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C/groups * kh * kw = 2*3*5 = 30
    ours = nn.Conv2d(4, 600, (3, 5), groups=2, rng=rng)
    bound = 1 / np.sqrt(30)
    for p in (ours.weight.data, ours.bias.data):
        assert p.dtype == F32 and np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.95 * bound  # uniform over the whole range, not narrower
    assert abs(ours.weight.data.std() - bound / np.sqrt(3)) < 0.01 * bound
