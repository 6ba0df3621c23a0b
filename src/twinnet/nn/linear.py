"""Linear (affine) layer: y = x W^T + b."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from twinnet.nn import init as nninit
from twinnet.nn.module import Module, check_cached, check_grad, check_input
from twinnet.nn.parameter import Parameter


def as_rng(rng, owner: str) -> np.random.Generator:
    """``rng`` as a Generator: a Generator is used as is, an int seeds a new one, None
    draws fresh entropy (as ``Dropout`` and ``build_mlp`` accept)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0):
        return np.random.default_rng(rng)
    raise TypeError(
        f"{owner} rng must be a numpy Generator, an int seed >= 0 or None, got {rng!r}"
    )


class Linear(Module):
    """Affine map ``y = x @ W.T + b`` with ``W`` of shape (out_features, in_features).

    Args:
        in_features, out_features: sizes of the input and output.
        bias: learn an additive bias of shape (out_features,).
        init: weight initialisation; ``"default"`` is PyTorch's (Kaiming uniform with
            a=sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))), or one of ``"xavier_uniform"``,
            ``"xavier_normal"``, ``"kaiming_uniform"``/``"he_uniform"``,
            ``"kaiming_normal"``/``"he_normal"``, ``"lecun_normal"``, ``"lecun_uniform"``,
            ``"zeros"`` (the full list is ``nn.init.WEIGHT_INITS``), or a callable
            ``(shape, rng, dtype) -> array``. The He and LeCun names scale by fan_in;
            append ``"_fan_out"`` (``"he_normal_fan_out"``, ``"lecun_uniform_fan_out"``, ...)
            for torch's ``mode="fan_out"``. The bias starts as PyTorch's
            U(-1/sqrt(in), 1/sqrt(in)) with ``"default"`` and at zero otherwise.
        dtype: np.float32 (default) or np.float64.
        rng: ``np.random.Generator`` or an int seed for the initial values (seed it for
            repeatable runs; None draws fresh entropy).

    Shapes: input (B, in_features) -> output (B, out_features).

    ``input_grad`` (attribute, default True): when False, ``backward`` fills the
    parameter gradients but skips dL/dx and returns None. The Trainer sets it on the
    first layer of a Sequential, whose input is the data: that saves one of the three
    matrix products of the layer's backward pass.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | Callable = "default",
        dtype=np.float32,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        for label, size in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(size, int | np.integer) or size < 1:
                raise ValueError(f"Linear {label} must be a positive integer, got {size!r}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Linear dtype must be a floating type, got {dtype}")
        if isinstance(init, str) and init not in nninit.WEIGHT_INITS:
            raise ValueError(
                f"unknown init {init!r}; expected one of {sorted(nninit.WEIGHT_INITS)} or a callable"
            )
        rng = as_rng(rng, "Linear")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        make = nninit.WEIGHT_INITS[init] if isinstance(init, str) else init
        self.weight = Parameter(np.asarray(make((out_features, in_features), rng, dtype), dtype))
        if bias:
            if init == "default":
                bound = 1.0 / math.sqrt(in_features)
                b = nninit.uniform((out_features,), -bound, bound, rng, dtype)
            else:
                b = nninit.zeros((out_features,), dtype)
            self.bias = Parameter(b)
        else:
            self.bias = None
        self.input_grad = True
        self._x = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_input(self, x, self.in_features)
        if x.dtype != self.weight.data.dtype:
            raise TypeError(
                f"{self!r} has {self.weight.data.dtype} weights but got {x.dtype} input; "
                f"convert with x.astype(np.{self.weight.data.dtype})"
            )
        self._x = x  # (B, in)
        # y = x W^T + b                                           (B, out)
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._x)
        check_grad(self, grad_out, (*self._x.shape[:-1], self.out_features))
        # dL/dW = dL/dy^T x                                       (out, in)
        self.weight.accumulate_product(grad_out.T, self._x)
        if self.bias is not None:
            # dL/db = sum over the batch of dL/dy                  (out,)
            self.bias.grad += grad_out.sum(axis=0)
        if not self.input_grad:
            return None
        # dL/dx = dL/dy W                                         (B, in)
        return grad_out @ self.weight.data

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
