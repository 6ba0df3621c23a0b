"""BatchNorm2d: batch normalisation of NCHW feature maps, one mean and variance per channel."""

from __future__ import annotations

import numpy as np

from twinnet.nn.im2col import check_image
from twinnet.nn.module import check_cached, check_grad
from twinnet.nn.normalization import BatchNorm1d


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation per channel of an (N, C, H, W) input (as ``torch.nn.BatchNorm2d``).

    Every pixel of every image is one example of its channel: the statistics are taken
    over N * H * W values, so this is exactly ``BatchNorm1d`` applied to the input
    rearranged as (N * H * W, C) rows, which is how it is computed here (forward and
    backward, running statistics with the unbiased variance over N * H * W, momentum,
    train and eval mode: all ``BatchNorm1d``'s). Arguments as ``BatchNorm1d``.
    """

    _image_shape = None  # (N, C, H, W) of the last forward

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_image(self, x, self.num_features, self.dtype)
        n, c, h, w = x.shape
        if (self.training or not self.track_running_stats) and n * h * w < 2:
            raise ValueError(
                f"{self!r} needs more than 1 value per channel in training mode, got input "
                f"of shape {x.shape} (use eval() or a larger batch)"
            )
        # (N, C, H, W) -> (N*H*W, C): one row per pixel
        rows = x.transpose(0, 2, 3, 1).reshape(-1, c)
        y = super().forward(rows)
        self._image_shape = x.shape
        return np.ascontiguousarray(y.reshape(n, h, w, c).transpose(0, 3, 1, 2))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._image_shape)
        check_grad(self, grad_out, self._image_shape)
        n, c, h, w = grad_out.shape
        # the same rows as in forward, through BatchNorm1d's backward, and back to NCHW
        dx = super().backward(grad_out.transpose(0, 2, 3, 1).reshape(-1, c))
        return np.ascontiguousarray(dx.reshape(n, h, w, c).transpose(0, 3, 1, 2))
