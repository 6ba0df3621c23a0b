"""SwiGLU: the gated MLP block of modern transformers (Shazeer, 2020)."""

from __future__ import annotations

import numpy as np
from scipy import special

from twinnet.nn.linear import Linear, as_rng
from twinnet.nn.module import Module, check_cached, check_grad, check_input


class SwiGLU(Module):
    """y = down( silu(gate(x)) * up(x) )

    Three linear maps: ``gate`` and ``up`` take the input to ``hidden_features``; the
    SiLU-activated gate multiplies the ``up`` projection element by element, and
    ``down`` maps the product to ``out_features`` (default ``in_features``).
    Parameter names: ``gate.weight``, ``up.weight``, ``down.weight`` (and biases).
    ``init``, ``dtype`` and ``rng`` (a Generator or an int seed) are as for ``Linear``.

    Shapes: (B, in_features) -> (B, out_features).
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int | None = None,
        bias: bool = True,
        init="default",
        dtype=np.float32,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        rng = as_rng(rng, "SwiGLU")  # one generator draws the three layers in turn
        out_features = in_features if out_features is None else out_features
        self.in_features, self.hidden_features, self.out_features = (
            in_features,
            hidden_features,
            out_features,
        )
        self.gate = Linear(in_features, hidden_features, bias, init, dtype, rng)
        self.up = Linear(in_features, hidden_features, bias, init, dtype, rng)
        self.down = Linear(hidden_features, out_features, bias, init, dtype, rng)
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_input(self, x, self.in_features, dtype=self.gate.weight.dtype)
        g = self.gate(x)  # (B, H)
        u = self.up(x)  # (B, H)
        s = special.expit(g)
        # h = silu(g) * u = g s u
        h = g * s * u
        self._cache = (g, s, u)
        return self.down(h)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._cache)
        g, s, u = self._cache
        check_grad(self, grad_out, (*g.shape[:-1], self.out_features))
        dh = self.down.backward(grad_out)  # (B, H)
        # dL/du = dL/dh * silu(g)
        du = dh * (g * s)
        # dL/dg = dL/dh * u * silu'(g),  silu'(g) = s (1 + g (1 - s))
        dg = dh * u * (s * (1 + g * (1 - s)))
        # x feeds both projections, so its gradient is the sum of both paths
        return self.gate.backward(dg) + self.up.backward(du)

    def __repr__(self) -> str:
        return (
            f"SwiGLU(in_features={self.in_features}, hidden_features={self.hidden_features}, "
            f"out_features={self.out_features})"
        )
