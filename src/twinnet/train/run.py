"""A training run on disk: what ``twinnet train`` does.

The run folder holds ``config.toml`` (everything needed to rerun), ``history.csv``,
``metrics.json``, ``model.safetensors`` (final weights), ``best.safetensors`` (best
validation epoch), ``state/checkpoint.safetensors`` (what ``--resume`` needs) and
``curves.png``. Everything the user can get wrong (config, data, layer sizes, an
existing run folder) is checked before the folder is created, and every file is
written atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from twinnet import data as datasets
from twinnet.checkpoint import CheckpointError, save_weights
from twinnet.config import ConfigError, TrainConfig
from twinnet.train.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    LRSchedulerCallback,
    NaNGuard,
    ProgressBar,
)
from twinnet.train.setup import (
    check_layers_fit,
    data_shape,
    make_loss,
    make_model,
    make_optimizer,
    make_scheduler,
)
from twinnet.train.state import load_state
from twinnet.train.trainer import Trainer
from twinnet.utils import atomic_write

STATE_FILE = Path("state") / "checkpoint.safetensors"


class RunError(ValueError):
    """A problem with a run folder (exists already, nothing to resume, ...)."""


@dataclass
class RunResult:
    directory: Path
    status: str  # "completed", "interrupted", "stopped"
    metrics: dict = field(default_factory=dict)
    message: str = ""


class RunLogger(Callback):
    """Writes history.csv after every epoch and keeps the training time (resumable)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.seconds = 0.0
        self.samples = 0
        self._t0 = None
        self._step0 = 0

    def _tick(self, trainer) -> None:
        now = time.perf_counter()
        if self._t0 is not None:
            self.seconds += now - self._t0
        self._t0 = now

    def on_fit_begin(self, trainer):
        self._t0 = time.perf_counter()

    def on_batch_end(self, trainer, logs):
        self.samples += len(trainer.last_batch[0])

    def on_epoch_end(self, trainer, row):
        self._tick(trainer)
        trainer.history.to_csv(self.directory / "history.csv")

    def on_interrupt(self, trainer):
        self._tick(trainer)

    def on_fit_end(self, trainer):
        self._tick(trainer)

    def state_dict(self):
        # not part of the weights: time differs between runs, bit-identity is not needed here
        return {"seconds": self.seconds, "samples": self.samples}

    def load_state_dict(self, state):
        self.seconds, self.samples = float(state["seconds"]), int(state["samples"])


def default_run_dir(dataset: str) -> Path:
    return Path("runs") / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{dataset}"


def load_splits(config: TrainConfig):
    return datasets.load(
        config.dataset,
        data_dir=config.data_dir,
        seed=config.seed,
        val_fraction=config.val_fraction,
        n_samples=config.n_samples,
        dtype=np.dtype(config.dtype),
        shape=data_shape(config),  # images (N, C, H, W) for a CNN
    )


def weights_metadata(config: TrainConfig, splits) -> dict[str, str]:
    """What predict/eval need besides the tensors: the config, the task, the scaling."""
    return {
        "format": "twinnet-weights",
        "config": json.dumps(config.to_dict()),
        "task": splits.task,
        "scaler": json.dumps(splits.scaler_info),
        "classes": json.dumps(None if splits.classes is None else [str(c) for c in splits.classes]),
    }


