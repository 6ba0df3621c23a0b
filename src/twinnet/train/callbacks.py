"""Callbacks: hooks into the Trainer's loop.

A callback implements any of ``on_fit_begin(trainer)``, ``on_epoch_begin(trainer)``,
``on_before_step(trainer, logs)`` (after backward, before the optimiser step),
``on_batch_end(trainer, logs)``, ``on_epoch_end(trainer, row)``,
``on_interrupt(trainer)``, ``on_fit_end(trainer)``. Callbacks with state that a resumed
run needs also implement ``state_dict()`` and ``load_state_dict(state)``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from twinnet.checkpoint import save_tensors
from twinnet.train.state import load_state, save_state


class Callback:
    """Base class with no-op hooks."""

    def on_fit_begin(self, trainer): ...
    def on_epoch_begin(self, trainer): ...
    def on_before_step(self, trainer, logs): ...
    def on_batch_end(self, trainer, logs): ...
    def on_epoch_end(self, trainer, row): ...
    def on_interrupt(self, trainer): ...
    def on_fit_end(self, trainer): ...


def _mode_for(monitor: str, mode: str) -> str:
    if mode != "auto":
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        return mode
    return "max" if any(k in monitor for k in ("accuracy", "auc")) else "min"


def _improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    with ``restore_best_weights`` the model ends with the weights of its best epoch."""

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto", restore_best_weights=True):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode = _mode_for(monitor, mode)
        self.restore_best_weights = restore_best_weights
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_weights: dict | None = None
        self.stopped_epoch = 0

    def on_epoch_end(self, trainer, row):
        if self.monitor not in row:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which is not among {sorted(row)}")
        value = row[self.monitor]
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, row["epoch"], 0
            if self.restore_best_weights:
                self.best_weights = trainer.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_training = True
                trainer.stop_reason = (
                    f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                    f"(best {self.best:.6g} at epoch {self.best_epoch})"
                )
                self.stopped_epoch = row["epoch"]

    def on_fit_end(self, trainer):
        if self.restore_best_weights and self.best_weights is not None and trainer.stop_training and not trainer.interrupted:
            trainer.set_weights(self.best_weights)

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = state["best_weights"]


class LRSchedulerCallback(Callback):
    """Step an ``optim.lr_scheduler`` scheduler every batch (``interval="step"``) or every
    epoch (``"epoch"``). ``ReduceLROnPlateau`` is stepped with the ``monitor`` value."""

    def __init__(self, scheduler, interval: str = "epoch", monitor: str = "val_loss"):
        if interval not in ("step", "epoch"):
            raise ValueError(f"interval must be 'step' or 'epoch', got {interval!r}")
        self.scheduler, self.interval, self.monitor = scheduler, interval, monitor

    def _is_plateau(self) -> bool:
        return getattr(self.scheduler, "is_plateau", type(self.scheduler).__name__ == "ReduceLROnPlateau")

    def on_batch_end(self, trainer, logs):
        if self.interval == "step" and not self._is_plateau():
            self.scheduler.step()

    def on_epoch_end(self, trainer, row):
        if self._is_plateau():
            value = row.get(self.monitor, row.get("train_loss"))
            self.scheduler.step(value)
        elif self.interval == "epoch":
            self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)


