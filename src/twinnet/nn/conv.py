"""2-D convolution: y = W * x + b as one matrix product over im2col's window matrix."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from twinnet.nn import init as nninit
from twinnet.nn.im2col import check_fits, check_image, col2im, im2col, pair
from twinnet.nn.module import Module, check_cached, check_grad
from twinnet.nn.parameter import Parameter


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in every deep-learning library) of NCHW images.

    ``y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, oh*s + i*d, ow*s + j*d]``
    with c running over the input channels of o's group.

    Args (as ``torch.nn.Conv2d``):
        in_channels, out_channels: C and O.
        kernel_size, stride, padding, dilation: an int or a (height, width) pair; padding
            adds zeros on both sides.
        groups: split the channels into ``groups`` independent convolutions (both C and O
            must divide by it); ``groups == in_channels`` is a depthwise convolution.
        bias: learn b of shape (O,).
        init: ``"default"`` is PyTorch's (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b,
            fan_in = C/groups * kh * kw), or any name ``Linear`` accepts, or a callable
            ``(shape, rng, dtype) -> array``; b starts at zero unless ``"default"``.
        dtype: np.float32 (default) or np.float64.
        rng: ``np.random.Generator`` for the initial values.

    Shapes: x (N, C, H, W) -> y (N, O, OH, OW), OH = floor((H + 2p - d(kh-1) - 1)/s) + 1;
    ``weight`` (O, C/groups, kh, kw).

    ``input_grad`` (attribute, default True): when False, ``backward`` fills the
    parameter gradients but skips dL/dx (and col2im) and returns None, as ``Linear`` does
    for a first layer whose input is the data.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        init: str | Callable = "default",
        dtype=np.float32,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        for label, size in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("groups", groups),
        ):
            if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 1:
                raise ValueError(f"Conv2d {label} must be a positive integer, got {size!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                f"be divisible by groups ({groups})"
            )
        if isinstance(padding, str):
            raise ValueError(f"Conv2d padding must be an int or a pair of ints, got {padding!r}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Conv2d dtype must be a floating type, got {dtype}")
        if isinstance(init, str) and init not in nninit.WEIGHT_INITS:
            raise ValueError(
                f"unknown init {init!r}; expected one of {sorted(nninit.WEIGHT_INITS)} or a callable"
            )
        self.in_channels, self.out_channels, self.groups = (
            int(in_channels),
            int(out_channels),
            int(groups),
        )
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.padding = pair(padding, "padding", "Conv2d", minimum=0)
        self.dilation = pair(dilation, "dilation", "Conv2d")
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        rng = np.random.default_rng() if rng is None else rng
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        make = nninit.WEIGHT_INITS[init] if isinstance(init, str) else init
        self.weight = Parameter(np.asarray(make(shape, rng, dtype), dtype))
        if bias:
            if init == "default":
                bound = 1.0 / math.sqrt(math.prod(shape[1:]))  # 1 / sqrt(fan_in)
                b = nninit.uniform((self.out_channels,), -bound, bound, rng, dtype)
            else:
                b = nninit.zeros((self.out_channels,), dtype)
            self.bias = Parameter(b)
        else:
            self.bias = None
        self.input_grad = True
        self._cache = None

    def _grouped_weight(self) -> np.ndarray:
        """W as one matrix per group: (G, O/G, C/G * kh * kw), a view."""
        return self.weight.data.reshape(self.groups, self.out_channels // self.groups, -1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_image(self, x, self.in_channels, self.weight.dtype)
        geometry = (self.kernel_size, self.stride, self.padding, self.dilation)
        oh, ow = check_fits(self, x.shape, *geometry)
        n, g = x.shape[0], self.groups
        # every window of every image as a column, one matrix per group   (G, C/G * kh * kw, N * OH * OW)
        cols = im2col(x, *geometry).reshape(g, -1, n * oh * ow)
        self._cache = (cols, x.shape, (oh, ow))
        # y[g] = W[g] @ cols[g]                                        (G, O/G, N * OH * OW)
        y = (self._grouped_weight() @ cols).reshape(self.out_channels, n, oh, ow)
        out = np.empty((n, self.out_channels, oh, ow), dtype=y.dtype)  # back to (N, O, OH, OW)
        if self.bias is None:
            np.copyto(out, y.transpose(1, 0, 2, 3))
        else:
            # y + b, written straight into the NCHW array (one pass)
            np.add(y.transpose(1, 0, 2, 3), self.bias.data[:, None, None], out=out)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        check_cached(self, self._cache)
        cols, x_shape, (oh, ow) = self._cache
        n, g = x_shape[0], self.groups
        check_grad(self, grad_out, (n, self.out_channels, oh, ow))
        # dL/dy with one column per output position, as cols has        (G, O/G, N * OH * OW)
        dy = grad_out.transpose(1, 0, 2, 3).reshape(g, self.out_channels // g, -1)
        # dL/dW[g] = dL/dy[g] cols[g]^T                                 (G, O/G, C/G * kh * kw)
        # (computed as (cols[g] dL/dy[g]^T)^T: the same sums, in the operand order that
        # OpenBLAS runs several times faster when the inner dimension N * OH * OW is long)
        grad_w = (cols @ dy.transpose(0, 2, 1)).transpose(0, 2, 1)
        self.weight.grad += grad_w.reshape(self.weight.shape)
        if self.bias is not None:
            # dL/db = sum over images and positions of dL/dy           (O,)
            self.bias.grad += dy.sum(axis=-1).reshape(-1)
        if not self.input_grad:
            return None
        # dL/dcols[g] = W[g]^T dL/dy[g]                                  (G, C/G * kh * kw, N * OH * OW)
        dcols = self._grouped_weight().transpose(0, 2, 1) @ dy
        # dL/dx: each window entry's gradient goes back where it was read from (col2im).
        # dcols is (C, kh, kw, N, OH, OW) in memory, so col2im runs with the channel and
        # batch axes swapped, (C, N, ...), where its reads are contiguous, and dx is
        # transposed back to (N, C, H, W) once at the end.
        dcols = dcols.reshape(self.in_channels, *self.kernel_size, n, oh, ow).transpose(
            0, 3, 1, 2, 4, 5
        )
        swapped = (x_shape[1], x_shape[0], *x_shape[2:])
        dx = col2im(dcols, swapped, self.stride, self.padding, self.dilation)  # (C, N, H, W)
        return np.ascontiguousarray(dx.transpose(1, 0, 2, 3))

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + f", bias={self.bias is not None}"
