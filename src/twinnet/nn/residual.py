"""Residual: y = x + block(x), the skip connection of a ResNet."""

from __future__ import annotations

import numpy as np

from twinnet.nn.module import Module, check_cached, check_grad


class Residual(Module):
    """Add the input to the output of ``block`` (which must keep the shape).

    The parameters are the block's, named ``block.<name>`` (``block.0.weight``, ...).
    Backward: the gradient reaches x along two paths, straight and through the block.
    """

    def __init__(self, block: Module):
        super().__init__()
        if not isinstance(block, Module):
            raise TypeError(f"Residual expects a Module as block, got {type(block).__name__}")
        self.block = block
        self._shape = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self.block(x)
        if not isinstance(x, np.ndarray) or out.shape != x.shape:
            raise ValueError(
                f"Residual needs a block that keeps the shape of its input; got input "
                f"{np.shape(x)} and block output {out.shape}"
            )
        self._shape = x.shape
        # y = x + block(x)
        return x + out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._shape)
        check_grad(self, grad_out, self._shape)
        # dL/dx = dL/dy + dL/dy d(block)/dx
        through_block = self.block.backward(grad_out)
        if through_block is None:  # the block's first layer skipped dL/dx (input_grad False)
            raise RuntimeError(
                f"{self!r}: the block returned no input gradient (input_grad is False)"
            )
        return grad_out + through_block
