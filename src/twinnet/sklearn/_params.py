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

from twinnet.models import ACTIVATIONS
from twinnet.nn.init import WEIGHT_INITS

# scikit-learn's activation names, and twinnet's own, -> build_mlp's names
ACTIVATION_NAMES = {"logistic": "sigmoid", **{name: name for name in ACTIVATIONS}}
SOLVERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULES = (None, "constant", "cosine", "onecycle", "plateau")
NORMS = (None, "none", "batch", "layer")
# "auto": build_mlp's choice (He for the ReLU family, Xavier for tanh/sigmoid);
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
    _real(est, "learning_rate_init", 0.0, low_open=True)
    _int(est, "max_iter", 1)
    _bool(est, "shuffle")
    _real(est, "tol", 0.0)
    _bool(est, "warm_start")
    _real(est, "momentum", 0.0, 1.0)
    _bool(est, "nesterovs_momentum")
    _bool(est, "early_stopping")
    _real(est, "validation_fraction", 0.0, 1.0, high_open=True)
    _real(est, "beta_1", 0.0, 1.0, high_open=True)
    _real(est, "beta_2", 0.0, 1.0, high_open=True)
    _real(est, "epsilon", 0.0, low_open=True)
    _int(est, "n_iter_no_change", 1, allow_inf=True)
    dropout = _real(est, "dropout", 0.0, 1.0, high_open=True)
    norm = _choice(est, "norm", NORMS)
    _real(est, "weight_decay", 0.0)
    _choice(est, "schedule", SCHEDULES)
    init = _choice(est, "init", INITS)
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
