"""Tests of twinnet.twin: conversion both ways, compare(), optimiser and schedule twins.

Each test can fail: round trips are checked bit for bit, comparisons at the float64
tolerance, and a deliberately broken backward, a torch Dropout with its own masks and a
wrong optimiser state are shown to be caught.
"""

from __future__ import annotations

import copy
import importlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install 'twinnet[torch]'")

from twinnet import losses, nn, optim, twin  # noqa: E402
from twinnet.optim import lr_scheduler as sch  # noqa: E402

# the package exports functions named like its modules (twin.compare), so fetch the modules
compare_mod = importlib.import_module("twinnet.twin.compare")
twin_optim = importlib.import_module("twinnet.twin.optim")

pytestmark = pytest.mark.torch
DTYPES = [np.float32, np.float64]


# -- helpers --------------------------------------------------------------------------------------


def randomize(model: nn.Module, rng: np.random.Generator) -> nn.Module:
    """Give every parameter and buffer random values (BatchNorm's start at 1 and 0)."""
    for _, p in model.named_parameters():
        p.data[...] = rng.normal(size=p.shape) * 0.5
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm1d) and mod.track_running_stats:
            mod.running_mean[...] = rng.normal(size=mod.running_mean.shape)
            mod.running_var[...] = rng.uniform(0.5, 2.0, size=mod.running_var.shape)
            mod.num_batches_tracked[...] = 7
    return model


def our_state(model: nn.Module) -> dict[str, np.ndarray]:
    return model.state_dict()


