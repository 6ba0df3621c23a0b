"""Pictures of a trained CNN: its first layer's filters, one example's feature maps, and
its channels' health (PNGs in ``run_dir/plots/``, matplotlib Agg, written atomically).

:func:`make_conv_plots` draws them for a run folder whose model has convolutions
(``twinnet train --model cnn``): it rebuilds the model from ``config.toml`` and
``model.safetensors`` and probes it with the first validation (or test) images.

- ``conv_filters.png``: each filter of the first Conv2d as a small image (input channel
  0), one shared symmetric colour scale: red weights add the pixel under them, blue
  subtract it.
- ``conv_feature_maps.png``: one input image and the feature maps (the outputs after the
  activation) of every convolution block for that image.
- ``conv_channels.png``: per channel of every activation layer, the share of positive
  outputs (0: a dead channel) and the gradient norm arriving at the channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twinnet import nn
from twinnet.diagnostics.channels import ChannelStats, channel_stats
from twinnet.diagnostics.plots import Plot, _save
from twinnet.diagnostics.stats import ACTIVATIONS
from twinnet.train.plots import _pyplot


def has_conv(model) -> bool:
    """True when the model contains a Conv2d anywhere."""
    return any(isinstance(m, nn.Conv2d) for _, m in model.named_modules())


def first_conv(model) -> nn.Conv2d:
    for _, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError("the model has no Conv2d layer")


def mosaic(images: np.ndarray, cols: int, normalise: bool = False) -> np.ndarray:
    """Tile K images (K, h, w) into one (rows*(h+1)-1, cols*(w+1)-1) array, row-major,
    with a NaN line between tiles (drawn blank). ``normalise``: scale each tile to [0, 1]
    on its own (feature maps); otherwise the values are kept (filters share one scale)."""
    k, h, w = images.shape
    rows = -(-k // cols)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i, img in enumerate(images.astype(np.float64)):
        if normalise:
            lo, hi = img.min(), img.max()
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        r, c = divmod(i, cols)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img
    return out


def _blank_nan(plt, name: str):
    """The colour map ``name``, drawing NaN (the lines between tiles) white."""
    return plt.get_cmap(name).with_extremes(bad="white")


def plot_filters(model, path: Path) -> Plot:
    """Every filter W[o, 0] of the first Conv2d as a kh x kw tile, on one colour scale
    symmetric around 0 (one image: fast to draw however many filters there are)."""
    plt = _pyplot()
    w = first_conv(model).weight.data[:, 0]  # (O, kh, kw): input channel 0
    bound = float(np.abs(w).max()) or 1.0
    cols = min(len(w), 8)
    fig, ax = plt.subplots(figsize=(0.55 * cols * w.shape[2] / 5 + 1.6, 0.55 * -(-len(w) // cols) * w.shape[1] / 5 + 0.7), layout="constrained")
    image = ax.imshow(mosaic(w, cols), cmap=_blank_nan(plt, "RdBu_r"), vmin=-bound, vmax=bound, interpolation="nearest")
    ax.set_axis_off()
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    ax.set_title(f"first Conv2d: {len(w)} filters {w.shape[1]}x{w.shape[2]} (row-major)", fontsize=9)
    _save(fig, path)
    caption = (
        "Each tile is one filter of the first Conv2d (its weights on input channel 0), in "
        "reading order, on one colour scale symmetric around 0: red weights add the pixel "
        "under them, blue ones subtract it. A filter red on one side and blue on the other "
        "responds to an edge across it."
    )
    return Plot(path, "Learned filters of the first convolution", caption)


def plot_feature_maps(model, image: np.ndarray, path: Path, max_maps: int = 16) -> Plot:
    """One input image (C, H, W) and, for every activation layer with an image output,
    its first ``max_maps`` feature maps for that image (each tile scaled on its own)."""
    plt = _pyplot()
    if image.ndim != 3:
        raise ValueError(f"plot_feature_maps expects one image (C, H, W), got shape {image.shape}")
    was_training = model.training
    model.eval()  # one example: no dropout, BatchNorm with its running statistics
    try:
        maps, h = [], image[None]
        for i, layer in enumerate(model):
            h = layer(h)
            if h.ndim == 4 and type(layer).__name__ in ACTIVATIONS:
                maps.append((f"layer {i} ({type(layer).__name__}), {h.shape[1]} channels", h[0, :max_maps]))
    finally:
        model.train(was_training)
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(2.0 + 3.6 * len(maps), 2.6), squeeze=False, layout="constrained")
    axes[0, 0].imshow(image[0], cmap="gray", interpolation="nearest")
    axes[0, 0].set_title("input", fontsize=9)
    for ax, (title, fm) in zip(axes[0, 1:], maps, strict=True):
        ax.imshow(mosaic(fm, min(len(fm), 4), normalise=True), cmap=_blank_nan(plt, "magma"), interpolation="nearest")
        ax.set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_axis_off()
    _save(fig, path)
    caption = (
        "Left: the input image. Then, for each convolution block, its first feature maps "
        "(outputs after the activation) for this image, each tile scaled on its own (bright: "
        "strong response; black everywhere: the channel did not fire). Later blocks are smaller "
        "(stride or pooling) and each of their pixels sees a larger part of the image."
    )
    return Plot(path, "Feature maps of one example", caption)


def plot_channels(stats: list[ChannelStats], path: Path) -> Plot:
    """Per channel of every activation layer: share of positive outputs and ||dL/dy_c||."""
    plt = _pyplot()
    shown = [s for s in stats if s.dead is not None] or stats
    fig, axes = plt.subplots(2, len(shown), figsize=(3.2 * len(shown) + 0.5, 4.6), squeeze=False, layout="constrained")
    for j, s in enumerate(shown):
        idx = np.arange(s.channels)
        colors = ["#c62828" if s.dead is not None and s.dead[c] else "#2f6db3" for c in idx]
        axes[0, j].bar(idx, s.active, color=colors, width=0.85)
        axes[0, j].set_ylim(0, 1)
        dead = f", {int(s.dead.sum())} dead" if s.dead is not None else ""
        axes[0, j].set_title(f"layer {s.layer} ({s.layer_type}), {s.channels} channels{dead}", fontsize=8)
        axes[1, j].bar(idx, s.grad_norm, color=colors, width=0.85)
        axes[1, j].set_xlabel("channel")
        if s.grad_norm.max() > 0 and s.grad_norm.max() / max(s.grad_norm[s.grad_norm > 0].min(), 1e-300) > 100:
            axes[1, j].set_yscale("log")
    axes[0, 0].set_ylabel("share of outputs > 0")
    axes[1, 0].set_ylabel("||dL/dy_c||")
    _save(fig, path)
    caption = (
        "Top: for each channel, the share of its outputs (all positions of all probe images) "
        "that are positive; a red bar at 0 is a dead channel, whose filter gets no gradient. "
        "Bottom: the gradient norm reaching each channel on the probe batch."
    )
    return Plot(path, "Channels: activity and gradient", caption)


def conv_plots(model, loss_fn, x: np.ndarray, y, out_dir: Path) -> list[Plot]:
    """The three figures for a CNN ``model`` probed with images x (B, C, H, W) and labels y."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_filters(model, out_dir / "conv_filters.png"),
        plot_feature_maps(model, x[0], out_dir / "conv_feature_maps.png"),
        plot_channels(channel_stats(model, loss_fn, x, y), out_dir / "conv_channels.png"),
    ]


def make_conv_plots(run_dir: str | Path, probe_size: int = 256) -> list[Plot]:
    """The CNN figures of a finished run (``[]`` when its model has no convolution)."""
    from twinnet.checkpoint import load_weights
    from twinnet.config import TrainConfig
    from twinnet.train.run import load_splits
    from twinnet.train.setup import make_loss, make_model

    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file() or not (run_dir / "model.safetensors").is_file():
        return []
    try:
        config = TrainConfig.from_toml(run_dir / "config.toml")
    except ValueError:  # a config the report's own section already says is broken
        return []
    if config.model == "mlp":
        return []
    model = make_model(config)
    load_weights(run_dir / "model.safetensors", model)
    if not has_conv(model):
        return []
    splits = load_splits(config)
    probe = splits.val if len(splits.val) else splits.test
    n = min(probe_size, len(probe))
    model.eval()
    return conv_plots(model, make_loss(config, splits.task), probe.x[:n], probe.y[:n], run_dir / "plots")
