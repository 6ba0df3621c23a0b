"""The Trainer: the training loop, kept separate from the model (STYLE 5).

What a model must provide: ``forward(x)`` (via ``__call__``), ``backward(grad)``,
``parameters()``, ``train()``/``eval()``, ``state_dict()``/``load_state_dict()``.
What a loss must provide: ``loss_fn(pred, target) -> float`` and ``backward()``.
What an optimiser must provide: ``step()``, ``zero_grad()``, ``param_groups``,
``state_dict()``/``load_state_dict()``.

One training step is: forward, loss, zero the gradients, backward, (penalties,
clipping), optimiser step. The data order of epoch ``e`` is a pure function of
(seed, e), and every other piece of state (weights, optimiser moments, scheduler,
dropout generators, counters, partial epoch sums, history) is in ``state_dict()``, so
a run resumed from a checkpoint ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import math
import signal
from contextlib import contextmanager

import numpy as np

from twinnet.data.loader import BatchLoader
from twinnet.train import metrics as M
from twinnet.train.history import History


class Trainer:
    """Train ``model`` on (x, y) arrays with mini-batches.

    Args:
        model, loss_fn, optimizer: see the module docstring for what each must provide.
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
        model,
        loss_fn,
        optimizer,
        callbacks=(),
        task: str = "multiclass",
        regularizers=(),
        clip_grad_norm: float | None = None,
        seed: int = 0,
    ):
        if task not in ("multiclass", "binary", "regression"):
            raise ValueError(f"task must be 'multiclass', 'binary' or 'regression', got {task!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.callbacks = list(callbacks)
        self.task = task
        self.regularizers = list(regularizers)
        self.clip_grad_norm = clip_grad_norm or None
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
        self.stop_training = False
        first = _first_linear(self.model)
        if first is not None:
            first.input_grad = False  # nobody needs dL/d(data): skip that matrix product
        self._call("on_fit_begin")
        try:
            with self._interrupt_guard():
                while self.epoch < epochs and not self.stop_training:
                    self._run_epoch(loader, val_xy)
                    if self.restart_requested:
                        self.restart_requested = False
        finally:
            if first is not None:
                first.input_grad = True
        if self.interrupted:
            self._call("on_interrupt")
        self._call("on_fit_end")
        return self.history

    def _run_epoch(self, loader: BatchLoader, val_xy) -> None:
        model, loss_fn, opt = self.model, self.loss_fn, self.optimizer
        params = model.parameters()
        if self.batch_in_epoch == 0:
            self._call("on_epoch_begin")
        model.train()
        track_accuracy = self.task != "regression"
        for xb, yb in loader.epoch(self.epoch, start_batch=self.batch_in_epoch):
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad()
            model.backward(loss_fn.backward())
            for reg in self.regularizers:
                loss += reg(params)
                reg.backward(params)
            if self.clip_grad_norm:
                from twinnet.optim import clip_grad_norm_

                clip_grad_norm_(params, self.clip_grad_norm)
            self.last_batch, self.last_loss = (xb, yb), loss
            self.skip_step = False
            self._call("on_before_step", {"loss": loss})
            if self.restart_requested:
                break  # a callback restored an earlier state (NaNGuard rollback)
            if not self.skip_step:
                opt.step()

            n = len(xb)
            self._running["loss_sum"] += loss * n
            self._running["count"] += n
            if track_accuracy:
                self._running["correct"] += int((M.predict_labels(out, self.task) == yb.reshape(-1)).sum())
            self.global_step += 1
            self.batch_in_epoch += 1
            self._call("on_batch_end", {"loss": loss})
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
            for k, v in self.evaluate(*val_xy).items():
                row[f"val_{k}"] = v
        self.history.append(row)
        self.epoch += 1
        self.batch_in_epoch = 0
        self._running = {"loss_sum": 0.0, "correct": 0, "count": 0}
        self._call("on_epoch_end", row)

    # -- evaluation -----------------------------------------------------------------------
    def predict(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Model outputs for ``x`` in eval mode (logits for classification)."""
        was_training = self.model.training
        self.model.eval()
        try:
            outs = [self.model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        finally:
            self.model.train(was_training)
        return np.concatenate(outs) if outs else np.zeros((0,))

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

    # -- state for checkpoints ---------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly where it is."""
        rngs = {
            name: m.rng.bit_generator.state
            for name, m in self.model.named_modules()
            if isinstance(getattr(m, "rng", None), np.random.Generator)
        }
        callbacks = {}
        for i, cb in enumerate(self.callbacks):
            if hasattr(cb, "state_dict"):
                callbacks[f"{i}:{type(cb).__name__}"] = cb.state_dict()
        return {
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "seed": self.seed,
            "running": dict(self._running),
            "history": [dict(r) for r in self.history.rows],
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rngs": rngs,
            "callbacks": callbacks,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        modules = dict(self.model.named_modules())
        for name, rng_state in state.get("rngs", {}).items():
            modules[name].rng.bit_generator.state = rng_state
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

    @contextmanager
    def _interrupt_guard(self):
        """Turn SIGINT/SIGTERM into a clean stop after the current batch (main thread only)."""
        self._interrupt_requested = False
        self.interrupted = False

        def handler(signum, frame):
            self._interrupt_requested = True

        with stop_signals(handler):
            yield


@contextmanager
def stop_signals(handler):
    """Route SIGINT and SIGTERM to ``handler(signum, frame)`` inside the block and restore
    the previous handlers after it. Outside the main thread signals are left alone."""
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not in the main thread
        previous = {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _first_linear(model):
    """The Linear layer that receives the data first in a Sequential, if any."""
    from twinnet.nn import Linear, Sequential

    if isinstance(model, Sequential) and len(model) and isinstance(model[0], Linear):
        return model[0]
    return None


def _xy(data):
    if isinstance(data, tuple | list) and len(data) == 2:
        return data[0], data[1]
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y
    raise TypeError(f"expected a dataset with .x and .y or an (x, y) tuple, got {type(data).__name__}")
