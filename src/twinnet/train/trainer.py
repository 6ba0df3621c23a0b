"""The Trainer: the one training loop of both engines, kept separate from the model (STYLE 5).

The Trainer owns epochs, steps, counters, history, callbacks, signal handling and the
state a checkpoint holds; an engine's *stepper* does the arithmetic of a step (see
:mod:`twinnet.train.engines`). ``Trainer(model, loss_fn, optimizer)`` trains a twinnet
model with the NumPy stepper (:mod:`twinnet.train.engines.numpy` says what the model,
loss and optimiser must provide); ``Trainer(stepper=..., loss_fn=...)`` trains with any
stepper, e.g. the torch one. ``loss_fn`` is always the NumPy loss that ``evaluate``
reports.

One training step is: the stepper's forward and backward, ``on_before_step``
callbacks, the stepper's optimiser step, ``on_batch_end`` callbacks. The data order of epoch ``e`` is a pure function of
(seed, e), and every other piece of state (weights, optimiser moments, scheduler,
dropout generators, counters, partial epoch sums, history) is in ``state_dict()``, so
a run resumed from a checkpoint ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import math
import signal
import threading
from contextlib import contextmanager

import numpy as np

from twinnet.data.loader import BatchLoader
from twinnet.train import metrics as M
from twinnet.train.engines.numpy import NumpyStepper
from twinnet.train.history import History


class Trainer:
    """Train ``model`` on (x, y) arrays with mini-batches.

    Args:
        model, loss_fn, optimizer: see the module docstring for what each must provide.
        stepper: an engine's stepper instead of (model, optimizer); ``loss_fn`` is then
            the NumPy loss used by ``evaluate``.
        callbacks: objects with any of ``on_fit_begin``, ``on_epoch_begin``,
            ``on_before_step`` (after backward, before the optimiser step; may set
            ``trainer.skip_step``), ``on_batch_end``, ``on_epoch_end``, ``on_fit_end``,
            ``on_interrupt``
            (each receives the trainer) and optional ``state_dict``/``load_state_dict``.
        task: "multiclass" (logits (B, C), integer labels), "binary" (one logit,
            labels 0/1) or "regression"; chooses the metrics.
        regularizers: objects with ``__call__(params) -> float`` and
            ``backward(params)`` (e.g. ``optim.L2Penalty``), added to the objective.
        clip_grad_norm: clip the global gradient norm to this value (0/None: off).
        seed: seeds the data order (epoch e uses ``default_rng([seed, e])``).
    """

    def __init__(
        self,
        model=None,
        loss_fn=None,
        optimizer=None,
        callbacks=(),
        task: str = "multiclass",
        regularizers=(),
        clip_grad_norm: float | None = None,
        seed: int = 0,
        stepper=None,
    ):
        if task not in ("multiclass", "binary", "regression"):
            raise ValueError(f"task must be 'multiclass', 'binary' or 'regression', got {task!r}")
        if stepper is None:
            if model is None:
                raise TypeError("Trainer needs a model (or a stepper)")
            stepper = NumpyStepper(model, loss_fn, optimizer, task, regularizers, clip_grad_norm)
        self.stepper = stepper
        self.loss_fn = loss_fn
        self.callbacks = list(callbacks)
        self.task = task
        self.seed = int(seed)
        self.history = History()
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches completed in the current epoch
        self.global_step = 0  # optimiser steps taken
        self._running = {"loss_sum": 0.0, "correct": 0, "count": 0}
        self.stop_training = False
        self.stop_reason = ""
        self.restart_requested = False  # set by NaNGuard after restoring a checkpoint
        self.skip_step = False  # set by a callback in on_before_step to skip the update
        self.interrupted = False
        self.last_batch: tuple[np.ndarray, np.ndarray] | None = None
        self.last_loss = math.nan
        self.epochs = 0  # the target of the current fit
        self.steps_per_epoch = 0

    @property
    def model(self):
        return self.stepper.model

    @property
    def optimizer(self):
        return self.stepper.optimizer

    @property
    def clip_grad_norm(self) -> float | None:
        """The stepper's gradient-norm clip (None: off)."""
        return getattr(self.stepper, "clip_grad_norm", None)

    @property
    def regularizers(self) -> list:
        return getattr(self.stepper, "regularizers", [])

    @property
    def is_main(self) -> bool:
        """True in the process that writes files (always, unless data parallel)."""
        return self.stepper.rank == 0

    # -- callbacks ------------------------------------------------------------------
    def _call(self, hook: str, *args) -> None:
        # callbacks run by their ``order`` (default 0), then in list order: a Checkpoint
        # (order 100) saves after schedulers and guards have done their part of the step
        for cb in sorted(self.callbacks, key=lambda c: getattr(c, "order", 0)):
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def callback(self, kind: type):
        """The first callback of a given class, or None."""
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    # -- the loop -----------------------------------------------------------------------
    def fit(self, train, val=None, epochs: int = 10, batch_size: int = 128, shuffle: bool = True) -> History:
        """Train until ``epochs`` epochs are complete (counting epochs already done when
        resuming), a callback stops training, or SIGINT/SIGTERM arrives (then
        ``on_interrupt`` callbacks run, e.g. a checkpoint is saved, and ``interrupted``
        is set). ``train``/``val``: objects with ``.x`` and ``.y`` or (x, y) tuples."""
        x, y = _xy(train)
        val_xy = _xy(val) if val is not None else None
        loader = BatchLoader(x, y, batch_size, shuffle=shuffle, seed=self.seed)
        self.epochs, self.steps_per_epoch = int(epochs), len(loader)
        self.stop_training = False
        self.stepper.begin_fit()
        self._call("on_fit_begin")
        try:
            with self._interrupt_guard():
                while self.epoch < epochs and not self.stop_training:
                    self._run_epoch(loader, val_xy)
                    if self.restart_requested:
                        self.restart_requested = False
        finally:
            self.stepper.end_fit()
        if self.interrupted:
            self._call("on_interrupt")
        self._call("on_fit_end")
        return self.history

    def _run_epoch(self, loader: BatchLoader, val_xy) -> None:
        stepper = self.stepper
        if self.batch_in_epoch == 0:
            self._call("on_epoch_begin")
        self.model.train()
        for xb, yb in loader.epoch(self.epoch, start_batch=self.batch_in_epoch):
            # the processes agree on a signal inside the step (one of them may have it)
            loss, correct, signalled = stepper.forward_backward(xb, yb, self._signal_received)
            self._interrupt_requested = signalled
            self.last_batch, self.last_loss = (xb, yb), loss
            self.skip_step = False
            self._call("on_before_step", {"loss": loss})
            if self.restart_requested:
                break  # a callback restored an earlier state (NaNGuard rollback)
            if not self.skip_step:
                stepper.apply()

            n = len(xb)
            self._running["loss_sum"] += loss * n
            self._running["count"] += n
            self._running["correct"] += correct
            self.global_step += 1
            self.batch_in_epoch += 1
            self._call("on_batch_end", {"loss": loss})
            if stepper.world == 1:  # one process: stop right after the step the signal came in
                self._interrupt_requested = self._signal_received
            if self.stop_training or self._interrupt_requested:
                break
        if self.restart_requested:
            return  # the fit loop goes on from the restored epoch and batch
        if self._interrupt_requested:
            self.interrupted = True
            self.stop_training = True
            return
        if self.batch_in_epoch < len(loader) and self.stop_training:
            return  # stopped mid-epoch by a callback: no epoch row
        self._end_epoch(val_xy)

    def _end_epoch(self, val_xy) -> None:
        r = self._running
        row = {"epoch": self.epoch + 1, "step": self.global_step, "lr": float(self.optimizer.param_groups[0]["lr"])}
        row["train_loss"] = r["loss_sum"] / max(r["count"], 1)
        if self.task != "regression":
            row["train_accuracy"] = r["correct"] / max(r["count"], 1)
        if val_xy is not None:
            for k, v in self._evaluate_shared(*val_xy).items():
                row[f"val_{k}"] = v
        self.history.append(row)
        self.epoch += 1
        self.batch_in_epoch = 0
        self._running = {"loss_sum": 0.0, "correct": 0, "count": 0}
        self._call("on_epoch_end", row)

    # -- evaluation -----------------------------------------------------------------------
    def predict(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Model outputs for ``x`` in eval mode (logits for classification), as NumPy."""
        return self.stepper.predict(x, batch_size)

    def evaluate(self, x, y=None, batch_size: int = 2048) -> dict[str, float]:
        """Loss and metrics on a dataset (``x, y`` arrays, a Dataset, or a tuple)."""
        if y is None:
            x, y = _xy(x)
        scores = self.predict(x, batch_size)
        result = {"loss": float(self.loss_fn(scores, y))}
        result.update(M.evaluate_scores(scores, y, self.task))
        if self.task != "regression":
            result.pop("log_loss", None)  # equals the loss for the losses twinnet pairs with
        return result

    _SHARED_KEYS = {"regression": ("loss", "mse"), "binary": ("loss", "accuracy", "auc")}

    def _evaluate_shared(self, x, y) -> dict[str, float]:
        """``evaluate`` in one process; data parallel, rank 0 evaluates and every process
        gets its numbers (schedules and early stopping decide on them)."""
        if self.stepper.world == 1:
            return self.evaluate(x, y)
        keys = self._SHARED_KEYS.get(self.task, ("loss", "accuracy"))
        values = [math.nan] * len(keys)
        if self.is_main:
            result = self.evaluate(x, y)
            values = [result[k] for k in keys]
        return dict(zip(keys, self.stepper.share(values), strict=True))

    def get_weights(self) -> dict[str, np.ndarray]:
        """NumPy copies of the model's parameters and buffers, by name."""
        return self.stepper.weights()

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.stepper.load_weights(weights)

    # -- state for checkpoints ---------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly where it is: the counters, the
        history, the callbacks' states and the stepper's (weights, optimiser, RNGs).
        With several processes every one must call it (the RNG states are gathered)."""
        callbacks = {}
        for i, cb in enumerate(self.callbacks):
            if hasattr(cb, "state_dict"):
                callbacks[f"{i}:{type(cb).__name__}"] = cb.state_dict()
        return {
            "engine": self.stepper.engine,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "seed": self.seed,
            "running": dict(self._running),
            "history": [dict(r) for r in self.history.rows],
            **self.stepper.state_dict(),
            "callbacks": callbacks,
        }

    def load_state_dict(self, state: dict) -> None:
        engine = state.get("engine", "numpy")
        if engine != self.stepper.engine:
            raise ValueError(f"the state was written by the {engine} engine, this run uses {self.stepper.engine}")
        self.stepper.load_state_dict(state)
        for i, cb in enumerate(self.callbacks):
            key = f"{i}:{type(cb).__name__}"
            if hasattr(cb, "load_state_dict") and key in state.get("callbacks", {}):
                cb.load_state_dict(state["callbacks"][key])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.global_step = int(state["global_step"])
        self.seed = int(state["seed"])
        self._running = dict(state["running"])
        self.history = History(state["history"])

    # -- signals ---------------------------------------------------------------------------
    _interrupt_requested = False
    _signal_received = False

    @contextmanager
    def _interrupt_guard(self):
        """Turn SIGINT/SIGTERM into a clean stop after the current step. Handlers are
        installed only in the main thread (Python allows no other); ``fit`` in another
        thread runs without them and stops through ``stop_training``."""
        self._interrupt_requested = self._signal_received = False
        self.interrupted = False
        self.signal_number = 0

        def handler(signum, frame):
            self._signal_received = True
            self.signal_number = signum

        with stop_signals(handler):
            yield


@contextmanager
def stop_signals(handler):
    """Route SIGINT and SIGTERM to ``handler(signum, frame)`` inside the block and restore
    the previous handlers after it. Outside the main thread signals are left alone."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _xy(data):
    if isinstance(data, tuple | list) and len(data) == 2:
        return data[0], data[1]
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y
    raise TypeError(f"expected a dataset with .x and .y or an (x, y) tuple, got {type(data).__name__}")
