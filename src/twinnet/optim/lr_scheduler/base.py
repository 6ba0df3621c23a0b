"""What every schedule shares: its table of settings, its state dict, the closed-form base."""

from __future__ import annotations

import copy
from typing import Any

from twinnet.optim.hyper import Tabled, bind, check_real, document
from twinnet.optim.optimizer import Optimizer


def check_optimizer(optimizer: Any) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a twinnet Optimizer, got {type(optimizer).__name__}")
    return optimizer


def per_group(name: str, optimizer: Optimizer, value: Any) -> list[float]:
    """One float per param group: a scalar is repeated, a list must have one per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per param group ({n}), got {len(value)}")
        return [check_real(name, v) for v in value]
    return [check_real(name, value)] * n


class Scheduler(Tabled):
    """A schedule's settings and ``state_dict``/``load_state_dict``.

    A subclass states its settings once, in :attr:`hypers` (see
    :mod:`twinnet.optim.hyper`): the constructor ``Cls(optimizer, ...)`` binds and
    checks them and stores each as an attribute of the same name; :meth:`_setup` then
    checks relations between them. The state dict holds every setting (but objects,
    such as LinearWarmup's ``after``) and the counters named in ``_counters`` (plain
    JSON-able values); those in ``_per_group_keys`` hold one value per param group.
    Loading re-applies the restored values to the optimiser.
    """

    first_argument = "optimizer"
    _counters: tuple[str, ...] = ()
    _per_group_keys: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any):
        optimizer, settings = bind(type(self), args, kwargs)
        self.optimizer = check_optimizer(optimizer)
        for name, value in settings.items():
            setattr(self, name, value)
        self._setup()

    def _setup(self) -> None:
        """Check relations between settings and derive what the schedule needs."""

    @property
    def _state_keys(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hypers if h.rule != "object") + self._counters

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


class LRScheduler(Scheduler):
    """Base class of the closed-form schedules.

    A subclass implements :meth:`get_lr`, the learning rate of every param group at
    ``self.last_epoch`` (0 at construction, +1 per :meth:`step`), from
    ``self.base_lrs``.
    """

    _counters = ("last_epoch", "base_lrs", "_last_lr")
    _per_group_keys = ("base_lrs", "_last_lr")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for group in self.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [float(group["initial_lr"]) for group in self.optimizer.param_groups]
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


document(Scheduler)

