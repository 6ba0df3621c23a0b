"""Dropout with inverted scaling (Srivastava et al., 2014)."""

from __future__ import annotations

import numpy as np

from twinnet.nn.module import Module, check_cached, check_grad, check_input


class Dropout(Module):
    """Zero each input with probability ``p`` in training mode and scale the survivors
    by 1/(1-p), so the expected output equals the input and eval mode is the identity.

    The layer owns its random generator (``rng``: a Generator or an int seed) so runs are
    repeatable and a checkpoint can store its state. ``self.mask`` holds the last mask
    (already scaled by 1/(1-p)); ``fix_mask(mask)`` makes every later forward reuse a
    given mask, e.g. to compare gradients with another implementation.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None):
        super().__init__()
        if not isinstance(p, float | int) or not 0 <= p < 1:
            raise ValueError(f"Dropout p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.mask = None
        self._fixed = None
        self._used_mask = None
        self._shape = None  # of the last input (and output)

    def fix_mask(self, mask: np.ndarray | None) -> None:
        """Reuse ``mask`` (0 or 1/(1-p) entries, or 0/1 keep flags) in every forward; None to stop."""
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype == bool or set(np.unique(mask)).issubset({0, 1}):
                mask = mask.astype(np.float64) / (1 - self.p)
        self._fixed = mask

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_input(self, x, ndim=None)
        self._shape = x.shape
        if not self.training or self.p == 0:
            self._used_mask = False
            return x
        if self._fixed is not None:
            if self._fixed.shape != x.shape:
                raise ValueError(f"{self!r}: fixed mask has shape {self._fixed.shape}, input {x.shape}")
            mask = self._fixed.astype(x.dtype, copy=False)
        else:
            # keep with probability 1 - p, scaled by 1 / (1 - p)
            keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
            mask = keep * x.dtype.type(1.0 / (1.0 - self.p))
        self.mask = mask
        self._used_mask = True
        # y = x * mask
        return x * mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._used_mask)
        check_grad(self, grad_out, self._shape)
        if not self._used_mask:
            return grad_out
        # dL/dx = dL/dy * mask
        return grad_out * self.mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
