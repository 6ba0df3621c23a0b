"""The PyTorch engine's stepper: ``twinnet train --engine torch [--device cuda] [--nproc N]``.

It trains exactly what the NumPy engine trains, inside the same
:class:`twinnet.train.Trainer` loop (so the run folder, callbacks, checkpoints and
resume are the same code):

- the model, optimiser and schedule are the NumPy engine's, converted with the twin's
  tables (:func:`twinnet.twin.convert.to_torch`, ``to_torch_optimizer``,
  ``to_torch_scheduler``), so both engines start from identical numbers;
- the batches are ``BatchLoader``'s (the same order as the NumPy engine);
- dropout masks come from torch's generator, seeded from ``(seed, rank)``.

With ``comm.world > 1`` the step is data parallel (:mod:`twinnet.train.engines.ddp`):
process ``r`` of ``N`` takes the contiguous rows ``[n*r//N, n*(r+1)//N)`` of each
global batch of ``n`` rows; its loss is its rows' summed loss times ``N / count`` (count:
the rows, times the outputs per row for a loss averaged over every entry), so DDP's
gradient average is the gradient of the whole batch's mean loss and every process
takes the step one process would take (to float rounding). The collectives (the
gradient all-reduce inside DDP, the sum of loss, right answers and the stop flag, the
gather of RNG states for a checkpoint) all happen inside this stepper.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from twinnet import losses
from twinnet.train.engines.base import Stepper
from twinnet.twin.convert import loss_to_torch, target_to_torch, to_torch
from twinnet.twin.optim import to_torch_optimizer, to_torch_scheduler

ENGINE = "torch"
EVAL_BATCH = 2048  # rows per forward pass when evaluating (as the NumPy stepper)


class Comm:
    """What a step needs from the other processes; one process needs nothing.

    :class:`twinnet.train.engines.ddp.DistComm` implements the same methods with
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

_0D = "__0d__"  # safetensors files hold 0-d tensors as shape (1,)


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


