"""nn.Module forward hooks and full backward hooks, with PyTorch's semantics.

Checked against torch itself: the same network (``twin.to_torch``) with the same hooks
sees the same arrays (float64), a hook's return value replaces the output / the input
gradient the same way, and handles remove hooks."""

from __future__ import annotations

import numpy as np
import pytest

from twinnet import losses, nn


def mlp(rng=0):
    return nn.Sequential(
        nn.Linear(5, 7, dtype=np.float64, rng=np.random.default_rng(rng)),
        nn.Tanh(),
        nn.Linear(7, 3, dtype=np.float64, rng=np.random.default_rng(rng + 1)),
    )


def data():
    rng = np.random.default_rng(2)
    return rng.normal(size=(6, 5)), rng.integers(0, 3, 6)


def test_forward_hook_sees_module_args_and_output_and_can_replace_it():
    model, (x, _) = mlp(), data()
    seen = []
    handle = model[1].register_forward_hook(lambda m, args, out: seen.append((m, args, out)))
    y = model(x)
    (m, args, out), = seen
    assert m is model[1] and isinstance(args, tuple) and len(args) == 1
    np.testing.assert_array_equal(args[0], model[0](x))  # the Tanh's input
    np.testing.assert_array_equal(out, np.tanh(args[0]))
    handle.remove()
    model(x)
    assert len(seen) == 1  # removed: not called again
    handle.remove()  # twice is harmless

    with model[2].register_forward_hook(lambda m, args, out: out * 0 + 1.0):
        np.testing.assert_array_equal(model(x), np.ones_like(y))  # the return value replaces the output
    np.testing.assert_array_equal(model(x), y)  # the context manager removed it


def test_hooks_run_in_registration_order():
    model, (x, _) = mlp(), data()
    order = []
    model[0].register_forward_hook(lambda *a: order.append("first"))
    model[0].register_forward_hook(lambda *a: order.append("second"))
    model[0].register_full_backward_hook(lambda *a: order.append("b1"))
    model[0].register_full_backward_hook(lambda *a: order.append("b2"))
    loss = losses.CrossEntropyLoss()
    loss(model(x), data()[1])
    model.backward(loss.backward())
    assert order == ["first", "second", "b1", "b2"]


def _numpy_backward_hooks(model, x, y):
    seen = {}
    for name, m in model.named_modules():
        m.register_full_backward_hook(lambda mod, gi, go, name=name: seen.update({name or "(model)": (gi, go)}))
    loss = losses.CrossEntropyLoss()
    loss(model(x), y)
    model.backward(loss.backward())
    return seen


def test_full_backward_hooks_see_what_torch_hooks_see():
    torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
    from twinnet import twin

    model, (x, y) = mlp(), data()
    t_model = twin.to_torch(model)
    ours = _numpy_backward_hooks(model, x, y)

    theirs = {}
    for name, m in t_model.named_modules():
        m.register_full_backward_hook(lambda mod, gi, go, name=name: theirs.update({name or "(model)": (gi, go)}))
    xt = torch.from_numpy(x).requires_grad_(True)  # so that layer 0 has an input gradient too
    torch.nn.CrossEntropyLoss()(t_model(xt), torch.from_numpy(y)).backward()

    assert set(ours) == set(theirs) == {"(model)", "0", "1", "2"}
    for name in ours:
        (gi, go), (tgi, tgo) = ours[name], theirs[name]
        assert len(gi) == len(tgi) == 1 and len(go) == len(tgo) == 1, name
        np.testing.assert_allclose(go[0], tgo[0].numpy(), rtol=1e-12, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(gi[0], tgi[0].numpy(), rtol=1e-12, atol=1e-15, err_msg=name)


def test_no_input_gradient_is_none_as_in_torch():
    model, (x, y) = mlp(), data()
    model[0].input_grad = False  # like torch with data that does not require grad
    seen = _numpy_backward_hooks(model, x, y)
    assert seen["0"][0] == (None,) and seen["(model)"][0] == (None,)
    assert seen["0"][1][0].shape == (6, 7)


def test_a_returned_grad_input_replaces_it():
    model, (x, y) = mlp(), data()
    model[1].register_full_backward_hook(lambda m, gi, go: (np.zeros_like(gi[0]),))
    loss = losses.CrossEntropyLoss()
    loss(model(x), y)
    grad_x = model.backward(loss.backward())
    # nothing flows below the Tanh: layer 0 gets zero gradients, and so does the input
    assert not model[0].weight.grad.any() and not grad_x.any()
    assert model[2].weight.grad.any()


def test_a_subclass_calling_super_backward_fires_its_hooks_once():
    class Twice(nn.Tanh):
        def backward(self, grad_out):
            return super().backward(grad_out)

    layer, calls = Twice(), []
    layer.register_full_backward_hook(lambda *a: calls.append(1))
    layer(np.ones((2, 3)))
    layer.backward(np.ones((2, 3)))
    assert calls == [1]
