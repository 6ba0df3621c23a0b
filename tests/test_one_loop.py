"""One Trainer for both engines: the same loop and callbacks drive the NumPy and the torch
stepper; fit works outside the main thread; a callback stops training at once; the
progress bar shows totals and time left."""

from __future__ import annotations

import io
import re
import threading

import numpy as np
import pytest

from twinnet import losses, optim
from twinnet.models import build_mlp
from twinnet.train import EarlyStopping, LRSchedulerCallback, ProgressBar, Trainer
from twinnet.train.callbacks import Callback
from twinnet.train.engines.numpy import NumpyStepper


def blobs(n=300, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(3, 5))
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.normal(size=(n, 5))).astype(dtype), y


class StopAt(Callback):
    def __init__(self, step):
        self.step, self.seen = step, []

    def on_batch_end(self, trainer, logs):
        self.seen.append(trainer.global_step)
        if trainer.global_step == self.step:
            trainer.stop_training = True


def numpy_trainer(callbacks=(), dtype=np.float64):
    model = build_mlp([5, 16, 3], "relu", dtype=dtype, rng=0)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    return Trainer(model, losses.CrossEntropyLoss(), opt, callbacks=list(callbacks), seed=0)


def test_stop_training_in_on_batch_end_stops_right_after_that_step():
    stop = StopAt(7)
    trainer = numpy_trainer([stop])
    trainer.fit(blobs(), epochs=5, batch_size=32)
    assert stop.seen == list(range(1, 8)) and trainer.global_step == 7
    assert len(trainer.history) == 0  # stopped mid epoch 1: no epoch row


def test_fit_runs_in_a_worker_thread_without_touching_signals():
    import signal

    before = signal.getsignal(signal.SIGINT)
    stop, errors = StopAt(12), []
    trainer = numpy_trainer([stop])

    def work():
        try:
            trainer.fit(blobs(), epochs=3, batch_size=32)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert not errors and trainer.global_step == 12 and len(trainer.history) == 1
    assert signal.getsignal(signal.SIGINT) is before


def test_the_default_trainer_is_the_numpy_stepper():
    trainer = numpy_trainer()
    assert isinstance(trainer.stepper, NumpyStepper)
    assert trainer.model is trainer.stepper.model and trainer.optimizer is trainer.stepper.optimizer


def test_same_loop_and_callbacks_drive_the_torch_stepper():
    pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
    import torch

    from twinnet.train.engines.torch import TorchStepper

    x, y = blobs()
    histories = []
    for engine in ("numpy", "torch"):
        model = build_mlp([5, 16, 3], "relu", dtype=np.float64, rng=0)
        loss_fn = losses.CrossEntropyLoss()
        opt = optim.Adam(model.parameters(), lr=1e-2)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40)
        if engine == "numpy":
            stepper = NumpyStepper(model, loss_fn, opt)
        else:
            stepper = TorchStepper.from_numpy(model, loss_fn, opt, "multiclass", torch.device("cpu"))
        callbacks = [LRSchedulerCallback(stepper.wrap_scheduler(sched), interval="step"),
                     EarlyStopping(patience=50)]  # fmt: skip
        trainer = Trainer(loss_fn=loss_fn, stepper=stepper, callbacks=callbacks, seed=0)
        trainer.fit((x[:240], y[:240]), val=(x[240:], y[240:]), epochs=5, batch_size=32)
        histories.append(trainer.history)
        assert trainer.global_step == 40 and trainer.get_weights()["0.weight"].dtype == np.float64
    ours, theirs = histories
    for a, b in zip(ours.rows, theirs.rows, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-9, atol=1e-12, err_msg=k)
    assert ours.rows[-1]["lr"] < ours.rows[0]["lr"]  # the schedule stepped in both


def test_progress_bar_shows_steps_of_total_time_left_and_validation():
    out = io.StringIO()
    x, y = blobs()
    trainer = numpy_trainer([ProgressBar(file=out, disable=False, refresh_seconds=0)])
    trainer.fit((x[:240], y[:240]), val=(x[240:], y[240:]), epochs=2, batch_size=10)  # 24 steps an epoch
    text = out.getvalue()
    assert re.search(r"epoch 1/2: .*24/24", text), text  # steps of the epoch out of its total
    assert "%" in text and "<" in text  # percentage and tqdm's time left for the epoch
    assert "run left" in text  # the whole run's time left
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.startswith("epoch 1/2  ")]
    assert lines and "val_loss" in lines[0] and "val_accuracy" in lines[0], text
