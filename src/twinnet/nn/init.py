"""Weight initialisation schemes, as in ``torch.nn.init``.

Each function takes a shape, a gain or nonlinearity, and an ``np.random.Generator``
(``rng``; a fresh unseeded one if omitted) and returns a new array. For a weight of
shape (out_features, in_features): fan_in = in_features, fan_out = out_features.

Why the scales: a layer y = W x with n inputs of variance v gives outputs of variance
n * Var(W) * v. Keeping that equal to v needs Var(W) = 1/fan_in (LeCun), and a ReLU,
which zeroes half its inputs, needs twice that: Var(W) = 2/fan_in (He/Kaiming).
Xavier/Glorot compromises between forward and backward: Var(W) = 2/(fan_in+fan_out).
A uniform U(-a, a) has variance a^2/3, hence the sqrt(3) in the uniform bounds.
"""

from __future__ import annotations

import math

import numpy as np

_GAINS = {
    "linear": 1.0,
    "identity": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
}


def calculate_gain(nonlinearity: str = "leaky_relu", param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (same values as ``torch.nn.init.calculate_gain``)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        # gain = sqrt(2 / (1 + slope^2))
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity in _GAINS:
        return _GAINS[nonlinearity]
    raise ValueError(
        f"unknown nonlinearity {nonlinearity!r}; expected one of "
        f"{sorted([*_GAINS, 'leaky_relu'])}"
    )


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in) or (out, in, *receptive_field)."""
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a shape with at least 2 dimensions, got {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng() if rng is None else rng


def _fan(shape, mode: str) -> int:
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def uniform(shape, low=0.0, high=1.0, rng=None, dtype=np.float32) -> np.ndarray:
    """U(low, high) samples of the given shape."""
    return _rng(rng).uniform(low, high, size=shape).astype(dtype)


def normal(shape, mean=0.0, std=1.0, rng=None, dtype=np.float32) -> np.ndarray:
    """N(mean, std^2) samples of the given shape."""
    return _rng(rng).normal(mean, std, size=shape).astype(dtype)


def zeros(shape, dtype=np.float32) -> np.ndarray:
    """An array of zeros (biases; a zero weight makes every unit of a layer identical)."""
    return np.zeros(shape, dtype=dtype)


def xavier_uniform(shape, gain: float = 1.0, rng=None, dtype=np.float32) -> np.ndarray:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -bound, bound, rng, dtype)


def xavier_normal(shape, gain: float = 1.0, rng=None, dtype=np.float32) -> np.ndarray:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal(shape, 0.0, std, rng, dtype)


def kaiming_uniform(
    shape, a: float = 0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None, dtype=np.float32
) -> np.ndarray:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan). ``a`` is the leaky slope."""
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / _fan(shape, mode))
    return uniform(shape, -bound, bound, rng, dtype)


def kaiming_normal(
    shape, a: float = 0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None, dtype=np.float32
) -> np.ndarray:
    """He normal: N(0, std^2) with std = gain / sqrt(fan); for ReLU, Var(W) = 2 / fan_in."""
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(_fan(shape, mode))
    return normal(shape, 0.0, std, rng, dtype)


def lecun_normal(shape, rng=None, dtype=np.float32, mode="fan_in") -> np.ndarray:
    """LeCun normal: N(0, 1/fan), fan = fan_in by default (SELU's init)."""
    std = 1.0 / math.sqrt(_fan(shape, mode))
    return normal(shape, 0.0, std, rng, dtype)


def lecun_uniform(shape, rng=None, dtype=np.float32, mode="fan_in") -> np.ndarray:
    """LeCun uniform: U(-a, a) with a = sqrt(3 / fan), so Var(W) = 1/fan (Keras' lecun_uniform)."""
    bound = math.sqrt(3.0 / _fan(shape, mode))
    return uniform(shape, -bound, bound, rng, dtype)


# name accepted by Linear(init=...) -> function(shape, rng, dtype). The fans count as
# fan_in unless the name ends in "_fan_out" (torch's mode="fan_out": the variance kept in
# the backward pass, Var(W) = 2/fan_out for He), which is how the CLI's --init reaches it.
WEIGHT_INITS = {
    # PyTorch's Linear default: kaiming_uniform with a=sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    "default": lambda s, rng, dt: kaiming_uniform(s, a=math.sqrt(5), rng=rng, dtype=dt),
    "xavier_uniform": lambda s, rng, dt: xavier_uniform(s, rng=rng, dtype=dt),
    "xavier_normal": lambda s, rng, dt: xavier_normal(s, rng=rng, dtype=dt),
    "kaiming_uniform": lambda s, rng, dt: kaiming_uniform(s, nonlinearity="relu", rng=rng, dtype=dt),
    "kaiming_normal": lambda s, rng, dt: kaiming_normal(s, nonlinearity="relu", rng=rng, dtype=dt),
    "he_uniform": lambda s, rng, dt: kaiming_uniform(s, nonlinearity="relu", rng=rng, dtype=dt),
    "he_normal": lambda s, rng, dt: kaiming_normal(s, nonlinearity="relu", rng=rng, dtype=dt),
    "lecun_normal": lambda s, rng, dt: lecun_normal(s, rng=rng, dtype=dt),
    "lecun_uniform": lambda s, rng, dt: lecun_uniform(s, rng=rng, dtype=dt),
    "zeros": lambda s, rng, dt: zeros(s, dtype=dt),
    # the same schemes with mode="fan_out"
    "kaiming_uniform_fan_out": lambda s, rng, dt: kaiming_uniform(
        s, mode="fan_out", nonlinearity="relu", rng=rng, dtype=dt
    ),
    "kaiming_normal_fan_out": lambda s, rng, dt: kaiming_normal(
        s, mode="fan_out", nonlinearity="relu", rng=rng, dtype=dt
    ),
    "he_uniform_fan_out": lambda s, rng, dt: kaiming_uniform(
        s, mode="fan_out", nonlinearity="relu", rng=rng, dtype=dt
    ),
    "he_normal_fan_out": lambda s, rng, dt: kaiming_normal(
        s, mode="fan_out", nonlinearity="relu", rng=rng, dtype=dt
    ),
    "lecun_normal_fan_out": lambda s, rng, dt: lecun_normal(s, mode="fan_out", rng=rng, dtype=dt),
    "lecun_uniform_fan_out": lambda s, rng, dt: lecun_uniform(s, mode="fan_out", rng=rng, dtype=dt),
}
