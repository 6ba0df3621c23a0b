"""Learning-rate schedules: they set ``group["lr"]`` of an optimiser between steps.

Usage is torch's: build the scheduler after the optimiser (this sets the lr of step 0)
and call ``scheduler.step()`` after ``optimizer.step()`` (once per epoch or once per
batch, as the schedule is meant)::

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = lr_scheduler.LinearWarmup(opt, warmup_steps=500,
                                      after=lr_scheduler.CosineAnnealingLR(opt, T_max=9500))
    for batch in batches:
        ...; opt.step(); opt.zero_grad(); sched.step()

The values equal torch.optim.lr_scheduler's (``LinearWarmup`` is torch's ``LinearLR`` +
``SequentialLR``). One deliberate difference: every schedule here except
``ReduceLROnPlateau`` is computed in closed form from the step counter and the base
learning rates, where torch multiplies the current ``group["lr"]`` step by step. The
values agree to rounding (~1e-16), resuming is exact, but a schedule overwrites, rather
than composes with, changes someone else makes to ``group["lr"]`` (compose schedules
with ``LinearWarmup(after=...)`` instead of stepping two schedulers at once).

Like torch, attaching a scheduler stores ``group["initial_lr"]`` (the base lr) in each
param group (``setdefault``: an existing one is kept). ``state_dict()`` returns a plain,
JSON-able dict (no optimiser inside); ``load_state_dict()`` restores it and writes the
restored learning rates back into the optimiser.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from twinnet.optim.optimizer import Optimizer, check_nonnegative, check_real

__all__ = [
    "LRScheduler",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearWarmup",
    "OneCycleLR",
    "ReduceLROnPlateau",
]


def _check_optimizer(optimizer: Any) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a twinnet Optimizer, got {type(optimizer).__name__}")
    return optimizer


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list[float]:
    """One float per param group: a scalar is repeated, a list must have one per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per param group ({n}), got {len(value)}")
        return [check_real(name, v) for v in value]
    return [check_real(name, value)] * n