def torch_state(module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def assert_bit_identical(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.dtype == y.dtype, (k, x.dtype, y.dtype)
        assert x.shape == y.shape, (k, x.shape, y.shape)
        assert x.tobytes() == y.tobytes(), k


def all_modes(model) -> list[bool]:
    return [m.training for m in model.modules()]


def mlp(dtype=np.float64, seed=0, sizes=(6, 16, 4)) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(sizes[0], sizes[1], dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.Linear(sizes[1], sizes[2], dtype=dtype, rng=rng),
    )


def batch(dtype=np.float64, n=12, d=6, classes=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(dtype), rng.integers(0, classes, n)


# every engine layer, each built for a dtype (width 5 in, the size noted out)
LAYERS = {
    "Linear": lambda dt: nn.Linear(5, 3, dtype=dt),
    "Linear(bias=False)": lambda dt: nn.Linear(5, 3, bias=False, dtype=dt),
    "Sigmoid": lambda dt: nn.Sigmoid(),
    "Tanh": lambda dt: nn.Tanh(),
    "ReLU": lambda dt: nn.ReLU(),
    "LeakyReLU(0.2)": lambda dt: nn.LeakyReLU(0.2),
    "GELU": lambda dt: nn.GELU(),
    "GELU(tanh)": lambda dt: nn.GELU(approximate="tanh"),
    "SiLU": lambda dt: nn.SiLU(),
    "Softmax": lambda dt: nn.Softmax(dim=-1),
    "Softmax(dim=0)": lambda dt: nn.Softmax(dim=0),
    "Identity": lambda dt: nn.Identity(),
    "SwiGLU": lambda dt: nn.SwiGLU(5, 7, 3, dtype=dt),
    "SwiGLU(bias=False)": lambda dt: nn.SwiGLU(5, 4, bias=False, dtype=dt),
    "BatchNorm1d": lambda dt: nn.BatchNorm1d(5, eps=1e-3, momentum=0.3, dtype=dt),
    "BatchNorm1d(affine=False)": lambda dt: nn.BatchNorm1d(5, affine=False, dtype=dt),
    "BatchNorm1d(no stats)": lambda dt: nn.BatchNorm1d(5, track_running_stats=False, dtype=dt),
    "LayerNorm": lambda dt: nn.LayerNorm(5, eps=1e-4, dtype=dt),
    "LayerNorm(bias=False)": lambda dt: nn.LayerNorm(5, bias=False, dtype=dt),
    "LayerNorm(no affine)": lambda dt: nn.LayerNorm(5, elementwise_affine=False, dtype=dt),
    "Dropout": lambda dt: nn.Dropout(0.3),
    "Sequential(nested)": lambda dt: nn.Sequential(
        nn.Linear(5, 6, dtype=dt),
        nn.Sequential(nn.BatchNorm1d(6, dtype=dt), nn.GELU(), nn.SwiGLU(6, 3, dtype=dt)),
        nn.Dropout(0.1),
        nn.Linear(6, 2, dtype=dt),
    ),
}


# -- import hygiene -------------------------------------------------------------------------------


def test_import_twinnet_does_not_import_torch():
    code = "import sys, twinnet; assert 'torch' not in sys.modules, 'twinnet imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_twin_without_torch_gives_a_clear_error():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n    import twinnet.twin\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "twinnet.twin needs PyTorch: pip install 'twinnet[torch]'" in out.stdout


# -- conversion -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_round_trip_is_bit_identical(name, dtype):
    rng = np.random.default_rng(3)
    layer = randomize(LAYERS[name](dtype), rng)
    theirs = twin.to_torch(layer)
    for t in theirs.state_dict().values():
        if t.is_floating_point():
            assert t.dtype == {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    assert_bit_identical(our_state(layer), torch_state(theirs))
    back = twin.from_torch(theirs)
    assert type(back) is type(layer)
    assert_bit_identical(our_state(layer), our_state(back))
    assert repr(back) == repr(layer)

    # same function: eval mode (no dropout) on a fresh batch, bitwise for elementwise layers
    for m in (layer, theirs, back):
        m.eval()
    x = rng.normal(size=(4, 5)).astype(dtype)
    ya, yb = layer(x), theirs(torch.from_numpy(x)).detach().numpy()
    assert ya.dtype == yb.dtype == back(x).dtype
    np.testing.assert_allclose(ya, yb, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    np.testing.assert_array_equal(back(x), ya)


def test_hyperparameters_carry_over_both_ways():
    layers = [
        nn.LeakyReLU(0.3),
        nn.GELU(approximate="tanh"),
        nn.Softmax(dim=0),
        nn.Dropout(0.25),
        nn.BatchNorm1d(4, eps=1e-3, momentum=0.05, affine=False, track_running_stats=False),
        nn.LayerNorm(4, eps=1e-6, elementwise_affine=True, bias=False),
    ]
    t = twin.to_torch(nn.Sequential(*layers))
    assert t[0].negative_slope == 0.3
    assert t[1].approximate == "tanh"
    assert t[2].dim == 0
    assert t[3].p == 0.25
    assert (t[4].eps, t[4].momentum, t[4].affine, t[4].track_running_stats) == (
        1e-3,
        0.05,
        False,
        False,
    )
    assert t[5].eps == 1e-6 and t[5].bias is None and t[5].weight is not None
    back = twin.from_torch(t)
    assert back[0].negative_slope == 0.3 and back[1].approximate == "tanh" and back[2].dim == 0
    assert back[3].p == 0.25
    assert (back[4].eps, back[4].momentum, back[4].affine, back[4].track_running_stats) == (
        1e-3,
        0.05,
        False,
        False,
    )
    assert back[5].eps == 1e-6 and back[5].bias is None
    # torch's implicit Softmax dim (None: dim 1 of a batch) is the last axis
    assert twin.from_torch(torch.nn.Softmax()).dim == -1


def test_state_dict_names_match_torch():
    model = LAYERS["Sequential(nested)"](np.float32)
    theirs = twin.to_torch(model)
    assert sorted(our_state(model)) == sorted(theirs.state_dict())
    assert "1.2.gate.weight" in theirs.state_dict()
    assert isinstance(theirs[1][2], twin.TorchSwiGLU)


def test_training_mode_is_mirrored():
    model = LAYERS["Sequential(nested)"](np.float64)
    model.eval()
    model[1].train()  # mixed: the inner block trains, the rest evaluates
    theirs = twin.to_torch(model)
    assert all_modes(theirs) == all_modes(model)
    assert all_modes(twin.from_torch(theirs)) == all_modes(model)
    assert not theirs.training and theirs[1].training and theirs[1][0].training


def test_from_torch_of_a_model_built_in_torch():
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(5, 8),
        torch.nn.LayerNorm(8),
        torch.nn.SiLU(),
        torch.nn.BatchNorm1d(8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 3),
    ).double()
    module.eval()
    ours = twin.from_torch(module)
    x = np.random.default_rng(0).normal(size=(7, 5))
    np.testing.assert_allclose(ours(x), module(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)
    assert_bit_identical(our_state(ours), torch_state(module))


def test_unsupported_layers_raise_a_clear_type_error():
    with pytest.raises(TypeError, match=r"Conv1d.*supported torch layers: Linear, .*Sequential"):
        twin.from_torch(torch.nn.Conv1d(1, 1, 3))
    with pytest.raises(TypeError, match="Conv1d"):
        twin.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Conv1d(1, 1, 3)))

    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match=r"Custom.*supported twinnet layers: Linear"):
        twin.to_torch(nn.Sequential(nn.ReLU(), Custom()))

    class MyReLU(nn.ReLU):  # a subclass may change forward: not silently treated as ReLU
        pass

    with pytest.raises(TypeError, match="MyReLU"):
        twin.to_torch(MyReLU())
    with pytest.raises(TypeError, match="twinnet nn.Module"):
        twin.to_torch(torch.nn.ReLU())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        twin.from_torch(nn.ReLU())
    with pytest.raises(TypeError, match="float32 and float64"):
        twin.from_torch(torch.nn.Linear(2, 2).half())


def test_loss_twins():
    assert isinstance(twin.loss_to_torch(losses.MSELoss()), torch.nn.MSELoss)
    ce = twin.loss_to_torch(losses.CrossEntropyLoss(label_smoothing=0.2))
    assert ce.label_smoothing == 0.2
    bce = twin.loss_to_torch(losses.BCEWithLogitsLoss(pos_weight=[2.0, 0.5]), np.float64)
    assert bce.pos_weight.dtype == torch.float64 and bce.pos_weight.tolist() == [2.0, 0.5]

    class Hinge(losses.Loss):
        pass

    with pytest.raises(TypeError, match="Hinge.*MSELoss"):
        twin.loss_to_torch(Hinge())


# -- compare --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,limit", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_compare_mlp_cross_entropy(dtype, limit):
    x, y = batch(dtype)
    report = twin.compare(mlp(dtype), losses.CrossEntropyLoss(), x, y, precision="model")
    quantities = [r.quantity for r in report.rows]
    assert quantities == [
        "output",
        "loss",
        "grad 0.weight",
        "grad 0.bias",
        "grad 2.weight",
        "grad 2.bias",
        "grad input",
    ]
    assert report.max_rel < limit, str(report)
    assert report.passed()
    assert report.max_abs < 1e-5
    assert np.dtype(report.dtype) == np.dtype(dtype)
    text = str(report)
    assert text.splitlines()[-1].startswith("PASSED")
    assert "grad 0.weight" in text and "max_rel" in text
    # the table is aligned: the numbers start in the same column on every row
    rows = text.splitlines()[2:-1]
    assert len({len(line) for line in rows}) == 1


@pytest.mark.parametrize(
    "loss_fn,target,final",
    [
        (losses.MSELoss(), "normal", None),
        (losses.BCEWithLogitsLoss(), "binary", None),
        (losses.BCEWithLogitsLoss(pos_weight=[3.0, 0.5, 1.0, 2.0]), "binary", None),
        (losses.BCELoss(), "binary", nn.Sigmoid()),
        (losses.CrossEntropyLoss(label_smoothing=0.1), "classes", None),
    ],
    ids=["mse", "bce-logits", "bce-logits-pos-weight", "bce", "ce-label-smoothing"],
)
def test_compare_every_loss(loss_fn, target, final):
    rng = np.random.default_rng(5)
    model = mlp()
    if final is not None:
        model = nn.Sequential(*model.layers, final)
    x = rng.normal(size=(9, 6))
    y = {
        "normal": rng.normal(size=(9, 4)),
        "binary": rng.integers(0, 2, (9, 4)).astype(np.float64),
        "classes": rng.integers(0, 4, 9),
    }[target]
    report = twin.compare(model, loss_fn, x, y)
    assert report.passed(), str(report)
    assert report.rows[1].quantity == "loss"


def test_compare_single_output_with_flat_target():
    x, _ = batch()
    y = np.random.default_rng(0).integers(0, 2, 12)  # (B,) for a (B, 1) prediction
    report = twin.compare(mlp(sizes=(6, 8, 1)), losses.BCEWithLogitsLoss(), x, y)
    assert report.passed(), str(report)


def test_compare_detects_a_broken_backward(monkeypatch):
    x, y = batch()
    model = mlp()
    assert twin.compare(model, losses.CrossEntropyLoss(), x, y).passed()
    right = nn.ReLU.backward
    monkeypatch.setattr(nn.ReLU, "backward", lambda self, g: right(self, g) * 1.001)
    report = twin.compare(model, losses.CrossEntropyLoss(), x, y)
    assert not report.passed()
    failing = {r.quantity for r in report.failures()}
    # the error enters below the ReLU: the first layer and the input are wrong, the last is not
    assert failing == {"grad 0.weight", "grad 0.bias", "grad input"}
    assert 5e-4 < report.max_rel < 2e-3
    assert str(report).splitlines()[-1].startswith("FAILED: 3 of 7")
    assert "<-- FAIL" in str(report)


def test_compare_detects_a_wrong_forward(monkeypatch):
    x, y = batch(np.float32)
    right = nn.Tanh.forward
    monkeypatch.setattr(nn.Tanh, "forward", lambda self, x: right(self, x * np.float32(1.001)))
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(6, 5, dtype=np.float32, rng=rng),
        nn.Tanh(),
        nn.Linear(5, 4, dtype=np.float32, rng=rng),
    )
    report = twin.compare(model, losses.CrossEntropyLoss(), x, y)
    assert not report.passed()
    assert {"output", "loss"} <= {r.quantity for r in report.failures()}


def test_compare_leaves_model_loss_and_optimizer_untouched():
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(6, 8, bias=False, dtype=np.float64, rng=rng),  # a bias here gets noise only
        nn.BatchNorm1d(8, dtype=np.float64),
        nn.ReLU(),
        nn.Dropout(0.5, rng=4),
        nn.Linear(8, 4, dtype=np.float64, rng=rng),
    )
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x, y = batch()
    # some history: optimiser state, running stats, accumulated grads, a consumed rng
    loss_fn = losses.CrossEntropyLoss()
    for _ in range(3):
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
    model.backward(loss_fn.backward())  # leave gradients in place
    before = copy.deepcopy((model.state_dict(), opt.state_dict()))
    grads = [p.grad.copy() for p in model.parameters()]
    rng_state = copy.deepcopy(model[3].rng.bit_generator.state)
    cache = loss_fn._cache

    report = twin.compare(model, loss_fn, x, y, optimizer=opt, steps=4)
    assert report.passed(), str(report)

    assert_bit_identical(model.state_dict(), before[0])
    after = opt.state_dict()
    assert after["param_groups"] == before[1]["param_groups"]
    for i, s in before[1]["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(after["state"][i][k], v)
    for p, g in zip(model.parameters(), grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)
    assert model[3].rng.bit_generator.state == rng_state
    assert loss_fn._cache is cache
    assert model.training


def test_dropout_mask_is_shared():
    rng = np.random.default_rng(2)
    model = nn.Sequential(
        nn.Linear(6, 32, dtype=np.float64, rng=rng),
        nn.Dropout(0.5, rng=7),
        nn.Tanh(),
        nn.Linear(32, 4, dtype=np.float64, rng=rng),
        nn.Dropout(0.2, rng=8),
    )
    x, y = batch()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    report = twin.compare(model, losses.CrossEntropyLoss(), x, y, optimizer=opt, steps=5)
    assert report.passed(), str(report)


def test_unshared_dropout_masks_would_be_caught(monkeypatch):
    """Proof that the Dropout test can fail: with torch drawing its own masks it does."""
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Linear(6, 32, dtype=np.float64, rng=rng), nn.Dropout(0.5, rng=7))
    x = rng.normal(size=(12, 6))
    monkeypatch.setattr(compare_mod, "_share_dropout_masks", lambda ours, theirs: theirs)
    torch.manual_seed(0)
    report = twin.compare(model, losses.MSELoss(), x, rng.normal(size=(12, 32)))
    assert not report.passed()


