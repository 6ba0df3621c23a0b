"""ReduceLROnPlateau: divide the lr when a metric stops improving (torch semantics)."""

from __future__ import annotations

import math
from typing import Any

from twinnet.optim.hyper import Hyper
from twinnet.optim.lr_scheduler.base import Scheduler, per_group


class ReduceLROnPlateau(Scheduler):
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

    hypers = (
        Hyper("mode", "min", "str", "Whether the metric should go down or up.",
              choices=("min", "max")),
        Hyper("factor", 0.1, "< 1", "The lr is multiplied by this on a plateau."),
        Hyper("patience", 10, "int >= 0", "Evaluations without improvement to tolerate."),
        Hyper("threshold", 1e-4, "real", "How much better counts as an improvement."),
        Hyper("threshold_mode", "rel", "str", "Relative or absolute threshold.",
              choices=("rel", "abs")),
        Hyper("cooldown", 0, "int >= 0", "Evaluations ignored after a reduction."),
        Hyper("min_lr", 0.0, ">= 0", "The lr never goes below this.", per_group=True),
        Hyper("eps", 1e-8, ">= 0", "Smaller changes of the lr are skipped."),
    )
    _counters = ("min_lrs", "last_epoch", "best", "num_bad_epochs", "cooldown_counter", "_last_lr")
    _per_group_keys = ("min_lrs", "_last_lr")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        optimizer = self.optimizer
        self.min_lrs = per_group("min_lr", optimizer, self.min_lr)
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
