"""The Module API: names, traversal, modes, state dicts, gradient bookkeeping, subclasses."""

from __future__ import annotations

import re

import numpy as np
import pytest

from twinnet import check, losses, nn

F64 = np.float64


def mlp(rng, dtype=np.float32):
    return nn.Sequential(
        nn.Linear(3, 4, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.Linear(4, 2, dtype=dtype, rng=rng),
    )


def nested(rng, dtype=np.float32):
    """Linear, SwiGLU, BatchNorm1d, ReLU, Sequential(Linear, Dropout)."""
    return nn.Sequential(
        nn.Linear(3, 4, dtype=dtype, rng=rng),
        nn.SwiGLU(4, 6, dtype=dtype, rng=rng),
        nn.BatchNorm1d(4, dtype=dtype),
        nn.ReLU(),
        nn.Sequential(nn.Linear(4, 2, dtype=dtype, rng=rng), nn.Dropout(0.5, rng=0)),
    )


NESTED_PARAMS = [
    "0.weight", "0.bias",
    "1.gate.weight", "1.gate.bias", "1.up.weight", "1.up.bias", "1.down.weight", "1.down.bias",
    "2.weight", "2.bias",
    "4.0.weight", "4.0.bias",
]  # fmt: skip
NESTED_BUFFERS = ["2.running_mean", "2.running_var", "2.num_batches_tracked"]


# -- names and traversal ----------------------------------------------------------------------
def test_named_parameters_like_torch_sequential(rng):
    assert [n for n, _ in mlp(rng).named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    ]
    model = nested(rng)
    assert [n for n, _ in model.named_parameters()] == NESTED_PARAMS
    assert [n for n, _ in model.named_buffers()] == NESTED_BUFFERS
    assert list(model.state_dict()) == NESTED_PARAMS + NESTED_BUFFERS


def test_parameters_are_the_live_objects_in_named_order(rng):
    model = nested(rng)
    named = dict(model.named_parameters())
    params = model.parameters()
    assert [id(p) for p in params] == [id(p) for p in named.values()]
    assert params[2] is model[1].gate.weight and params[-1] is model[4][0].bias
    assert model.num_parameters() == sum(p.data.size for p in params)
    assert [n for n, _ in model.named_modules()][:4] == ["", "0", "1", "1.gate"]


def test_names_match_torch(torch_or_skip):
    torch = torch_or_skip

    class TorchSwiGLU(torch.nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.gate, self.up, self.down = (
                torch.nn.Linear(d, h),
                torch.nn.Linear(d, h),
                torch.nn.Linear(h, d),
            )

    theirs = torch.nn.Sequential(
        torch.nn.Linear(3, 4),
        TorchSwiGLU(4, 6),
        torch.nn.BatchNorm1d(4),
        torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.5)),
    )
    ours = nested(np.random.default_rng(0))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert set(ours.state_dict()) == set(theirs.state_dict())
    for name, value in ours.state_dict().items():
        assert value.shape == tuple(theirs.state_dict()[name].shape), name


def test_sequential_indexing_and_repr(rng):
    model = nested(rng)
    assert len(model) == 5 and isinstance(model[1], nn.SwiGLU) and model[-1] is model.layers[-1]
    assert [type(m).__name__ for m in model] == [
        "Linear",
        "SwiGLU",
        "BatchNorm1d",
        "ReLU",
        "Sequential",
    ]
    text = repr(model)
    assert "(0): Linear(in_features=3, out_features=4, bias=True)" in text
    assert "(4): Sequential(\n    (0): Linear(in_features=4, out_features=2" in text


# -- modes ------------------------------------------------------------------------------------
def test_train_and_eval_reach_every_descendant(rng):
    model = nested(rng)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model[4].eval()  # a sub-tree only
    assert model.training and not model[4][1].training and model[2].training


def test_eval_changes_dropout_and_batchnorm_behaviour(rng):
    model = nested(rng)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    model(x)
    steps = int(model[2].num_batches_tracked)
    model.eval()
    y1, y2 = model(x), model(x)
    np.testing.assert_array_equal(y1, y2)  # no random mask, running statistics fixed
    assert int(model[2].num_batches_tracked) == steps


# -- state dicts ------------------------------------------------------------------------------
def test_state_dict_holds_copies(rng):
    model = nested(rng)
    state = model.state_dict()
    for name, value in state.items():
        value[...] = 7  # scribbling on the copy
        live = dict(model.named_parameters()).get(name)
        live = live.data if live is not None else dict(model.named_buffers())[name]
        assert not np.all(live == 7), name
        assert not np.shares_memory(value, live), name