def test_dropout_in_eval_mode_is_the_identity_on_both_sides():
    model = nn.Sequential(nn.Linear(6, 4, dtype=np.float64), nn.Dropout(0.5)).eval()
    x, y = batch()
    assert twin.compare(model, losses.CrossEntropyLoss(), x, y).passed()


def test_batchnorm_running_stats_match_after_steps():
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(6, 10, bias=False, dtype=np.float64, rng=rng),
        nn.BatchNorm1d(10, momentum=0.2, dtype=np.float64),
        nn.ReLU(),
        nn.Linear(10, 4, dtype=np.float64, rng=rng),
    )
    x, y = batch()
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    report = twin.compare(model, losses.CrossEntropyLoss(), x, y, optimizer=opt, steps=10)
    assert report.passed(), str(report)
    rows = {r.quantity: r for r in report.rows}
    for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert f"buffer {name}" in rows
        assert rows[f"after step 10: {name}"].max_rel < 1e-10
    assert rows["after step 10: 1.num_batches_tracked"].max_abs == 0
    # the statistics really moved (agreement on a constant would prove nothing)
    assert model[1].num_batches_tracked == 0  # compare trained a copy
    trained = copy.deepcopy(model)
    loss_fn = losses.CrossEntropyLoss()
    for _ in range(10):
        loss_fn(trained(x), y)
        trained.backward(loss_fn.backward())
    assert trained[1].num_batches_tracked == 10
    assert np.abs(trained[1].running_mean).max() > 0.1


