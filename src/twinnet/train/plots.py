"""Training curves as a PNG (matplotlib with the Agg backend, imported only when plotting)."""

from __future__ import annotations

import io
from pathlib import Path

from twinnet.utils import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Save a matplotlib figure atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write(path, buf.getvalue())


def plot_curves(history, path: str | Path, title: str = "") -> None:
    """Loss (and accuracy, when present) per epoch, train vs validation."""
    plt = _pyplot()
    cols = history.columns
    has_acc = "train_accuracy" in cols or "val_accuracy" in cols
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 4), squeeze=False)
    epochs = history["epoch"]
    panels = [("loss", axes[0][0])] + ([("accuracy", axes[0][1])] if has_acc else [])
    for metric, ax in panels:
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{metric}"
            if key in cols:
                ax.plot(epochs, history[key], style, ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
        if metric == "loss":
            ax.set_yscale("log")
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
