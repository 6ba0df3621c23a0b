"""Optimisers by name: ``optim.create("adam", params, lr=3e-4)``.

The names are the command line's and the config file's (``--optimizer``). Two of them
are SGD with settings of its own: ``"momentum"`` (heavy-ball momentum 0.9) and
``"nesterov"`` (Nesterov momentum 0.9); what a caller passes overrides those settings.
Each class's hyperparameters (names, defaults, rules) are its ``hypers`` table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twinnet.optim.adagrad import Adagrad
from twinnet.optim.adam import Adam, AdamW
from twinnet.optim.hyper import Hyper
from twinnet.optim.optimizer import Optimizer
from twinnet.optim.rmsprop import RMSprop
from twinnet.optim.sgd import SGD

#: name -> (class, the settings the name implies)
OPTIMIZERS: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "rmsprop": (RMSprop, {}),
    "adagrad": (Adagrad, {}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
}


def optimizer_class(name: str) -> type[Optimizer]:
    """The class behind an optimiser name; ValueError listing the names if unknown."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name][0]


def hypers(name: str) -> dict[str, Hyper]:
    """The hyperparameters an optimiser name takes, by name (its class's table)."""
    return {h.name: h for h in optimizer_class(name).hypers if h.init}


def settings(name: str) -> dict[str, Any]:
    """The settings an optimiser name implies (``{"momentum": 0.9}`` for "momentum")."""
    optimizer_class(name)
    return dict(OPTIMIZERS[name][1])


def create(name: str, params: Iterable[Any], **hyperparameters: Any) -> Optimizer:
    """Build the optimiser called ``name``: ``create("adam", params, lr=3e-4)``.

    ``hyperparameters`` are the class's (see its ``hypers``); they override what the
    name implies, so ``create("momentum", params, lr=0.1, momentum=0.5)`` is
    ``SGD(params, lr=0.1, momentum=0.5)``.
    """
    cls = optimizer_class(name)
    return cls(params, **{**OPTIMIZERS[name][1], **hyperparameters})


def describe(name: str) -> str:
    """One line for ``--help``: the name, its class and settings, and the class's
    hyperparameters with their rules and defaults (from the ``hypers`` table)."""
    cls, implied = OPTIMIZERS[name]
    fixed = ", ".join(f"{k}={v!r}" for k, v in implied.items())
    shown = "; ".join(
        f"{h.name} {h.rule} ({implied.get(h.name, h.default)!r})" for h in cls.hypers if h.init
    )
    return f"{name:<9} {cls.__name__}{f'({fixed})' if fixed else ''}: {shown}"