def run_training(
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    log=print,
) -> RunResult:
    """Train as configured and write the run folder; or continue the run in ``resume``."""
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.toml").is_file():
            raise RunError(f"cannot resume {run_dir}: no config.toml there (not a run folder)")
        if not (run_dir / STATE_FILE).is_file():
            raise RunError(
                f"cannot resume {run_dir}: no checkpoint at {run_dir / STATE_FILE} (it stopped before "
                f"its first checkpoint: delete {run_dir} and start again)"
            )
        config = TrainConfig.from_toml(run_dir / "config.toml")
    config = config or TrainConfig()
    splits = load_splits(config)
    check_layers_fit(config, splits.n_features, splits.task, splits.n_classes)

    if resume is None:
        run_dir = Path(out) if out is not None else default_run_dir(config.dataset)
        if (run_dir / "config.toml").exists():
            raise RunError(f"{run_dir} already holds a run; choose another --out or continue it with --resume {run_dir}")

    if config.engine == "torch":
        from twinnet.twin.engine import run_torch_training

        return run_torch_training(config, splits, run_dir, resume=resume is not None, progress=progress, log=log)

    run_dir.mkdir(parents=True, exist_ok=True)
    if resume is None:
        atomic_write(run_dir / "config.toml", config.to_toml().encode())

    model = make_model(config)
    loss_fn = make_loss(config, splits.task)
    optimizer = make_optimizer(config, model)
    steps_per_epoch = -(-len(splits.train) // config.batch_size)
    scheduler, interval = make_scheduler(config, optimizer, steps_per_epoch)
    meta = weights_metadata(config, splits)
    logger = RunLogger(run_dir)
    callbacks: list = [logger]
    if scheduler is not None:
        callbacks.append(LRSchedulerCallback(scheduler, interval=interval))
    if config.early_stopping:
        callbacks.append(EarlyStopping(patience=config.early_stopping))
    callbacks.append(NaNGuard())
    if config.diagnostics:
        from twinnet.diagnostics import Diagnostics

        callbacks.append(Diagnostics(run_dir, every=config.diagnostics_every, probe=splits.val if len(splits.val) else splits.train))
    callbacks.append(Checkpoint(run_dir, every_n_steps=config.checkpoint_every, metadata=meta))
    if progress:
        callbacks.append(ProgressBar(total_epochs=config.epochs))

    trainer = Trainer(
        model, loss_fn, optimizer, callbacks=callbacks, task=splits.task,
        clip_grad_norm=config.clip_grad_norm, seed=config.seed,
    )
    if resume is not None:
        try:
            trainer.load_state_dict(load_state(run_dir / STATE_FILE))
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            # a state file edited by hand (or from another run): never a traceback
            raise CheckpointError(
                f"{run_dir / STATE_FILE}: training state does not fit this run ({type(e).__name__}: {e})"
            ) from None
        log(f"resuming {run_dir} at epoch {trainer.epoch + 1}, step {trainer.global_step}")
    val = splits.val if len(splits.val) else None
    trainer.fit(splits.train, val, epochs=config.epochs, batch_size=config.batch_size)

    if trainer.interrupted:
        msg = (f"interrupted at epoch {trainer.epoch + 1}, step {trainer.global_step}; checkpoint saved. "
               f"Continue with: twinnet train --resume {run_dir}")
        return RunResult(run_dir, "interrupted", message=msg)

    save_weights(run_dir / "model.safetensors", model, meta)
    trainer.history.to_csv(run_dir / "history.csv")
    test = trainer.evaluate(splits.test) if len(splits.test) else {}
    ckpt = trainer.callback(Checkpoint)
    metrics = {f"test_{k}": v for k, v in test.items()}
    metrics.update(
        {
            "train_seconds": round(logger.seconds, 3),
            "epochs": trainer.epoch,
            "steps": trainer.global_step,
            "samples_per_second": round(logger.samples / logger.seconds, 1) if logger.seconds > 0 else None,
            "best_epoch": ckpt.best_epoch,
            "best_" + ckpt.monitor: ckpt.best,
            "parameters": model.num_parameters(),
            "dataset": config.dataset,
            "engine": "numpy",
        }
    )
    return finish_run(run_dir, trainer.history, metrics, trainer.stop_reason, f"{config.dataset}: {config.layers}")


def finish_run(run_dir: Path, history, metrics: dict, stop_reason: str, title: str) -> RunResult:
    """Write metrics.json and curves.png of a finished run (either engine)."""
    if stop_reason:
        metrics["stop_reason"] = stop_reason
    atomic_write(run_dir / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())
    try:
        from twinnet.train.plots import plot_curves

        if len(history):  # a NaN in epoch 1 leaves no epoch to plot
            plot_curves(history, run_dir / "curves.png", title=title)
    except ImportError:  # matplotlib missing: the numbers are all there anyway
        pass
    status = "stopped" if stop_reason.startswith("NaNGuard") else "completed"
    return RunResult(run_dir, status, metrics, message=stop_reason)


def require_run_dir(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise RunError(f"run folder not found: {p}")
    if not (p / "config.toml").is_file():
        raise RunError(f"{p} is not a run folder (no config.toml)")
    return p


__all__ = ["RunError", "RunResult", "run_training", "ConfigError"]
