"""Diagnostics: per-layer statistics, the callback, its files, resuming, and the torch hooks."""

from __future__ import annotations

import copy
import csv
import json
import math

import numpy as np
import pytest

from twinnet import losses, nn, optim
from twinnet.diagnostics import Diagnostics, collect_stats, read_diagnostics, snapshot_parameters
from twinnet.diagnostics.stats import layer_labels
from twinnet.train import Trainer

TORCH_REASON = "PyTorch not installed (pip install twinnet[torch])"


def deep_net(act, init, depth=10, width=64, d_in=20, d_out=1, seed=0, dtype=np.float32):
    """d_in-width x (depth-1)-d_out: ``depth`` Linear layers with ``act`` between them."""
    rng = np.random.default_rng(seed)
    sizes = [d_in] + [width] * (depth - 1) + [d_out]
    layers = []
    for i in range(depth):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], init=init, dtype=dtype, rng=rng))
        if i < depth - 1:
            layers.append(act())
    return nn.Sequential(*layers)


def binary_data(n=256, d=20, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(dtype)
    return x, (x[:, :3].sum(axis=1) > 0).astype(dtype)


def first_last_ratio(stats, model):
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return stats.value(linears[0], "weight_grad_norm") / stats.value(
        linears[-1], "weight_grad_norm"
    )


# -- the statistics ----------------------------------------------------------------------
def test_dead_relu_units_are_counted_exactly():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(10, 32, rng=rng), nn.ReLU(), nn.Linear(32, 3, rng=rng))
    dead = [1, 4, 5, 17, 30]
    model[0].bias.data[dead] = -100.0  # pre-activation ~ -100 +- a few: never positive
    x = rng.normal(size=(256, 10)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    stats = collect_stats(model, losses.CrossEntropyLoss(), x, y)
    assert stats.value("1", "dead_units") == len(dead)
    assert stats.value("1", "dead_fraction") == len(dead) / 32
    # the dead units get exactly zero gradient on their incoming weights
    h = x @ model[0].weight.data.T + model[0].bias.data
    assert (h[:, dead] < 0).all() and not (h[:, [i for i in range(32) if i not in dead]] <= 0).all(
        axis=0
    ).any()


def test_saturated_units_are_counted_exactly():
    rng = np.random.default_rng(1)
    for act, bias in ((nn.Tanh, 10.0), (nn.Sigmoid, 12.0)):
        lin = nn.Linear(6, 16, rng=rng)
        lin.weight.data *= 0.1
        lin.bias.data[:] = 0.0
        saturated = [0, 3, 9]
        lin.bias.data[saturated] = [
            bias,
            -bias,
            bias,
        ]  # tanh(10) = 1 - 4e-9: flat for every example
        model = nn.Sequential(lin, act(), nn.Linear(16, 2, rng=rng))
        x = rng.normal(size=(128, 6)).astype(np.float32)
        y = rng.integers(0, 2, 128)
        stats = collect_stats(model, losses.CrossEntropyLoss(), x, y)
        assert stats.value("1", "saturated_units") == len(saturated), act.__name__
        assert stats.value("1", "saturated_fraction") == len(saturated) / 16


def test_large_tanh_weights_saturate_most_units():
    rng = np.random.default_rng(2)
    lin = nn.Linear(50, 40, rng=rng)
    lin.weight.data[...] = rng.normal(0, 100.0, size=(40, 50))  # pre-activations ~ N(0, 700^2)
    model = nn.Sequential(lin, nn.Tanh(), nn.Linear(40, 1, rng=rng))
    x = rng.normal(size=(64, 50)).astype(np.float32)
    y = rng.normal(size=64).astype(np.float32)
    stats = collect_stats(model, losses.MSELoss(), x, y)
    # by hand: a unit is saturated when 1 - tanh^2 < 0.01 on >= 99% of the 64 examples
    t = np.tanh(x.astype(np.float64) @ lin.weight.data.T + lin.bias.data)
    expected = ((1 - t * t < 0.01).mean(axis=0) >= 0.99).mean()
    assert expected > 0.5
    assert stats.value("1", "saturated_fraction") == pytest.approx(expected)
    assert stats.value("1", "saturated_share") == pytest.approx((1 - t * t < 0.01).mean())


def test_norms_by_hand_for_two_linear_layers_with_mse():
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(3, 3, dtype=np.float64, rng=rng), nn.Linear(3, 2, dtype=np.float64, rng=rng)
    )
    w0, b0 = model[0].weight.data, model[0].bias.data
    w, b = model[1].weight.data, model[1].bias.data
    x = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0], [2.0, 2.0, -1.0], [-1.0, 0.5, 0.0]])
    t = np.array([[0.5, -1.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    stats = collect_stats(model, losses.MSELoss(), x, t)
    h = x @ w0.T + b0  # (4, 3), the input of layer 1
    y = h @ w.T + b  # (4, 2)
    g = 2 * (y - t) / y.size  # dL/dy of the mean squared error
    assert stats.value("1", "act_mean") == pytest.approx(y.mean(), rel=1e-12)
    assert stats.value("1", "act_std") == pytest.approx(y.std(), rel=1e-12)
    assert stats.value("1", "grad_input_norm") == pytest.approx(np.linalg.norm(g @ w), rel=1e-12)
    assert stats.value("1", "weight_grad_norm") == pytest.approx(np.linalg.norm(g.T @ h), rel=1e-12)
    assert stats.value("1", "bias_grad_norm") == pytest.approx(np.linalg.norm(g.sum(0)), rel=1e-12)
    assert stats.value("1", "weight_norm") == pytest.approx(np.linalg.norm(w), rel=1e-12)
    assert stats.value("0", "weight_grad_norm") == pytest.approx(
        np.linalg.norm((g @ w).T @ x), rel=1e-12
    )
    assert stats.value("(model)", "probe_loss") == pytest.approx(((y - t) ** 2).mean(), rel=1e-12)
    # the layer fed by the data has no input gradient (nobody needs dL/d(data))
    assert ("0", "grad_input_norm") not in stats.table()
    assert model[0].input_grad  # and the probe left the flag as it was


def test_vanishing_gradients_in_deep_sigmoid_net_but_not_relu_with_he_init():
    x, y = binary_data()
    loss = losses.BCEWithLogitsLoss()
    for init in ("default", "xavier_uniform"):
        model = deep_net(nn.Sigmoid, init)
        assert first_last_ratio(collect_stats(model, loss, x, y), model) < 1e-3, init
    model = deep_net(nn.ReLU, "kaiming_normal")
    assert 1e-3 < first_last_ratio(collect_stats(model, loss, x, y), model) < 1e3


def test_probe_leaves_model_and_loss_untouched():
    rng = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Linear(5, 8, rng=rng),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        nn.Dropout(0.5, rng=7),
        nn.Linear(8, 2, rng=rng),
    )
    loss = losses.CrossEntropyLoss()
    x, y = rng.normal(size=(16, 5)).astype(np.float32), rng.integers(0, 2, 16)
    loss(model(x), y)
    model.backward(loss.backward())
    grads = {n: (p.grad, p.grad.copy()) for n, p in model.named_parameters()}
    state = model.state_dict()
    rng_state = model[3].rng.bit_generator.state
    cache, mask, loss_cache = model[0]._x, model[3].mask, loss._cache
    collect_stats(model, loss, rng.normal(size=(32, 5)).astype(np.float32), rng.integers(0, 2, 32))
    for n, p in model.named_parameters():
        assert p.grad is grads[n][0] and np.array_equal(p.grad, grads[n][1]), n
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in state.items())
    assert model[3].rng.bit_generator.state == rng_state
    assert model[0]._x is cache and model[3].mask is mask and loss._cache is loss_cache
    assert "forward" not in model[0].__dict__  # the probe's wrappers are gone


def test_layer_labels_name_the_layer_before_an_activation():
    labels = layer_labels(
        [("0", "Linear"), ("1", "ReLU"), ("2", "Linear"), ("3", "ReLU"), ("4", "Linear")]
    )
    assert labels["3"] == "layer 3 (ReLU, after Linear 2)"
    assert labels["0"] == "layer 0 (Linear)"


# -- the callback --------------------------------------------------------------------------
def small_model(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(8, 32, dtype=dtype, rng=rng),
        nn.BatchNorm1d(32, dtype=dtype),
        nn.ReLU(),
        nn.Dropout(0.3, rng=1),
        nn.Linear(32, 16, dtype=dtype, rng=rng),
        nn.Tanh(),
        nn.Linear(16, 3, dtype=dtype, rng=rng),
    )


def class_data(n=200, seed=1, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype(dtype), rng.integers(0, 3, n)


def fit(run_dir=None, epochs=3, every=3, callbacks=(), state=None, probe_n=50):
    x, y = class_data()
    model = small_model()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    cbs = (
        []
        if run_dir is None
        else [Diagnostics(run_dir, every=every, probe=(x[:probe_n], y[:probe_n]))]
    )
    cbs += list(callbacks)
    trainer = Trainer(model, losses.CrossEntropyLoss(), opt, callbacks=cbs, seed=3)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit((x, y), val=(x[:40], y[:40]), epochs=epochs, batch_size=32)
    return trainer


def test_training_with_diagnostics_is_bit_identical(tmp_path):
    plain, watched = fit(None), fit(tmp_path)
    a, b = plain.model.state_dict(), watched.model.state_dict()
    assert a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) for k in a
    )  # weights and BN buffers
    sa, sb = plain.optimizer.state_dict()["state"], watched.optimizer.state_dict()["state"]
    assert all(np.array_equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert plain.model[3].rng.bit_generator.state == watched.model[3].rng.bit_generator.state
    assert plain.history.rows == watched.history.rows


def test_csv_schema_schedule_and_histograms(tmp_path):
    trainer = fit(tmp_path, epochs=3, every=5)  # 7 steps per epoch, 21 in all
    with open(tmp_path / "diagnostics.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["step", "epoch", "layer", "layer_type", "statistic", "value"]
    rows = read_diagnostics(tmp_path)
    assert sorted({r["step"] for r in rows}) == [1, 5, 10, 15, 20, 21]  # step 1, every 5, the last
    assert {r["step"]: r["epoch"] for r in rows} == {1: 1, 5: 1, 10: 2, 15: 3, 20: 3, 21: 3}
    assert trainer.global_step == 21
    stats = {(r["layer"], r["statistic"]) for r in rows if r["step"] == 5}
    for expected in [
        ("0", "weight_grad_norm"),
        ("0", "weight_update_ratio"),
        ("1", "grad_input_norm"),
        ("2", "dead_fraction"),
        ("5", "saturated_fraction"),
        ("1", "act_std"),
        ("(model)", "probe_loss"),
    ]:
        assert expected in stats
    assert ("0", "weight_update_ratio") not in {
        (r["layer"], r["statistic"]) for r in rows if r["step"] == 21
    }
    assert [r["layer_type"] for r in rows if r["layer"] == "2"][0] == "ReLU"
    doc = json.loads((tmp_path / "histograms.json").read_text())
    assert doc["bins"] == 30
    recs = doc["records"]
    assert {(h["step"], h["layer"]) for h in recs} == {
        (s, L) for s in (1, 5, 10, 15, 20, 21) for L in ("2", "5")
    }
    for h in recs:
        assert len(h["edges"]) == len(h["counts"]) + 1 == 31
        assert sum(h["counts"]) + h["nonfinite"] == 50 * (32 if h["layer"] == "2" else 16)


def test_update_ratio_is_the_actual_optimizer_step(tmp_path):
    x, y = class_data(64)
    model = small_model()
    model[3].p = 0.0  # no dropout: a deterministic full-batch step
    before = snapshot_parameters(model)
    opt = optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(
        model,
        losses.CrossEntropyLoss(),
        opt,
        callbacks=[Diagnostics(tmp_path, every=1, probe=(x, y))],
    )
    trainer.fit((x, y), epochs=1, batch_size=64)
    rows = {(r["layer"], r["statistic"]): r["value"] for r in read_diagnostics(tmp_path)}
    for name, p in model.named_parameters():
        layer, pname = name.split(".")
        base = np.linalg.norm(before[name])
        if base == 0:  # BatchNorm's bias starts at 0: the ratio is undefined
            assert math.isnan(rows[(layer, f"{pname}_update_ratio")]), name
            continue
        expected = np.linalg.norm(p.data.astype(np.float64) - before[name]) / base
        assert expected > 0 or pname == "bias"  # (the bias before BatchNorm gets no gradient)
        assert rows[(layer, f"{pname}_update_ratio")] == pytest.approx(expected, rel=1e-6), name


def test_resume_continues_the_files_exactly(tmp_path):
    straight = tmp_path / "straight"
    fit(straight, epochs=3, every=2)

    class Snapshot:  # the state a Checkpoint would save at the end of epoch 1 (step 7)
        order = 200
        state = None

        def on_epoch_end(self, trainer, row):
            if row["epoch"] == 1:
                Snapshot.state = copy.deepcopy(trainer.state_dict())

    resumed = tmp_path / "resumed"
    fit(
        resumed, epochs=2, every=2, callbacks=[Snapshot()]
    )  # ran on past the checkpoint, then "crashed"
    assert max(r["step"] for r in read_diagnostics(resumed)) == 14
    state = Snapshot.state
    assert json.loads(json.dumps(state["callbacks"]["0:Diagnostics"])) == {"step": 7}  # JSON-safe
    fit(resumed, epochs=3, every=2, state=state)
    for name in ("diagnostics.csv", "histograms.json"):
        assert (resumed / name).read_bytes() == (straight / name).read_bytes(), name


def test_diagnostics_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="every must be a positive integer, got 0"):
        Diagnostics(tmp_path, every=0)
    with pytest.raises(TypeError, match="probe must be"):
        Diagnostics(tmp_path, probe="mnist")
    with pytest.raises(ValueError, match="histogram_bins"):
        collect_stats(small_model(), losses.CrossEntropyLoss(), *class_data(8), histogram_bins=0)


def test_non_finite_activations_are_recorded_not_raised():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    model[0].weight.data[0, 0] = np.nan
    x = np.ones((8, 3), dtype=np.float32)
    stats = collect_stats(model, losses.MSELoss(), x, np.zeros(8, dtype=np.float32))
    assert math.isnan(stats.value("0", "act_mean"))
    assert stats.histograms[0]["nonfinite"] == 8  # the NaN column is left out of the histogram


# -- PyTorch: the same numbers through hooks ------------------------------------------------
def close(a: float, b: float) -> bool:
    """Equal to 1e-5 relative (1e-12 absolute for values that are 0 up to rounding); NaN == NaN."""
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-5 * abs(a) + 1e-12


def test_torch_hooks_give_the_same_statistics_as_numpy():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    from twinnet import twin
    from twinnet.diagnostics import diagnose_torch

    rng = np.random.default_rng(0)
    d = np.float64
    model = nn.Sequential(
        nn.Linear(6, 16, dtype=d, rng=rng),
        nn.BatchNorm1d(16, dtype=d),
        nn.ReLU(),
        nn.Linear(16, 16, dtype=d, rng=rng),
        nn.Tanh(),
        nn.Linear(16, 16, dtype=d, rng=rng),
        nn.Sigmoid(),
        nn.Linear(16, 16, dtype=d, rng=rng),
        nn.LeakyReLU(),
        nn.LayerNorm(16, dtype=d),
        nn.SwiGLU(16, 8, dtype=d, rng=rng),
        nn.GELU(),
        nn.Linear(16, 3, dtype=d, rng=rng),
    )
    model[1].bias.data[:3] = -50  # BatchNorm's shift: dead ReLU units on both sides
    x, y = rng.normal(size=(64, 6)), rng.integers(0, 3, 64)
    loss = losses.CrossEntropyLoss()
    before = {k: v - 0.01 for k, v in snapshot_parameters(model).items()}
    ours = collect_stats(model, loss, x, y, before=before)
    module = twin.to_torch(model)
    grads_before = [p.grad for p in module.parameters()]
    running = module[1].running_mean.clone()
    theirs = diagnose_torch(module, x, y, twin.loss_to_torch(loss, d), before=before)
    a, b = ours.table(), theirs.table()
    assert a.keys() == b.keys()
    for key in a:
        assert close(a[key], b[key]), (key, a[key], b[key])
    assert [h["counts"] for h in ours.histograms] == [h["counts"] for h in theirs.histograms]
    # collect_stats hands a torch module to the hooks itself
    again = collect_stats(module, twin.loss_to_torch(loss, d), x, y, before=before).table()
    assert all(close(again[k], b[k]) for k in b)
    assert a[("2", "dead_units")] >= 3
    # nothing changed in the torch module
    assert all(g is None for g in grads_before) and all(p.grad is None for p in module.parameters())
    assert torch.equal(module[1].running_mean, running)


def test_torch_diagnostics_records_a_torch_loop_like_the_callback(tmp_path):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    from twinnet import twin
    from twinnet.diagnostics import TorchDiagnostics

    x, y = class_data(96, dtype=np.float64)
    model = small_model(dtype=np.float64)
    model[3].p = 0.0
    module = twin.to_torch(model)
    fit_np = Trainer(
        model,
        losses.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.1),
        callbacks=[Diagnostics(tmp_path / "np", every=2, probe=(x, y))],
    )
    fit_np.fit((x, y), epochs=2, batch_size=32, shuffle=False)

    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    diag = TorchDiagnostics(tmp_path / "torch", module, loss_fn, every=2, probe=(x, y))
    step = 0
    for epoch in (1, 2):
        for i in range(0, 96, 32):
            step += 1
            out = module(torch.from_numpy(x[i : i + 32]))
            loss = loss_fn(out, torch.from_numpy(y[i : i + 32]))
            opt.zero_grad()
            loss.backward()
            diag.before_step(step)
            opt.step()
            diag.after_step(step, epoch)
    diag.finish(step, 2)
    a, b = read_diagnostics(tmp_path / "np"), read_diagnostics(tmp_path / "torch")
    assert [(r["step"], r["layer"], r["statistic"]) for r in a] == [
        (r["step"], r["layer"], r["statistic"]) for r in b
    ]
    for ra, rb in zip(a, b, strict=True):
        assert close(ra["value"], rb["value"]), (ra, rb)
