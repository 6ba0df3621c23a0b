"""Hyperparameter tables: every optimiser and schedule states its settings once.

A class lists its hyperparameters as :class:`Hyper` rows (name, default, rule, doc)::

    class SGD(Optimizer):
        hypers = (
            Hyper("lr", 1e-3, ">= 0", "learning rate"),
            Hyper("nesterov", False, "bool", "Nesterov momentum"),
            Hyper("maximize", False, "bool", "ascend instead", keyword_only=True),
        )

and everything else reads that table: the constructor's signature (positional and
keyword arguments, as torch's), its validation ("lr must be >= 0, got -0.1"), the
entries of every parameter group (and so of ``state_dict``), the "Hyperparameters"
section of the class docstring, config-file validation, ``twinnet train --help``, the
scikit-learn estimators' parameter checks and the PyTorch twin's list of what to copy.

``rule`` is a key of :data:`RULES`: the check a value must pass, which also returns the
value normalised (Python floats: a NumPy float64 scalar would upcast float32 arrays).
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the default of an argument that must be given (``StepLR(opt, step_size)``)
REQUIRED = inspect.Parameter.empty


# -- the checks (each returns the value normalised, or raises naming the hyperparameter) -------
def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a Python float, or raise TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)  # np.float64 scalars would upcast float32 arrays: keep Python floats


def check_nonnegative(name: str, value: Any) -> float:
    """``value`` as a float; ValueError unless ``value >= 0`` ("lr must be >= 0, got -0.1")."""
    value = check_real(name, value)
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_positive(name: str, value: Any) -> float:
    value = check_real(name, value)
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_unit_interval(name: str, value: Any) -> float:
    """``value`` as a float; ValueError unless ``0 <= value < 1``."""
    value = check_real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a float; ValueError unless ``0 <= value <= 1``."""
    value = check_real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def check_below_one(name: str, value: Any) -> float:
    value = check_real(name, value)
    if not value < 1.0:
        raise ValueError(f"{name} must be < 1, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_nonnegative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def check_betas(name: str, value: Any) -> tuple[float, float]:
    """A pair of floats, each in [0, 1) (Adam's ``betas``); a JSON list becomes a tuple."""
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2), got {value!r}")
    return (check_unit_interval(f"{name}[0]", value[0]), check_unit_interval(f"{name}[1]", value[1]))


def check_object(name: str, value: Any) -> Any:
    """No check here: the class checks it (e.g. LinearWarmup's ``after``)."""
    return value


#: rule (as written in a table, shown in --help) -> its check
RULES: dict[str, Callable[[str, Any], Any]] = {
    "real": check_real,
    ">= 0": check_nonnegative,
    "> 0": check_positive,
    "in [0, 1)": check_unit_interval,
    "in [0, 1]": check_fraction,
    "< 1": check_below_one,
    "bool": check_bool,
    "int > 0": check_positive_int,
    "int >= 0": check_nonnegative_int,
    "pair in [0, 1)": check_betas,
    "str": check_object,  # with choices
    "object": check_object,
}


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter of an optimiser or schedule.

    Args:
        name: the argument's (and the param group entry's) name, as in torch.
        default: its default, :data:`REQUIRED` for a required argument; a default of
            None also allows None.
        rule: a key of :data:`RULES` ("lr must be >= 0").
        doc: one line for the docstring and ``--help``.
        keyword_only: after the ``*`` in the signature (torch's ``maximize``).
        init: False for a value the class fixes (AdamW's ``decoupled_weight_decay``):
            it is in every param group but not an argument.
        choices: the allowed values of a string setting.
        per_group: a number, or a list with one number per param group.
    """

    name: str
    default: Any
    rule: str
    doc: str = ""
    keyword_only: bool = False
    init: bool = True
    choices: tuple = ()
    per_group: bool = False

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"Hyper {self.name!r}: rule must be one of {list(RULES)}, got {self.rule!r}")

    def check(self, value: Any) -> Any:
        """``value`` validated and normalised; ValueError/TypeError naming the hyperparameter."""
        if value is None and self.default is None:
            return None
        if self.choices:
            if not isinstance(value, str) or value not in self.choices:
                options = " or ".join(repr(c) for c in self.choices)
                raise ValueError(f"{self.name} must be {options}, got {value!r}")
            return value
        check = RULES[self.rule]
        if self.per_group and isinstance(value, list | tuple):
            return [check(self.name, v) for v in value]
        return check(self.name, value)

    def describe(self) -> str:
        """``lr: >= 0, default 0.001`` (for docstrings and --help)."""
        what = " or ".join(repr(c) for c in self.choices) if self.choices else self.rule
        if self.per_group:
            what += " (or one per param group)"
        if self.default is REQUIRED:
            return f"{self.name}: {what}, required"
        return f"{self.name}: {what}, default {self.default!r}"


def signature(first: str, hypers: tuple[Hyper, ...]) -> inspect.Signature:
    """``(first, name=default, ..., *, keyword_only=default)`` from a table."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(first, kind)]
    params += [inspect.Parameter(h.name, kind, default=h.default) for h in hypers
               if h.init and not h.keyword_only]
    params += [inspect.Parameter(h.name, inspect.Parameter.KEYWORD_ONLY, default=h.default)
               for h in hypers if h.init and h.keyword_only]
    return inspect.Signature(params)


def bind(cls: type, args: tuple, kwargs: dict) -> tuple[Any, dict[str, Any]]:
    """(first argument, hyperparameters) of the call ``cls(*args, **kwargs)``.

    The hyperparameters are every row of ``cls.hypers`` in table order, defaults filled
    in, fixed ones included, each passed through its check. A call that does not fit
    the signature raises TypeError as Python would.
    """
    try:
        bound = cls.__signature__.bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{cls.__name__}(): {err}") from None
    bound.apply_defaults()
    values = {h.name: h.check(bound.arguments[h.name] if h.init else h.default) for h in cls.hypers}
    return bound.arguments[cls.first_argument], values


def document(cls: type) -> None:
    """Set ``cls.__signature__`` from ``cls.hypers`` and append a Hyperparameters section
    to its docstring."""
    cls.__signature__ = signature(cls.first_argument, cls.hypers)
    lines = [f"        {h.describe()}. {h.doc}".rstrip() for h in cls.hypers if h.init]
    if cls.__doc__ and lines and "hypers" in cls.__dict__:
        cls.__doc__ = cls.__doc__.rstrip() + "\n\n    Hyperparameters:\n" + "\n".join(lines) + "\n"


class Tabled:
    """Base of the classes built from a :attr:`hypers` table (optimisers, schedules):
    their signature ``Cls(first_argument, ...)`` and docstring come from it, and
    ``bind(type(self), args, kwargs)`` checks a call."""

    #: the hyperparameters, in signature order
    hypers: tuple[Hyper, ...] = ()
    #: the name of the argument before them
    first_argument = "params"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        document(cls)


def replaced(hypers: tuple[Hyper, ...], **changes: Hyper) -> tuple[Hyper, ...]:
    """A copy of a table with some rows replaced by name (AdamW's from Adam's)."""
    unknown = set(changes) - {h.name for h in hypers}
    if unknown:
        raise ValueError(f"no hyperparameter(s) {sorted(unknown)} to replace")
    return tuple(changes.get(h.name, h) for h in hypers)
