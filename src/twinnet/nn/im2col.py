"""im2col and col2im: the one place that knows how image windows sit in memory.

A convolution, a max pool and an average pool all read the same thing: for every output
position (oh, ow), the kh x kw window of the (zero-padded) input under it. ``windows``
returns every window at once as a strided *view* of the padded input, without copying a
number::

    windows(x)[n, c, i, j, oh, ow] = x_padded[n, c, oh * stride + i * dilation,
                                                    ow * stride + j * dilation]

``im2col`` copies that view once into a matrix with one row per (channel, i, j) and one
column per output position of every image, so that a convolution of the whole batch is
a single matrix product (one large product: many small per-image ones waste most of
BLAS's time on its own start-up).

``col2im`` is the adjoint (the transpose) of ``windows``: given a gradient for every
window entry, it adds each one back onto the input position the entry was read from;
where windows overlap (stride < kernel) the contributions add up. It makes kh * kw
strided slice additions, one per kernel offset (i, j), each over the whole batch.

Shapes: x (N, C, H, W); windows (N, C, kh, kw, OH, OW); im2col (C * kh * kw, N * OH * OW).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from twinnet.nn.module import Module, check_input

Pair = tuple[int, int]


def pair(value, name: str, owner: str, minimum: int = 1) -> Pair:
    """An int or a pair of ints as (height, width), each at least ``minimum``."""
    values = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(values) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= minimum for v in values
    ):
        raise ValueError(
            f"{owner} {name} must be an int >= {minimum} or a pair of them, got {value!r}"
        )
    return int(values[0]), int(values[1])


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Number of window positions along one axis (torch's formula, floor rounding)."""
    # out = floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_image(layer: Module, x, channels: int | None = None, dtype=None) -> None:
    """Raise a clear error unless ``x`` is a float32/float64 (N, C, H, W) batch of images
    with ``channels`` channels (None: any) and, if given, the layer's dtype."""
    check_input(layer, x, ndim=None, dtype=dtype)  # a float32/float64 array of the layer's dtype
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        expected = channels if channels is not None else "channels"
        raise ValueError(
            f"{layer!r} expects input of shape (batch, {expected}, height, width), got shape {x.shape}"
        )


def check_fits(
    layer: Module, x_shape, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair
) -> Pair:
    """(OH, OW) for this input, or a clear error when the window does not fit even once."""
    out = tuple(
        output_size(x_shape[2 + a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1)
    )
    if min(out) < 1:
        raise ValueError(
            f"{layer!r}: input of shape {tuple(x_shape)} is too small for kernel {kernel} with "
            f"padding {padding} and dilation {dilation} (output would be {out[0]}x{out[1]})"
        )
    return out


def windows(
    x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, pad_value: float = 0.0
) -> np.ndarray:
    """Every window of x (N, C, H, W) as a strided view (N, C, kh, kw, OH, OW) of the padded input."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)  # what a dilated window covers
    view = sliding_window_view(x, span, axis=(2, 3))  # (N, C, H'-span+1, W'-span+1, span_h, span_w)
    view = view[:, :, ::sh, ::sw, ::dh, ::dw]  # keep every stride-th start, every dilation-th tap
    return view.transpose(0, 1, 4, 5, 2, 3)  # (N, C, kh, kw, OH, OW)


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """The windows of x copied once into a contiguous (C * kh * kw, N * OH * OW) matrix:
    row (c, i, j), column (n, oh, ow) holds x_padded[n, c, oh*s + i*d, ow*s + j*d]."""
    view = windows(x, kernel, stride, padding, dilation)  # (N, C, kh, kw, OH, OW)
    n, c, kh, kw, oh, ow = view.shape
    return np.ascontiguousarray(view.transpose(1, 2, 3, 0, 4, 5)).reshape(c * kh * kw, n * oh * ow)


def col2im(dcols: np.ndarray, x_shape, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """Adjoint of ``windows``: dcols (N, C, kh, kw, OH, OW) -> dx (N, C, H, W), overlaps summed.

    The two leading axes only ride along: (C, N, ...) works the same way, which is
    faster when dcols is laid out channel-first in memory (as Conv2d's is).
    """
    n, c, kh, kw, oh, ow = dcols.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    height, width = x_shape[2], x_shape[3]
    dx = np.zeros((n, c, height + 2 * ph, width + 2 * pw), dtype=dcols.dtype)
    for i in range(kh):
        top = i * dh
        for j in range(kw):
            left = j * dw
            # the (i, j) tap of every window read x_padded[top + oh*sh, left + ow*sw]
            dx[:, :, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw] += (
                dcols[:, :, i, j]
            )
    if ph or pw:
        dx = dx[:, :, ph : ph + height, pw : pw + width]  # drop the padding (a view)
    return dx
