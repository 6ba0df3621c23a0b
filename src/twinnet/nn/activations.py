"""Activation functions, each with its forward and its hand-written backward.

Every backward receives dL/dy (``grad_out``, same shape as the output) and returns
dL/dx = dL/dy * dy/dx, where dy/dx is the local derivative written above the code.
Each layer caches only what that derivative needs (the input or the output).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from twinnet.nn.module import Module, check_cached, check_grad, check_input


class _Elementwise(Module):
    """Shared input check for activations: any floating array of at least one axis."""

    def _check(self, x: np.ndarray) -> None:
        check_input(self, x, ndim=None)


class Identity(_Elementwise):
    """y = x (a placeholder layer; the gradient passes through unchanged)."""

    def __init__(self):
        super().__init__()
        self._shape = None  # nothing to cache but the shape: backward before forward is still an error

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        self._shape = x.shape
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._shape)
        check_grad(self, grad_out, self._shape)
        # dL/dx = dL/dy
        return grad_out


class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x)), computed without overflow for any |x| (e.g. 1e4)."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        self._check(x)
        # y = 1 / (1 + exp(-x)); scipy's expit never evaluates exp of a large positive number
        self._y = special.expit(x)
        return self._y

    def backward(self, grad_out):
        check_cached(self, self._y)
        check_grad(self, grad_out, self._y.shape)
        y = self._y
        # dL/dx = dL/dy * y * (1 - y)
        return grad_out * y * (1 - y)


class Tanh(_Elementwise):
    """y = tanh(x)."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        self._check(x)
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad_out):
        check_cached(self, self._y)
        check_grad(self, grad_out, self._y.shape)
        # dL/dx = dL/dy * (1 - y^2)
        return grad_out * (1 - self._y * self._y)


class ReLU(_Elementwise):
    """y = max(x, 0). The derivative at exactly 0 is taken as 0, as in PyTorch."""

    def __init__(self):
        super().__init__()
        self._mask = None

    def forward(self, x):
        self._check(x)
        self._mask = x > 0
        # y = x where x > 0, else 0
        return np.maximum(x, 0)

    def backward(self, grad_out):
        check_cached(self, self._mask)
        check_grad(self, grad_out, self._mask.shape)
        # dL/dx = dL/dy * [x > 0]
        return grad_out * self._mask


class LeakyReLU(_Elementwise):
    """y = x for x > 0, negative_slope * x otherwise (PyTorch's default slope 0.01)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if not math.isfinite(negative_slope):
            raise ValueError(f"negative_slope must be finite, got {negative_slope}")
        self.negative_slope = float(negative_slope)
        self._mask = None

    def forward(self, x):
        self._check(x)
        self._mask = x > 0
        return np.where(self._mask, x, x * self.negative_slope)

    def backward(self, grad_out):
        check_cached(self, self._mask)
        check_grad(self, grad_out, self._mask.shape)
        # dL/dx = dL/dy * (1 if x > 0 else negative_slope)   (slope at 0, as in PyTorch)
        return np.where(self._mask, grad_out, grad_out * self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(_Elementwise):
    """Gaussian Error Linear Unit: y = x * Phi(x), Phi the standard normal CDF.

    ``approximate="none"`` uses the exact erf; ``approximate="tanh"`` uses
    Phi(x) ~ 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) (as in GPT-2 and
    PyTorch's ``approximate='tanh'``).
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self._x = None

    def forward(self, x):
        self._check(x)
        self._x = x
        if self.approximate == "tanh":
            # y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
            u = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
            return 0.5 * x * (1 + np.tanh(u))
        # y = x Phi(x),  Phi(x) = 0.5 (1 + erf(x / sqrt(2)))
        return x * (0.5 * (1 + special.erf(x / _SQRT_2)))

    def backward(self, grad_out):
        check_cached(self, self._x)
        check_grad(self, grad_out, self._x.shape)
        x = self._x
        if self.approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3))
            sech2 = 1 - t * t
            # dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
            slope = 0.5 * x * sech2 * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            # where tanh has saturated, 1 - t^2 is exactly 0 and so is the term (even if x^2 overflowed)
            local = 0.5 * (1 + t) + np.where(sech2 == 0, 0, slope)
            return grad_out * local
        cdf = 0.5 * (1 + special.erf(x / _SQRT_2))
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        # dy/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
        return grad_out * (cdf + x * pdf)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(_Elementwise):
    """SiLU / Swish: y = x * sigmoid(x)."""

    def __init__(self):
        super().__init__()
        self._x = None
        self._s = None

    def forward(self, x):
        self._check(x)
        self._x = x
        self._s = special.expit(x)
        return x * self._s

    def backward(self, grad_out):
        check_cached(self, self._s)
        check_grad(self, grad_out, self._s.shape)
        s = self._s
        # dy/dx = s + x s (1 - s) = s (1 + x (1 - s)),  s = sigmoid(x)
        return grad_out * (s * (1 + self._x * (1 - s)))


class Softmax(_Elementwise):
    """y_i = exp(x_i) / sum_j exp(x_j) along ``dim`` (default: the last axis).

    For classification prefer ``losses.CrossEntropyLoss`` on logits, which fuses the
    softmax and has the simpler gradient softmax - onehot. This layer is for when the
    probabilities themselves are needed inside a network.
    """

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim
        self._y = None

    def forward(self, x):
        self._check(x)
        if not -x.ndim <= self.dim < x.ndim or x.shape[self.dim] == 0:
            raise ValueError(f"{self!r} needs a non-empty axis {self.dim}, got input of shape {x.shape}")
        # subtracting the max changes nothing mathematically and prevents overflow
        shifted = x - x.max(axis=self.dim, keepdims=True)
        e = np.exp(shifted)
        self._y = e / e.sum(axis=self.dim, keepdims=True)
        return self._y

    def backward(self, grad_out):
        check_cached(self, self._y)
        check_grad(self, grad_out, self._y.shape)
        y = self._y
        # Jacobian dy_i/dx_j = y_i (delta_ij - y_j), so the vector-Jacobian product is
        # dL/dx_j = y_j (dL/dy_j - sum_i dL/dy_i y_i)
        return y * (grad_out - (grad_out * y).sum(axis=self.dim, keepdims=True))

    def extra_repr(self):
        return f"dim={self.dim}"