def test_batchnorm_eval_mode_uses_running_stats():
    rng = np.random.default_rng(0)
    model = randomize(
        nn.Sequential(nn.Linear(6, 5, dtype=np.float64), nn.BatchNorm1d(5, dtype=np.float64)), rng
    ).eval()
    x, _ = batch(n=1)  # batch of one is fine in eval mode
    report = twin.compare(model, losses.MSELoss(), x, rng.normal(size=(1, 5)))
    assert report.passed(), str(report)


def test_gradient_that_is_zero_in_exact_arithmetic_is_not_a_failure():
    """A bias before BatchNorm has gradient 0 + rounding noise on both sides (the floor)."""
    for dtype in DTYPES:
        rng = np.random.default_rng(0)
        model = nn.Sequential(
            nn.Linear(6, 30, dtype=dtype, rng=rng),
            nn.BatchNorm1d(30, dtype=dtype),
            nn.ReLU(),
            nn.Linear(30, 4, dtype=dtype, rng=rng),
        )
        x, y = batch(dtype, n=64)
        report = twin.compare(model, losses.CrossEntropyLoss(), x, y, precision="model")
        assert report.passed(), str(report)
        bias = next(r for r in report.rows if r.quantity == "grad 0.bias")
        assert bias.max_abs > 0 or dtype == np.float64  # float32 noise is really there


