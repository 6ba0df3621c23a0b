"""Schedules for a whole training run, by name: what ``--schedule`` and config files name.

A recipe builds a schedule for a run of ``epochs`` epochs of ``steps_per_epoch``
optimiser steps and says when to step it (after every optimiser step, or at every
epoch's end with the validation loss for "plateau")::

    sched, interval = recipes.build("cosine", opt, epochs=8, steps_per_epoch=422)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twinnet.optim.lr_scheduler.base import Scheduler
from twinnet.optim.lr_scheduler.onecycle import OneCycleLR
from twinnet.optim.lr_scheduler.plateau import ReduceLROnPlateau
from twinnet.optim.lr_scheduler.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    StepLR,
)
from twinnet.optim.optimizer import Optimizer


@dataclass(frozen=True)
class Run:
    """What a recipe may depend on."""

    epochs: int
    steps_per_epoch: int
    warmup_steps: int = 0  # 0: the recipe's own choice

    @property
    def total(self) -> int:
        return self.epochs * self.steps_per_epoch


def _warmup_cosine(opt: Optimizer, run: Run) -> LinearWarmup:
    total = run.total
    warmup = run.warmup_steps or max(1, total // 20)
    warmup = min(warmup, total - 1) if total > 1 else 1
    after = CosineAnnealingLR(opt, T_max=max(1, total - warmup))
    return LinearWarmup(opt, warmup_steps=warmup, start_factor=0.1, after=after)


def _cosine(opt: Optimizer, run: Run) -> Scheduler:
    if run.warmup_steps:
        return _warmup_cosine(opt, run)
    return CosineAnnealingLR(opt, T_max=run.total)


def _onecycle(opt: Optimizer, run: Run) -> OneCycleLR:
    # each group's lr is its peak
    return OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=run.total)


@dataclass(frozen=True)
class Recipe:
    doc: str
    build: Callable[[Optimizer, Run], Scheduler] | None
    interval: str | None  # "step" or "epoch"


#: name -> recipe, in --help order
RECIPES: dict[str, Recipe] = {
    "none": Recipe("constant lr", None, None),
    "step": Recipe(
        "StepLR: x0.1 every epochs/3 epochs",
        lambda opt, run: StepLR(opt, step_size=max(1, run.epochs // 3), gamma=0.1), "epoch"),
    "exponential": Recipe(
        "ExponentialLR: x0.9 every epoch", lambda opt, run: ExponentialLR(opt, gamma=0.9), "epoch"),
    "cosine": Recipe(
        "CosineAnnealingLR to 0 over the run, per step (with --warmup-steps: warm-up first)",
        _cosine, "step"),
    "warmup-cosine": Recipe(
        "LinearWarmup from 0.1 lr (--warmup-steps, default 5% of the steps), then cosine",
        _warmup_cosine, "step"),
    "onecycle": Recipe(
        "OneCycleLR peaking at lr, per step (cycles momentum or beta1)", _onecycle, "step"),
    "plateau": Recipe(
        "ReduceLROnPlateau: x0.5 after 2 epochs without a better val_loss",
        lambda opt, run: ReduceLROnPlateau(opt, factor=0.5, patience=1), "epoch"),
}


def build(name: str, optimizer: Optimizer, epochs: int, steps_per_epoch: int,
          warmup_steps: int = 0) -> tuple[Scheduler | None, str | None]:
    """(scheduler, interval) of the recipe ``name``, or (None, None) for "none"."""
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(f"schedule must be one of {list(RECIPES)}, got {name!r}")
    recipe = RECIPES[name]
    if recipe.build is None:
        return None, None
    return recipe.build(optimizer, Run(epochs, steps_per_epoch, warmup_steps)), recipe.interval
