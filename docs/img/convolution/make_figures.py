"""Draw the figure of docs/guide/convolution.md: im2col forward and col2im backward.

    python docs/img/convolution/make_figures.py      # writes docs/img/convolution/im2col.png

Every number in the figure comes from twinnet itself (``nn.im2col``, ``nn.Conv2d``), so
the picture cannot drift from the code: a 4x4 image, one 3x3 filter, stride 1, no
padding, hence 2x2 outputs.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from twinnet import nn  # noqa: E402
from twinnet.nn.im2col import col2im, im2col  # noqa: E402
from twinnet.utils import atomic_write  # noqa: E402

OUT = Path(__file__).resolve().parent / "im2col.png"
GEOMETRY = ((3, 3), (1, 1), (0, 0), (1, 1))  # kernel, stride, padding, dilation
WINDOW_COLORS = ["#e4572e", "#2e86ab", "#76b041", "#f3a712"]  # one per output position


def _grid(ax, values, title, fmt="{:g}", highlight=None, cmap=None):
    """A matrix drawn as labelled cells; ``highlight``: {(r, c): color} cell outlines."""
    values = np.asarray(values, dtype=float)
    rows, cols = values.shape
    if cmap:  # light colours, so the numbers stay readable
        ax.imshow(values, cmap=cmap, vmin=0, vmax=2 * values.max(), aspect="equal")
    else:
        ax.imshow(np.zeros_like(values), cmap="Greys", vmin=0, vmax=1, aspect="equal")
    for r in range(rows):
        for c in range(cols):
            ax.text(c, r, fmt.format(values[r, c]), ha="center", va="center", fontsize=8)
    for (r, c), color in (highlight or {}).items():
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec=color, lw=2.2))
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="#9aa5b1", lw=0.6)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=9)


def main() -> Path:
    x = np.arange(1, 17, dtype=np.float64).reshape(1, 1, 4, 4)  # pixel values 1..16
    conv = nn.Conv2d(1, 1, 3, bias=False, dtype=np.float64, rng=np.random.default_rng(0))
    conv.weight.data[...] = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)  # a Sobel edge filter
    cols = im2col(x, *GEOMETRY).reshape(9, 4)  # one column per output position
    y = conv(x)  # (1, 1, 2, 2)
    dy = np.ones((1, 1, 2, 2))  # dL/dy = 1 at every output: what reaches each input?
    dx = conv.backward(dy)  # (1, 1, 4, 4)
    dcols = conv.weight.data.reshape(1, 9).T @ dy.reshape(1, 4)  # W^T dY, (9, 4)
    counts = col2im(np.ones((1, 1, 3, 3, 2, 2)), x.shape, *GEOMETRY[1:])[0, 0]  # windows per pixel

    fig, axes = plt.subplots(2, 4, figsize=(13, 6.6), layout="constrained",
                             gridspec_kw={"width_ratios": [4, 4, 3, 4]})  # fmt: skip
    # forward: the windows of x become the columns of one matrix, one product gives y
    for k, color in enumerate(WINDOW_COLORS):
        oh, ow = divmod(k, 2)
        box = {(oh + i, ow + j): color for i in range(3) for j in range(3)}
        if k == 0:
            _grid(axes[0, 0], x[0, 0], "input x (4x4); window of output (0,0)", highlight=box)
    windows = {}
    for k, color in enumerate(WINDOW_COLORS):
        for r in range(9):
            windows[(r, k)] = color
    _grid(axes[0, 1], cols, "im2col(x): 9 rows (i, j) x 4 columns (oh, ow)", highlight=windows)
    _grid(axes[0, 2], conv.weight.data[0, 0], "filter W (3x3) = one row of 9")
    _grid(axes[0, 3], y[0, 0], "y = W_row @ cols (2x2)",
          highlight={(r, c): WINDOW_COLORS[2 * r + c] for r in range(2) for c in range(2)})  # fmt: skip
    # backward: dL/dW from the same columns, dL/dx by adding each column back (col2im)
    _grid(axes[1, 0], counts, "windows covering each pixel (col2im of ones)", cmap="Blues")
    _grid(axes[1, 1], dcols, "dcols = W^T dY (dY = 1 everywhere)")
    _grid(axes[1, 2], conv.weight.grad[0, 0], "dL/dW = dY @ cols^T: sum of the 4 windows")
    _grid(axes[1, 3], dx[0, 0], "dL/dx = col2im(dcols): columns added back")
    fig.suptitle("Convolution as one matrix product: im2col forward (top), col2im backward (bottom)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(OUT, buf.getvalue())
    return OUT


if __name__ == "__main__":
    print(main())