def test_relative_difference_definition():
    rec = compare_mod.Recorder(np.float64)
    rec.add("a", "grad", np.array([1.0, 2.0]), np.array([1.0, 2.5]))  # 0.5 / 2.5
    rec.add("b", "grad", np.array([1e-9]), np.array([0.0]))  # 1e-9 / (1e-2 * 2.5)
    rec.add("c", "grad", np.array([np.nan, np.inf]), np.array([np.nan, np.inf]))
    rec.add("d", "grad", np.array([np.nan]), np.array([1.0]))
    rec.add("e", "loss", 3.0, 2.0)
    rows = {r.quantity: r for r in rec.rows()}
    assert rows["a"].max_abs == 0.5 and rows["a"].max_rel == pytest.approx(0.2)
    assert rows["b"].max_rel == pytest.approx(1e-9 / 2.5e-2)
    assert rows["c"].max_abs == 0 and rows["c"].max_rel == 0
    assert rows["d"].max_rel == np.inf
    assert rows["e"].max_rel == pytest.approx(0.5)
    # float32: every tensor is measured against the largest of its kind
    rec32 = compare_mod.Recorder(np.float32)
    rec32.add("big", "grad", np.array([2.0]), np.array([2.5]))
    rec32.add("small", "grad", np.array([0.1 + 1e-6]), np.array([0.1]))
    rows32 = {r.quantity: r for r in rec32.rows()}
    assert rows32["big"].max_rel == pytest.approx(0.2)
    assert rows32["small"].max_rel == pytest.approx(1e-6 / 2.5)
    report = twin.CompareReport(list(rows.values()), np.float64)
    assert not report.passed()
    assert report.worst().quantity == "d"


def test_report_tolerance_defaults_by_dtype():
    r = twin.Row("x", 1e-7, 1e-7)
    assert twin.CompareReport([r], np.float32).passed()
    assert not twin.CompareReport([r], np.float64).passed()
    assert twin.CompareReport([r], np.float64).passed(rtol=1e-6)
    assert twin.CompareReport([r], np.float64).max_rel == 1e-7


def small_float32_mlp(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(20, 64, rng=rng), nn.ReLU(), nn.Linear(64, 32, rng=rng), nn.ReLU(), nn.Linear(32, 10, rng=rng)
    )


