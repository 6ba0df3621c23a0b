"""Validate the constructor parameters of the estimators, at fit time.

scikit-learn's convention: ``__init__`` only stores its arguments (so ``clone`` and
``set_params`` work), and ``fit`` checks them. :func:`resolve` does that check and
returns a :class:`Settings` with the values normalised (a tuple of ints for
``hidden_layer_sizes``, a NumPy dtype, twinnet's name for the activation).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from twinnet import optim
from twinnet.models import ACTIVATIONS
from twinnet.nn.init import WEIGHT_INITS

# scikit-learn's activation names, and twinnet's own, -> build_mlp's names
ACTIVATION_NAMES = {"logistic": "sigmoid", **{name: name for name in ACTIVATIONS}}
# the optimisers by name, but SGD's variants (momentum and nesterovs_momentum set those)
SOLVERS = tuple(name for name in optim.OPTIMIZERS if not optim.registry.settings(name))
# estimator parameter -> the optimiser hyperparameter it sets; its rule is the solver's
# table's (or, if the solver has no such hyperparameter, the first optimiser's that has)
OPTIMIZER_PARAMS = {
    "learning_rate_init": "lr",
    "momentum": "momentum",
    "beta_1": "betas",
    "beta_2": "betas",
    "epsilon": "eps",
    "weight_decay": "weight_decay",
}
SCHEDULES = (None, "constant", "cosine", "onecycle", "plateau")
NORMS = (None, "none", "batch", "layer")
# "auto": the estimators' _auto_init, "sklearn" (benchmarks/sklearn_init.md);
# "sklearn": scikit-learn's MLP init (Glorot uniform weights *and* biases)
INITS = ("auto", "sklearn", *WEIGHT_INITS)


@dataclass(frozen=True)
class Settings:
    """The validated hyperparameters a fit runs with."""

    hidden: tuple[int, ...]
    activation: str  # twinnet name (build_mlp)
    dtype: np.dtype
    norm: str  # "none" | "batch" | "layer"
    dropout: float
    init: str

    @property
    def architecture(self) -> tuple:
        """What must not change between a fit and a warm-started / partial fit."""
        return (self.hidden, self.activation, self.dtype, self.norm, self.dropout, self.init)


def _where(est) -> str:
    return f"The {{!r}} parameter of {type(est).__name__}"


def _real(est, name: str, low: float, high: float = math.inf, *, low_open=False, high_open=False):
    value = getattr(est, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{_where(est).format(name)} must be a real number, "
            f"got {type(value).__name__} {value!r}"
        )
    value = float(value)
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{_where(est).format(name)} must be in {interval}, got {value!r}")
    return value


def _int(est, name: str, low: int, allow_inf: bool = False):
    value = getattr(est, name)
    if allow_inf and isinstance(value, numbers.Real) and value == math.inf:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{_where(est).format(name)} must be an int{' or inf' if allow_inf else ''}, "
            f"got {type(value).__name__} {value!r}"
        )
    if value < low:
        raise ValueError(f"{_where(est).format(name)} must be >= {low}, got {value!r}")
    return int(value)


def _bool(est, name: str) -> bool:
    value = getattr(est, name)
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"{_where(est).format(name)} must be a bool, got {type(value).__name__} {value!r}"
        )
    return bool(value)


def _choice(est, name: str, options) -> object:
    value = getattr(est, name)
    if not (value is None or isinstance(value, str)) or value not in options:
        raise ValueError(
            f"{_where(est).format(name)} must be one of {list(options)}, got {value!r}"
        )
    return value


def _optimizer_param(est, param: str, hyper: str) -> None:
    """Check an estimator parameter by the rule of the optimiser hyperparameter it sets."""
    rule = next(
        optim.registry.hypers(name)[hyper]
        for name in (est.solver, *optim.OPTIMIZERS)
        if hyper in optim.registry.hypers(name)
    )
    value = getattr(est, param)
    if hyper == "betas":
        value = (value, value)  # the pair's rule checks each entry: this one alone
    try:
        rule.check(value)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{_where(est).format(param)} is not valid: {err}") from None


def solver_hyperparameters(est) -> dict:
    """The solver's hyperparameters from the estimator's parameters: lr; momentum and
    Nesterov for "sgd" only (as in scikit-learn); betas and eps where the optimiser has
    them (``optim.create(est.solver, params, **this)``)."""
    table = optim.registry.hypers(est.solver)
    hyper = {"lr": est.learning_rate_init}
    if est.solver == "sgd":
        hyper["momentum"] = est.momentum
        hyper["nesterov"] = bool(est.nesterovs_momentum) and est.momentum > 0
    if "betas" in table:
        hyper["betas"] = (est.beta_1, est.beta_2)
    if "eps" in table:
        hyper["eps"] = est.epsilon
    return hyper


def resolve(est) -> Settings:
    """Check every hyperparameter of ``est``; raise TypeError/ValueError naming the bad one."""
    hidden = est.hidden_layer_sizes
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise TypeError(
            f"{_where(est).format('hidden_layer_sizes')} must be an int or a sequence of ints, "
            f"got {type(est.hidden_layer_sizes).__name__} {est.hidden_layer_sizes!r}"
        ) from None
    if not all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in hidden
    ):
        raise ValueError(
            f"{_where(est).format('hidden_layer_sizes')} must hold positive ints, "
            f"got {est.hidden_layer_sizes!r}"
        )
    activation = _choice(est, "activation", ACTIVATION_NAMES)
    _choice(est, "solver", SOLVERS)
    _real(est, "alpha", 0.0)
    if not (isinstance(est.batch_size, str) and est.batch_size == "auto"):
        _int(est, "batch_size", 1)
    _int(est, "max_iter", 1)
    _bool(est, "shuffle")
    _real(est, "tol", 0.0)
    _bool(est, "warm_start")
    _bool(est, "nesterovs_momentum")
    _bool(est, "early_stopping")
    _real(est, "validation_fraction", 0.0, 1.0, high_open=True)
    _int(est, "n_iter_no_change", 1, allow_inf=True)
    dropout = _real(est, "dropout", 0.0, 1.0, high_open=True)
    norm = _choice(est, "norm", NORMS)
    for param, hyper in OPTIMIZER_PARAMS.items():
        _optimizer_param(est, param, hyper)
    _choice(est, "schedule", SCHEDULES)
    init = _choice(est, "init", INITS)
    if init == "auto":
        init = est._auto_init  # the estimator's own choice (benchmarks/sklearn_init.md)
    try:
        dtype = np.dtype(est.dtype)
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.float64):
        raise ValueError(
            f"{_where(est).format('dtype')} must be 'float32' or 'float64', got {est.dtype!r}"
        )
    return Settings(
        hidden=tuple(int(h) for h in hidden),
        activation=ACTIVATION_NAMES[activation],
        dtype=dtype,
        norm="none" if norm is None else norm,
        dropout=dropout,
        init=init,
    )