def test_load_state_dict_is_in_place(rng):
    model = nested(rng)
    model(rng.normal(size=(5, 3)).astype(np.float32))  # non-trivial running stats
    source = nested(np.random.default_rng(99))
    source(rng.normal(loc=3.0, size=(5, 3)).astype(np.float32))
    source(rng.normal(loc=3.0, size=(5, 3)).astype(np.float32))
    arrays = {n: p.data for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    model.load_state_dict(source.state_dict())

    for name, p in model.named_parameters():
        assert p.data is arrays[name], name  # same array object: optimisers' references stay valid
        np.testing.assert_array_equal(p.data, dict(source.named_parameters())[name].data)
    for name, b in model.named_buffers():
        assert b is buffers[name], name
        np.testing.assert_array_equal(b, dict(source.named_buffers())[name])
    assert int(model[2].num_batches_tracked) == 2


def test_strict_load_lists_every_problem_and_changes_nothing(rng):
    model = mlp(rng)
    before = model.state_dict()
    state = model.state_dict()
    del state["0.bias"], state["2.weight"]  # two missing
    state["3.weight"] = np.zeros((2, 2))  # one unexpected
    state["0.weight"] = np.zeros((5, 3))  # one of the wrong shape
    state["2.bias"] = np.zeros((2, 1))  # and another
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    msg = str(info.value)
    assert msg.startswith("cannot load state into Sequential: ")
    for part in [
        "missing tensor '0.bias'",
        "missing tensor '2.weight'",
        "unexpected tensor '3.weight'",
        "'0.weight': checkpoint has shape (5, 3), model has (4, 3)",
        "'2.bias': checkpoint has shape (2, 1), model has (2,)",
    ]:
        assert part in msg, part
    for name, value in model.state_dict().items():  # nothing was half-loaded
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_non_strict_load_skips_names_but_not_shapes(rng):
    model = mlp(rng)
    state = {"0.bias": np.full(4, 0.5, np.float32), "extra": np.zeros(1)}
    model.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(model[0].bias.data, 0.5)
    with pytest.raises(
        ValueError, match=re.escape("'2.bias': checkpoint has shape (3,), model has (2,)")
    ):
        model.load_state_dict({"2.bias": np.zeros(3)}, strict=False)


def test_buffers_are_saved_but_not_trained(rng):
    bn = nn.BatchNorm1d(3)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert set(bn.state_dict()) == {
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    }
    bn.running_mean = np.full(3, 2.0, np.float32)  # reassigning a buffer keeps it a buffer
    assert [n for n, _ in bn.named_buffers()] == [
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], 2.0)


def test_reassigning_keeps_names_in_place(rng):
    # as in torch: replacing a parameter or a layer keeps its position (Sequential runs in it)
    layer = nn.Linear(2, 2, rng=rng)
    layer.weight = nn.Parameter(np.zeros((2, 2), np.float32))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    model = mlp(rng)
    setattr(model, "0", nn.Linear(3, 4, rng=rng))
    assert [n for n, _ in model.named_children()] == ["0", "1", "2"]
    assert model(np.ones((1, 3), np.float32)).shape == (1, 2)
    layer.bias = None  # a non-parameter value removes the parameter
    assert [n for n, _ in layer.named_parameters()] == ["weight"]


# -- gradients --------------------------------------------------------------------------------
def test_zero_grad_clears_every_parameter(rng):
    model = nested(rng)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    model.backward(np.ones_like(model(x)))
    assert all(np.any(p.grad != 0) for p in model.parameters())
    model.zero_grad()
    assert all(np.all(p.grad == 0) for p in model.parameters())


def test_gradients_accumulate_across_backward_calls(rng):
    # like torch: two forward/backward passes without zero_grad add up
    model = nested(rng, F64)
    model.eval()  # deterministic: no dropout mask, fixed statistics
    x, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    model(x)
    gx1 = model.backward(g)
    once = {n: p.grad.copy() for n, p in model.named_parameters()}
    model(x)
    gx2 = model.backward(g)
    np.testing.assert_array_equal(gx1, gx2)  # the input gradient is returned, not accumulated
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * once[name], rtol=1e-14, err_msg=name)