class TorchScheduler:
    """A torch LR scheduler seen as the NumPy engine's: ``step()``, ``state_dict()`` of
    arrays and plain values, ``is_plateau``."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.is_plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def step(self, *args) -> None:
        with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()" after a skip
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step(*args)

    def state_dict(self) -> dict:
        return to_numpy_tree(self.scheduler.state_dict())

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(to_torch_tree(state))


class TorchStepper(Stepper):
    """Steps of a torch module converted from a twinnet model (see the module docstring).

    Build it with :meth:`from_numpy` inside :func:`twinnet.train.engines.torch_env.torch_settings`.
    """

    engine = ENGINE

    def __init__(self, model: torch.nn.Module, np_loss, optimizer, task: str, device: torch.device,
                 comm: Comm | None = None, clip_grad_norm: float | None = None):  # fmt: skip
        self.comm = comm or Comm()
        self.rank, self.world = self.comm.rank, self.comm.world
        self.model, self.optimizer, self.task, self.device = model, optimizer, task, device
        self.net = self.comm.wrap(model, device)
        self.np_loss = np_loss
        self.dtype = next(model.parameters()).dtype
        self.loss_fn = loss_to_torch(np_loss, self.dtype).to(device)  # mean: for diagnostics
        self.sum_loss = loss_to_torch(np_loss, self.dtype).to(device)
        self.sum_loss.reduction = "sum"  # this process's rows; divided by the global count
        self.class_target = isinstance(np_loss, losses.CrossEntropyLoss)
        self.clip_grad_norm = clip_grad_norm or None

    @classmethod
    def from_numpy(cls, np_model, np_loss, np_optimizer, task: str, device: torch.device,
                   comm: Comm | None = None, clip_grad_norm: float | None = None) -> TorchStepper:  # fmt: skip
        """The NumPy engine's model and optimiser, converted: identical weights and groups."""
        model = to_torch(np_model, device)
        optimizer = to_torch_optimizer(np_optimizer, model, model=np_model)
        return cls(model, np_loss, optimizer, task, device, comm, clip_grad_norm)

    def wrap_scheduler(self, np_scheduler):
        """The NumPy schedule of the NumPy optimiser, as a torch schedule of ours."""
        return None if np_scheduler is None else TorchScheduler(to_torch_scheduler(np_scheduler, self.optimizer))

    # -- one step ---------------------------------------------------------------------------------
    def _share(self, a: np.ndarray) -> np.ndarray:
        n = len(a)
        return a[n * self.rank // self.world : n * (self.rank + 1) // self.world]

    def forward_backward(self, xb: np.ndarray, yb: np.ndarray, flag: bool = False) -> tuple[float, int, bool]:
        n_batch = len(xb)
        x = torch.from_numpy(self._share(xb)).to(self.device)
        out = self.net(x)
        y = target_to_torch(self.np_loss, self._share(yb), tuple(out.shape), self.dtype, self.device)
        per_row = 1 if self.class_target else int(np.prod(out.shape[1:]))
        count = n_batch * per_row  # what the mean loss of the whole batch divides by
        loss_sum = self.sum_loss(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over processes: world * (my sum) / count, averaged, is
        # d(sum over all rows / count) = the gradient of the global batch's mean loss
        (loss_sum * (self.world / count)).backward()
        if self.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        correct = self._correct(out, y) if self.task != "regression" else 0
        total, correct, flags = self.comm.sum([loss_sum.item(), correct, float(flag)])
        return total / count, int(correct), flags > 0

    def _correct(self, out: torch.Tensor, y: torch.Tensor) -> int:
        with torch.no_grad():
            pred = (out.reshape(-1) > 0).to(y.dtype) if self.task == "binary" else out.argmax(dim=1)
            return int((pred == y.reshape(-1)).sum())

    def begin_fit(self) -> None:
        self.net.train()

    # -- evaluation ---------------------------------------------------------------------------------
    def predict(self, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Model outputs for ``x`` in eval mode, as a NumPy array of the model's dtype."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                outs = [self.model(torch.from_numpy(x[i : i + batch_size]).to(self.device)).cpu().numpy()
                        for i in range(0, len(x), batch_size)]  # fmt: skip
        finally:
            self.model.train(was_training)
        return np.concatenate(outs) if outs else np.zeros((0,))

    def share(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` on every process."""
        return self.comm.broadcast(values)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -- state ----------------------------------------------------------------------------------------
    def weights(self) -> dict[str, np.ndarray]:
        """NumPy copies of the state_dict (the names the NumPy engine uses)."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in weights.items()})

    def _rng_states(self) -> dict[str, np.ndarray]:
        states = {"cpu": self.comm.gather(torch.get_rng_state().numpy())}  # (world, L) uint8
        if self.device.type == "cuda":
            states["cuda"] = self.comm.gather(torch.cuda.get_rng_state(self.device).numpy())
        return states

    def state_dict(self) -> dict:
        """Weights, optimiser and every process's RNG state (a collective: all call it)."""
        return {
            "world": self.world,
            "model": to_numpy_tree(self.model.state_dict()),
            "optimizer": to_numpy_tree(self.optimizer.state_dict()),
            "rng": self._rng_states(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("world") != self.world:
            raise ValueError(f"the state was written by {state.get('world')} processes, this run has {self.world}")
        self.model.load_state_dict(to_torch_tree(state["model"]))
        self.optimizer.load_state_dict(to_torch_tree(state["optimizer"]))
        rng = state["rng"]  # (world, L) uint8 each
        torch.set_rng_state(torch.from_numpy(np.ascontiguousarray(rng["cpu"][self.rank])))
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(torch.from_numpy(np.ascontiguousarray(rng["cuda"][self.rank])), self.device)

    # -- when the loss goes non-finite --------------------------------------------------------------------
    def locate_non_finite(self, xb: np.ndarray) -> str:
        """Name the first non-finite parameter, input, layer output or gradient."""
        model = self.model
        for name, p in model.named_parameters():
            if not torch.isfinite(p).all():
                return f"parameter {name} is non-finite"
        h = torch.from_numpy(xb).to(self.device)
        if not torch.isfinite(h).all():
            return "the input batch contains a non-finite value"
        with torch.no_grad():
            for i, layer in enumerate(model.children()):
                h = layer(h)
                if not torch.isfinite(h).all():
                    return f"output of layer {i} ({type(layer).__name__}) went non-finite"
        for name, p in model.named_parameters():
            if p.grad is not None and not torch.isfinite(p.grad).all():
                return f"gradient of {name} is non-finite"
        return "the loss itself overflowed (outputs were finite)"


__all__ = ["Comm", "TorchScheduler", "TorchStepper", "to_numpy_tree", "to_torch_tree"]
