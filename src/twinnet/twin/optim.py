"""torch.optim twins of twinnet's optimisers and learning-rate schedules.

``OPTIMIZER_TABLE`` is the one place that maps a twinnet optimiser to its torch class;
which group hyperparameters carry over and which per-parameter state tensors are
copied comes from the twinnet class's tables (``hypers``, ``state_names``: the same
names on both sides, ``exp_avg``, ``momentum_buffer``, ...). The torch optimiser runs its single-tensor implementation
(``foreach=False``), the plain loop the engine mirrors.

Schedules map as follows (``to_torch_scheduler``)::

    StepLR, ExponentialLR, CosineAnnealingLR, OneCycleLR   -> the torch class of that name
    LinearWarmup(w, f)                                     -> LinearLR(f, total_iters=w)
    LinearWarmup(w, f, after=S)                            -> SequentialLR([LinearLR, S'], [w])
      (nested warm-ups are flattened into one SequentialLR; start_factor=0, which
       LinearLR rejects, becomes an equivalent LambdaLR)
    ReduceLROnPlateau                                      -> ReduceLROnPlateau (state copied)

A schedule that has already stepped is fast-forwarded to the same step, so the twin
continues from where the twinnet schedule is.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from twinnet import nn, optim
from twinnet.optim import lr_scheduler as sched_mod


@dataclass(frozen=True)
class OptimizerRule:
    """One row: a twinnet optimiser class and its torch twin.

    What carries over is read from the twinnet class's own tables: the hyperparameters
    of its ``hypers`` that are constructor arguments (torch uses the same names) and
    the per-parameter state of its ``state_names`` (same names too).
    """

    ours: type
    theirs: type

    @property
    def hyper(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.ours.hypers if h.init)

    @property
    def state(self) -> tuple[str, ...]:
        return self.ours.state_names


# torch's AdamW is decoupled by construction: AdamW's decoupled_weight_decay is fixed
# (not an argument), so it is not passed
OPTIMIZER_TABLE: tuple[OptimizerRule, ...] = (
    OptimizerRule(optim.SGD, torch.optim.SGD),
    OptimizerRule(optim.Adam, torch.optim.Adam),
    OptimizerRule(optim.AdamW, torch.optim.AdamW),
    OptimizerRule(optim.RMSprop, torch.optim.RMSprop),
    OptimizerRule(optim.Adagrad, torch.optim.Adagrad),
)
_BY_OURS = {rule.ours: rule for rule in OPTIMIZER_TABLE}

# group entries that schedulers add; copied so a torch scheduler finds them too
_SCHEDULE_KEYS = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")


def _scalar_dtype() -> torch.dtype:
    # the dtype torch.optim keeps its "step" counters in (torch.optim.optimizer._get_scalar_dtype)
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _param_map(
    opt: optim.Optimizer, params: Any, model: nn.Module | None
) -> dict[int, torch.Tensor]:
    """id(twinnet Parameter) -> torch parameter, for every parameter of ``opt``."""
    ours = [p for group in opt.param_groups for p in group["params"]]
    if isinstance(params, Mapping):
        found = {id(k): v for k, v in params.items()}
        missing = [i for i, p in enumerate(ours) if id(p) not in found]
        if missing:
            raise ValueError(
                f"the parameter map has no torch tensor for optimizer parameter(s) {missing}"
            )
        mapping = {id(p): found[id(p)] for p in ours}
    elif isinstance(params, torch.nn.Module) and model is not None:
        names = {id(p): name for name, p in model.named_parameters()}
        theirs = dict(params.named_parameters())
        mapping = {}
        for i, p in enumerate(ours):
            if id(p) not in names:
                raise ValueError(f"optimizer parameter {i} ({p!r}) is not a parameter of model")
            if names[id(p)] not in theirs:
                raise ValueError(f"the torch module has no parameter {names[id(p)]!r}")
            mapping[id(p)] = theirs[names[id(p)]]
    else:
        theirs = list(params.parameters() if isinstance(params, torch.nn.Module) else params)
        if len(theirs) != len(ours):
            raise ValueError(
                f"the optimizer has {len(ours)} parameters but {len(theirs)} torch parameters "
                "were given; pass model= (the twinnet model) to match them by name"
            )
        mapping = {id(p): t for p, t in zip(ours, theirs, strict=True)}
    for i, p in enumerate(ours):
        t = mapping[id(p)]
        if tuple(t.shape) != p.shape:
            raise ValueError(
                f"optimizer parameter {i}: twinnet shape {p.shape}, torch shape {tuple(t.shape)}"
            )
    return mapping


def to_torch_optimizer(
    opt: optim.Optimizer,
    params: torch.nn.Module | Iterable[torch.Tensor] | Mapping,
    model: nn.Module | None = None,
) -> torch.optim.Optimizer:
    """The torch.optim twin of a twinnet optimiser: same groups, hyperparameters, state.

    ``params`` says which torch tensor twins each twinnet Parameter:

    - a torch module and ``model`` (the twinnet model): matched by parameter name;
    - a torch module alone, or a list of tensors: matched by position, the optimiser's
      parameters taken group after group (shapes are checked);
    - a dict {twinnet Parameter: torch tensor}.

    Per-parameter state (moments, momentum buffers, step counters) is copied, so an
    optimiser that has already stepped continues identically.
    """
    rule = _BY_OURS.get(type(opt))
    if rule is None:
        supported = ", ".join(r.ours.__name__ for r in OPTIMIZER_TABLE)
        raise TypeError(f"no torch twin for optimizer {type(opt).__name__}; supported: {supported}")
    mapping = _param_map(opt, params, model)
    groups = []
    for group in opt.param_groups:
        g: dict[str, Any] = {"params": [mapping[id(p)] for p in group["params"]]}
        g.update({k: group[k] for k in rule.hyper})
        g.update({k: group[k] for k in _SCHEDULE_KEYS if k in group})
        groups.append(g)
    defaults = {k: opt.defaults[k] for k in rule.hyper}
    torch_opt = rule.theirs(groups, **defaults, foreach=False)
    if rule.theirs is torch.optim.Adagrad:
        # torch fills every "sum" from the constructor's initial_accumulator_value and
        # ignores a per-group value; the engine honours the group's, so the twin does too
        for group, g in zip(opt.param_groups, groups, strict=True):
            for t in g["params"]:
                torch_opt.state[t]["sum"].fill_(group["initial_accumulator_value"])
    for p, state in opt.state.items():
        if not state:
            continue
        t = mapping[id(p)]
        copied = {}
        for key, value in state.items():
            if key not in rule.state:
                raise ValueError(f"{type(opt).__name__} state {key!r} has no torch counterpart")
            if key == "step":
                copied[key] = torch.tensor(float(value), dtype=_scalar_dtype())
            else:
                copied[key] = torch.from_numpy(np.array(value, copy=True)).to(t.device, t.dtype)
        torch_opt.state[t] = copied  # replaces torch's eager state (Adagrad) if any
    return torch_opt


# -- schedulers --------------------------------------------------------------------------------


def _warmup_chain(sched: sched_mod.LinearWarmup):
    """[(warmup_steps, start_factor), ...] of nested warm-ups and the final ``after``."""
    chain = []
    while isinstance(sched, sched_mod.LinearWarmup):
        chain.append((sched.warmup_steps, sched.start_factor))
        sched = sched.after
    return chain, sched


def _linear_warmup(torch_opt, steps: int, start_factor: float):
    if start_factor > 0:
        return torch.optim.lr_scheduler.LinearLR(
            torch_opt, start_factor=start_factor, end_factor=1.0, total_iters=steps
        )
    # LinearLR rejects start_factor=0; the same ramp in closed form
    return torch.optim.lr_scheduler.LambdaLR(
        torch_opt, lambda t: start_factor + (1.0 - start_factor) * min(t, steps) / steps
    )


# schedules whose torch class takes the same settings (the twinnet class's ``hypers``)
SAME_SETTINGS = {
    sched_mod.StepLR: torch.optim.lr_scheduler.StepLR,
    sched_mod.ExponentialLR: torch.optim.lr_scheduler.ExponentialLR,
    sched_mod.CosineAnnealingLR: torch.optim.lr_scheduler.CosineAnnealingLR,
    sched_mod.ReduceLROnPlateau: torch.optim.lr_scheduler.ReduceLROnPlateau,
}


def _settings(sched) -> dict[str, Any]:
    return {h.name: getattr(sched, h.name) for h in sched.hypers}


def _build(sched, torch_opt):
    """A fresh torch scheduler (at step 0) with the settings of ``sched``."""
    lrs = torch.optim.lr_scheduler
    if type(sched) in SAME_SETTINGS and type(sched) is not sched_mod.ReduceLROnPlateau:
        return SAME_SETTINGS[type(sched)](torch_opt, **_settings(sched))
    if type(sched) is sched_mod.OneCycleLR:
        return _build_one_cycle(sched, torch_opt)
    if type(sched) is sched_mod.LinearWarmup:
        chain, after = _warmup_chain(sched)
        parts = [_linear_warmup(torch_opt, w, f) for w, f in chain]
        if after is not None:
            parts.append(_build(after, torch_opt))
        if len(parts) == 1:
            return parts[0]
        milestones = list(np.cumsum([w for w, _ in chain])[: len(parts) - 1].tolist())
        return lrs.SequentialLR(torch_opt, parts, milestones=milestones)
    raise TypeError(
        f"no torch twin for scheduler {type(sched).__name__}; supported: StepLR, ExponentialLR, "
        "CosineAnnealingLR, LinearWarmup, OneCycleLR, ReduceLROnPlateau"
    )


def _build_one_cycle(sched: sched_mod.OneCycleLR, torch_opt):
    groups = sched.optimizer.param_groups
    total = sched.total_steps
    # torch's constructor arguments, recovered from what OneCycleLR stored
    max_lrs = [g["max_lr"] for g in groups]
    if any(g["initial_lr"] == 0 or g["min_lr"] == 0 for g in groups):
        raise ValueError("OneCycleLR with max_lr=0 has no torch twin (div_factor is undefined)")
    div = groups[0]["max_lr"] / groups[0]["initial_lr"]
    final_div = groups[0]["initial_lr"] / groups[0]["min_lr"]
    kwargs: dict[str, Any] = {}
    if sched.cycle_momentum:
        kwargs = dict(
            base_momentum=[g["base_momentum"] for g in groups],
            max_momentum=[g["max_momentum"] for g in groups],
        )
    return torch.optim.lr_scheduler.OneCycleLR(
        torch_opt,
        max_lr=max_lrs,
        total_steps=total,
        pct_start=(sched.phases[0][0] + 1) / total,
        anneal_strategy=sched.anneal_strategy,
        cycle_momentum=sched.cycle_momentum,
        div_factor=div,
        final_div_factor=final_div,
        three_phase=len(sched.phases) == 3,
        **kwargs,
    )


def to_torch_scheduler(sched, torch_opt: torch.optim.Optimizer):
    """The torch.optim.lr_scheduler twin of a twinnet schedule, at the same step.

    ``torch_opt`` is the twin of ``sched.optimizer`` (see :func:`to_torch_optimizer`).
    Its learning rates are reset to the schedule's base values, the torch scheduler is
    built, and then stepped ``sched.last_epoch`` times, so both sides now hold the same
    lr; ReduceLROnPlateau gets its counters and best value copied instead.
    """
    if len(torch_opt.param_groups) != len(sched.optimizer.param_groups):
        raise ValueError(
            f"the torch optimizer has {len(torch_opt.param_groups)} param groups, the "
            f"schedule's optimizer {len(sched.optimizer.param_groups)}"
        )
    if type(sched) is sched_mod.ReduceLROnPlateau:
        return _plateau(sched, torch_opt)
    for group, base in zip(torch_opt.param_groups, sched.base_lrs, strict=True):
        group["initial_lr"] = base
        group["lr"] = base
    with warnings.catch_warnings():
        # "lr_scheduler.step() before optimizer.step()": we only fast-forward here
        warnings.simplefilter("ignore", UserWarning)
        twin = _build(sched, torch_opt)
        for _ in range(sched.last_epoch):
            twin.step()
    return twin


def _plateau(sched: sched_mod.ReduceLROnPlateau, torch_opt):
    twin = SAME_SETTINGS[sched_mod.ReduceLROnPlateau](
        torch_opt, **{**_settings(sched), "min_lr": list(sched.min_lrs)}
    )
    if sched.best is not None:  # None: no metric seen yet, torch's initial +-inf stays
        twin.best = sched.best
    twin.num_bad_epochs = sched.num_bad_epochs
    twin.cooldown_counter = sched.cooldown_counter
    twin.last_epoch = sched.last_epoch
    for group, lr in zip(torch_opt.param_groups, sched.get_last_lr(), strict=True):
        group["lr"] = lr
    twin._last_lr = [float(g["lr"]) for g in torch_opt.param_groups]
    return twin
