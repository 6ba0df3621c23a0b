"""A trainable tensor: its value and the gradient of the loss with respect to it."""

from __future__ import annotations

import numpy as np

from twinnet.nn.placement import zeros_beside


class Parameter:
    """A trainable array and its gradient, side by side.

    ``data`` holds the value and ``grad`` the gradient dL/d(data), always with the
    same shape and dtype (an optimiser, a checkpoint and the PyTorch twin walk them
    together). Layers *accumulate* into ``grad`` during backward, exactly like
    PyTorch, so call ``zero_grad()`` between steps. ``data`` is updated in place:
    references held by an optimiser stay valid for the whole run.

    ``zero_grad()`` only marks the gradient as zero; the array is cleared when it is
    next read, unless a layer's backward overwrites it first with
    :meth:`accumulate_product` (what ``Linear`` does: one pass over the largest
    gradients saved per step). So read ``p.grad`` afresh after ``zero_grad()``, as with
    PyTorch's ``zero_grad(set_to_none=True)``, rather than an array kept from before.
    """

    def __init__(self, data: np.ndarray, name: str | None = None):
        data = np.asarray(data)
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"Parameter data must be a floating array, got dtype {data.dtype}")
        self.data = np.ascontiguousarray(data)
        # a quarter page after data, so that Adam's loop over both never stalls (see placement.py)
        self._grad = zeros_beside(self.data, 1)
        self._grad_is_zero = True  # set by zero_grad(): the array may still hold old values
        self.name = name

    @property
    def grad(self) -> np.ndarray:
        """dL/d(data), same shape and dtype as ``data``."""
        if self._grad_is_zero:
            self._grad.fill(0)
            self._grad_is_zero = False
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray) -> None:
        if not isinstance(value, np.ndarray) or value.shape != self.data.shape or value.dtype != self.data.dtype:
            got = f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(
                f"{self!r}: grad must be a {self.data.dtype} array of shape {self.data.shape}, got {got}"
            )
        self._grad = value
        self._grad_is_zero = False

    def accumulate_product(self, a: np.ndarray, b: np.ndarray) -> None:
        """``grad += a @ b``; right after ``zero_grad()``, ``grad = a @ b`` written straight
        into the gradient array (no temporary, no addition)."""
        if self._grad_is_zero:
            np.matmul(a, b, out=self._grad)
            self._grad_is_zero = False
        else:
            self._grad += a @ b

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
        """Set ``grad`` to zero (cleared in place when next read or overwritten)."""
        self._grad_is_zero = True

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"Parameter{label}(shape={self.data.shape}, dtype={self.data.dtype})"
