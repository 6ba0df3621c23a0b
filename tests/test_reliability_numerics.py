"""Numerical faults: divergence caught and located by NaNGuard (and rolled back), extreme
inputs that must not crash any layer or loss, degenerate batches (all zeros, one example).

Expected values here are computed by hand: the limits of softmax, sigmoid and the
cross-entropies at +-1e4, where the exact answers are 0, 1 or the logit itself.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from twinnet import losses, nn, optim
from twinnet.cli.main import main
from twinnet.models import build_mlp
from twinnet.train import Checkpoint, NaNGuard, Trainer
from twinnet.train.callbacks import Callback

DTYPES = [np.float32, np.float64]


def blobs(n=400, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(3, 5))
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.normal(size=(n, 5))).astype(dtype), y


class LossLog(Callback):
    """Every loss the trainer saw, by global step (1-based), before NaNGuard acts."""

    order = 0

    def __init__(self):
        self.losses: list[tuple[int, float]] = []

    def on_before_step(self, trainer, logs):
        self.losses.append((trainer.global_step + 1, logs["loss"]))


def finite(*arrays) -> bool:
    return all(np.isfinite(a).all() for a in arrays)


# -- NaNGuard on a real divergence ------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_guard_locates_a_real_divergence():
    """SGD with lr=1000 on a ReLU MLP: the logits blow up within a few steps."""
    x, y = blobs()
    model = build_mlp([5, 16, 3], "relu", rng=0)
    guard, log = NaNGuard(), LossLog()
    trainer = Trainer(
        model,
        losses.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=1e3),
        callbacks=[log, guard],
    )
    trainer.fit((x, y), epochs=5, batch_size=32)

    first_bad = next(step for step, loss in log.losses if not math.isfinite(loss))
    assert trainer.stop_training and trainer.global_step == first_bad < 13  # within the first epoch
    assert guard.report.startswith(f"step {first_bad}: loss is ")
    assert trainer.stop_reason == f"NaNGuard: {guard.report}"
    # the step was skipped: the weights are those that produced the bad loss, all finite
    assert all(finite(p.data) for p in model.parameters())
    # the layer named is the first whose output is non-finite on that batch
    h, first_layer = trainer.last_batch[0], None
    with np.errstate(all="ignore"):
        for i, layer in enumerate(model):
            h = layer(h)
            if first_layer is None and not finite(h):
                first_layer = i
    assert first_layer is not None
    assert (
        f"output of layer {first_layer} ({type(model[first_layer]).__name__}) went non-finite"
        in guard.report
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_guard_stops_a_diverging_cli_run_with_exit_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("twinnet.train.plots.plot_curves", lambda *a, **k: None)
    out = tmp_path / "run"
    code = main(["train", "--dataset", "spirals", "--layers", "2,32,32,3", "--n-samples", "600",
                 "--optimizer", "sgd", "--lr", "1e6", "--schedule", "none", "--epochs", "2",
                 "--batch-size", "128", "--quiet", "--out", str(out)])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 1  # a finished-but-failed run: not a usage error, not a crash
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("twinnet: training stopped: NaNGuard: step "), (
        err
    )
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stop_reason"].startswith("NaNGuard: step ")
    from twinnet.checkpoint import load_tensors

    weights, _ = load_tensors(out / "model.safetensors")
    assert all(finite(w) for w in weights.values())  # the last finite weights were saved


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_guard_rollback_restores_halves_lr_and_finishes(tmp_path, capsys):
    """SGD+momentum at lr=10 diverges in epoch 2 on this problem; at lr=5 it trains."""
    x, y = blobs()
    model = build_mlp([5, 16, 3], "relu", rng=0)
    guard, log = NaNGuard(rollback=True), LossLog()
    opt = optim.SGD(model.parameters(), lr=10.0, momentum=0.9)
    trainer = Trainer(
        model, losses.CrossEntropyLoss(), opt, callbacks=[log, Checkpoint(tmp_path), guard]
    )
    trainer.fit((x, y), epochs=5, batch_size=32)

    err = capsys.readouterr().err
    assert guard.rollbacks == 1, err
    first_bad = next(step for step, loss in log.losses if not math.isfinite(loss))
    assert f"NaNGuard: step {first_bad}: loss is" in err
    assert "rolled back to step 13, lr halved (10 -> 5)" in err  # the epoch-1 checkpoint (13 steps)
    assert opt.param_groups[0]["lr"] == 5.0
    assert trainer.epoch == 5 and not trainer.stop_training and trainer.stop_reason == ""
    assert all(finite(p.data) for p in model.parameters())
    steps = [s for s, _ in log.losses]
    assert steps[steps.index(first_bad) + 1] == 14  # training went on from the restored step 13
    assert trainer.history["step"] == [13, 26, 39, 52, 65]
    assert all(math.isfinite(v) for v in trainer.history["train_loss"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_guard_rollback_gives_up_after_max_rollbacks(tmp_path, capsys):
    x, y = blobs()
    model = build_mlp([5, 16, 3], "relu", rng=0)
    guard = NaNGuard(rollback=True, max_rollbacks=2)
    opt = optim.SGD(model.parameters(), lr=1e4)  # diverges at every lr it halves to
    trainer = Trainer(
        model,
        losses.CrossEntropyLoss(),
        opt,
        callbacks=[Checkpoint(tmp_path, every_n_steps=1), guard],
    )
    trainer.fit((x, y), epochs=3, batch_size=32)
    assert guard.rollbacks == 2
    assert trainer.stop_reason.startswith("NaNGuard: step ")
    assert all(finite(p.data) for p in model.parameters())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_each_rollback_to_the_same_checkpoint_halves_the_lr_again(tmp_path, capsys):
    x, y = blobs()
    model = build_mlp([5, 16, 3], "relu", rng=0)
    guard = NaNGuard(rollback=True, max_rollbacks=2)
    opt = optim.SGD(model.parameters(), lr=1e4)
    trainer = Trainer(
        model,
        losses.CrossEntropyLoss(),
        opt,
        callbacks=[Checkpoint(tmp_path, every_n_steps=1), guard],
    )
    trainer.fit((x, y), epochs=3, batch_size=32)
    assert guard.rollbacks == 2
    assert "lr halved (5000 -> 2500)" in capsys.readouterr().err  # today: "(5000 -> 5000)"
    assert opt.param_groups[0]["lr"] == 2.5e3


# -- extreme logits ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_at_logits_of_1e4(dtype):
    z = np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = np.array([0, 1, 2])
    loss_fn = losses.CrossEntropyLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even an overflow warning
        loss = loss_fn(z, y)
        grad = loss_fn.backward()
    # row 0: right with certainty, loss 0; row 1: loss 1e4 - (-1e4) = 2e4; row 2: uniform, log 3
    assert loss == pytest.approx((0 + 2e4 + math.log(3)) / 3, rel=1e-6)
    expected = np.array([[0, 0, 0], [1, -1, 0], [1 / 3, 1 / 3, -2 / 3]]) / 3
    np.testing.assert_allclose(grad, expected, atol=1e-7)
    assert grad.dtype == dtype

    smoothed = losses.CrossEntropyLoss(label_smoothing=0.1)
    assert math.isfinite(smoothed(z, y)) and finite(smoothed.backward())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_bce_with_logits_at_1e4(dtype, pos_weight):
    z = np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype=dtype)
    t = np.array([[1], [0], [0], [1]], dtype=dtype)
    loss_fn = losses.BCEWithLogitsLoss(pos_weight=pos_weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = loss_fn(z, t)
        grad = loss_fn.backward()
    w = 1.0 if pos_weight is None else pos_weight
    # confident and right: 0; confident and wrong: |z| = 1e4 (times pos_weight for a missed positive)
    assert loss == pytest.approx((0 + 0 + 1e4 + w * 1e4) / 4, rel=1e-6)
    np.testing.assert_allclose(grad, np.array([[0], [0], [1], [-w]]) / 4, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_on_probabilities_0_and_1_is_finite(dtype):
    p = np.array([[0.0], [1.0], [0.0], [1.0]], dtype=dtype)
    t = np.array([[0], [1], [1], [0]], dtype=dtype)
    loss_fn = losses.BCELoss()
    loss = loss_fn(p, t)
    assert loss == pytest.approx(50.0)  # two certain mistakes at the clamp of 100 each, over 4
    assert finite(loss_fn.backward())


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softmax_at_1e4(dtype):
    x = np.array([[1e4, -1e4, 0.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = nn.Sigmoid()
        np.testing.assert_array_equal(s(x), np.array([[1.0, 0.0, 0.5]], dtype))
        np.testing.assert_array_equal(
            s.backward(np.ones_like(x)), np.array([[0.0, 0.0, 0.25]], dtype)
        )
        sm = nn.Softmax()
        np.testing.assert_array_equal(sm(x), np.array([[1.0, 0.0, 0.0]], dtype))
        assert finite(sm.backward(np.ones_like(x)))
        np.testing.assert_allclose(sm(np.full((2, 4), 1e4, dtype)), 0.25)  # all equal: uniform


# -- huge inputs through every layer -----------------------------------------------------------------

ACTIVATIONS = ["relu", "leaky_relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid", "identity"]


def _layers(dtype, d=4):
    """One of every nn layer, for inputs (B, d)."""
    rng = np.random.default_rng(0)
    return {
        "Linear": nn.Linear(d, d, dtype=dtype, rng=rng),
        "Sigmoid": nn.Sigmoid(),
        "Tanh": nn.Tanh(),
        "ReLU": nn.ReLU(),
        "LeakyReLU": nn.LeakyReLU(),
        "GELU": nn.GELU(),
        "GELU(tanh)": nn.GELU(approximate="tanh"),
        "SiLU": nn.SiLU(),
        "Softmax": nn.Softmax(),
        "Identity": nn.Identity(),
        "SwiGLU": nn.SwiGLU(d, 8, dtype=dtype, rng=rng),
        "BatchNorm1d": nn.BatchNorm1d(d, dtype=dtype),
        "LayerNorm": nn.LayerNorm(d, dtype=dtype),
        "Dropout": nn.Dropout(0.3, rng=0),
    }


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(_layers(np.float32)))
def test_every_layer_survives_inputs_of_1e30(dtype, name):
    """float64 holds 1e30 squared: every output and gradient is finite. float32 (max 3.4e38)
    cannot: squares overflow to inf, and a layer may return inf or nan, but never raises."""
    layer = _layers(dtype)[name]
    x = np.array([[1e30, -1e30, 0.5, 2.0], [1e30, -1e30, -0.5, 1.0]], dtype=dtype)
    y = layer(x)
    g = layer.backward(np.ones_like(y))
    assert y.dtype == dtype and g.dtype == dtype and g.shape == x.shape
    if dtype == np.float64 or name in ("Sigmoid", "Tanh", "ReLU", "LeakyReLU", "GELU", "SiLU",
                                       "Softmax", "Identity", "Dropout", "BatchNorm1d", "LayerNorm"):  # fmt: skip
        assert finite(y, g, *(p.grad for p in layer.parameters())), (y, g)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_gelu_tanh_gradient_at_1e30_in_float32_is_finite():
    layer = nn.GELU(approximate="tanh")
    x = np.array([[1e30, -1e30]], dtype=np.float32)
    layer(x)
    with np.errstate(all="ignore"):
        g = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(
        g, np.array([[1.0, 0.0]], np.float32)
    )  # the limits of Phi(x) + x phi(x)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_on_inputs_of_1e30(dtype, norm, activation):
    model = build_mlp([4, 16, 16, 3], activation, norm=norm, dropout=0.1, dtype=dtype, rng=0)
    x = np.full((8, 4), 1e30, dtype=dtype)
    x[::2] *= -1
    out = model(x)
    loss_fn = losses.CrossEntropyLoss()
    loss = loss_fn(out, np.zeros(8, dtype=np.int64))
    gx = model.backward(loss_fn.backward())
    grads = [p.grad for p in model.parameters()]
    if dtype == np.float64 or activation != "gelu_tanh":
        assert finite(out, gx, *grads) and math.isfinite(loss)
    else:  # float32: 1e30 fits (the logits are finite); only the GELU(tanh) gradient breaks, see above
        assert finite(out) and math.isfinite(loss)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_overflow_is_inf_and_training_never_keeps_non_finite_weights(dtype):
    """3e38 * 2 overflows float32: the Linear output is inf (that is the arithmetic, as in
    torch); in training, NaNGuard stops before the optimiser can write inf into weights."""
    lin = nn.Linear(2, 1, bias=False, dtype=dtype)
    lin.weight.data[...] = 1.0
    out = lin(np.array([[3e38, 3e38]], dtype=dtype))
    assert (out[0, 0] == np.inf) == (dtype == np.float32)

    x, y = blobs(dtype=dtype)
    x[[7, 100, 250]] = 1e30
    model = build_mlp([5, 16, 3], "relu", dtype=dtype, rng=0)
    guard = NaNGuard()
    trainer = Trainer(
        model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01), callbacks=[guard]
    )
    trainer.fit((x, y), epochs=3, batch_size=32)
    assert all(finite(p.data) for p in model.parameters())
    assert trainer.epoch == 3 or guard.report is not None


# -- degenerate batches ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(_layers(np.float32)))
def test_every_layer_on_an_all_zero_batch(dtype, name):
    layer = _layers(dtype)[name]
    x = np.zeros((6, 4), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # var = 0: eps keeps 1/sqrt(var + eps) finite, no warning
        y = layer(x)
        g = layer.backward(np.ones_like(y))
    assert finite(y, g, *(p.grad for p in layer.parameters()))
    if name in ("BatchNorm1d", "LayerNorm"):
        np.testing.assert_array_equal(y, 0.0)  # x_hat = 0, then gamma * 0 + beta (beta = 0)
        np.testing.assert_allclose(g, 0.0, atol=1e-6)  # a constant shift of x changes nothing


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(_layers(np.float32)))
def test_every_layer_on_a_batch_of_one(dtype, name):
    layer = _layers(dtype)[name]
    x = np.random.default_rng(1).normal(size=(1, 4)).astype(dtype)
    if name == "BatchNorm1d":
        # like torch: "Expected more than 1 value per channel when training"
        with pytest.raises(ValueError, match="more than 1 example per batch in training mode"):
            layer(x)
        layer.eval()  # running statistics: one example is fine
    y = layer(x)
    g = layer.backward(np.ones_like(y))
    assert y.shape[0] == 1 and g.shape == x.shape and finite(y, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_loss_on_a_batch_of_one(dtype):
    pred = np.array([[0.3, -0.2, 0.1]], dtype=dtype)
    cases = [
        (losses.CrossEntropyLoss(), pred, np.array([2])),
        (losses.CrossEntropyLoss(label_smoothing=0.2), pred, np.array([0])),
        (losses.MSELoss(), pred, np.zeros((1, 3))),
        (losses.BCEWithLogitsLoss(), pred[:, :1], np.ones(1)),
        (losses.BCELoss(), np.full((1, 1), 0.7, dtype), np.ones((1, 1))),
    ]
    for loss_fn, p, t in cases:
        assert math.isfinite(loss_fn(p, t))
        g = loss_fn.backward()
        assert g.shape == p.shape and g.dtype == dtype and finite(g)
