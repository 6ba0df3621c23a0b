"""Run a twinnet model and its torch twin side by side and measure every difference.

How differences are measured (one number pair per tensor, ``a`` ours, ``b`` torch's)::

    max_abs = max |a - b|
    max_rel = max |a - b| / max(max |b|, floor)
    floor   = FLOOR_FRACTION[dtype] * (largest max|b| among the tensors of the same kind)

The denominator is the tensor's own scale (its largest |entry|, not entry by entry:
per-element ratios explode on entries that are rounding noise), but never less than
the floor. The floor is there for tensors that are zero in exact arithmetic, such as
the gradient of a bias followed by BatchNorm: both sides hold rounding noise there,
and that noise is measured against a fraction of the scale of its kind (all
gradients; all parameters after step k; ...) instead of against itself.

- float64: the fraction is 1e-2, so every tensor larger than 1% of the largest of its
  kind is measured against itself alone; default tolerance 1e-10.
- float32: the fraction is 1, i.e. every tensor is measured against the largest of its
  kind (float32 rounding through a few layers, with cancellations in LayerNorm,
  BatchNorm and saturating activations, reaches 1e-5 of a small tensor's own scale in
  correct code: both implementations are then equally far from the float64 answer);
  default tolerance 1e-5.

Entries that are NaN (or the same infinity) on both sides count as equal; NaN on one
side only makes the row infinite.

One limit worth knowing: a parameter whose gradient is pure rounding noise (that same
bias before BatchNorm) is moved by scale-free optimisers (Adam, RMSprop, Adagrad) by
steps of ordinary size in a random direction, so in float32 such a parameter, and what
depends on it, can drift apart between the two sides over optimiser steps. That is the
model, not a bug; compare optimiser trajectories in float64.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from twinnet import losses, nn
from twinnet.optim import Optimizer
from twinnet.optim import lr_scheduler as sched_mod
from twinnet.twin.convert import loss_to_torch, target_to_torch, to_torch, torch_dtype
from twinnet.twin.optim import to_torch_optimizer, to_torch_scheduler

TOLERANCES = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
FLOOR_FRACTION = {np.dtype(np.float64): 1e-2, np.dtype(np.float32): 1.0}
_TINY = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class Row:
    """One compared quantity: the largest absolute and relative difference.

    ``kind`` groups rows measured on a common scale ("output", "loss", "grad",
    "buffer", "param", "lr"); ``step`` is the optimiser step after which the
    tensor was taken (0: the first forward/backward); ``name`` the tensor's name.
    """

    quantity: str
    max_abs: float
    max_rel: float
    kind: str = ""
    step: int = 0
    name: str = ""


def _as_f64(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float64, copy=True)  # a snapshot: training goes on


def _abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        diff = np.atleast_1d(np.abs(a - b))
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities, NaN on both sides
    diff[np.atleast_1d(same)] = 0.0
    return float(np.max(np.where(np.isnan(diff), np.inf, diff)))


def _scale(b: np.ndarray) -> float:
    finite = np.abs(b[np.isfinite(b)])
    return float(finite.max()) if finite.size else 0.0


class _Recorder:
    """Collects (quantity, ours, theirs) per kind, then turns each kind into rows."""

    def __init__(self, dtype) -> None:
        self.fraction = FLOOR_FRACTION.get(np.dtype(dtype), 1.0)
        self.pending: list[tuple[str, str, int, str, np.ndarray, np.ndarray]] = []

    def add(self, quantity: str, kind: str, ours, theirs, step: int = 0, name: str = "") -> None:
        self.pending.append((quantity, kind, step, name, _as_f64(ours), _as_f64(theirs)))

    def rows(self) -> list[Row]:
        scales: dict[tuple[str, int], float] = {}
        for _, kind, step, _, _, b in self.pending:
            key = (kind, step)
            scales[key] = max(scales.get(key, 0.0), _scale(b))
        rows = []
        for quantity, kind, step, name, a, b in self.pending:
            max_abs = _abs_diff(a, b)
            floor = max(self.fraction * scales[(kind, step)], _TINY)
            max_rel = max_abs / max(_scale(b), floor) if max_abs > 0 else 0.0
            rows.append(Row(quantity, max_abs, max_rel, kind, step, name))
        return rows


@dataclass
class CompareReport:
    """The differences between a twinnet model and its torch twin, one row per tensor.

    ``rows`` holds every comparison (quantity, max_abs, max_rel); ``max_abs`` and
    ``max_rel`` are the largest over all rows; ``passed(rtol)`` checks every
    ``max_rel <= rtol`` (default: 1e-10 for float64, 1e-5 for float32). ``str(report)``
    is an aligned table with a verdict line; optimiser steps are folded to the worst
    step of each tensor there (``format(full=True)`` lists them all). ``series`` keeps
    whole trajectories where there are some (learning rates: ours, torch's).
    """

    rows: list[Row]
    dtype: np.dtype
    steps: int = 0
    title: str = "twin comparison"
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.rows), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((r.max_rel for r in self.rows), default=0.0)

    def tolerance(self) -> float:
        """The default ``rtol`` for this report's dtype."""
        return TOLERANCES.get(np.dtype(self.dtype), 1e-5)

    def failures(self, rtol: float | None = None) -> list[Row]:
        """Rows whose ``max_rel`` exceeds ``rtol`` (or is NaN)."""
        rtol = self.tolerance() if rtol is None else rtol
        return [r for r in self.rows if not r.max_rel <= rtol]

    def passed(self, rtol: float | None = None) -> bool:
        """True when every row's ``max_rel`` is at most ``rtol`` (default by dtype)."""
        return not self.failures(rtol)

    def worst(self) -> Row | None:
        """The row with the largest ``max_rel`` (None for an empty report)."""
        return max(self.rows, key=lambda r: (not r.max_rel <= math.inf, r.max_rel), default=None)

    def _display_rows(self, full: bool) -> list[Row]:
        if full:
            return list(self.rows)
        shown: list[Row] = []
        worst_step: dict[tuple[str, str], Row] = {}
        order = []
        for r in self.rows:
            if r.step == 0:
                shown.append(r)
                continue
            key = (r.kind, r.name)
            if key not in worst_step:
                order.append(key)
            if key not in worst_step or not r.max_rel <= worst_step[key].max_rel:
                worst_step[key] = r
        for key in order:
            r = worst_step[key]
            label = f"{r.name} after step {r.step}"
            if self.steps > 1:
                label += f" (worst of {self.steps})"
            shown.append(Row(label, r.max_abs, r.max_rel, r.kind, r.step, r.name))
        return shown

    def format(self, rtol: float | None = None, full: bool = False) -> str:
        """The table as text: one line per quantity, then the verdict."""
        rtol = self.tolerance() if rtol is None else rtol
        rows = self._display_rows(full)
        width = max([len("quantity")] + [len(r.quantity) for r in rows])
        steps = f", {self.steps} optimiser step(s)" if self.steps else ""
        lines = [
            f"{self.title} ({np.dtype(self.dtype)}{steps}, tolerance max_rel <= {rtol:.0e})",
            f"{'quantity':<{width}}  {'max_abs':>9}  {'max_rel':>9}",
        ]
        for r in rows:
            flag = "" if r.max_rel <= rtol else "  <-- FAIL"
            lines.append(f"{r.quantity:<{width}}  {r.max_abs:>9.2e}  {r.max_rel:>9.2e}{flag}")
        bad = self.failures(rtol)
        worst = self.worst()
        if not self.rows:
            lines.append("PASSED: nothing to compare")
        elif bad:
            lines.append(
                f"FAILED: {len(bad)} of {len(self.rows)} quantities differ by more than "
                f"max_rel {rtol:.0e} (worst: {worst.quantity}, {worst.max_rel:.2e})"
            )
        else:
            lines.append(
                f"PASSED: all {len(self.rows)} quantities agree to max_rel <= {rtol:.0e} "
                f"(worst: {worst.quantity}, {worst.max_rel:.2e})"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# -- Dropout with the twinnet side's mask -------------------------------------------------------


class _SharedMaskDropout(torch.nn.Module):
    """Dropout that applies the mask its twinnet layer drew in the same forward pass."""

    def __init__(self, source: nn.Dropout):
        super().__init__()
        self.source = [source]  # a list, so torch does not try to register it
        self.p = source.p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        source = self.source[0]
        if not self.training or self.p == 0:
            return x
        if source.mask is None or tuple(source.mask.shape) != tuple(x.shape):
            raise RuntimeError("the twinnet Dropout has no mask for this input; run it first")
        # y = x * mask, the mask already scaled by 1 / (1 - p)
        return x * torch.from_numpy(np.array(source.mask, copy=True)).to(x.device, x.dtype)


def _share_dropout_masks(ours: nn.Module, theirs: torch.nn.Module) -> torch.nn.Module:
    """Replace every torch Dropout of the twin by one that reuses the twinnet mask."""
    for name, layer in list(ours.named_modules()):
        if not isinstance(layer, nn.Dropout):
            continue
        shared = _SharedMaskDropout(layer)
        shared.training = layer.training
        if name == "":
            return shared
        parent_name, _, child = name.rpartition(".")
        setattr(theirs.get_submodule(parent_name), child, shared)
    return theirs


# -- compare ------------------------------------------------------------------------------------


def _model_dtype(model: nn.Module, x: np.ndarray) -> np.dtype:
    """The least precise float dtype among the parameters and the input."""
    dtypes = {p.dtype for p in model.parameters()} | {np.asarray(x).dtype}
    dtypes = {np.dtype(d) for d in dtypes if np.dtype(d).kind == "f"}
    return min(dtypes, key=lambda d: d.itemsize) if dtypes else np.dtype(np.float64)


def compare(
    model: nn.Module,
    loss_fn: losses.Loss,
    x: np.ndarray,
    y,
    optimizer: Optimizer | None = None,
    steps: int = 0,
    device: str | torch.device = "cpu",
) -> CompareReport:
    """Run ``model`` and its torch twin on the same batch and report every difference.

    Recorded: the outputs, the loss, the gradient of every parameter (by name) and of
    the input, and every buffer (BatchNorm running statistics) after the forward.
    With ``optimizer`` and ``steps`` > 0, each step runs forward, backward,
    ``optimizer.step()`` and ``zero_grad()`` on both sides (same batch every step), and
    every parameter and buffer is recorded after each step. Dropout layers share their
    mask: the twinnet layer draws it, the torch twin applies the same one.

    ``model``, ``loss_fn`` and ``optimizer`` are not modified: the comparison runs on
    deep copies (weights, optimiser state, BatchNorm statistics and Dropout random
    streams all stay as they were). Gradients start from zero on both sides.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"compare expects a twinnet nn.Module as model, got {type(model).__name__}")
    if not isinstance(loss_fn, losses.Loss):
        raise TypeError(f"compare expects a twinnet loss as loss_fn, got {type(loss_fn).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        kind = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"compare expects x as a floating numpy array, got {kind}")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if steps > 0 and optimizer is None:
        raise ValueError(f"steps={steps} needs an optimizer")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a twinnet Optimizer, got {type(optimizer).__name__}")

    ours, our_loss, our_opt = copy.deepcopy((model, loss_fn, optimizer))
    ours.zero_grad()
    theirs = _share_dropout_masks(ours, to_torch(ours)).to(device)
    dtype = _model_dtype(ours, x)
    their_loss = loss_to_torch(our_loss, torch_dtype(x.dtype)).to(device)
    their_opt = None
    if our_opt is not None:
        named = dict(theirs.named_parameters())
        mapping = {}
        for name, p in ours.named_parameters():
            mapping[p] = named[name]
        for i, p in enumerate(q for g in our_opt.param_groups for q in g["params"]):
            if p not in mapping:
                raise ValueError(f"optimizer parameter {i} ({p!r}) is not a parameter of model")
        their_opt = to_torch_optimizer(our_opt, mapping)
        our_opt.zero_grad()

    rec = _Recorder(dtype)
    their_params = dict(theirs.named_parameters())
    their_buffers = dict(theirs.named_buffers())
    y_torch = None

    def forward_backward(record: bool) -> None:
        nonlocal y_torch
        out_a = ours(x)
        loss_a = our_loss(out_a, y)
        grad_x_a = ours.backward(our_loss.backward())

        xt = torch.from_numpy(x.copy()).to(device).requires_grad_(True)
        out_b = theirs(xt)
        if y_torch is None:
            y_torch = target_to_torch(our_loss, y, out_b.shape, out_b.dtype, device)
        loss_b = their_loss(out_b, y_torch)
        loss_b.backward()
        if not record:
            return
        rec.add("output", "output", out_a, out_b)
        rec.add("loss", "loss", loss_a, loss_b)
        for name, p in ours.named_parameters():
            g = their_params[name].grad
            rec.add(
                f"grad {name}",
                "grad",
                p.grad,
                torch.zeros_like(their_params[name]) if g is None else g,
                name=name,
            )
        rec.add(
            "grad input",
            "grad",
            grad_x_a,
            torch.zeros_like(xt) if xt.grad is None else xt.grad,
            name="input",
        )
        for name, b in ours.named_buffers():
            rec.add(f"buffer {name}", "buffer", b, their_buffers[name], name=name)

    forward_backward(record=True)
    for step in range(1, steps + 1):
        if step > 1:
            forward_backward(record=False)
        our_opt.step()
        their_opt.step()
        our_opt.zero_grad()
        their_opt.zero_grad()
        for name, p in ours.named_parameters():
            rec.add(f"after step {step}: {name}", "param", p.data, their_params[name], step, name)
        for name, b in ours.named_buffers():
            rec.add(f"after step {step}: {name}", "buffer", b, their_buffers[name], step, name)
    return CompareReport(rec.rows(), dtype, steps)


def compare_lr_schedule(sched, steps: int, metrics=None) -> CompareReport:
    """Step a twinnet schedule and its torch twin ``steps`` times; compare the lr of each group.

    ``metrics`` (one value per step) feeds ``ReduceLROnPlateau``. For ``OneCycleLR``
    with cycled momentum the momentum (or beta1) trajectory is compared too. The
    schedule and its optimiser are not modified (deep copies). ``report.series`` holds
    the trajectories, the value before the first step included.
    """
    plateau = isinstance(sched, sched_mod.ReduceLROnPlateau)
    if plateau and (metrics is None or len(metrics) < steps):
        raise ValueError(f"ReduceLROnPlateau needs one metric per step ({steps}), got {metrics!r}")
    ours = copy.deepcopy(sched)
    opt = ours.optimizer
    params = [p for g in opt.param_groups for p in g["params"]]
    tensors = [torch.zeros(p.shape, dtype=torch_dtype(p.dtype), requires_grad=True) for p in params]
    twin = to_torch_scheduler(ours, to_torch_optimizer(opt, tensors))
    t_opt = twin.optimizer

    momentum_key = None
    if isinstance(ours, sched_mod.OneCycleLR) and ours.cycle_momentum:
        momentum_key = "betas" if ours.use_beta1 else "momentum"

    def snapshot(groups, key):
        if key == "lr":
            return [float(g["lr"]) for g in groups]
        return [float(g[key][0] if key == "betas" else g[key]) for g in groups]

    keys = ["lr"] + ([momentum_key] if momentum_key else [])
    track = {k: ([snapshot(opt.param_groups, k)], [snapshot(t_opt.param_groups, k)]) for k in keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # stepping schedules without training
        for i in range(steps):
            if plateau:
                ours.step(metrics[i])
                twin.step(metrics[i])
            else:
                ours.step()
                twin.step()
            for k in keys:
                track[k][0].append(snapshot(opt.param_groups, k))
                track[k][1].append(snapshot(t_opt.param_groups, k))

    rec = _Recorder(np.float64)
    series = {}
    for k in keys:
        a, b = np.array(track[k][0]), np.array(track[k][1])
        label = "beta1" if k == "betas" else k
        for gi in range(a.shape[1]):
            rec.add(
                f"{label} group {gi} (steps 0..{steps})",
                label,
                a[:, gi],
                b[:, gi],
                name=f"{label} {gi}",
            )
            series[f"{label} group {gi}"] = (a[:, gi].tolist(), b[:, gi].tolist())
    return CompareReport(
        rec.rows(),
        np.dtype(np.float64),
        0,
        title=f"{type(sched).__name__} schedule twin",
        series=series,
    )
