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
from twinnet.checkpoint import CheckpointError, read_metadata, save_tensors
from twinnet.config import ConfigError, TrainConfig
from twinnet.train.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    LRSchedulerCallback,
    NaNGuard,
    ProgressBar,
)
from twinnet.train.engines.numpy import NumpyStepper
from twinnet.train.setup import (
    data_shape,
    make_loss,
    make_model,
    make_optimizer,
    make_scheduler,
    resolve_layers,
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
    status: str  # "completed", "interrupted", "stopped", "finished" (resumed after its end)
    metrics: dict = field(default_factory=dict)
    message: str = ""
    signal: int = 0  # the signal that interrupted the run (SIGINT, SIGTERM), if any


class RunLogger(Callback):
    """Writes history.csv after every epoch (rank 0) and keeps the training time (resumable)."""

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
        if trainer.is_main:
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
    """Train as configured and write the run folder; or continue the run in ``resume``.

    Resuming a run that stopped before its first checkpoint starts it again from step 0
    with its saved config (and says so); resuming a finished run says it is finished."""
    restart = False
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.toml").is_file():
            raise RunError(f"cannot resume {run_dir}: no config.toml there (not a run folder)")
        config = TrainConfig.from_toml(run_dir / "config.toml")
        if (run_dir / "metrics.json").is_file() and (run_dir / "model.safetensors").is_file():
            return RunResult(run_dir, "finished", _read_metrics(run_dir),
                             message=f"{run_dir} is finished ({config.epochs} {_epochs(config.epochs)}); nothing to resume")  # fmt: skip
        restart = not (run_dir / STATE_FILE).is_file()
    config = config or TrainConfig()
    splits = load_splits(config)
    config = resolve_layers(config, splits.n_features, splits.task, splits.n_classes)

    if resume is None:
        run_dir = Path(out) if out is not None else default_run_dir(config.dataset)
        if (run_dir / "config.toml").exists():
            raise RunError(f"{run_dir} already holds a run; choose another --out or continue it with --resume {run_dir}")
    if config.engine == "torch":
        from twinnet.train.engines.torch_env import resolve_device, thread_count

        resolve_device(config.device, config.nproc)  # before anything is written
        if config.nproc > 1 and config.batch_size < config.nproc:
            raise ConfigError(f"config key 'batch_size': {config.nproc} processes share each batch, "
                              f"so it must be >= nproc, got {config.batch_size}")  # fmt: skip
        thread_count(config.nproc)  # a bad $TWINNET_NUM_THREADS / $OMP_NUM_THREADS fails here
    if restart:
        log(f"note: {run_dir} stopped before its first checkpoint; starting it again from step 0 "
            "with its saved config.toml")  # fmt: skip
    elif resume is not None:
        log(resume_line(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume is None:
        atomic_write(run_dir / "config.toml", config.to_toml().encode())
    resume_state = resume is not None and not restart
    if config.engine == "torch" and config.nproc > 1:
        from twinnet.train.engines.ddp import launch

        outcome = launch(config, run_dir, resume=resume_state, progress=progress, log=log)
        return RunResult(run_dir, **outcome)
    if config.engine == "torch":
        from twinnet.train.engines.torch_env import resolve_device, torch_settings

        device = resolve_device(config.device)
        with torch_settings(device):
            return train_in_process(config, splits, run_dir, resume_state, progress, device=device)
    return train_in_process(config, splits, run_dir, resume_state, progress)


def make_stepper(config: TrainConfig, splits, device=None, comm=None):
    """(stepper, NumPy loss, scheduler or None, interval) of the configured engine; the NumPy
    objects are built first, the torch engine converts them (identical start)."""
    model = make_model(config)
    loss_fn = make_loss(config, splits.task)
    optimizer = make_optimizer(config, model)
    steps_per_epoch = -(-len(splits.train) // config.batch_size)
    scheduler, interval = make_scheduler(config, optimizer, steps_per_epoch)
    if config.engine == "torch":
        import torch

        from twinnet.train.engines.torch import TorchStepper
        from twinnet.train.engines.torch_env import rank_seed

        torch.manual_seed(rank_seed(config.seed, 0 if comm is None else comm.rank))  # dropout masks
        stepper = TorchStepper.from_numpy(model, loss_fn, optimizer, splits.task, device, comm, config.clip_grad_norm)
    else:
        stepper = NumpyStepper(model, loss_fn, optimizer, splits.task, clip_grad_norm=config.clip_grad_norm)
    return stepper, loss_fn, stepper.wrap_scheduler(scheduler), interval


def train_in_process(config: TrainConfig, splits, run_dir: Path, resume: bool = False, progress: bool = True,
                     device=None, comm=None, progress_file=None) -> RunResult | None:  # fmt: skip
    """Train in this process (one of ``comm.world`` when data parallel) with the one
    Trainer; the run folder and its config.toml exist. Rank 0 returns the RunResult."""
    stepper, loss_fn, scheduler, interval = make_stepper(config, splits, device, comm)
    main = stepper.rank == 0
    meta = weights_metadata(config, splits)
    logger = RunLogger(run_dir)
    callbacks: list = [logger]
    if scheduler is not None:
        callbacks.append(LRSchedulerCallback(scheduler, interval=interval))
    if config.early_stopping:
        callbacks.append(EarlyStopping(patience=config.early_stopping))
    callbacks.append(NaNGuard())
    if config.diagnostics and main:
        from twinnet.diagnostics.callback import Diagnostics

        callbacks.append(Diagnostics(run_dir, every=config.diagnostics_every, probe=splits.val if len(splits.val) else splits.train))
    callbacks.append(Checkpoint(run_dir, every_n_steps=config.checkpoint_every, metadata=meta))
    if progress and main:
        callbacks.append(ProgressBar(total_epochs=config.epochs, file=progress_file))

    trainer = Trainer(loss_fn=loss_fn, callbacks=callbacks, task=splits.task, seed=config.seed, stepper=stepper)
    if resume:
        path = run_dir / STATE_FILE
        try:
            trainer.load_state_dict(load_state(path))
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            # a state file edited by hand (or from another run): never a traceback
            raise CheckpointError(f"{path}: training state does not fit this run ({type(e).__name__}: {e})") from None
    val = splits.val if len(splits.val) else None
    trainer.fit(splits.train, val, epochs=config.epochs, batch_size=config.batch_size)

    if trainer.interrupted:
        msg = (f"interrupted at epoch {trainer.epoch + 1}, step {trainer.global_step}; checkpoint saved. "
               f"Continue with: twinnet train --resume {run_dir}")
        return RunResult(run_dir, "interrupted", message=msg, signal=trainer.signal_number)
    if not main:
        return None
    save_tensors(run_dir / "model.safetensors", trainer.get_weights(), meta)
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
            "parameters": stepper.num_parameters(),
            "dataset": config.dataset,
            "engine": config.engine,
        }
    )
    # the network as the user knows it: 784-512-256-10, or the CNN's name
    title = f"{config.dataset}: " + ("-".join(map(str, config.layers)) if config.model == "mlp" else config.model)
    if config.engine == "torch":
        metrics.update({"device": str(stepper.device), "nproc": stepper.world})
        title += " (torch)"
    return finish_run(run_dir, trainer.history, metrics, trainer.stop_reason, title)


def resume_line(run_dir: Path) -> str:
    """"resuming DIR at epoch E, step S", read from the checkpoint's JSON metadata only
    (a damaged file gives the bare line; loading it then names what is wrong)."""
    metadata = read_metadata(run_dir / STATE_FILE)  # a CheckpointError names a broken header
    try:
        state = json.loads(metadata.get("state", "{}"))
        return f"resuming {run_dir} at epoch {int(state['epoch']) + 1}, step {int(state['global_step'])}"
    except (ValueError, KeyError, TypeError, RecursionError):
        return f"resuming {run_dir}"


def _epochs(n: int) -> str:
    return "epoch" if n == 1 else "epochs"


def _read_metrics(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


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