def test_zero_grad_then_accumulate_product_overwrites_old_values(rng):
    p = nn.Parameter(np.zeros((3, 5)))
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    p.grad[...] = 7.0  # an old gradient
    p.zero_grad()
    p.accumulate_product(a, b)  # written straight into the array: no 7 left
    np.testing.assert_array_equal(p.grad, a @ b)
    p.accumulate_product(a, b)  # without zero_grad it adds up, like torch
    np.testing.assert_array_equal(p.grad, (a @ b) + (a @ b))
    p.zero_grad()
    assert not p.grad.any()  # read after zero_grad: zeros


def test_linear_backward_after_zero_grad_equals_a_fresh_layer(rng):
    x, g = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    used, fresh = nn.Linear(4, 3, dtype=F64, rng=np.random.default_rng(0)), nn.Linear(4, 3, dtype=F64, rng=np.random.default_rng(0))
    used(x)
    used.backward(rng.normal(size=(6, 3)))
    used.zero_grad()
    for layer in (used, fresh):
        layer(x)
        layer.backward(g)
    np.testing.assert_array_equal(used.weight.grad, fresh.weight.grad)
    np.testing.assert_array_equal(used.weight.grad, g.T @ x)
    np.testing.assert_array_equal(used.bias.grad, g.sum(axis=0))


def test_grad_assignment_is_checked():
    p = nn.Parameter(np.zeros((2, 3), np.float32), name="w")
    p.grad = np.ones((2, 3), np.float32)
    assert p.grad.sum() == 6
    with pytest.raises(ValueError, match=r"grad must be a float32 array of shape \(2, 3\), got float64 array"):
        p.grad = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"shape \(2, 3\), got float32 array of shape \(3, 2\)"):
        p.grad = np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match="got list"):
        p.grad = [[0.0] * 3] * 2


def test_parameter_keeps_grad_beside_data():
    p = nn.Parameter(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
    assert p.grad.shape == (2, 3) and p.grad.dtype == np.float32 and not p.grad.any()
    assert (p.shape, p.dtype, p.size) == ((2, 3), np.float32, 6)
    assert repr(p) == "Parameter 'w'(shape=(2, 3), dtype=float32)"
    with pytest.raises(TypeError, match="Parameter data must be a floating array, got dtype int64"):
        nn.Parameter(np.arange(3))


# -- user-written modules ---------------------------------------------------------------------
class Residual(nn.Module):
    """y = x + fc(gelu(norm(x))): a pre-norm residual block written by a user."""

    def __init__(self, d, rng):
        super().__init__()
        self.norm = nn.LayerNorm(d, dtype=F64)
        self.act = nn.GELU()
        self.fc = nn.Linear(d, d, dtype=F64, rng=rng)

    def forward(self, x):
        return x + self.fc(self.act(self.norm(x)))

    def backward(self, grad_out):
        # x reaches y twice, directly and through the branch: the two gradients add
        return grad_out + self.norm.backward(self.act.backward(self.fc.backward(grad_out)))


def test_user_module_works_with_gradcheck(rng):
    model = nn.Sequential(
        nn.Linear(3, 4, dtype=F64, rng=rng),
        Residual(4, rng),
        nn.Tanh(),
        nn.Linear(4, 2, dtype=F64, rng=rng),
    )
    model[1].norm.weight.data[...] = rng.uniform(0.5, 2, size=4)
    model[1].norm.bias.data[...] = rng.normal(size=4)
    assert [n for n, _ in model.named_parameters()][2:6] == [
        "1.norm.weight", "1.norm.bias", "1.fc.weight", "1.fc.bias"
    ]  # fmt: skip
    x, y = rng.normal(size=(5, 3)), rng.integers(0, 2, size=5)
    report = check.gradcheck(model, losses.CrossEntropyLoss(), x, y)
    assert report.passed and report.max_rel_error < 1e-7, f"\n{report}"
    model.eval()
    assert not model[1].norm.training  # modes reach inside user modules too


def test_subclass_must_call_super_init():
    class Forgetful(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match=r"Forgetful.__init__ must call super\(\).__init__\(\)"):
        Forgetful()


def test_base_module_methods_must_be_implemented():
    with pytest.raises(NotImplementedError, match="Module does not implement forward"):
        nn.Module()(np.zeros((1, 1)))
    with pytest.raises(NotImplementedError, match="Module does not implement backward"):
        nn.Module().backward(np.zeros((1, 1)))
