"""Run a twinnet model and its torch twin side by side and measure every difference.

``compare`` runs in float64 by default: it compares float64 copies of the model, the
loss, the optimiser and the data, so the comparison proves the formulas (rounding is
1e-16, tolerance 1e-10) whatever dtype the model trains in. ``precision="model"``
compares in the model's own dtype; in float32 a third run, torch's twin in float64,
measures torch's own rounding error, and each row must be within 1e-5 or within a
few times that error (``twinnet.twin.report`` says why and how differences are
measured).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch

from twinnet import losses, nn
from twinnet.optim import Optimizer
from twinnet.optim import lr_scheduler as sched_mod
from twinnet.twin.convert import from_torch, loss_to_torch, target_to_torch, to_torch, torch_dtype
from twinnet.twin.optim import to_torch_optimizer, to_torch_scheduler
from twinnet.twin.report import (  # noqa: F401  (re-exported: twin.compare.Row, ...)
    REF_FACTOR,
    TOLERANCES,
    CompareReport,
    Recorder,
    Row,
)

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

PRECISIONS = ("float64", "model")


def _model_dtype(model: nn.Module, x: np.ndarray) -> np.dtype:
    """The least precise float dtype among the parameters and the input."""
    dtypes = {p.dtype for p in model.parameters()} | {np.asarray(x).dtype}
    dtypes = {np.dtype(d) for d in dtypes if np.dtype(d).kind == "f"}
    return min(dtypes, key=lambda d: d.itemsize) if dtypes else np.dtype(np.float64)


def _float64_copies(model: nn.Module, loss_fn: losses.Loss, optimizer: Optimizer | None):
    """float64 copies of model, loss and optimiser; the originals are not touched.

    The model goes through its twin and back (``from_torch(to_torch(model).double())``:
    the one table of conventions does the cast, weights, buffers and modes included).
    The optimiser is deep-copied with each of its parameters replaced by the copy of
    the same name, and its state (moments, ...) cast to float64.
    """
    ours = from_torch(to_torch(model).double())
    for (_, old), (_, new) in zip(model.named_modules(), ours.named_modules(), strict=True):
        if isinstance(old, nn.Dropout) and isinstance(new, nn.Dropout):
            new.rng = copy.deepcopy(old.rng)  # the same random stream as the original
    our_loss = copy.deepcopy(loss_fn)
    if optimizer is None:
        return ours, our_loss, None
    copies = dict(ours.named_parameters())
    memo = {id(p): copies[name] for name, p in model.named_parameters()}
    our_opt = copy.deepcopy(optimizer, memo)  # params (group lists and state keys) -> the copies
    for state in our_opt.state.values():
        for key, value in state.items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                state[key] = value.astype(np.float64)
    return ours, our_loss, our_opt


def _torch_twin(ours, our_loss, our_opt, dtype, device):
    """The torch module (Dropout masks shared with ``ours``), loss and optimiser twins."""
    theirs = _share_dropout_masks(ours, to_torch(ours)).to(device=device, dtype=torch_dtype(dtype))
    their_loss = loss_to_torch(our_loss, torch_dtype(dtype)).to(device)
    their_opt = None
    if our_opt is not None:
        named = dict(theirs.named_parameters())
        mapping = {p: named[name] for name, p in ours.named_parameters()}
        for i, p in enumerate(q for g in our_opt.param_groups for q in g["params"]):
            if p not in mapping:
                raise ValueError(f"optimizer parameter {i} ({p!r}) is not a parameter of model")
        their_opt = to_torch_optimizer(our_opt, mapping)
    return theirs, their_loss, their_opt


def compare(
    model: nn.Module,
    loss_fn: losses.Loss,
    x: np.ndarray,
    y,
    optimizer: Optimizer | None = None,
    steps: int = 0,
    device: str | torch.device = "cpu",
    precision: str = "float64",
) -> CompareReport:
    """Run ``model`` and its torch twin on the same batch and report every difference.

    Recorded: the outputs, the loss, the gradient of every parameter (by name) and of
    the input, and every buffer (BatchNorm running statistics) after the forward.
    With ``optimizer`` and ``steps`` > 0, each step runs forward, backward,
    ``optimizer.step()`` and ``zero_grad()`` on both sides (same batch every step), and
    every parameter and buffer is recorded after each step. Dropout layers share their
    mask: the twinnet layer draws it, the torch twin applies the same one.

    ``precision="float64"`` (the default) compares float64 copies of the model, loss,
    optimiser and data (tolerance 1e-10): the twin proves the formulas, whatever
    dtype the model trains in. ``precision="model"`` compares in the model's own
    dtype; for float32, torch's twin also runs in float64 and each row passes within
    max_rel 1e-5 or within 4 x torch's own float32 error (``twinnet.twin.report``).

    ``model``, ``loss_fn`` and ``optimizer`` are not modified: the comparison runs on
    copies (weights, optimiser state, BatchNorm statistics and Dropout random
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
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")

    model_dtype = _model_dtype(model, x)
    if precision == "float64":
        ours, our_loss, our_opt = _float64_copies(model, loss_fn, optimizer)
        x = x.astype(np.float64)
        if isinstance(y, np.ndarray) and y.dtype.kind == "f":
            y = y.astype(np.float64)
        dtype = np.dtype(np.float64)
    else:
        ours, our_loss, our_opt = copy.deepcopy((model, loss_fn, optimizer))
        dtype = model_dtype
    ours.zero_grad()
    # a third run, torch in float64, measures torch's own float32 rounding error
    sides = [_torch_twin(ours, our_loss, our_opt, dtype, device)]
    if dtype != np.float64:
        sides.append(_torch_twin(ours, our_loss, our_opt, np.float64, device))
    if our_opt is not None:
        our_opt.zero_grad()

    rec = Recorder(dtype)
    named = [(dict(m.named_parameters()), dict(m.named_buffers())) for m, _, _ in sides]
    targets: list = [None] * len(sides)

    def run_torch(i: int):
        module, loss, _ = sides[i]
        xt = torch.from_numpy(x.copy()).to(device, next(module.parameters()).dtype).requires_grad_(True)
        out = module(xt)
        if targets[i] is None:
            targets[i] = target_to_torch(our_loss, y, out.shape, out.dtype, device)
        value = loss(out, targets[i])
        value.backward()
        return out, value, xt

    def ref_of(i_kind: str, name: str = ""):
        """torch's float64 value of the same quantity (None when comparing in float64)."""
        if len(sides) == 1:
            return None
        params, buffers = named[1]
        return {"param": params, "buffer": buffers}[i_kind][name]

    def forward_backward(record: bool) -> None:
        out_a = ours(x)
        loss_a = our_loss(out_a, y)
        grad_x_a = ours.backward(our_loss.backward())
        results = [run_torch(i) for i in range(len(sides))]
        if not record:
            return
        (out_b, loss_b, xt), ref = results[0], (results[1] if len(results) > 1 else None)
        params, buffers = named[0]

        def grad(tensor):
            return torch.zeros_like(tensor) if tensor.grad is None else tensor.grad

        rec.add("output", "output", out_a, out_b, ref=None if ref is None else ref[0])
        rec.add("loss", "loss", loss_a, loss_b, ref=None if ref is None else ref[1])
        for name, p in ours.named_parameters():
            r = None if ref is None else grad(named[1][0][name])
            rec.add(f"grad {name}", "grad", p.grad, grad(params[name]), name=name, ref=r)
        r = None if ref is None else grad(ref[2])
        rec.add("grad input", "grad", grad_x_a, grad(xt), name="input", ref=r)
        for name, b in ours.named_buffers():
            r = None if ref is None else named[1][1][name]
            rec.add(f"buffer {name}", "buffer", b, buffers[name], name=name, ref=r)

    forward_backward(record=True)
    for step in range(1, steps + 1):
        if step > 1:
            forward_backward(record=False)
        our_opt.step()
        our_opt.zero_grad()
        for _, _, opt in sides:
            opt.step()
            opt.zero_grad()
        params, buffers = named[0]
        for name, p in ours.named_parameters():
            r = ref_of("param", name)
            rec.add(f"after step {step}: {name}", "param", p.data, params[name], step, name, ref=r)
        for name, b in ours.named_buffers():
            r = ref_of("buffer", name)
            rec.add(f"after step {step}: {name}", "buffer", b, buffers[name], step, name, ref=r)
    return CompareReport(rec.rows(), dtype, steps, model_dtype=model_dtype)


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

    rec = Recorder(np.float64)
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
