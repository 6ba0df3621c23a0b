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

from twinnet.optim.lr_scheduler import recipes
from twinnet.optim.lr_scheduler.base import LRScheduler, Scheduler
from twinnet.optim.lr_scheduler.onecycle import OneCycleLR
from twinnet.optim.lr_scheduler.plateau import ReduceLROnPlateau
from twinnet.optim.lr_scheduler.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    StepLR,
)

__all__ = [
    "LRScheduler",
    "Scheduler",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearWarmup",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SCHEDULERS",
    "create",
    "recipes",
]

#: name -> class, for ``create`` (the names are torch's class names in short)
SCHEDULERS: dict[str, type[Scheduler]] = {
    "step": StepLR,
    "exponential": ExponentialLR,
    "cosine": CosineAnnealingLR,
    "warmup": LinearWarmup,
    "onecycle": OneCycleLR,
    "plateau": ReduceLROnPlateau,
}


def create(name: str, optimizer, **settings) -> Scheduler:
    """Build the schedule called ``name`` on ``optimizer``:
    ``lr_scheduler.create("cosine", opt, T_max=1000)`` (the settings are the class's
    ``hypers``), the way ``optim.create`` builds an optimiser."""
    if not isinstance(name, str) or name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {list(SCHEDULERS)}, got {name!r}")
    return SCHEDULERS[name](optimizer, **settings)