def test_float32_model_with_adam_passes_in_float64_by_default():
    """Issue 15: the README's float32 model with Adam must pass as written.

    Compared in float32 the weights part by ~1e-4 of their scale after one step (Adam
    turns the rounding of gradient entries near eps into ordinary-sized steps); the
    default compares float64 copies and holds to 1e-10. (The README's 100 steps run in
    tests/test_docs.py.)
    """
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(784, 512, rng=rng), nn.ReLU(), nn.Linear(512, 256, rng=rng), nn.ReLU(), nn.Linear(256, 10, rng=rng)
    )
    x, y = rng.random((16, 784)).astype(np.float32), rng.integers(0, 10, 16)  # pixels in [0, 1]
    loss_fn = losses.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn(model(x), y)  # one step before, as the README's engine example does
    model.backward(loss_fn.backward())
    opt.step()
    before = copy.deepcopy((model.state_dict(), opt.state_dict()))
    report = twin.compare(model, loss_fn, x, y, optimizer=opt, steps=3)
    assert report.passed(), str(report)
    assert report.max_rel < 1e-10
    assert np.dtype(report.dtype) == np.float64 and np.dtype(report.model_dtype) == np.float32
    assert "float64 copies of a float32 model" in str(report).splitlines()[0]
    assert len([r for r in report.rows if r.step == 3]) == 6
    # the originals are untouched and still float32, the optimiser's state included
    assert all(p.dtype == np.float32 for p in model.parameters())
    after = (model.state_dict(), opt.state_dict())
    for k, v in before[0].items():
        assert after[0][k].dtype == v.dtype and np.array_equal(after[0][k], v), k
    for i, state in before[1]["state"].items():
        for key, v in state.items():
            w = after[1]["state"][i][key]
            assert np.asarray(w).dtype == np.asarray(v).dtype and np.array_equal(w, v), (i, key)
    # compared in float32 the two sides differ by float32 rounding, amplified by Adam
    f32 = twin.compare(model, loss_fn, x, y, optimizer=opt, steps=3, precision="model")
    assert np.dtype(f32.dtype) == np.float32
    assert f32.max_rel > 1e4 * report.max_rel


def test_float64_copies_keep_dropout_and_batchnorm_state():
    rng = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Linear(6, 16, rng=rng), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3, rng=4), nn.Linear(16, 4, rng=rng)
    )
    x, y = batch(np.float32, n=16)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    report = twin.compare(model, losses.CrossEntropyLoss(), x, y, optimizer=opt, steps=5)
    assert report.passed(), str(report)
    assert any(r.quantity.startswith("buffer 1.running_mean") for r in report.rows)
    # the comparison drew its masks from a copy of the layer's stream: the original's is untouched
    assert model[3].rng.random() == np.random.default_rng(4).random()


def test_float32_rule_is_as_accurate_as_torch():
    """precision="model": a row passes within 1e-5, or when ours is at most 4x as far from
    the float64 answer as torch's float32 result is."""
    rule = twin.Row("w", max_abs=1e-3, max_rel=1e-3, ref_abs=1e-3, own_abs=3.9e-3)
    assert rule.within(1e-5)
    assert not twin.Row("w", 1e-3, 1e-3, ref_abs=1e-3, own_abs=4.1e-3).within(1e-5)
    assert not twin.Row("w", 1e-3, 1e-3).within(1e-5)  # float64: no reference, 1e-5 only
    assert twin.Row("w", 1e-6, 1e-6).within(1e-5)


def test_float32_precision_still_catches_a_broken_backward(monkeypatch):
    model = small_float32_mlp()
    x, y = batch(np.float32, n=32, d=20, classes=10)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    ok = twin.compare(model, losses.CrossEntropyLoss(), x, y, optimizer=opt, steps=3, precision="model")
    assert ok.passed(), str(ok)
    assert any(r.ref_abs is not None and r.ref_abs > 0 for r in ok.rows)
    right = nn.ReLU.backward
    monkeypatch.setattr(nn.ReLU, "backward", lambda self, g: right(self, g) * np.float32(1.001))
    for precision in ("model", "float64"):
        bad = twin.compare(model, losses.CrossEntropyLoss(), x, y, optimizer=opt, steps=3, precision=precision)
        assert not bad.passed(), precision
        assert "grad 0.weight" in {r.quantity for r in bad.failures()}


def test_compare_rejects_bad_arguments():
    x, y = batch()
    with pytest.raises(ValueError, match="needs an optimizer"):
        twin.compare(mlp(), losses.CrossEntropyLoss(), x, y, steps=3)
    with pytest.raises(ValueError, match="steps must be"):
        twin.compare(mlp(), losses.CrossEntropyLoss(), x, y, steps=-1)
    with pytest.raises(ValueError, match="precision must be one of float64, model, got 'half'"):
        twin.compare(mlp(), losses.CrossEntropyLoss(), x, y, precision="half")
    with pytest.raises(TypeError, match="floating numpy array"):
        twin.compare(mlp(), losses.CrossEntropyLoss(), x.tolist(), y)
    other = mlp(seed=5)
    with pytest.raises(ValueError, match="not a parameter of model"):
        twin.compare(mlp(), losses.CrossEntropyLoss(), x, y, optim.SGD(other.parameters()), 1)


# -- optimisers -----------------------------------------------------------------------------------

