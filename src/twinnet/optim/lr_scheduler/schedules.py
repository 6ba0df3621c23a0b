"""The closed-form schedules: StepLR, ExponentialLR, CosineAnnealingLR, LinearWarmup."""

from __future__ import annotations

import math
from typing import Any

from twinnet.optim.hyper import REQUIRED, Hyper
from twinnet.optim.lr_scheduler.base import LRScheduler


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` steps.

    ``lr(t) = base_lr * gamma ** (t // step_size)``   (torch ``StepLR``)
    """

    hypers = (
        Hyper("step_size", REQUIRED, "int > 0", "Steps between two decays."),
        Hyper("gamma", 0.1, "real", "Factor of each decay."),
    )

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every step.

    ``lr(t) = base_lr * gamma ** t``   (torch ``ExponentialLR``)
    """

    hypers = (Hyper("gamma", REQUIRED, "real", "Factor per step."),)

    def get_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base lr down to ``eta_min`` over ``T_max`` steps.

    ``lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``
    (torch ``CosineAnnealingLR``; past ``T_max`` the cosine continues, rising again, as
    in torch).
    """

    hypers = (
        Hyper("T_max", REQUIRED, "int > 0", "Steps of the half cosine."),
        Hyper("eta_min", 0.0, ">= 0", "The lr at its end."),
    )

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
    milestones=[warmup_steps])`` (``LinearLR`` alone without ``after``). The default
    ``start_factor`` is torch's ``LinearLR`` default; ``after`` is a scheduler on the
    same optimiser, for example ``CosineAnnealingLR(opt, T_max=total - warmup_steps)``,
    possibly itself a ``LinearWarmup``, but not ``ReduceLROnPlateau`` (it needs a metric).
    """

    hypers = (
        Hyper("warmup_steps", REQUIRED, "int > 0", "Length of the ramp."),
        Hyper("start_factor", 1.0 / 3, "in [0, 1]", "Fraction of the base lr at step 0."),
        Hyper("after", None, "object", "A closed-form scheduler to run after the warm-up."),
    )

    def _setup(self) -> None:
        after = self.after
        if after is not None:
            if not isinstance(after, LRScheduler):
                raise TypeError(
                    "after must be a closed-form scheduler (StepLR, ExponentialLR, "
                    f"CosineAnnealingLR, OneCycleLR, LinearWarmup), got {type(after).__name__}"
                )
            if after.optimizer is not self.optimizer:
                raise ValueError("after must schedule the same optimizer as LinearWarmup")

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
