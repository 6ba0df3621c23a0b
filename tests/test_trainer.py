"""The Trainer loop, callbacks and exact resume, on small synthetic problems."""

import math

import numpy as np
import pytest

from twinnet import losses, optim
from twinnet.models import build_mlp
from twinnet.train import Checkpoint, EarlyStopping, History, LRSchedulerCallback, NaNGuard, Trainer
from twinnet.train import metrics as M
from twinnet.train.callbacks import Callback
from twinnet.train.state import load_state


def blobs(n=400, seed=0, dtype=np.float32):
    """Three Gaussian blobs in 5-D: an easy multiclass problem."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(3, 5))
    y = rng.integers(0, 3, n)
    x = centers[y] + rng.normal(size=(n, 5))
    return x.astype(dtype), y


def make(seed=0, dropout=0.0, lr=1e-2, callbacks=(), dtype=np.float32, schedule=False):
    model = build_mlp([5, 16, 3], "relu", dropout=dropout, dtype=dtype, rng=seed)
    opt = optim.Adam(model.parameters(), lr=lr)
    cbs = list(callbacks)
    if schedule:
        cbs.append(LRSchedulerCallback(optim.lr_scheduler.CosineAnnealingLR(opt, T_max=60), interval="step"))
    return Trainer(model, losses.CrossEntropyLoss(), opt, callbacks=cbs, seed=seed)


def test_fit_learns_and_records_history():
    x, y = blobs()
    trainer = make()
    hist = trainer.fit((x[:300], y[:300]), (x[300:], y[300:]), epochs=5, batch_size=32)
    assert isinstance(hist, History) and len(hist) == 5
    assert {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"} <= set(hist.columns)
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["val_accuracy"][-1] > 0.9
    assert trainer.global_step == 5 * math.ceil(300 / 32)


def test_train_loss_is_the_mean_of_batch_losses():
    x, y = blobs(n=100)
    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, logs):
            seen.append((logs["loss"], len(trainer.last_batch[0])))

    trainer = make(callbacks=[Spy()])
    hist = trainer.fit((x, y), epochs=1, batch_size=32)
    expected = sum(l * n for l, n in seen) / sum(n for _, n in seen)
    assert hist["train_loss"][0] == pytest.approx(expected, rel=1e-12)


class StopAfter(Callback):
    """Simulates a crash: stops the loop abruptly after `n` steps (no epoch row)."""

    def __init__(self, n):
        self.n = n

    def on_batch_end(self, trainer, logs):
        if trainer.global_step == self.n:
            raise KeyboardInterrupt  # like a kill: nothing after this step runs


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("kill_at", [7, 13, 26])
def test_resume_from_a_mid_epoch_checkpoint_is_bit_identical(tmp_path, dropout, kill_at):
    x, y = blobs()
    train, val = (x[:300], y[:300]), (x[300:], y[300:])
    reference = make(dropout=dropout, schedule=True)
    reference.fit(train, val, epochs=4, batch_size=32)

    crashed = make(dropout=dropout, schedule=True, callbacks=[Checkpoint(tmp_path, every_n_steps=5)])
    crashed.callbacks.append(StopAfter(kill_at))
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(train, val, epochs=4, batch_size=32)

    resumed = make(dropout=dropout, schedule=True, callbacks=[Checkpoint(tmp_path, every_n_steps=5)])
    state = load_state(tmp_path / "state" / "checkpoint.safetensors")
    assert state["global_step"] == (kill_at // 5) * 5 or state["batch_in_epoch"] == 0
    resumed.load_state_dict(state)
    resumed.fit(train, val, epochs=4, batch_size=32)

    for (name, a), (_, b) in zip(reference.model.named_parameters(), resumed.model.named_parameters(), strict=True):
        assert np.array_equal(a.data, b.data), name
    assert reference.history.rows == resumed.history.rows


def test_sigint_saves_a_checkpoint_and_marks_the_run_interrupted(tmp_path):
    import os
    import signal

    x, y = blobs()

    class SendSigint(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.global_step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    trainer = make(callbacks=[Checkpoint(tmp_path), SendSigint()])
    trainer.fit((x, y), epochs=3, batch_size=32)
    assert trainer.interrupted
    state = load_state(tmp_path / "state" / "checkpoint.safetensors")
    assert state["global_step"] == 3 and state["batch_in_epoch"] == 3


def test_early_stopping_stops_and_restores_best_weights():
    rows = [0.5, 0.4, 0.45, 0.47, 0.49, 0.3]

    class FakeVal(Callback):
        """Overwrites val_loss with a scripted sequence (best at epoch 2)."""

        def on_epoch_end(self, trainer, row):
            row["val_loss"] = rows[row["epoch"] - 1]

    x, y = blobs()
    es = EarlyStopping(monitor="val_loss", patience=3)
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, trainer, row):
            snapshots.append(trainer.model.state_dict())

    trainer = make(callbacks=[FakeVal(), Snap(), es])
    trainer.fit((x, y), epochs=6, batch_size=64)
    assert trainer.epoch == 5 and es.best_epoch == 2
    assert "did not improve for 3 epochs" in trainer.stop_reason
    for k, v in trainer.model.state_dict().items():
        assert np.array_equal(v, snapshots[1][k]), k


def test_nan_guard_names_step_and_layer():
    x, y = blobs()
    guard = NaNGuard()
    trainer = make(callbacks=[guard])

    class Poison(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.global_step == 4:
                trainer.model[2].weight.data[0, 0] = np.inf

    trainer.callbacks.insert(0, Poison())
    trainer.fit((x, y), epochs=2, batch_size=32)
    assert trainer.stop_training
    assert guard.report.startswith("step 5:")
    assert "parameter 2.weight" in guard.report


def test_nan_guard_finds_the_first_non_finite_layer_output():
    x, y = blobs()
    x = x.copy()
    x[40] = 3e38  # finite inputs whose weighted sum overflows float32 in the first Linear
    guard = NaNGuard()
    trainer = make(callbacks=[guard])
    trainer.model[0].weight.data[...] = 1.0
    trainer.fit((x, y), epochs=1, batch_size=400)
    assert "output of layer 0 (Linear)" in guard.report


def test_nan_guard_rollback_halves_the_learning_rate(tmp_path):
    x, y = blobs()
    guard = NaNGuard(rollback=True)
    fired = []

    class PoisonOnce(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.global_step == 20 and not fired:  # epoch 2: a checkpoint exists
                fired.append(1)
                trainer.model[0].weight.data[0, 0] = np.nan

    trainer = make(lr=1e-2, callbacks=[Checkpoint(tmp_path), PoisonOnce(), guard])
    trainer.fit((x, y), epochs=3, batch_size=32)
    assert guard.rollbacks == 1
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert trainer.epoch == 3 and all(np.isfinite(p.data).all() for p in trainer.model.parameters())


def test_step_scheduler_follows_cosine():
    x, y = blobs(n=320)
    trainer = make(schedule=True, lr=0.1)
    trainer.fit((x, y), epochs=1, batch_size=32)  # 10 steps of a T_max=60 cosine
    expected = 0.1 * (1 + math.cos(math.pi * 10 / 60)) / 2
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)


def test_binary_and_regression_tasks():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    yb = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = build_mlp([4, 8, 1], "tanh", rng=0)
    t = Trainer(model, losses.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.05), task="binary")
    hist = t.fit((x, yb), (x, yb), epochs=10, batch_size=32)
    assert hist["val_accuracy"][-1] > 0.95 and hist["val_auc"][-1] > 0.98

    yr = np.sin(x[:, :1])
    model = build_mlp([4, 16, 1], "tanh", rng=0)
    t = Trainer(model, losses.MSELoss(), optim.Adam(model.parameters(), lr=0.02), task="regression")
    hist = t.fit((x, yr), (x, yr), epochs=20, batch_size=32)
    assert hist["val_mse"][-1] < 0.02 and "train_accuracy" not in hist.columns


def test_metrics_by_hand():
    scores = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.0, 1.0]])
    y = np.array([0, 1, 1, 2])
    assert M.accuracy(scores, y) == 0.75
    p = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    assert M.log_loss(scores, y) == pytest.approx(-np.mean(np.log(p[np.arange(4), y])))
    # AUC: positives scored 0.9, 0.4; negatives 0.5, 0.1 -> pairs won: (0.9>0.5, 0.9>0.1, 0.4>0.1) = 3 of 4
    assert M.roc_auc(np.array([0.9, 0.5, 0.4, 0.1]), np.array([1, 0, 1, 0])) == 0.75
    # ties count one half
    assert M.roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
    cm = M.confusion_matrix(y, M.predict_labels(scores, "multiclass"), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_first_layer_skips_the_unused_input_gradient_only_during_fit():
    from twinnet import nn

    rng = np.random.default_rng(0)
    layer = nn.Linear(5, 4, dtype=np.float64, rng=rng)
    x, g = rng.normal(size=(3, 5)), rng.normal(size=(3, 4))
    layer(x)
    full = layer.backward(g)
    expected_w = layer.weight.grad.copy()
    layer.zero_grad()
    layer.input_grad = False
    layer(x)
    assert layer.backward(g) is None
    assert np.array_equal(layer.weight.grad, expected_w) and full.shape == (3, 5)

    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, logs):
            seen.append(trainer.model[0].input_grad)

    x, y = blobs(n=64)
    trainer = make(callbacks=[Spy()])
    trainer.fit((x, y), epochs=1, batch_size=32)
    assert seen == [False, False] and trainer.model[0].input_grad is True


def test_state_round_trip_keeps_zero_dimensional_buffers(tmp_path):
    from twinnet.train.state import save_state

    x, y = blobs(n=64)
    model = build_mlp([5, 8, 3], norm="batch", rng=0)
    t = Trainer(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1))
    t.fit((x, y), epochs=1, batch_size=32)
    save_state(tmp_path / "s.safetensors", t.state_dict())
    state = load_state(tmp_path / "s.safetensors")
    assert state["model"]["1.num_batches_tracked"].shape == ()
    assert int(state["model"]["1.num_batches_tracked"]) == 2
    t.load_state_dict(state)  # must not raise a shape mismatch
