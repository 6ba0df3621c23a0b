"""``Sequential.backward(g, input_grad=False)``: the public way for a user's loop to skip
dL/d(data). It returns None, the first Linear skips its dL/dx product, and every
parameter gradient is bit-identical to the full backward's."""

from __future__ import annotations

import numpy as np
import pytest

from twinnet import losses, nn


def _model(dtype, first=None):
    rng = np.random.default_rng(0)
    layers = [nn.Linear(6, 5, dtype=dtype, rng=rng), nn.ReLU(), nn.Linear(5, 3, dtype=dtype, rng=rng)]
    return nn.Sequential(*([first] if first is not None else []), *layers)


def _grads(model, x, y, **kwargs):
    loss_fn = losses.CrossEntropyLoss()
    loss_fn(model(x), y)
    model.zero_grad()
    returned = model.backward(loss_fn.backward(), **kwargs)
    return returned, {name: p.grad.copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_input_gradient_same_parameter_gradients(dtype):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 6)).astype(dtype), rng.integers(0, 3, 4)
    model = _model(dtype)
    dx, full = _grads(model, x, y)
    assert dx.shape == x.shape
    returned, skipped = _grads(model, x, y, input_grad=False)
    assert returned is None
    assert full.keys() == skipped.keys()
    for name in full:
        assert full[name].dtype == skipped[name].dtype
        np.testing.assert_array_equal(full[name], skipped[name])  # every bit
    assert model[0].input_grad is True  # the switch is only for that call


def test_the_first_linear_skips_its_product():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 6)).astype(np.float32), rng.integers(0, 3, 4)
    model = _model(np.float32)
    first = model[0]
    seen = []
    backward = first.backward

    def spy(grad_out):
        seen.append((first.input_grad, backward(grad_out)))
        return seen[-1][1]

    first.backward = spy  # an instance attribute: Sequential.backward calls it
    _grads(model, x, y, input_grad=False)
    _grads(model, x, y)
    assert seen[0] == (False, None)  # dL/dx = dL/dy W not computed
    assert seen[1][0] is True and seen[1][1].shape == (4, 6)


def test_a_first_layer_without_the_switch_still_returns_none():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 6)), rng.integers(0, 3, 4)
    model = _model(np.float64, first=nn.Tanh())
    _, full = _grads(model, x, y)
    returned, skipped = _grads(model, x, y, input_grad=False)
    assert returned is None
    for name in full:
        np.testing.assert_array_equal(full[name], skipped[name])


def test_the_switch_is_restored_after_an_error_and_kept_when_already_off():
    model = _model(np.float32)
    model(np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match="shape"):
        model.backward(np.zeros((4, 2), np.float32), input_grad=False)  # 3 outputs expected
    assert model[0].input_grad is True
    model[0].input_grad = False  # as Trainer.fit sets it
    model(np.zeros((4, 6), np.float32))
    assert model.backward(np.zeros((4, 3), np.float32), input_grad=False) is None
    assert model[0].input_grad is False
