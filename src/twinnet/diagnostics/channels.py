"""Per-channel statistics of a convolutional network on one probe batch.

A convolution's output has C channels, each one feature map (N, H, W) computed by one
filter. A channel is the CNN's unit: where an MLP has dead *units*, a CNN has dead
*channels*. One probe forward and backward pass, layer by layer through a
``Sequential``, records for every layer whose output is an image batch (N, C, H, W):

=====================  ==============================================================
per channel c          meaning (on the probe batch)
=====================  ==============================================================
``mean``, ``std``      mean and population std of y[:, c] over examples and positions
``active``             share of the N*H*W outputs that are > 0
``dead``               ReLU family: y[:, c] <= 0 at every position of every example, so
                       no gradient reaches the filter that makes it (its ``active`` is 0)
``grad_norm``          ||dL/dy[:, c]||, the gradient arriving at the channel, L the mean
                       probe loss
``weight_norm``        Conv2d only: ||W[c]|| of the filter making channel c
``weight_grad_norm``   Conv2d only: ||dL/dW[c]||
=====================  ==============================================================

``channel_stats`` returns one :class:`ChannelStats` per such layer; ``summary_rows``
reduces them to per-layer rows (``dead_channels``, ``dead_channel_fraction``, the
smallest and largest channel gradient norm). The model's layers, caches, gradients,
buffers and random streams are exactly as before afterwards (``stats.preserved``),
as for :func:`twinnet.diagnostics.collect_stats`.

Shapes: x (B, C, H, W) images; y as ``loss_fn`` expects it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twinnet import nn
from twinnet.diagnostics.stats import RELU_FAMILY, preserved


@dataclass
class ChannelStats:
    """Per-channel numbers of one layer with an (N, C, H, W) output; arrays of shape (C,)."""

    layer: str  # the name in the model (``"1"`` for model[1])
    layer_type: str
    shape: tuple[int, ...]  # the output's shape (N, C, H, W)
    mean: np.ndarray
    std: np.ndarray
    active: np.ndarray
    grad_norm: np.ndarray
    dead: np.ndarray | None = None  # bool, ReLU family only
    weight_norm: np.ndarray | None = None  # Conv2d only
    weight_grad_norm: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.shape[1]


def _norms_along(a: np.ndarray, axis: int) -> np.ndarray:
    """||a_c|| for each index c of ``axis`` (the norm over all other axes), in float64."""
    a = np.asarray(a, dtype=np.float64)
    # ||a_c|| = sqrt(sum over every other axis of a^2)
    return np.sqrt(np.square(a).sum(axis=tuple(k for k in range(a.ndim) if k != axis)))


def channel_stats(model: nn.Sequential, loss_fn, x: np.ndarray, y) -> list[ChannelStats]:
    """One probe pass of ``model`` (a ``Sequential``) on (x, y); per-channel statistics of
    every layer whose output is 4-D (N, C, H, W). The model runs in its current mode and
    is left exactly as it was."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"channel_stats expects an nn.Sequential, got {type(model).__name__}")
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"channel_stats expects a batch of images (B, C, H, W), got shape {x.shape}")
    with preserved(model, loss_fn), np.errstate(all="ignore"):
        outputs = []
        h = x
        for layer in model:  # forward, layer by layer, keeping each output
            h = layer(h)
            outputs.append(h)
        loss_fn(h, y)
        grads = [None] * len(model)
        g = loss_fn.backward()
        for i in range(len(model) - 1, -1, -1):  # backward: grads[i] = dL/d(output of layer i)
            grads[i] = g
            g = model[i].backward(g)
            if g is None:  # the first layer skips dL/d(data)
                break
        result = []
        for i, (layer, out) in enumerate(zip(model, outputs, strict=True)):
            if out.ndim != 4:
                continue
            kind = type(layer).__name__
            stats = ChannelStats(
                layer=str(i),
                layer_type=kind,
                shape=out.shape,
                mean=out.mean(axis=(0, 2, 3), dtype=np.float64),
                std=out.astype(np.float64).std(axis=(0, 2, 3)),
                active=(out > 0).mean(axis=(0, 2, 3)),
                grad_norm=_norms_along(grads[i], axis=1),  # (N, C, H, W)
            )
            if kind in RELU_FAMILY:
                # dead: no position of any example is > 0, so nothing flows back to the filter
                stats.dead = ~np.any(out > 0, axis=(0, 2, 3))
            if isinstance(layer, nn.Conv2d):
                w, dw = layer.weight.data, layer.weight.grad
                stats.weight_norm = _norms_along(w, axis=0)  # ||W[c]||, W (O, C/g, kh, kw)
                stats.weight_grad_norm = _norms_along(dw, axis=0)
            result.append(stats)
    return result


def summary_rows(stats: list[ChannelStats]) -> list[dict]:
    """Per-layer rows ``{layer, layer_type, statistic, value}`` from :func:`channel_stats`:
    ``channels``, ``dead_channels`` and ``dead_channel_fraction`` (ReLU family), the mean
    ``active`` share, and ``min_/max_channel_grad_norm``."""
    rows = []
    for s in stats:
        values = [("channels", float(s.channels)), ("active_mean", float(s.active.mean()))]
        if s.dead is not None:
            values += [("dead_channels", float(s.dead.sum())), ("dead_channel_fraction", float(s.dead.mean()))]
        values += [
            ("min_channel_grad_norm", float(s.grad_norm.min())),
            ("max_channel_grad_norm", float(s.grad_norm.max())),
        ]
        rows += [{"layer": s.layer, "layer_type": s.layer_type, "statistic": k, "value": v} for k, v in values]
    return rows


def format_table(stats: list[ChannelStats]) -> str:
    """A plain-text table, one line per layer: channels, dead channels, active share and
    the range of the channels' gradient norms."""
    lines = [f"{'layer':<6}{'type':<12}{'output':<18}{'dead':>10}{'active':>9}{'||dL/dy_c|| min..max':>26}"]
    for s in stats:
        dead = f"{int(s.dead.sum())}/{s.channels}" if s.dead is not None else "-"
        shape = "x".join(str(n) for n in s.shape[1:])
        grads = f"{s.grad_norm.min():.3g}..{s.grad_norm.max():.3g}"
        lines.append(f"{s.layer:<6}{s.layer_type:<12}{shape:<18}{dead:>10}{s.active.mean():>9.1%}{grads:>26}")
    return "\n".join(lines)
