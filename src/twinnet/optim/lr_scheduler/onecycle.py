"""The 1cycle schedule (torch ``OneCycleLR``)."""

from __future__ import annotations

import math
from typing import Any

from twinnet.optim.hyper import REQUIRED, Hyper
from twinnet.optim.lr_scheduler.base import LRScheduler, per_group


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

    hypers = (
        Hyper("max_lr", REQUIRED, ">= 0", "The peak lr.", per_group=True),
        Hyper("total_steps", None, "int > 0", "Steps of the schedule."),
        Hyper("epochs", None, "int > 0", "With steps_per_epoch, instead of total_steps."),
        Hyper("steps_per_epoch", None, "int > 0", "With epochs, instead of total_steps."),
        Hyper("pct_start", 0.3, "in [0, 1]", "Fraction of the steps spent rising."),
        Hyper("anneal_strategy", "cos", "str", "Shape of each phase.", choices=("cos", "linear")),
        Hyper("cycle_momentum", True, "bool", "Move the momentum inversely to the lr."),
        Hyper("base_momentum", 0.85, "real", "Momentum at the peak lr.", per_group=True),
        Hyper("max_momentum", 0.95, "real", "Momentum at the start and end.", per_group=True),
        Hyper("div_factor", 25.0, "> 0", "The starting lr is max_lr / div_factor."),
        Hyper("final_div_factor", 1e4, "> 0", "The final lr is the starting lr / this."),
        Hyper("three_phase", False, "bool", "Return to the starting lr before annealing."),
    )
    _counters = LRScheduler._counters + ("use_beta1", "phases")

    def _setup(self) -> None:
        optimizer = self.optimizer
        if self.total_steps is None:
            if self.epochs is None or self.steps_per_epoch is None:
                raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
            self.total_steps = self.epochs * self.steps_per_epoch

        # (end_step, start_lr, end_lr, start_momentum, end_momentum), as in torch
        n, pct_start = self.total_steps, self.pct_start
        if self.three_phase:
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

        max_lrs = per_group("max_lr", optimizer, self.max_lr)
        for lr, group in zip(max_lrs, optimizer.param_groups, strict=True):
            group["initial_lr"] = lr / self.div_factor
            group["max_lr"] = lr
            group["min_lr"] = group["initial_lr"] / self.final_div_factor

        self.use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(
                    f"cycle_momentum=True needs an optimizer with momentum or betas, "
                    f"{type(optimizer).__name__} has neither; pass cycle_momentum=False"
                )
            max_ms = per_group("max_momentum", optimizer, self.max_momentum)
            base_ms = per_group("base_momentum", optimizer, self.base_momentum)
            for m_max, m_base, group in zip(max_ms, base_ms, optimizer.param_groups, strict=True):
                group["max_momentum"] = m_max
                group["base_momentum"] = m_base
                self._set_momentum(group, m_max)

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
