"""The twin's table rows for the convolutional layers (registered in ``convert.LAYER_TABLE``).

Every layer keeps torch's names and layouts (``Conv2d.weight`` is (out, in/groups, kh,
kw) on both sides), so no row needs a rename or a transpose: the rows only say which
constructor arguments carry over and which tensors are copied (shapes and dtypes are
asserted before every copy, in ``convert``). Options of torch's layers that twinnet
does not have (``ceil_mode``, ``padding_mode``, uneven ``padding="same"``) are refused
with a clear error instead of being converted into something else.
"""

from __future__ import annotations

import torch

from twinnet import nn
from twinnet.twin.rules import (
    BN_TENSORS,
    LayerRule,
    _batchnorm,
    _plain,
    numpy_dtype,
    torch_dtype,
)


class TorchResidual(torch.nn.Module):
    """torch twin of :class:`twinnet.nn.Residual`: ``y = x + block(x)``, child named ``block``."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _refuse(t: torch.nn.Module, option: str, value) -> None:
    raise ValueError(f"torch {type(t).__name__} with {option}={value!r} has no twinnet counterpart")


def _torch_conv(m: nn.Conv2d, _children) -> torch.nn.Conv2d:
    return torch.nn.Conv2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        stride=m.stride,
        padding=m.padding,
        dilation=m.dilation,
        groups=m.groups,
        bias=m.bias is not None,
        dtype=torch_dtype(m.weight.dtype),
    )


def _conv_padding(t: torch.nn.Conv2d):
    """torch's padding as numbers: "valid" is 0; "same" is d(k-1)/2 when that is whole."""
    if t.padding == "valid":
        return 0
    if t.padding == "same":
        total = [d * (k - 1) for k, d in zip(t.kernel_size, t.dilation, strict=True)]
        if any(p % 2 for p in total):
            _refuse(t, "padding", "same (uneven for an even effective kernel)")
        return tuple(p // 2 for p in total)
    return t.padding


def _our_conv(t: torch.nn.Conv2d, _children) -> nn.Conv2d:
    if t.padding_mode != "zeros":
        _refuse(t, "padding_mode", t.padding_mode)
    return nn.Conv2d(
        t.in_channels,
        t.out_channels,
        t.kernel_size,
        stride=t.stride,
        padding=_conv_padding(t),
        dilation=t.dilation,
        groups=t.groups,
        bias=t.bias is not None,
        init="zeros",  # overwritten by the copy; draws no random numbers
        dtype=numpy_dtype(t.weight.dtype),
    )


def _our_maxpool(t: torch.nn.MaxPool2d, _children) -> nn.MaxPool2d:
    if t.ceil_mode:
        _refuse(t, "ceil_mode", True)
    if t.return_indices:
        _refuse(t, "return_indices", True)
    return nn.MaxPool2d(t.kernel_size, t.stride, t.padding, t.dilation)


def _torch_avgpool(m: nn.AvgPool2d, _children) -> torch.nn.AvgPool2d:
    return torch.nn.AvgPool2d(
        m.kernel_size,
        m.stride,
        m.padding,
        count_include_pad=m.count_include_pad,
        divisor_override=m.divisor_override,
    )


def _our_avgpool(t: torch.nn.AvgPool2d, _children) -> nn.AvgPool2d:
    if t.ceil_mode:
        _refuse(t, "ceil_mode", True)
    return nn.AvgPool2d(
        t.kernel_size,
        t.stride,
        t.padding,
        count_include_pad=t.count_include_pad,
        divisor_override=t.divisor_override,
    )


CONV_RULES: tuple[LayerRule, ...] = (
    LayerRule(nn.Conv2d, torch.nn.Conv2d, _torch_conv, _our_conv, ("weight", "bias")),
    LayerRule(
        nn.MaxPool2d,
        torch.nn.MaxPool2d,
        _plain(nn.MaxPool2d, torch.nn.MaxPool2d, "kernel_size", "stride", "padding", "dilation")[0],
        _our_maxpool,
    ),
    LayerRule(nn.AvgPool2d, torch.nn.AvgPool2d, _torch_avgpool, _our_avgpool),
    LayerRule(
        nn.AdaptiveAvgPool2d,
        torch.nn.AdaptiveAvgPool2d,
        *_plain(nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, "output_size"),
    ),
    LayerRule(
        nn.Flatten, torch.nn.Flatten, *_plain(nn.Flatten, torch.nn.Flatten, "start_dim", "end_dim")
    ),
    LayerRule(
        nn.BatchNorm2d,
        torch.nn.BatchNorm2d,
        *_batchnorm(nn.BatchNorm2d, torch.nn.BatchNorm2d),
        (*BN_TENSORS, "num_batches_tracked"),
    ),
    LayerRule(
        nn.Residual,
        TorchResidual,
        lambda m, ch: TorchResidual(ch["block"]),
        lambda t, ch: nn.Residual(ch["block"]),
    ),
)
