"""The PyTorch training engine: ``twinnet train --engine torch [--device cuda] [--nproc N]``.

It trains exactly the configuration the NumPy engine trains and writes the same run
folder (``config.toml``, ``history.csv``, ``metrics.json``, ``model.safetensors``,
``best.safetensors``, ``curves.png``, ``state/checkpoint.safetensors``):

- the model is the NumPy model built from the config (same seed, same weights),
  converted with :func:`twinnet.twin.to_torch`; the optimiser and the learning-rate
  schedule likewise (``to_torch_optimizer`` / ``to_torch_scheduler``), so both engines
  start from identical numbers;
- epoch ``e`` visits the training set in the order ``BatchLoader`` uses,
  ``np.random.default_rng([seed, e]).permutation(n)``, in batches of ``batch_size``;
- validation and test metrics are computed by the same NumPy functions
  (:mod:`twinnet.train.metrics` and the NumPy loss) on the torch model's outputs;
- dropout masks come from torch's generator, seeded from ``(seed, rank)``;
- tensor names in the weight files are the torch ``state_dict`` names, which equal the
  NumPy engine's by construction; the metadata is ``run.weights_metadata``.

With ``nproc > 1`` the run is data parallel (:mod:`twinnet.twin.ddp`): every process
takes its contiguous share of each global batch of ``batch_size`` examples, the loss
of each share is scaled so that DDP's gradient average equals the gradient of the
whole batch's mean loss, and every process therefore takes the step one process would
take (to float rounding). Rank 0 writes the run folder.

The resumable state (``state/checkpoint.safetensors``, written with
:func:`twinnet.train.state.save_state`: tensors in safetensors, the rest as JSON
metadata, never pickle) holds the weights, the torch optimiser and scheduler states,
every rank's RNG state, the counters, the history, and the best/early-stopping state.

Threads: ``torch.set_num_threads`` gets ``$TWINNET_NUM_THREADS``, else
``$OMP_NUM_THREADS``, else the cores this process may use divided by ``nproc``.
Deterministic algorithms are requested (warn-only); torch settings and the global RNG
are restored when a single-process run returns.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from twinnet import losses
from twinnet.checkpoint import CheckpointError, save_tensors
from twinnet.config import ConfigError, TrainConfig
from twinnet.data.loader import BatchLoader
from twinnet.train import metrics as M
from twinnet.train.callbacks import ProgressBar
from twinnet.train.history import History
from twinnet.train.run import STATE_FILE, RunResult, finish_run, weights_metadata
from twinnet.train.setup import make_loss, make_model, make_optimizer, make_scheduler
from twinnet.train.state import load_state, save_state
from twinnet.train.trainer import stop_signals
from twinnet.twin.convert import loss_to_torch, target_to_torch, to_torch, torch_dtype
from twinnet.twin.optim import to_torch_optimizer, to_torch_scheduler
from twinnet.utils import atomic_write

ENGINE = "torch"
EVAL_BATCH = 2048  # rows per forward pass when evaluating (as Trainer.predict)


# -- device, threads, determinism -------------------------------------------------------------


def resolve_device(device: str, nproc: int = 1) -> torch.device:
    """The torch device for config key ``device`` ("cpu", "cuda" or "cuda:N").

    Raises ValueError with one clear line when CUDA is asked for but missing, or when
    ``nproc`` processes need more GPUs than there are (one GPU per process).
    """
    if device == "cpu":
        return torch.device("cpu")
    if device != "cuda" and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"config key 'device': expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device available")
    count = torch.cuda.device_count()
    index = int(device[5:]) if ":" in device else 0
    if nproc > 1 and device != "cuda":
        raise ConfigError(f"--nproc {nproc} uses GPUs 0..{nproc - 1}; give --device cuda, not {device!r}")
    if index + nproc > count:
        need = f"GPU {index}" if nproc == 1 else f"{nproc} GPUs (one per process)"
        raise ValueError(f"--device {device}: needs {need}, found {count} CUDA device(s)")
    return torch.device(device)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def thread_count(nproc: int = 1) -> int:
    """Intra-op threads per process: ``$TWINNET_NUM_THREADS``, else ``$OMP_NUM_THREADS``,
    else the available cores shared evenly among ``nproc`` processes."""
    for var in ("TWINNET_NUM_THREADS", "OMP_NUM_THREADS"):
        text = os.environ.get(var, "").strip()
        if text:
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"${var} must be a positive integer, got {text!r}")
            return int(text)
    return max(1, available_cores() // max(1, nproc))


@contextlib.contextmanager
def torch_settings(device: torch.device, nproc: int = 1) -> Iterator[int]:
    """Threads, deterministic algorithms and a private global RNG for one run.

    Everything is restored on exit (the RNG through ``torch.random.fork_rng``), so a
    library user's torch state is the same after a run as before it. Yields the thread
    count.
    """
    threads = thread_count(nproc)
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cuda = device.type == "cuda"
    if cuda:
        # must be set before cuBLAS starts; makes its matmuls reproducible
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        saved_cuda = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
                      torch.backends.cuda.matmul.allow_tf32)  # fmt: skip
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32, as in NumPy
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[device] if cuda else []):
            yield threads
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        if cuda:
            (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.backends.cuda.matmul.allow_tf32) = saved_cuda  # fmt: skip


def rank_seed(seed: int, rank: int) -> int:
    """The torch seed of process ``rank``: distinct dropout masks per process, all
    determined by the config's seed."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


