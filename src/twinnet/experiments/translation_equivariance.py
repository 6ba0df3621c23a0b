"""Translation equivariance: shift the input of a convolution and its feature maps shift.

A convolution applies the same kernel at every position, so moving the image by
(dy, dx) pixels moves every feature map by (dy, dx): conv(S x) = S conv(x), exactly
(up to rounding), for any weights; ReLU acts pixel by pixel and keeps this. Two
pooling layers change it in opposite directions:

- a stride-2 max pool keeps equivariance only for even shifts (its output grid has
  half the resolution; a 1-pixel shift of the input is no shift of the pooled map);
- global average pooling (``AdaptiveAvgPool2d(1)``) turns equivariance into
  invariance: the pooled features of a shifted image are the same numbers.

We place digits on a larger blank canvas (so that no shift moves ink off the image)
and run a random two-layer CNN (Conv 3x3 - ReLU - Conv 3x3 - ReLU, PyTorch's default
init, float64). For each shift we compare f(S x) with S f(x) away from the borders,
where zero padding and the wrap of the comparison shift do not reach: the error is
max |f(S x) - S f(x)| / max |f(x)|. For odd shifts after the max pool, the error is
the smallest over the two nearest shifts of the pooled grid (floor and ceil of the
half shift), i.e. the best any pooled-map shift can do.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, nn
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results

NAME = "translation-equivariance"
CLAIM = (
    "shifting a convolution's input shifts its feature maps by the same amount (exactly, away "
    "from the borders); a stride-2 max pool keeps this only for even shifts, and global "
    "average pooling makes the features shift-invariant"
)

RADIUS = 2  # two 3x3 convolutions: each output pixel sees 2 pixels to every side
CHANNELS = 8


def build(seed: int = SEED) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, CHANNELS, 3, padding=1, dtype=np.float64, rng=rng),
        nn.ReLU(),
        nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, dtype=np.float64, rng=rng),
        nn.ReLU(),
    )


def shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move every image (..., H, W) by dy rows and dx columns (what leaves one side comes
    back on the other: on a blank canvas with a wide margin, that is only background)."""
    return np.roll(images, (dy, dx), axis=(-2, -1))


def on_canvas(images: np.ndarray, margin: int) -> np.ndarray:
    """(N, h, w) images with zero background, centred on a blank (N, 1, h+2m, w+2m) canvas."""
    n, h, w = images.shape
    canvas = np.zeros((n, 1, h + 2 * margin, w + 2 * margin))
    canvas[:, 0, margin : margin + h, margin : margin + w] = images
    return canvas


def interior_error(a: np.ndarray, b: np.ndarray, crop: int) -> float:
    """max |a - b| / max |b| over the maps with ``crop`` pixels cut from every border."""
    inner = (..., slice(crop, -crop or None), slice(crop, -crop or None))
    return float(np.abs(a[inner] - b[inner]).max() / max(np.abs(b[inner]).max(), 1e-300))


def measure(net: nn.Sequential, x: np.ndarray, shifts) -> list[dict]:
    """The three errors for every shift (dy, dx)."""
    pool, gap = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1)
    fx = net(x)
    pooled, global_avg = pool(fx), gap(fx)
    rows = []
    for dy, dx in shifts:
        fsx = net(shift(x, dy, dx))
        crop = max(abs(dy), abs(dx)) + RADIUS
        conv_error = interior_error(fsx, shift(fx, dy, dx), crop)
        # the pooled grid: a shift by s is a shift by s/2 there, when s is even
        candidates = {
            (int(np.floor(dy / 2)) + a, int(np.floor(dx / 2)) + b)
            for a in (0, dy % 2)
            for b in (0, dx % 2)
        }
        pooled_sx = pool(fsx)
        pool_error = min(
            interior_error(pooled_sx, shift(pooled, py, px), crop // 2 + 1) for py, px in candidates
        )
        gap_error = float(np.abs(gap(fsx) - global_avg).max() / np.abs(global_avg).max())
        rows.append(
            {"shift": (dy, dx), "conv": conv_error, "maxpool": pool_error, "global_avg": gap_error}
        )
    return rows


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if quick:  # scikit-learn's 8x8 digits: loads in milliseconds
        splits, side, n_images, margin = data.load("digits", seed=SEED, scale="minmax"), 8, 32, 8
    else:
        splits = data.load("mnist", seed=SEED, data_dir=data_dir, n_samples=2000, scale="minmax")
        side, n_images, margin = 28, 200, 8
    images = splits.test.x[:n_images].reshape(-1, side, side).astype(np.float64)
    x = on_canvas(images, margin)
    shifts = [(0, 1), (1, 0), (1, 1), (2, 0), (0, 2), (2, 2), (-2, 4), (3, -1), (-4, -4)]
    net = build()
    rows = measure(net, x, shifts)
    print_table(
        ["shift (dy, dx)", "conv maps", "after 2x2 max pool", "after global avg pool"],
        [[str(r["shift"]), r["conv"], r["maxpool"], r["global_avg"]] for r in rows],
        title=f"{len(images)} digits on a {x.shape[-1]}x{x.shape[-1]} canvas, random 2-layer CNN "
        "(float64): relative error of f(shifted x) against the shifted f(x)",
    )
    even = [r for r in rows if r["shift"][0] % 2 == 0 and r["shift"][1] % 2 == 0]
    odd = [r for r in rows if r not in even]
    exact = 1e-12  # float64 rounding, far below any real difference
    holds = (
        max(r["conv"] for r in rows) < exact
        and max(r["maxpool"] for r in even) < exact
        and min(r["maxpool"] for r in odd) > 1e-3
        and max(r["global_avg"] for r in rows) < exact
    )
    plot = _plot(out_dir, net, x, (3, -1) if (3, -1) in shifts else shifts[0])
    return save_results(
        out_dir, NAME, CLAIM, holds, quick, started, [plot], images=len(images),
        canvas=int(x.shape[-1]), channels=CHANNELS, rows=rows,
    )  # fmt: skip


def _plot(out_dir: Path, net: nn.Sequential, x: np.ndarray, move) -> str:
    dy, dx = move
    plt = pyplot()
    image, moved = x[:1], shift(x[:1], dy, dx)
    fx, fsx = net(image)[0, 0], net(moved)[0, 0]
    panels = [
        ("input x", image[0, 0]),
        (f"input shifted by {move}", moved[0, 0]),
        ("feature map f(x), channel 0", fx),
        ("f(shifted x)", fsx),
        (
            "f(shifted x) - shifted f(x): 0 inside\n(the border strips are left out)",
            fsx - shift(fx, dy, dx),
        ),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3))
    for ax, (title, img) in zip(axes, panels, strict=True):
        if title.startswith("f(shifted x) -"):
            limit = np.abs(img).max()
            ax.imshow(img, cmap="RdBu", vmin=-limit, vmax=limit)
        else:
            ax.imshow(img, cmap="gray" if "input" in title else "viridis")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return save_plot(fig, out_dir, "translation_equivariance.png")
