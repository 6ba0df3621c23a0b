"""The row type of the twin's layer table and the dtype maps every row uses.

Shared by :mod:`twinnet.twin.convert` (the table and the conversion) and
:mod:`twinnet.twin.convert_conv` (the rows of the convolutional layers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from twinnet import nn

_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
_NP_DTYPES = {t: n for n, t in _DTYPES.items()}


def torch_dtype(dtype) -> torch.dtype:
    """The torch dtype of a NumPy float dtype (float32 or float64 only)."""
    dtype = np.dtype(dtype)
    if dtype not in _DTYPES:
        raise TypeError(f"the twin supports float32 and float64 tensors, got {dtype}")
    return _DTYPES[dtype]


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype of a torch float dtype (float32 or float64 only)."""
    if dtype not in _NP_DTYPES:
        raise TypeError(f"the twin supports float32 and float64 tensors, got {dtype}")
    return _NP_DTYPES[dtype]


def _params_dtype(module, names: tuple[str, ...], default=torch.float32):
    """dtype of the first of ``names`` that ``module`` has (torch or twinnet)."""
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, torch.Tensor):
            return value.dtype
        if isinstance(value, nn.Parameter):
            return torch_dtype(value.dtype)
        if isinstance(value, np.ndarray):
            return torch_dtype(value.dtype)
    return default


def _np_dtype_of(t: torch.nn.Module, names: tuple[str, ...]) -> np.dtype:
    return numpy_dtype(_params_dtype(t, names))


@dataclass(frozen=True)
class LayerRule:
    """One row of the conversion table.

    ``make_torch(layer, torch_children)`` and ``make_ours(module, our_children)`` build
    the counterpart (children already converted, keyed by name); ``tensors`` are the
    layer's own parameters and buffers, copied after building (optional ones, such as
    a missing bias, must be missing on both sides). ``renames`` maps our tensor name to
    torch's where they differ (none do today).
    """

    ours: type
    theirs: type
    make_torch: Callable[[Any, dict], torch.nn.Module]
    make_ours: Callable[[Any, dict], nn.Module]
    tensors: tuple[str, ...] = ()
    renames: dict[str, str] = field(default_factory=dict)


def _plain(ours: type, theirs: type, *attrs: str) -> tuple[Callable, Callable]:
    """Builders for a layer whose only state is constructor attributes named alike."""

    def make_torch(m, _children):
        return theirs(**{a: getattr(m, a) for a in attrs})

    def make_ours(t, _children):
        return ours(**{a: getattr(t, a) for a in attrs})

    return make_torch, make_ours


BN_TENSORS = ("weight", "bias", "running_mean", "running_var")  # plus num_batches_tracked


def _batchnorm(ours: type, theirs: type) -> tuple[Callable, Callable]:
    """Builders for a BatchNorm pair (1d or 2d): the same constructor settings on both sides."""

    def make_torch(m, _children):
        return theirs(
            m.num_features,
            eps=m.eps,
            momentum=m.momentum,
            affine=m.affine,
            track_running_stats=m.track_running_stats,
            dtype=_params_dtype(m, BN_TENSORS),
        )

    def make_ours(t, _children):
        if t.momentum is None:
            raise ValueError(
                f"torch {theirs.__name__} with momentum=None (a cumulative moving average) "
                "has no twinnet counterpart; use a float momentum"
            )
        return ours(
            t.num_features,
            eps=t.eps,
            momentum=t.momentum,
            affine=t.affine,
            track_running_stats=t.track_running_stats,
            dtype=_np_dtype_of(t, BN_TENSORS),
        )

    return make_torch, make_ours