# -- collective operations ---------------------------------------------------------------------


class Comm:
    """What the training loop needs from the other processes; one process needs nothing.

    :class:`twinnet.twin.ddp.DistComm` implements the same methods with
    torch.distributed. ``world`` processes, this one is ``rank``.
    """

    rank = 0
    world = 1

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The module to train (DDP around ``model`` when distributed)."""
        return model

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all processes (float64)."""
        return [float(v) for v in values]

    def broadcast(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` (same length everywhere)."""
        return [float(v) for v in values]

    def gather(self, array: np.ndarray) -> np.ndarray:
        """(world, *array.shape): every process's ``array`` (same shape everywhere)."""
        return np.asarray(array)[None]


# -- state conversion (torch objects <-> what save_state stores) ---------------------------------

_0D = "__0d__"  # safetensors files written by save_tensors hold 0-d tensors as shape (1,)


def to_numpy_tree(obj):
    """Tensors -> NumPy arrays, recursively; callables (a LambdaLR's lambda) -> None."""
    if isinstance(obj, torch.Tensor):
        a = obj.detach().cpu().numpy().copy()
        return {_0D: a.reshape(1)} if a.ndim == 0 else a
    if isinstance(obj, dict):
        return {k: to_numpy_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_numpy_tree(v) for v in obj)
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return None


def to_torch_tree(obj):
    """The inverse of :func:`to_numpy_tree`: arrays -> CPU tensors."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        if set(obj) == {_0D}:
            return torch.from_numpy(np.asarray(obj[_0D]).copy()).reshape(())
        return {k: to_torch_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_torch_tree(v) for v in obj)
    return obj


def numpy_weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The module's state_dict as NumPy arrays (the names the NumPy engine uses)."""
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


# -- the training loop -------------------------------------------------------------------------


class TorchTrainer:
    """The torch engine's loop for one process of ``comm.world``; mirrors
    :class:`twinnet.train.Trainer` with the callbacks ``run_training`` installs
    (scheduler, early stopping, NaN guard, checkpoints, progress, diagnostics)."""

    def __init__(self, config: TrainConfig, splits, run_dir: Path, device: torch.device,
                 comm: Comm | None = None, progress: bool = False, progress_file=None):  # fmt: skip
        self.config, self.splits, self.run_dir, self.device = config, splits, Path(run_dir), device
        self.comm = comm or Comm()
        self.is_main = self.comm.rank == 0
        self.task = splits.task
        self.dtype = torch_dtype(np.dtype(config.dtype))

        # the NumPy engine's objects, converted: identical weights, groups and schedule
        np_model = make_model(config)
        self.num_parameters = np_model.num_parameters()
        self.np_loss = make_loss(config, splits.task)
        np_opt = make_optimizer(config, np_model)
        n = len(splits.train)
        self.steps_per_epoch = -(-n // config.batch_size)
        np_sched, self.interval = make_scheduler(config, np_opt, self.steps_per_epoch)
        self.model = to_torch(np_model, device)
        self.net = self.comm.wrap(self.model, device)
        self.optimizer = to_torch_optimizer(np_opt, self.model, model=np_model)
        self.scheduler = None if np_sched is None else to_torch_scheduler(np_sched, self.optimizer)
        self.plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

        # training loss summed over this process's rows; _step divides by the global count
        self.loss_fn = loss_to_torch(self.np_loss, self.dtype).to(device)
        self.loss_fn.reduction = "sum"
        # a mean over the batch (cross-entropy) or over every output entry (MSE, BCE)
        self.per_row = 1 if isinstance(self.np_loss, losses.CrossEntropyLoss) else config.layers[-1]
        self.x = torch.from_numpy(splits.train.x).to(device)  # (n, d)
        self.y = target_to_torch(self.np_loss, splits.train.y, (n, config.layers[-1]), self.dtype, device)
        self.order = BatchLoader(splits.train.x, splits.train.y, config.batch_size, seed=config.seed)

        self.history = History()
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0
        self.global_step = 0
        self.running = {"loss_sum": 0.0, "correct": 0, "count": 0}
        self.seconds, self.samples = 0.0, 0  # training time and examples seen (all processes)
        self.best, self.best_epoch = None, 0  # best.safetensors: lowest val_loss (train_loss)
        self.early = {"best": None, "best_epoch": 0, "wait": 0, "best_weights": None}
        self.stop_training, self.stop_reason = False, ""
        self.interrupted = False
        self._interrupt_requested = False  # agreed by all processes after a step
        self._signal_received = False  # set by the signal handler of this process
        self._t0: float | None = None
        self.meta = weights_metadata(config, splits)
        self.bar = None
        if progress and self.is_main:
            self.bar = ProgressBar(total_epochs=config.epochs, file=progress_file)
        self.diagnostics = None
        if config.diagnostics and self.is_main:
            from twinnet.diagnostics.torch_hooks import TorchDiagnostics

            mean_loss = loss_to_torch(self.np_loss, self.dtype).to(device)
            probe = splits.val if len(splits.val) else splits.train
            self.diagnostics = TorchDiagnostics(self.run_dir, self.model, mean_loss,
                                                every=config.diagnostics_every, probe=probe)  # fmt: skip

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> None:
        """Train until ``config.epochs`` epochs are done, early stopping or the NaN guard
        ends it, or SIGINT/SIGTERM arrives (a checkpoint is saved, ``interrupted`` set)."""
        self.stop_training = False
        self._t0 = time.perf_counter()
        with self._interrupt_guard():
            while self.epoch < self.config.epochs and not self.stop_training:
                self._run_epoch()
        if self.interrupted:
            self.save_checkpoint()
        self._tick()
        best_weights = self.early["best_weights"]  # set only when early stopping is on
        if best_weights is not None and self.stop_training and not self.interrupted:
            self.model.load_state_dict(to_torch_tree(best_weights))  # restore_best_weights
        if self.diagnostics is not None and not self.interrupted:
            self.diagnostics.finish(self.global_step, max(self.epoch, 1))
        if self.bar is not None:
            self.bar.on_fit_end(self)

    def _run_epoch(self) -> None:
        cfg, world, rank = self.config, self.comm.world, self.comm.rank
        if self.batch_in_epoch == 0 and self.bar is not None:
            self.bar.on_epoch_begin(self)
        self.net.train()
        n, b = len(self.x), cfg.batch_size
        perm = torch.from_numpy(self.order.permutation(self.epoch)).to(self.device)  # (n,)
        for i in range(self.batch_in_epoch, self.steps_per_epoch):
            start, stop = i * b, min((i + 1) * b, n)
            # this process's contiguous share of global batch i
            lo, hi = start + (stop - start) * rank // world, start + (stop - start) * (rank + 1) // world
            idx = perm[lo:hi]
            self._step(self.x.index_select(0, idx), self.y.index_select(0, idx), stop - start)
            if self.stop_training or self._interrupt_requested:
                break
        if self._interrupt_requested:
            self.interrupted = self.stop_training = True
            return
        if self.batch_in_epoch < self.steps_per_epoch and self.stop_training:
            return  # stopped mid-epoch (NaN guard): no epoch row
        self._end_epoch()

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, n_batch: int) -> float:
        """One optimiser step on this process's rows of a global batch of ``n_batch``."""
        cfg = self.config
        count = n_batch * self.per_row  # what the mean loss of the whole batch divides by
        out = self.net(xb)
        loss_sum = self.loss_fn(out, yb)
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over processes: world * (my sum) / count, averaged, is
        # d(sum over all rows / count) = the gradient of the global batch's mean loss
        (loss_sum * (self.comm.world / count)).backward()
        if cfg.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad_norm)
        correct = self._correct(out, yb) if self.task != "regression" else 0
        signals = float(self._signal_received)
        total, correct, signals = self.comm.sum([loss_sum.item(), correct, signals])
        self._interrupt_requested = signals > 0  # decided on the sum: all stop after this step
        loss = total / count
        finite = math.isfinite(loss)
        if not finite:  # NaNGuard: skip this step, stop, say where it went wrong
            self.stop_training = True
            where = locate_non_finite(self.model, xb) if self.is_main else ""
            self.stop_reason = f"NaNGuard: step {self.global_step + 1}: loss is {loss}; {where}"
        else:
            step = self.global_step + 1
            if self.diagnostics is not None:
                self.diagnostics.before_step(step)
            self.optimizer.step()
            if self.diagnostics is not None:
                self.diagnostics.after_step(step, self.epoch + 1)
        self.running["loss_sum"] += loss * n_batch
        self.running["count"] += n_batch
        self.running["correct"] += int(correct)
        self.samples += n_batch
        self.global_step += 1
        self.batch_in_epoch += 1
        if self.scheduler is not None and self.interval == "step" and not self.plateau:
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()" after a skip
                warnings.simplefilter("ignore", UserWarning)
                self.scheduler.step()
        if self.bar is not None:
            self.bar.on_batch_end(self, {"loss": loss})
        if finite and cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
            self.save_checkpoint()
        return loss

    def _correct(self, out: torch.Tensor, yb: torch.Tensor) -> int:
        with torch.no_grad():
            if self.task == "binary":
                pred = (out.reshape(-1) > 0).to(yb.dtype)
            else:
                pred = out.argmax(dim=1)
            return int((pred == yb.reshape(-1)).sum())

    def _end_epoch(self) -> None:
        r = self.running
        lr = float(self.optimizer.param_groups[0]["lr"])
        row = {"epoch": self.epoch + 1, "step": self.global_step, "lr": lr}
        row["train_loss"] = r["loss_sum"] / max(r["count"], 1)
        if self.task != "regression":
            row["train_accuracy"] = r["correct"] / max(r["count"], 1)
        if len(self.splits.val):
            for k, v in self.evaluate_everywhere(self.splits.val).items():
                row[f"val_{k}"] = v
        self.history.append(row)
        self.epoch += 1
        self.batch_in_epoch = 0
        self.running = {"loss_sum": 0.0, "correct": 0, "count": 0}
        # the NumPy run's callbacks, in their order: log, schedule, early stopping, progress, checkpoint
        self._tick()
        if self.is_main:
            self.history.to_csv(self.run_dir / "history.csv")
        if self.plateau:
            self.scheduler.step(row.get("val_loss", row["train_loss"]))
        elif self.scheduler is not None and self.interval == "epoch":
            self.scheduler.step()
        if self.config.early_stopping:
            self._early_stopping(row)
        if self.bar is not None:
            self.bar.on_epoch_end(self, row)
        value = row.get("val_loss", row["train_loss"])
        if not math.isnan(value) and (self.best is None or value < self.best):
            self.best, self.best_epoch = value, row["epoch"]
            if self.is_main:
                save_tensors(self.run_dir / "best.safetensors", numpy_weights(self.model), self.meta)
        self.save_checkpoint()

    def _early_stopping(self, row: dict) -> None:
        """EarlyStopping(monitor="val_loss", patience=config.early_stopping, restore_best_weights)."""
        if "val_loss" not in row:
            raise ValueError(f"EarlyStopping monitors 'val_loss', which is not among {sorted(row)}")
        e, value = self.early, row["val_loss"]
        if not math.isnan(value) and (e["best"] is None or value < e["best"]):
            e.update(best=value, best_epoch=row["epoch"], wait=0,
                     best_weights=to_numpy_tree(self.model.state_dict()))  # fmt: skip
            return
        e["wait"] += 1
        if e["wait"] >= self.config.early_stopping:
            self.stop_training = True
            self.stop_reason = (
                f"early stopping: val_loss did not improve for {self.config.early_stopping} epochs "
                f"(best {e['best']:.6g} at epoch {e['best_epoch']})"
            )

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._t0 is not None:
            self.seconds += now - self._t0
        self._t0 = now

    # -- evaluation ------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Model outputs for ``x`` in eval mode, as a NumPy array of the config's dtype."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                outs = [self.model(torch.from_numpy(x[i : i + EVAL_BATCH]).to(self.device)).cpu().numpy()
                        for i in range(0, len(x), EVAL_BATCH)]  # fmt: skip
        finally:
            self.model.train(was_training)
        return np.concatenate(outs) if outs else np.zeros((0,))

    def evaluate(self, data) -> dict[str, float]:
        """What ``Trainer.evaluate`` returns: the NumPy loss and the task's metrics."""
        scores = self.predict(data.x)
        result = {"loss": float(self.np_loss(scores, data.y))}
        result.update(M.evaluate_scores(scores, data.y, self.task))
        if self.task != "regression":
            result.pop("log_loss", None)
        return result

    def evaluate_everywhere(self, data) -> dict[str, float]:
        """Rank 0 evaluates, every process gets the numbers (schedules and early stopping
        decide on them, so all processes must see the same values)."""
        keys = {"regression": ["loss", "mse"], "binary": ["loss", "accuracy", "auc"]}.get(
            self.task, ["loss", "accuracy"]
        )
        values = [math.nan] * len(keys)
        if self.is_main:
            result = self.evaluate(data)
            values = [result[k] for k in keys]
        return dict(zip(keys, self.comm.broadcast(values), strict=True))

    # -- state -----------------------------------------------------------------------------
    def _rng_states(self) -> dict[str, np.ndarray]:
        states = {"cpu": self.comm.gather(torch.get_rng_state().numpy())}  # (world, L) uint8
        if self.device.type == "cuda":
            states["cuda"] = self.comm.gather(torch.cuda.get_rng_state(self.device).numpy())
        return states

    def state_dict(self) -> dict:
        """Everything a resumed run needs (every process's RNG state included)."""
        return {
            "engine": ENGINE,
            "world": self.comm.world,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "seed": self.config.seed,
            "running": dict(self.running),
            "history": [dict(r) for r in self.history.rows],
            "model": to_numpy_tree(self.model.state_dict()),
            "optimizer": to_numpy_tree(self.optimizer.state_dict()),
            "scheduler": None if self.scheduler is None else to_numpy_tree(self.scheduler.state_dict()),
            "rng": self._rng_states(),
            "timer": {"seconds": self.seconds, "samples": self.samples},
            "best": {"best": self.best, "best_epoch": self.best_epoch},
            "early_stopping": dict(self.early),
            "diagnostics": None if self.diagnostics is None else self.diagnostics.state_dict(),
        }

    def load_state_dict(self, state: dict, source: str = "state") -> None:
        if state.get("engine") != ENGINE:
            engine = state.get("engine", "numpy")
            raise CheckpointError(f"{source} was not written by the torch engine (engine {engine!r})")
        if state.get("world") != self.comm.world:
            raise CheckpointError(
                f"{source} was written by {state.get('world')} processes, this run has {self.comm.world}"
            )
        self.model.load_state_dict(to_torch_tree(state["model"]))
        self.optimizer.load_state_dict(to_torch_tree(state["optimizer"]))
        if self.scheduler is not None:
            self.scheduler.load_state_dict(to_torch_tree(state["scheduler"]))
        rng, rank = state["rng"], self.comm.rank  # (world, L) uint8 each
        torch.set_rng_state(torch.from_numpy(np.ascontiguousarray(rng["cpu"][rank])))
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(torch.from_numpy(np.ascontiguousarray(rng["cuda"][rank])), self.device)
        self.epoch, self.batch_in_epoch = int(state["epoch"]), int(state["batch_in_epoch"])
        self.global_step = int(state["global_step"])
        self.running = dict(state["running"])
        self.history = History(state["history"])
        self.seconds, self.samples = float(state["timer"]["seconds"]), int(state["timer"]["samples"])
        self.best, self.best_epoch = state["best"]["best"], int(state["best"]["best_epoch"])
        self.early = dict(state["early_stopping"])
        if self.diagnostics is not None and state.get("diagnostics") is not None:
            self.diagnostics.load_state_dict(state["diagnostics"])

    def save_checkpoint(self) -> None:
        """Write state/checkpoint.safetensors atomically (rank 0; all processes call it)."""
        self._tick()
        state = self.state_dict()  # collective: gathers every process's RNG state
        if self.is_main:
            path = self.run_dir / STATE_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            save_state(path, state)

    # -- signals ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _interrupt_guard(self):
        """SIGINT/SIGTERM end training cleanly after the current step (main thread only)."""
        self._interrupt_requested = self._signal_received = False
        self.interrupted = False

        def handler(signum, frame):
            self._signal_received = True

        with stop_signals(handler):
            yield

    # -- the end ---------------------------------------------------------------------------
    def finish(self) -> RunResult:
        """Rank 0: final weights, history, test metrics, metrics.json and curves.png."""
        cfg, run_dir = self.config, self.run_dir
        if self.interrupted:
            msg = (f"interrupted at epoch {self.epoch + 1}, step {self.global_step}; checkpoint saved. "
                   f"Continue with: twinnet train --resume {run_dir}")  # fmt: skip
            return RunResult(run_dir, "interrupted", message=msg)
        save_tensors(run_dir / "model.safetensors", numpy_weights(self.model), self.meta)
        self.history.to_csv(run_dir / "history.csv")
        test = self.evaluate(self.splits.test) if len(self.splits.test) else {}
        metrics = {f"test_{k}": v for k, v in test.items()}
        metrics.update(
            {
                "train_seconds": round(self.seconds, 3),
                "epochs": self.epoch,
                "steps": self.global_step,
                "samples_per_second": round(self.samples / self.seconds, 1) if self.seconds > 0 else None,
                "best_epoch": self.best_epoch,
                "best_val_loss": self.best,
                "parameters": self.num_parameters,
                "dataset": cfg.dataset,
                "engine": ENGINE,
                "device": str(self.device),
                "nproc": self.comm.world,
            }
        )
        return finish_run(run_dir, self.history, metrics, self.stop_reason, f"{cfg.dataset}: {cfg.layers} (torch)")


def locate_non_finite(model: torch.nn.Module, xb: torch.Tensor) -> str:
    """Name the first non-finite parameter, input, layer output or gradient."""
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            return f"parameter {name} is non-finite"
    if not torch.isfinite(xb).all():
        return "the input batch contains a non-finite value"
    h = xb
    with torch.no_grad():
        for i, layer in enumerate(model.children()):
            h = layer(h)
            if not torch.isfinite(h).all():
                return f"output of layer {i} ({type(layer).__name__}) went non-finite"
    for name, p in model.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            return f"gradient of {name} is non-finite"
    return "the loss itself overflowed (outputs were finite)"


# -- entry points ------------------------------------------------------------------------------


def train_process(config: TrainConfig, splits, run_dir: Path, device: torch.device,
                  comm: Comm | None = None, resume: bool = False, progress: bool = False,
                  progress_file=None) -> RunResult | None:  # fmt: skip
    """Train in this process (one of ``comm.world``); rank 0 returns the RunResult.

    Call inside :func:`torch_settings`. The run folder and its config.toml exist.
    """
    comm = comm or Comm()
    torch.manual_seed(rank_seed(config.seed, comm.rank))  # dropout masks
    trainer = TorchTrainer(config, splits, run_dir, device, comm, progress, progress_file)
    if resume:
        path = Path(run_dir) / STATE_FILE
        trainer.load_state_dict(load_state(path), source=str(path))
    trainer.fit()
    return trainer.finish() if comm.rank == 0 else None


def run_torch_training(config: TrainConfig, splits, run_dir: str | Path, resume: bool = False,
                       progress: bool = True, log=print) -> RunResult:  # fmt: skip
    """``run_training`` with ``engine = "torch"``: train and write the run folder.

    ``splits`` are the loaded data (``run.load_splits``); ``resume`` continues the run
    in ``run_dir`` from its checkpoint. With ``config.nproc > 1`` the training runs in
    ``nproc`` processes started by torch's launcher (:func:`twinnet.twin.ddp.launch`).
    """
    run_dir = Path(run_dir)
    device = resolve_device(config.device, config.nproc)  # before anything is written
    if config.nproc > 1 and config.batch_size < config.nproc:
        raise ConfigError(f"config key 'batch_size': {config.nproc} processes share each batch, "
                          f"so it must be >= nproc, got {config.batch_size}")  # fmt: skip
    thread_count(config.nproc)  # a bad $TWINNET_NUM_THREADS / $OMP_NUM_THREADS fails here
    if resume:
        log(resume_line(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        atomic_write(run_dir / "config.toml", config.to_toml().encode())
    if config.nproc > 1:
        from twinnet.twin.ddp import launch

        return launch(config, run_dir, resume=resume, progress=progress, log=log)
    with torch_settings(device):
        return train_process(config, splits, run_dir, device, resume=resume, progress=progress,
                             progress_file=sys.stderr)  # fmt: skip


def resume_line(run_dir: Path) -> str:
    """"resuming DIR at epoch E, step S", read from the checkpoint's JSON metadata only."""
    from twinnet.checkpoint import read_metadata

    path = run_dir / STATE_FILE
    metadata = read_metadata(path)  # a CheckpointError names what is wrong with the file
    try:
        state = json.loads(metadata.get("state", "{}"))
        return f"resuming {run_dir} at epoch {int(state['epoch']) + 1}, step {int(state['global_step'])}"
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path}: not a twinnet training-state file") from None


__all__ = [
    "Comm",
    "TorchTrainer",
    "resolve_device",
    "run_torch_training",
    "thread_count",
    "torch_settings",
    "train_process",
]
