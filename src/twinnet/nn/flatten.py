"""Flatten: reshape (N, C, H, W) feature maps into (N, C*H*W) rows for a Linear layer."""

from __future__ import annotations

import numpy as np

from twinnet.nn.module import Module, check_cached, check_grad


class Flatten(Module):
    """Merge axes ``start_dim`` .. ``end_dim`` into one (torch's defaults: all but the batch).

    The order is C-order, as torch's: entry (c, h, w) lands at c*H*W + h*W + w.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for label, dim in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not isinstance(dim, int | np.integer) or isinstance(dim, bool):
                raise ValueError(f"Flatten {label} must be an int, got {dim!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        self._shapes = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self!r} expects a numpy array, got {type(x).__name__}")
        nd = x.ndim
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd) or (
            self.start_dim % nd > self.end_dim % nd
        ):
            raise ValueError(
                f"{self!r} cannot flatten axes {self.start_dim}..{self.end_dim} of an input of shape {x.shape}"
            )
        start, end = self.start_dim % nd, self.end_dim % nd
        # y = x with axes start..end merged into one (a view when x is contiguous)
        y = x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])
        self._shapes = (x.shape, y.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._shapes)
        x_shape, y_shape = self._shapes
        check_grad(self, grad_out, y_shape)
        # dL/dx = dL/dy with the merged axis split again
        return grad_out.reshape(x_shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