class Checkpoint(Callback):
    """Save the resumable training state to ``directory/state/checkpoint.safetensors``
    at every epoch end, every ``every_n_steps`` steps (0: off) and on SIGINT/SIGTERM;
    and the weights of the best epoch (by ``monitor``) to ``directory/best.safetensors``.
    Every write is atomic: the previous checkpoint stays valid until the new one is
    complete. Data parallel, every process takes part (the state gathers their random
    generators) and rank 0 writes."""

    order = 100  # after every other callback, so the saved state is the complete step

    def __init__(self, directory, every_n_steps: int = 0, monitor: str = "val_loss", mode: str = "auto", metadata=None):
        self.directory = Path(directory)
        self.every_n_steps = int(every_n_steps)
        self.monitor = monitor
        self.mode = _mode_for(monitor, mode)
        self.metadata = metadata or {}
        self.best: float | None = None
        self.best_epoch = 0

    @property
    def state_path(self) -> Path:
        return self.directory / "state" / "checkpoint.safetensors"

    def save(self, trainer) -> None:
        state = trainer.state_dict()  # every process: a collective when data parallel
        if trainer.is_main:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            save_state(self.state_path, state)

    def on_batch_end(self, trainer, logs):
        if not math.isfinite(logs["loss"]):
            return  # never checkpoint a diverged state (NaNGuard deals with it)
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.save(trainer)

    def on_epoch_end(self, trainer, row):
        value = row.get(self.monitor)
        if value is None and self.monitor.startswith("val_"):
            value = row.get(self.monitor[4:].join(["train_", ""]))  # no validation set
        if _improved(value, self.best, self.mode):
            self.best, self.best_epoch = value, row["epoch"]
            if trainer.is_main:
                save_tensors(self.directory / "best.safetensors", trainer.get_weights(), self.metadata)
        self.save(trainer)

    def on_interrupt(self, trainer):
        self.save(trainer)

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]

    @staticmethod
    def load(path) -> dict:
        """Read a state file written by ``save`` (pass it to ``Trainer.load_state_dict``)."""
        return load_state(path)


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr: steps done of the epoch's total, its percentage,
    the time left for the epoch (tqdm's) and for the whole run, and the running loss;
    at each epoch's end one line with the epoch's train and validation metrics."""

    def __init__(self, total_epochs: int | None = None, file=None, disable: bool | None = None,
                 refresh_seconds: float = 0.1):  # fmt: skip
        """``disable=None``: no bar when ``file`` is not a terminal (tqdm's rule); the epoch
        lines are printed unless ``disable`` is True."""
        self.total_epochs, self.file, self.disable = total_epochs, file or sys.stderr, disable
        self.refresh_seconds = refresh_seconds
        self.bar = None
        self._t0 = None
        self._step0 = 0

    def on_fit_begin(self, trainer):
        self._t0, self._step0 = time.perf_counter(), trainer.global_step

    def on_epoch_begin(self, trainer):
        from tqdm.auto import tqdm

        total_epochs = self.total_epochs or trainer.epochs
        label = f"epoch {trainer.epoch + 1}" + (f"/{total_epochs}" if total_epochs else "")
        self.bar = tqdm(
            desc=label, total=trainer.steps_per_epoch or None, initial=trainer.batch_in_epoch, unit="step",
            file=self.file, leave=False, disable=self.disable, dynamic_ncols=True, mininterval=self.refresh_seconds,
        )  # fmt: skip

    def run_left(self, trainer) -> float | None:
        """Seconds left for the whole run at this fit's pace so far (None: not known yet)."""
        done = trainer.global_step - self._step0
        total_epochs = self.total_epochs or trainer.epochs
        if self._t0 is None or done <= 0 or not trainer.steps_per_epoch or not total_epochs:
            return None
        left = total_epochs * trainer.steps_per_epoch - trainer.global_step
        return max(left, 0) * (time.perf_counter() - self._t0) / done

    def on_batch_end(self, trainer, logs):
        if self.bar is None:
            self.on_epoch_begin(trainer)  # resumed mid-epoch: the bar starts at this step
            self.bar.n = trainer.batch_in_epoch - 1
        self.bar.update(1)
        if trainer.global_step % 20 == 0:
            left = self.run_left(trainer)
            postfix = {"loss": f"{logs['loss']:.4f}"}
            if left is not None:
                postfix["run left"] = _clock(left)
            self.bar.set_postfix(postfix, refresh=False)

    def on_epoch_end(self, trainer, row):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        total_epochs = self.total_epochs or trainer.epochs
        parts = [f"epoch {row['epoch']}" + (f"/{total_epochs}" if total_epochs else "")] + [
            f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "step", "lr") and isinstance(v, float)
        ]
        left = self.run_left(trainer)
        if left is not None and row["epoch"] < (total_epochs or 0):
            parts.append(f"run left {_clock(left)}")
        if not self.disable:
            print("  ".join(parts), file=self.file, flush=True)

    def on_fit_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clock(seconds: float) -> str:
    """"1:02:03" or "02:03"."""
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m:02d}:{s % 60:02d}"


class NaNGuard(Callback):
    """Stop at the first non-finite loss, naming the step and the first layer whose
    output (or parameter, or gradient) went non-finite.

    With ``rollback=True`` and a ``Checkpoint`` among the callbacks, it instead restores
    the last saved state, halves the learning rate and goes on (at most
    ``max_rollbacks`` times).
    """

    order = 50  # before Checkpoint

    def __init__(self, rollback: bool = False, max_rollbacks: int = 3):
        self.rollback, self.max_rollbacks = rollback, int(max_rollbacks)
        self.rollbacks = 0
        self.report: str | None = None

    def on_before_step(self, trainer, logs):
        if math.isfinite(logs["loss"]):
            return
        trainer.skip_step = True  # the parameters stay as they were when the loss went bad
        where = trainer.stepper.locate_non_finite(trainer.last_batch[0])
        self.report = f"step {trainer.global_step + 1}: loss is {logs['loss']}; {where}"
        ckpt = next((cb for cb in trainer.callbacks if isinstance(cb, Checkpoint)), None)
        if self.rollback and ckpt is not None and ckpt.state_path.exists() and self.rollbacks < self.max_rollbacks:
            rollbacks = self.rollbacks + 1
            lr = trainer.optimizer.param_groups[0]["lr"]
            trainer.load_state_dict(load_state(ckpt.state_path))
            # the restored lr carries the halvings done before the checkpoint was saved
            # (their count is self.rollbacks now); halve once more for each one since
            _scale_learning_rates(trainer, 0.5 ** (rollbacks - self.rollbacks))
            self.rollbacks = rollbacks
            print(
                f"NaNGuard: {self.report}; rolled back to step {trainer.global_step}, "
                f"lr halved ({lr:g} -> {trainer.optimizer.param_groups[0]['lr']:g})",
                file=sys.stderr,
            )
            trainer.restart_requested = True  # the loop continues from the restored position
            return
        trainer.stop_training = True
        trainer.stop_reason = f"NaNGuard: {self.report}"

    def state_dict(self):
        return {"rollbacks": self.rollbacks}

    def load_state_dict(self, state):
        self.rollbacks = state["rollbacks"]


def _scale_learning_rates(trainer, factor: float) -> None:
    """Multiply every learning rate by ``factor``: the groups' and their schedulers' bases."""
    for g in trainer.optimizer.param_groups:
        g["lr"] *= factor
        for key in ("initial_lr", "max_lr", "min_lr"):
            if key in g:
                g[key] *= factor
    for cb in trainer.callbacks:
        sched = getattr(cb, "scheduler", None)
        while sched is not None:
            if hasattr(sched, "base_lrs"):
                sched.base_lrs = [b * factor for b in sched.base_lrs]
            if hasattr(sched, "min_lrs"):
                sched.min_lrs = [b * factor for b in sched.min_lrs]
            sched = getattr(sched, "after", None)