OPTIMIZERS = {
    "Adam": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "Adam(amsgrad)": lambda p: optim.Adam(p, lr=1e-2, amsgrad=True),
    "AdamW": lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "SGD(nesterov)": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "SGD(dampening)": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3),
    "RMSprop(centered, momentum)": lambda p: optim.RMSprop(
        p, lr=1e-3, centered=True, momentum=0.9, weight_decay=1e-3
    ),
    "Adagrad": lambda p: optim.Adagrad(
        p, lr=0.1, lr_decay=1e-3, weight_decay=1e-3, initial_accumulator_value=0.1
    ),
}


def deep_model(dtype=np.float64):
    rng = np.random.default_rng(11)
    return nn.Sequential(
        nn.Linear(6, 16, dtype=dtype, rng=rng),
        nn.Tanh(),
        nn.Linear(16, 16, dtype=dtype, rng=rng),
        nn.LayerNorm(16, dtype=dtype),
        nn.GELU(),
        nn.Linear(16, 4, dtype=dtype, rng=rng),
    )


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_twins_agree_for_100_steps(name):
    model = deep_model()
    x, y = batch()
    opt = OPTIMIZERS[name](model.parameters())
    report = twin.compare(model, losses.CrossEntropyLoss(), x, y, optimizer=opt, steps=100)
    assert report.max_rel < 1e-9, str(report)
    step_rows = [r for r in report.rows if r.step == 100]
    assert len(step_rows) == len(model.parameters())
    # training moved the weights far beyond the tolerance (so agreement means something)
    start = dict(model.named_parameters())
    moved = twin.to_torch(model)  # untouched model: compare worked on copies
    assert all(
        np.array_equal(start[k].data, v.detach().numpy()) for k, v in moved.named_parameters()
    )


def test_optimizer_with_param_groups_and_existing_state():
    model = deep_model()
    x, y = batch()
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = optim.Adagrad(
        [
            {"params": decay, "weight_decay": 1e-2},
            {"params": rest, "lr": 0.05, "initial_accumulator_value": 0.5},
        ],
        lr=0.1,
    )
    loss_fn = losses.CrossEntropyLoss()
    for _ in range(5):  # the twin must start from this state, not from scratch
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
    report = twin.compare(model, loss_fn, x, y, optimizer=opt, steps=20)
    assert report.max_rel < 1e-9, str(report)


def test_to_torch_optimizer_copies_groups_and_state():
    model = deep_model()
    opt = optim.Adam(
        [
            {"params": model[0].parameters(), "lr": 0.01, "betas": (0.8, 0.99)},
            {"params": model[5].parameters(), "weight_decay": 0.1},
        ],
        lr=0.002,
        amsgrad=True,
    )
    for p in model.parameters():
        p.grad[...] = 1.0
    opt.step()
    theirs = twin.to_torch(model)
    topt = twin.to_torch_optimizer(opt, theirs, model=model)
    assert isinstance(topt, torch.optim.Adam)
    g0, g1 = topt.param_groups
    assert (g0["lr"], g0["betas"], g0["amsgrad"]) == (0.01, (0.8, 0.99), True)
    assert (g1["lr"], g1["weight_decay"]) == (0.002, 0.1)
    assert g0["params"][0] is theirs[0].weight and g1["params"][1] is theirs[5].bias
    state = topt.state[theirs[0].weight]
    assert state["step"].item() == 1
    np.testing.assert_array_equal(state["exp_avg"].numpy(), opt.state[model[0].weight]["exp_avg"])
    # positional mapping works when the optimiser holds the model's parameters in order
    plain = optim.SGD(model.parameters(), lr=0.1)
    assert twin.to_torch_optimizer(plain, theirs).param_groups[0]["params"][3] is theirs[2].bias
    with pytest.raises(ValueError, match="pass model="):
        twin.to_torch_optimizer(opt, theirs)
    with pytest.raises(TypeError, match="no torch twin for optimizer"):

        class Lion(optim.SGD):
            pass

        twin.to_torch_optimizer(Lion(model.parameters()), theirs, model=model)


def test_a_wrong_optimizer_state_would_be_caught(monkeypatch):
    """Proof that the optimiser tests can fail: drop the copied Adam state."""
    model = deep_model()
    x, y = batch()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = losses.CrossEntropyLoss()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    opt.step()
    opt.zero_grad()
    assert twin.compare(model, loss_fn, x, y, optimizer=opt, steps=3).passed()
    real = twin_optim.to_torch_optimizer

    def forgetful(o, params, model=None):
        t = real(o, params, model)
        t.state.clear()
        return t

    monkeypatch.setattr(compare_mod, "to_torch_optimizer", forgetful)
    assert not twin.compare(model, loss_fn, x, y, optimizer=opt, steps=3).passed()


