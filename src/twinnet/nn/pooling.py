"""Pooling over NCHW images: MaxPool2d, AvgPool2d and AdaptiveAvgPool2d.

Max and average pooling read their windows through ``nn.im2col.windows`` (a strided
view, no copy) and send gradients back with ``col2im``, the same two functions the
convolution uses. Each channel is pooled on its own: shapes (N, C, H, W) -> (N, C, OH, OW).
"""

from __future__ import annotations

import numpy as np

from twinnet.nn.im2col import check_fits, check_image, col2im, pair, windows
from twinnet.nn.module import Module, check_cached, check_grad


class _Pool2d(Module):
    """Shared arguments and checks of the window pools."""

    def __init__(self, kernel_size, stride, padding, dilation, max_padding_of_kernel):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", name)
        self.padding = pair(padding, "padding", name, minimum=0)
        self.dilation = pair(dilation, "dilation", name)
        for pad, k in zip(
            self.padding, max_padding_of_kernel(self.kernel_size, self.dilation), strict=True
        ):
            if pad > k:  # torch's rule: a window must never lie entirely in the padding
                raise ValueError(
                    f"{name} padding must be at most half the kernel size, got padding={padding} "
                    f"for kernel_size={kernel_size}"
                )
        self._cache = None

    def _geometry(self):
        return self.kernel_size, self.stride, self.padding, self.dilation

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """y = the largest entry of each kh x kw window (padding counts as -inf).

    The gradient of each output goes to its window's arg-max alone; where windows
    overlap, an input that wins several windows collects all their gradients. Ties go
    to the first largest entry in row-major window order, a NaN wins over any number
    (the last NaN of a window), and a window of only -inf and padding picks its first
    real entry: exactly as torch's CPU kernel decides.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__(
            kernel_size,
            stride,
            padding,
            dilation,
            lambda k, d: tuple((d[a] * (k[a] - 1) + 1) // 2 for a in (0, 1)),
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_image(self, x)
        oh, ow = check_fits(self, x.shape, *self._geometry())
        n, c = x.shape[:2]
        taps = self.kernel_size[0] * self.kernel_size[1]
        win = windows(x, *self._geometry(), pad_value=-np.inf).reshape(n, c, taps, oh, ow)
        argmax = win.argmax(axis=2)  # (N, C, OH, OW): the first largest entry, NaN first
        y = np.take_along_axis(win, argmax[:, :, None], axis=2)[:, :, 0]  # (N, C, OH, OW)
        # the rare cases, checked on the (smaller) output: a window holds a NaN exactly when
        # its maximum is NaN, and only padding can leave a window whose maximum is -inf
        if np.isnan(y).any():  # torch routes the gradient to the LAST NaN of a window
            nan = np.isnan(win)
            argmax = np.where(np.isnan(y), taps - 1 - nan[:, :, ::-1].argmax(axis=2), argmax)
        if self.padding != (0, 0) and np.isneginf(y).any():  # torch: the first real entry
            real = windows(np.ones((1, 1, *x.shape[2:]), bool), *self._geometry(), pad_value=False)
            first_real = real.reshape(1, 1, taps, oh, ow).argmax(axis=2)
            argmax = np.where(np.isneginf(y), first_real, argmax)
        self._cache = (argmax, x.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._cache)
        argmax, x_shape = self._cache
        check_grad(self, grad_out, argmax.shape)
        kh, kw = self.kernel_size
        n, c, oh, ow = argmax.shape
        # dL/dx[arg-max of window w] += dL/dy[w]; every other entry of the window gets 0
        winner = argmax[:, :, None] == np.arange(kh * kw)[:, None, None]  # (N, C, kh*kw, OH, OW)
        dcols = (winner * grad_out[:, :, None]).reshape(n, c, kh, kw, oh, ow)
        return col2im(
            dcols.astype(grad_out.dtype, copy=False),
            x_shape,
            self.stride,
            self.padding,
            self.dilation,
        )

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (f", dilation={self.dilation}" if self.dilation != (1, 1) else "")


class AvgPool2d(_Pool2d):
    """y = the mean of each kh x kw window (torch's defaults: zero padding is counted).

    ``count_include_pad=False`` divides by the number of real (non-padding) entries
    instead; ``divisor_override`` divides every window sum by that number.
    """

    def __init__(
        self, kernel_size, stride=None, padding=0, count_include_pad=True, divisor_override=None
    ):
        super().__init__(kernel_size, stride, padding, 1, lambda k, d: (k[0] // 2, k[1] // 2))
        if divisor_override is not None and (
            not isinstance(divisor_override, int | np.integer) or divisor_override < 1
        ):
            raise ValueError(
                f"AvgPool2d divisor_override must be a positive int or None, got {divisor_override!r}"
            )
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def _divisor(self, x: np.ndarray) -> np.ndarray | float:
        """What each window sum is divided by: a number, or (OH, OW) counts of real entries."""
        if self.divisor_override is not None:
            return float(self.divisor_override)
        if self.count_include_pad or self.padding == (0, 0):
            return float(self.kernel_size[0] * self.kernel_size[1])
        real = windows(np.ones((1, 1, *x.shape[2:]), x.dtype), *self._geometry())
        return real.sum(axis=(0, 1, 2, 3))  # (OH, OW)

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_image(self, x)
        check_fits(self, x.shape, *self._geometry())
        divisor = self._divisor(x)
        self._cache = (divisor, x.shape)
        # y = sum of the window / divisor
        return windows(x, *self._geometry()).sum(axis=(2, 3)) / np.asarray(divisor, x.dtype)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._cache)
        divisor, x_shape = self._cache
        kh, kw = self.kernel_size
        n, c = x_shape[:2]
        oh, ow = check_fits(self, x_shape, *self._geometry())
        check_grad(self, grad_out, (n, c, oh, ow))
        # dL/dx[window entry] += dL/dy / divisor, for every entry of the window (padding dropped)
        share = grad_out / np.asarray(divisor, grad_out.dtype)  # (N, C, OH, OW)
        dcols = np.broadcast_to(share[:, :, None, None], (n, c, kh, kw, oh, ow))  # a view, no copy
        return col2im(dcols, x_shape, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", count_include_pad={self.count_include_pad}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (OH, OW), whatever the input size.

    Output cell (i, j) averages rows floor(i H / OH) .. ceil((i+1) H / OH) - 1 and the
    columns likewise (torch's regions; they may overlap). ``output_size=1`` is global
    average pooling: (N, C, H, W) -> (N, C, 1, 1).
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = pair(output_size, "output_size", "AdaptiveAvgPool2d")
        self._x_shape = None

    def _regions(self, x_shape):
        """(i, j, rows, cols) of every output cell."""
        (oh, ow), (height, width) = self.output_size, x_shape[2:]
        for i in range(oh):
            rows = slice(i * height // oh, -(-(i + 1) * height // oh))
            for j in range(ow):
                yield i, j, rows, slice(j * width // ow, -(-(j + 1) * width // ow))

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_image(self, x)
        if x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"{self!r} expects a non-empty image, got input of shape {x.shape}")
        self._x_shape = x.shape
        y = np.empty((*x.shape[:2], *self.output_size), dtype=x.dtype)
        for i, j, rows, cols in self._regions(x.shape):
            # y[:, :, i, j] = mean of the region
            y[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_cached(self, self._x_shape)
        check_grad(self, grad_out, (*self._x_shape[:2], *self.output_size))
        dx = np.zeros(self._x_shape, dtype=grad_out.dtype)
        for i, j, rows, cols in self._regions(self._x_shape):
            area = (rows.stop - rows.start) * (cols.stop - cols.start)
            # dL/dx[region] += dL/dy[i, j] / area
            dx[:, :, rows, cols] += grad_out[:, :, i, j, None, None] / area
        return dx

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
