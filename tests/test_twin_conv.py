"""The twin of the convolutional layers: to_torch / from_torch copy every tensor bit for
bit, and ``twin.compare`` proves a small CNN's forward, gradients and optimiser steps."""

from __future__ import annotations

import numpy as np
import pytest

from twinnet import losses, nn, optim

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
from twinnet import twin  # noqa: E402

pytestmark = pytest.mark.torch
T = torch.nn


def small_cnn(dtype, rng):
    """Every new layer once: conv (grouped, strided, dilated), BatchNorm2d, a residual
    block, max, average and adaptive pooling, flatten, then a linear classifier."""
    kw = dict(dtype=dtype, rng=rng)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False, **kw),
        nn.BatchNorm2d(4, dtype=dtype),
        nn.ReLU(),
        nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=2, dilation=2, **kw), nn.Tanh())),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, **kw),
        nn.AvgPool2d(2, 1),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 3, **kw),
    )


def state(module):
    if isinstance(module, torch.nn.Module):
        return {k: v.detach().numpy() for k, v in module.state_dict().items()}
    return module.state_dict()


def assert_bit_identical(a, b):
    assert sorted(a) == sorted(b)  # (torch orders buffers beside their parameters)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_keeps_every_tensor_and_the_output(dtype, rng):
    ours = small_cnn(dtype, rng)
    ours(rng.normal(size=(4, 1, 12, 12)).astype(dtype))  # move the running statistics off 1, 0
    ours.eval()
    theirs = twin.to_torch(ours)
    assert not theirs.training and isinstance(theirs[3], twin.TorchResidual)
    assert_bit_identical(state(ours), state(theirs))
    x = rng.normal(size=(2, 1, 12, 12)).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(
        ours(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=tol, atol=tol
    )
    back = twin.from_torch(theirs)
    assert repr(back) == repr(ours)
    assert_bit_identical(state(back), state(ours))
    np.testing.assert_array_equal(back(x), ours(x))


def test_from_torch_carries_every_constructor_argument():
    module = T.Sequential(
        T.Conv2d(
            4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=False
        ),
        T.MaxPool2d(3, stride=1, padding=1, dilation=1),
        T.AvgPool2d(2, padding=1, count_include_pad=False, divisor_override=3),
        T.BatchNorm2d(6, eps=1e-3, momentum=0.3, affine=False),
        T.AdaptiveAvgPool2d((2, 3)),
        T.Flatten(0, 2),
    ).double()
    conv, maxpool, avg, bn, adaptive, flat = twin.from_torch(module)
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation) == (
        (3, 2),
        (2, 1),
        (1, 0),
        (1, 2),
    )
    assert conv.groups == 2 and conv.bias is None and conv.weight.dtype == np.float64
    assert (maxpool.kernel_size, maxpool.stride, maxpool.padding) == ((3, 3), (1, 1), (1, 1))
    assert (avg.stride, avg.count_include_pad, avg.divisor_override) == ((2, 2), False, 3)
    assert (bn.eps, bn.momentum, bn.affine) == (1e-3, 0.3, False)
    assert adaptive.output_size == (2, 3) and (flat.start_dim, flat.end_dim) == (0, 2)


def test_from_torch_converts_padding_valid_and_same():
    same = twin.from_torch(T.Conv2d(2, 2, (3, 5), padding="same", dilation=(2, 1)))
    assert same.padding == (2, 2)
    assert twin.from_torch(T.Conv2d(2, 2, 3, padding="valid")).padding == (0, 0)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (T.Conv2d(2, 2, 2, padding="same"), "padding='same \\(uneven"),
        (T.Conv2d(2, 2, 3, padding_mode="reflect"), "padding_mode='reflect'"),
        (T.MaxPool2d(2, ceil_mode=True), "MaxPool2d with ceil_mode=True"),
        (T.MaxPool2d(2, return_indices=True), "return_indices=True"),
        (T.AvgPool2d(2, ceil_mode=True), "AvgPool2d with ceil_mode=True"),
        (T.BatchNorm2d(2, momentum=None), "momentum=None"),
    ],
)
def test_from_torch_refuses_options_twinnet_lacks(module, message):
    with pytest.raises(ValueError, match=message):
        twin.from_torch(module)


def test_shapes_are_checked_before_copying():
    module = T.Sequential(T.Conv2d(2, 3, 3))
    module[0].weight = T.Parameter(
        torch.zeros(3, 2, 3, 2)
    )  # a kernel that no longer matches its layer
    with pytest.raises(
        ValueError, match=r"'0.weight': twinnet shape \(3, 2, 3, 3\), torch shape \(3, 2, 3, 2\)"
    ):
        twin.from_torch(module)


@pytest.mark.parametrize(
    ("make_opt", "steps"),
    [
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3), 5),
        (lambda p: optim.Adam(p, lr=1e-2), 4),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_compare_small_cnn_with_an_optimizer(make_opt, steps, rng):
    model = small_cnn(np.float64, rng)
    x = rng.normal(size=(6, 1, 12, 12))
    y = rng.integers(0, 3, size=6)
    report = twin.compare(
        model, losses.CrossEntropyLoss(), x, y, optimizer=make_opt(model.parameters()), steps=steps
    )
    assert report.passed(), f"\n{report}"
    names = {r.name for r in report.rows}
    # every parameter and buffer is compared, inside the residual block too
    assert {"0.weight", "3.block.0.weight", "5.bias", "1.running_var", "input"} <= names
    assert report.steps == steps and report.max_rel < 1e-10


def test_compare_small_cnn_float32(rng):
    model = small_cnn(np.float32, rng)
    x = rng.normal(size=(6, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 3, size=6)
    report = twin.compare(
        model,
        losses.CrossEntropyLoss(),
        x,
        y,
        optimizer=optim.SGD(model.parameters(), lr=0.05),
        steps=3,
    )
    assert report.passed(), f"\n{report}"


def test_compare_catches_a_wrong_conv_backward(monkeypatch, rng):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, dtype=np.float64, rng=rng), nn.Flatten())
    x, y = rng.normal(size=(2, 1, 5, 5)), rng.normal(size=(2, 18))
    original = nn.Conv2d.backward

    def off_by_one_tap(self, grad_out):
        dx = original(self, grad_out)
        self.weight.grad[:, :, 0, 0] *= 1.001  # one kernel tap's gradient 0.1% off
        return dx

    monkeypatch.setattr(nn.Conv2d, "backward", off_by_one_tap)
    report = twin.compare(model, losses.MSELoss(), x, y)
    assert not report.passed() and report.worst().quantity == "grad 0.weight"


@pytest.mark.parametrize("model", ["lenet", "cnn"])
def test_twin_command_builds_a_cnn(capsys, model):
    from twinnet.cli.main import main

    code = main(
        ["twin", "--model", model, "--optimizer", "sgd", "--steps", "2", "--batch-size", "3"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"twin: {model} CNN" in out and "grad 0.weight" in out and "PASSED" in out


def test_twin_command_rejects_an_unknown_model(capsys):
    from twinnet.cli.main import main

    assert main(["twin", "--model", "resnet"]) == 2
    assert "--model must be one of mlp, cnn, lenet, got 'resnet'" in capsys.readouterr().err
