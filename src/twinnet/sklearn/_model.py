"""The estimators' network and mini-batches: build_model, backward_params, _Batches."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from twinnet import nn
from twinnet.models import build_mlp
from twinnet.sklearn._params import Settings


def _other_float(dtype: np.dtype) -> type:
    return np.float64 if dtype == np.float32 else np.float32


def build_model(settings: Settings, n_in: int, n_out: int, seed: int) -> nn.Sequential:
    """The network of an estimator: build_mlp, plus scikit-learn's init if asked for."""
    rng = np.random.default_rng(seed)
    init = "default" if settings.init == "sklearn" else settings.init
    model = build_mlp(
        [n_in, *settings.hidden, n_out],
        activation=settings.activation,
        dropout=settings.dropout,
        norm=settings.norm,
        init=init,
        dtype=settings.dtype,
        rng=rng,
    )
    if settings.init == "sklearn":
        # scikit-learn's _init_coef: W and b ~ U(-a, a), a = sqrt(f / (fan_in + fan_out)),
        # f = 2 for the logistic activation, 6 otherwise
        factor = 2.0 if settings.activation == "sigmoid" else 6.0
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                a = math.sqrt(factor / (layer.in_features + layer.out_features))
                layer.weight.data[...] = rng.uniform(-a, a, layer.weight.shape)
                if layer.bias is not None:  # none before a BatchNorm (norm="batch")
                    layer.bias.data[...] = rng.uniform(-a, a, layer.bias.shape)
    return model


def backward_params(model: nn.Sequential, grad: np.ndarray) -> None:
    """``model.backward(grad)`` without the gradient of the input, which training never uses.

    A first Linear layer is told to skip its dL/dx (``Linear.input_grad``): a (B, out) x
    (out, in) product as large as its forward, 15-20% of a step.
    """
    first = model.layers[0]
    if not isinstance(first, nn.Linear):
        model.backward(grad)
        return
    first.input_grad = False
    try:
        model.backward(grad)
    finally:
        first.input_grad = True


class _Batches:
    """Mini-batches of (x, target, weight) for one epoch, shuffled or in order.

    Dense x is gathered once per epoch into a reused buffer (batches are views of it);
    sparse x (CSR) is densified one batch at a time.
    """

    def __init__(self, x, target, weight, batch_size: int, merge_single: bool):
        self.x, self.target, self.weight = x, target, weight
        n = x.shape[0]
        starts = list(range(0, n, batch_size))
        if merge_single and len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()  # BatchNorm cannot train on a batch of one: fold it into the last
        self.bounds = list(zip(starts, [*starts[1:], n], strict=True))
        self._buf = None

    def epoch(self, perm: np.ndarray | None):
        x, t, w = self.x, self.target, self.weight
        if perm is not None:
            if sp.issparse(x):
                x = x[perm]
            else:
                if self._buf is None:
                    self._buf = np.empty_like(x, order="C")
                x = np.take(x, perm, axis=0, out=self._buf)
            t = t[perm]
            w = None if w is None else w[perm]
        for lo, hi in self.bounds:
            xb = x[lo:hi]
            if sp.issparse(xb):
                xb = xb.toarray()
            yield xb, t[lo:hi], None if w is None else w[lo:hi]
