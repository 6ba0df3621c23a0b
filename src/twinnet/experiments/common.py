"""What every experiment shares: results.json, terminal tables, plots, small training loops.

An experiment is a function ``run(out_dir, quick, data_dir=None) -> dict`` that

1. computes its numbers with twinnet's own engine (seeded: the same run gives the
   same numbers),
2. prints a table to the terminal,
3. saves one or more PNG plots in ``out_dir``,
4. writes ``out_dir/results.json`` (atomically) holding the claim, the numbers and
   ``"claim_holds"``, and returns the same dict.

matplotlib is imported only when a plot is drawn (``pyplot()``), never at import time.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from twinnet.train.callbacks import Callback
from twinnet.train.plots import save_figure
from twinnet.utils import atomic_write

SEED = 0
PLOT_DPI = 110

__all__ = [
    "SEED",
    "StepLosses",
    "fit_full_batch",
    "fmt",
    "load_image_data",
    "moving_average",
    "print_table",
    "pyplot",
    "save_plot",
    "save_results",
]


# -- output ----------------------------------------------------------------------------


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_plot(fig, out_dir: Path, filename: str) -> str:
    """Save ``fig`` atomically as ``out_dir/filename`` and return the file name."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_figure(fig, Path(out_dir) / filename, dpi=PLOT_DPI)
    return filename


def _jsonable(value):
    """numpy scalars and arrays -> Python numbers and lists; NaN and inf -> None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def save_results(
    out_dir: Path,
    name: str,
    claim: str,
    claim_holds: bool,
    quick: bool,
    started: float,
    plots: Sequence[str],
    **numbers,
) -> dict:
    """Write ``out_dir/results.json`` atomically and return its content as a dict.

    ``started`` is the ``time.perf_counter()`` reading taken when the run began;
    ``numbers`` are the experiment's measurements (numpy values are converted, NaN and
    inf become null).
    """
    results = {
        "name": name,
        "claim": claim,
        "claim_holds": bool(claim_holds),
        "quick": bool(quick),
        "seconds": round(time.perf_counter() - started, 3),
        "plots": list(plots),
        **numbers,
    }
    results = _jsonable(results)
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write(Path(out_dir) / "results.json", text.encode())
    return results


def fmt(value, digits: int = 4) -> str:
    """A number for a table: ``digits`` significant digits, ints as ints, NaN as 'nan'."""
    if value is None:
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return str(float(value))
        return f"{float(value):.{digits}g}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence], title: str | None = None) -> str:
    """Print (and return) a plain-text table; numbers are formatted with :func:`fmt`."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(f"{h:>{w}}" for h, w in zip(headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(f"{c:>{w}}" for c, w in zip(r, widths, strict=True)))
    text = "\n".join(lines)
    print(text)
    return text


# -- training helpers ------------------------------------------------------------------


class StepLosses(Callback):
    """Records the training loss of every optimiser step (``self.losses``)."""

    def __init__(self):
        self.losses: list[float] = []

    def on_batch_end(self, trainer, logs):
        self.losses.append(float(logs["loss"]))


def fit_full_batch(
    model, loss_fn, optimizer, x: np.ndarray, y: np.ndarray, steps: int
) -> np.ndarray:
    """Full-batch gradient steps; returns the loss before each step, shape (steps,).

    Stops early (the rest stays NaN) if the loss becomes non-finite.
    """
    losses = np.full(steps, np.nan)
    for t in range(steps):
        loss = loss_fn(model(x), y)
        losses[t] = loss
        if not math.isfinite(loss):
            break
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
        optimizer.step()
    return losses


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (shorter at the start); NaN stays NaN."""
    v = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(v) == 0:
        return v.copy()
    c = np.cumsum(np.insert(v, 0, 0.0))  # c[i] = sum of the first i values
    end = np.arange(1, len(v) + 1)
    start = np.maximum(0, end - window)
    return (c[end] - c[start]) / (end - start)


def load_image_data(quick: bool, data_dir=None, n_train: int | None = None, seed: int = SEED):
    """MNIST for a full run (``n_train`` training images if given), scikit-learn's 8x8
    digits for a quick one (always available, loads in milliseconds)."""
    from twinnet import data

    if quick:
        return data.load("digits", seed=seed)
    return data.load("mnist", seed=seed, data_dir=data_dir, n_samples=n_train)