# -- schedules ------------------------------------------------------------------------------------


def two_groups(kind=optim.SGD):
    ps = [nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(2))]
    extra = {"momentum": 0.9} if kind is optim.SGD else {}
    return kind([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.01}], lr=0.1, **extra)


SCHEDULES = {
    "StepLR": lambda o: sch.StepLR(o, step_size=7, gamma=0.5),
    "ExponentialLR": lambda o: sch.ExponentialLR(o, gamma=0.95),
    "CosineAnnealingLR": lambda o: sch.CosineAnnealingLR(o, T_max=25, eta_min=1e-4),
    "LinearWarmup": lambda o: sch.LinearWarmup(o, warmup_steps=10),
    "LinearWarmup(0)": lambda o: sch.LinearWarmup(o, warmup_steps=10, start_factor=0.0),
    "LinearWarmup+Cosine": lambda o: sch.LinearWarmup(
        o, 10, 0.1, after=sch.CosineAnnealingLR(o, T_max=30)
    ),
    "LinearWarmup+LinearWarmup+StepLR": lambda o: sch.LinearWarmup(
        o, 5, 0.2, after=sch.LinearWarmup(o, 7, 0.0, after=sch.StepLR(o, 10, 0.3))
    ),
    "OneCycleLR": lambda o: sch.OneCycleLR(o, max_lr=[1.0, 0.1], total_steps=60),
    "OneCycleLR(three_phase, linear)": lambda o: sch.OneCycleLR(
        o, max_lr=0.5, total_steps=60, three_phase=True, anneal_strategy="linear", pct_start=0.25
    ),
    "ReduceLROnPlateau": lambda o: sch.ReduceLROnPlateau(
        o, patience=2, factor=0.5, cooldown=1, min_lr=1e-3
    ),
}
METRICS = [5.0, 4.0, 4.5, 4.4, 4.6, 3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 2.0] * 5


@pytest.mark.parametrize("kind", [optim.SGD, optim.Adam], ids=["SGD", "Adam"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_twins_give_the_same_lr_trajectory(name, kind):
    sched = SCHEDULES[name](two_groups(kind))
    report = twin.compare_lr_schedule(sched, steps=59, metrics=METRICS)
    assert report.passed(), str(report)
    ours, theirs = report.series["lr group 0"]
    assert len(ours) == 60 and len(set(ours)) > 2  # the lr really changes
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    if name.startswith("OneCycle"):
        assert "beta1 group 1" in report.series or "momentum group 1" in report.series


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_twin_starts_where_ours_is(name):
    opt = two_groups()
    sched = SCHEDULES[name](opt)
    for i in range(13):
        sched.step(METRICS[i]) if name == "ReduceLROnPlateau" else sched.step()
    topt = twin.to_torch_optimizer(
        opt, [torch.zeros(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)]
    )
    tsched = twin.to_torch_scheduler(sched, topt)
    np.testing.assert_allclose(
        [g["lr"] for g in topt.param_groups], sched.get_last_lr(), rtol=1e-12
    )
    report = twin.compare_lr_schedule(sched, steps=40, metrics=METRICS[13:])
    assert report.passed(), str(report)
    assert tsched is not None


def test_schedule_classes_map_to_torch():
    lrs = torch.optim.lr_scheduler
    expect = {
        "StepLR": lrs.StepLR,
        "LinearWarmup": lrs.LinearLR,
        "LinearWarmup(0)": lrs.LambdaLR,
        "LinearWarmup+Cosine": lrs.SequentialLR,
        "OneCycleLR": lrs.OneCycleLR,
        "ReduceLROnPlateau": lrs.ReduceLROnPlateau,
    }
    for name, cls in expect.items():
        opt = two_groups()
        sched = SCHEDULES[name](opt)
        topt = twin.to_torch_optimizer(opt, [torch.zeros(3), torch.zeros(2)])
        assert type(twin.to_torch_scheduler(sched, topt)) is cls, name


def test_a_wrong_schedule_would_be_caught(monkeypatch):
    """Proof that the schedule test can fail: a twin with another gamma differs."""
    sched = SCHEDULES["ExponentialLR"](two_groups())
    sched.gamma = 0.9501  # ours now decays differently from what we tell torch below
    real = twin_optim._build

    def build(s, topt):
        t = real(s, topt)
        t.gamma = 0.95
        return t

    monkeypatch.setattr(twin_optim, "_build", build)
    assert not twin.compare_lr_schedule(sched, steps=20).passed()