class _SchedulerState:
    """``state_dict``/``load_state_dict`` shared by every scheduler: the attributes named
    in ``_state_keys`` (plain JSON-able values); those in ``_per_group_keys`` hold one
    value per param group. Loading re-applies the restored values to the optimiser."""

    _state_keys: tuple[str, ...] = ()
    _per_group_keys: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the scheduler's counters and settings."""
        return {key: copy.deepcopy(getattr(self, key)) for key in self._state_keys}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output and re-apply the learning rates it held."""
        missing = [k for k in self._state_keys if k not in state_dict]
        if missing:
            raise ValueError(f"{type(self).__name__} state dict is missing {missing}")
        n = len(self.optimizer.param_groups)
        for key in self._per_group_keys:
            if len(state_dict[key]) != n:
                raise ValueError(
                    f"{type(self).__name__} state dict has {len(state_dict[key])} {key}, "
                    f"the optimizer has {n} param groups"
                )
        for key in self._state_keys:
            setattr(self, key, copy.deepcopy(state_dict[key]))
        self._restore_optimizer()

    def _restore_optimizer(self) -> None:
        raise NotImplementedError


class LRScheduler(_SchedulerState):
    """Base class of the closed-form schedules.

    A subclass implements :meth:`get_lr`, the learning rate of every param group at
    ``self.last_epoch`` (0 at construction, +1 per :meth:`step`), from
    ``self.base_lrs``. Attributes listed in ``_state_keys`` make up the state dict.
    """

    _state_keys: tuple[str, ...] = ("last_epoch", "base_lrs", "_last_lr")
    _per_group_keys = ("base_lrs", "_last_lr")

    def __init__(self, optimizer: Optimizer):
        self.optimizer = _check_optimizer(optimizer)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [float(group["initial_lr"]) for group in optimizer.param_groups]
        self.last_epoch = -1
        self._last_lr: list[float] = []
        self.step()

    def get_lr(self) -> list[float]:
        """Learning rate of each param group at ``self.last_epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and write the new learning rates into the optimiser."""
        self._goto(self.last_epoch + 1)

    def _goto(self, epoch: int) -> None:
        self.last_epoch = epoch
        self._apply(self.get_lr())

    def _apply(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = float(lr)
        self._last_lr = [float(lr) for lr in lrs]

    def get_last_lr(self) -> list[float]:
        """The learning rates most recently written into the optimiser, one per group."""
        return list(self._last_lr)

    def _restore_optimizer(self) -> None:
        """Write the restored schedule values back into the optimiser's groups."""
        self._apply(self._last_lr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` steps.

    ``lr(t) = base_lr * gamma ** (t // step_size)``   (torch ``StepLR``)
    """

    _state_keys = LRScheduler._state_keys + ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _check_positive_int("step_size", step_size)
        self.gamma = check_real("gamma", gamma)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every step.

    ``lr(t) = base_lr * gamma ** t``   (torch ``ExponentialLR``)
    """

    _state_keys = LRScheduler._state_keys + ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float):
        self.gamma = check_real("gamma", gamma)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base lr down to ``eta_min`` over ``T_max`` steps.

    ``lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``
    (torch ``CosineAnnealingLR``; past ``T_max`` the cosine continues, rising again, as
    in torch).
    """

    _state_keys = LRScheduler._state_keys + ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max = _check_positive_int("T_max", T_max)
        self.eta_min = check_nonnegative("eta_min", eta_min)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return list(self.base_lrs)
        cos_out = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base - self.eta_min) * cos_out / 2 for base in self.base_lrs]


class LinearWarmup(LRScheduler):
    """Ramp the lr linearly from ``start_factor * base_lr`` to ``base_lr``, then hand over.

    ``lr(t) = base_lr * (start_factor + (1 - start_factor) * t / warmup_steps)`` for
    ``t < warmup_steps``; from ``t = warmup_steps`` on, the lr is ``base_lr`` or, with
    ``after``, the value of that scheduler at ``t - warmup_steps`` (its clock starts
    when the warm-up ends). Same values as torch's
    ``SequentialLR([LinearLR(start_factor, total_iters=warmup_steps), after],
    milestones=[warmup_steps])`` (``LinearLR`` alone without ``after``).

    Args:
        optimizer: the optimiser whose lr to set.
        warmup_steps: length of the ramp (> 0).
        start_factor: fraction of the base lr at step 0, in [0, 1]. Default 1/3 (torch's
            ``LinearLR`` default).
        after: a scheduler on the same optimiser to run after the warm-up, for
            example ``CosineAnnealingLR(opt, T_max=total - warmup_steps)``; may itself
            be a ``LinearWarmup``. Not ``ReduceLROnPlateau`` (it needs a metric).
    """

    _state_keys = LRScheduler._state_keys + ("warmup_steps", "start_factor")

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int,
        start_factor: float = 1.0 / 3,
        after: LRScheduler | None = None,
    ):
        self.warmup_steps = _check_positive_int("warmup_steps", warmup_steps)
        start_factor = check_real("start_factor", start_factor)
        if not 0.0 <= start_factor <= 1.0:
            raise ValueError(f"start_factor must be in [0, 1], got {start_factor}")
        self.start_factor = start_factor
        if after is not None:
            if not isinstance(after, LRScheduler):
                raise TypeError(
                    "after must be a closed-form scheduler (StepLR, ExponentialLR, "
                    f"CosineAnnealingLR, OneCycleLR, LinearWarmup), got {type(after).__name__}"
                )
            if after.optimizer is not optimizer:
                raise ValueError("after must schedule the same optimizer as LinearWarmup")
        self.after = after
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        t = min(self.last_epoch, self.warmup_steps)
        factor = self.start_factor + (1.0 - self.start_factor) * t / self.warmup_steps
        return [base * factor for base in self.base_lrs]

    def _goto(self, epoch: int) -> None:
        self.last_epoch = epoch
        if self.after is None or epoch < self.warmup_steps:
            self._apply(self.get_lr())
        else:
            self.after._goto(epoch - self.warmup_steps)
            self._last_lr = self.after.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["after"] = None if self.after is None else self.after.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        inner = state_dict.get("after")
        if (inner is None) != (self.after is None):
            raise ValueError(
                "LinearWarmup state dict and this LinearWarmup disagree on having an 'after' "
                "scheduler"
            )
        if self.after is not None:
            self.after.load_state_dict(inner)
        super().load_state_dict(state_dict)

    def _restore_optimizer(self) -> None:
        if self.after is not None and self.last_epoch >= self.warmup_steps:
            self.after._restore_optimizer()
        self._apply(self._last_lr)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (torch ``OneCycleLR``): lr up to ``max_lr`` then far down.

    Phase 1 anneals the lr from ``max_lr / div_factor`` to ``max_lr`` over
    ``pct_start * total_steps`` steps, phase 2 from ``max_lr`` down to
    ``initial_lr / final_div_factor``. With ``three_phase`` the second phase returns to
    ``initial_lr`` symmetrically and a third anneals to the minimum. ``anneal_strategy``
    is ``"cos"`` (``end + (start - end) * (1 + cos(pi * pct)) / 2``) or ``"linear"``.

    With ``cycle_momentum`` (default), momentum moves inversely to the lr, between
    ``max_momentum`` and ``base_momentum``: ``group["momentum"]`` for SGD and RMSprop,
    ``group["betas"][0]`` for Adam/AdamW; an optimiser with neither (Adagrad) raises.
    As in torch this overwrites the optimiser's momentum, so ``SGD(momentum=0)``
    gets momentum. The schedule has ``total_steps`` (or ``epochs * steps_per_epoch``)
    steps; stepping beyond raises ValueError. Like torch, the settings are also stored
    in each param group (``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum``,
    ``base_momentum``).
    """

    _state_keys = LRScheduler._state_keys + (
        "total_steps",
        "anneal_strategy",
        "cycle_momentum",
        "use_beta1",
        "phases",
    )

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ):
        _check_optimizer(optimizer)
        if total_steps is not None:
            self.total_steps = _check_positive_int("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            epochs = _check_positive_int("epochs", epochs)
            steps_per_epoch = _check_positive_int("steps_per_epoch", steps_per_epoch)
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        pct_start = check_real("pct_start", pct_start)
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        div_factor = check_real("div_factor", div_factor)
        final_div_factor = check_real("final_div_factor", final_div_factor)
        if not div_factor > 0 or not final_div_factor > 0:
            raise ValueError(
                f"div_factor and final_div_factor must be > 0, got {div_factor}, {final_div_factor}"
            )

        # (end_step, start_lr, end_lr, start_momentum, end_momentum), as in torch
        n = self.total_steps
        if three_phase:
            self.phases = [
                [pct_start * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [2 * pct_start * n - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"],
                [n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"],
            ]
        else:
            self.phases = [
                [pct_start * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ]

        max_lrs = _per_group("max_lr", optimizer, max_lr)
        for lr, group in zip(max_lrs, optimizer.param_groups, strict=True):
            check_nonnegative("max_lr", lr)
            group["initial_lr"] = lr / div_factor
            group["max_lr"] = lr
            group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(
                    f"cycle_momentum=True needs an optimizer with momentum or betas, "
                    f"{type(optimizer).__name__} has neither; pass cycle_momentum=False"
                )
            max_ms = _per_group("max_momentum", optimizer, max_momentum)
            base_ms = _per_group("base_momentum", optimizer, base_momentum)
            for m_max, m_base, group in zip(max_ms, base_ms, optimizer.param_groups, strict=True):
                group["max_momentum"] = m_max
                group["base_momentum"] = m_base
                self._set_momentum(group, m_max)
        super().__init__(optimizer)

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (float(momentum), *group["betas"][1:])
        else:
            group["momentum"] = float(momentum)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _values(self, group: dict[str, Any]) -> tuple[float, float]:
        """(lr, momentum) of one group at ``self.last_epoch``."""
        step = self.last_epoch
        start_step = 0.0
        for i, (end_step, lr0, lr1, m0, m1) in enumerate(self.phases):
            if step <= end_step or i == len(self.phases) - 1:
                # torch divides by zero here when a phase has no steps; we jump to its end
                span = end_step - start_step
                pct = (step - start_step) / span if span != 0 else 1.0
                lr = self._anneal(group[lr0], group[lr1], pct)
                momentum = self._anneal(group[m0], group[m1], pct) if self.cycle_momentum else 0.0
                return lr, momentum
            start_step = end_step
        raise AssertionError("unreachable")

    def get_lr(self) -> list[float]:
        return [self._values(group)[0] for group in self.optimizer.param_groups]

    def _goto(self, epoch: int) -> None:
        if epoch > self.total_steps:
            raise ValueError(
                f"OneCycleLR stepped {epoch} times, but the schedule has total_steps="
                f"{self.total_steps}"
            )
        self.last_epoch = epoch
        lrs = []
        for group in self.optimizer.param_groups:
            lr, momentum = self._values(group)
            lrs.append(lr)
            if self.cycle_momentum:
                self._set_momentum(group, momentum)
        self._apply(lrs)

    def _restore_optimizer(self) -> None:
        self._goto(self.last_epoch)


class ReduceLROnPlateau(_SchedulerState):
    """Divide the lr by ``1/factor`` when a metric has stopped improving (torch semantics).

    Call ``step(metric_value)`` once per evaluation. A value is an improvement when it beats
    the best so far by the threshold: ``metric < best * (1 - threshold)`` ("min", "rel"),
    ``metric < best - threshold`` ("min", "abs"), and mirrored for "max". After more
    than ``patience`` evaluations without improvement every group's lr becomes
    ``max(lr * factor, min_lr)`` (skipped when that changes it by less than ``eps``),
    then ``cooldown`` evaluations are ignored.

    Unlike the other schedulers this one reads and multiplies the current
    ``group["lr"]`` and does not set ``initial_lr``, as in torch.
    """

    _state_keys = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lrs",
        "eps",
        "last_epoch",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
        "_last_lr",
    )
    _per_group_keys = ("min_lrs", "_last_lr")

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ):
        self.optimizer = _check_optimizer(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        factor = check_real("factor", factor)
        if not factor < 1.0:
            raise ValueError(f"factor must be < 1, got {factor}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = check_real("threshold", threshold)
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        min_lrs = _per_group("min_lr", optimizer, min_lr)
        self.min_lrs = [check_nonnegative("min_lr", v) for v in min_lrs]
        self.eps = check_nonnegative("eps", eps)
        self.last_epoch = 0
        self.best: float | None = None  # None until the first metric (torch: +-inf)
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = [float(g["lr"]) for g in optimizer.param_groups]

    def _is_better(self, a: float) -> bool:
        best = self.best
        if best is None:
            best = math.inf if self.mode == "min" else -math.inf
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics: float) -> None:
        """Record one value of the monitored metric and reduce the lr if it has stalled.

        (The argument is named ``metrics`` as in torch; it is a single number.)
        """
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The current learning rates, one per param group."""
        return list(self._last_lr)

    def _restore_optimizer(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = float(lr)

    def __repr__(self) -> str:
        return f"ReduceLROnPlateau(mode={self.mode!r}, best={self.best}, last_lr={self._last_lr})"
