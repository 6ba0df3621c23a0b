"""A trainable tensor: its value and the gradient of the loss with respect to it."""

from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array and its gradient, side by side.

    ``data`` holds the value and ``grad`` the gradient dL/d(data), always with the
    same shape and dtype (an optimiser, a checkpoint and the PyTorch twin walk them
    together). Layers *accumulate* into ``grad`` during backward, exactly like
    PyTorch, so call ``zero_grad()`` between steps. Both arrays are updated in place:
    references held by an optimiser stay valid for the whole run.
    """

    def __init__(self, data: np.ndarray, name: str | None = None):
        data = np.asarray(data)
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"Parameter data must be a floating array, got dtype {data.dtype}")
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        """Set ``grad`` to zero, in place."""
        self.grad.fill(0)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"Parameter{label}(shape={self.data.shape}, dtype={self.data.dtype})"
