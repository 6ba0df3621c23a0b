"""How the twin measures a difference, and the report it gives (``twin.compare``'s result).

One number pair per tensor, ``a`` ours, ``b`` torch's::

    max_abs = max |a - b|
    max_rel = max |a - b| / max(max |b|, floor)
    floor   = FLOOR_FRACTION[dtype] * (largest max|b| among the tensors of the same kind)

The denominator is the tensor's own scale (its largest |entry|, not entry by entry:
per-element ratios explode on entries that are rounding noise), but never less than
the floor. The floor is there for tensors that are zero in exact arithmetic, such as
the gradient of a bias followed by BatchNorm: both sides hold rounding noise there,
and that noise is measured against a fraction of the scale of its kind (all
gradients; all parameters after step k; ...) instead of against itself.

- float64 (the default of ``compare``: float64 copies of the model and data): the
  fraction is 1e-2; tolerance 1e-10. This proves the formulas: rounding is 1e-16.
- float32 (``compare(..., precision="model")`` on a float32 model): the fraction is 1
  (every tensor measured against the largest of its kind) and a row passes when
  ``max_rel <= 1e-5`` **or** when ours is at most ``REF_FACTOR`` (4) times as far
  from torch as torch's own float32 result is from the float64 answer
  (``ref_abs = max |b32 - b64|``, recorded for every row). The second clause is what
  makes optimiser trajectories comparable in float32: Adam divides each gradient by
  ``sqrt(v) + eps``, so for a gradient entry near ``eps`` (1e-8) its rounding error
  is multiplied by ``lr / eps`` (1e5 at lr 1e-3): one step already moves the two sides
  apart by ~1e-4 of the weights' scale, and 100 steps by ~1e-3, in correct code. Two
  independent float32 implementations, each as close to the exact answer as the
  other, differ by at most about twice that distance; 4 leaves room for the max over
  a tensor.

Entries that are NaN (or the same infinity) on both sides count as equal; NaN on one
side only makes the row infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

TOLERANCES = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
FLOOR_FRACTION = {np.dtype(np.float64): 1e-2, np.dtype(np.float32): 1.0}
REF_FACTOR = 4.0  # float32: ours may be this many times torch's own distance from float64
_TINY = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class Row:
    """One compared quantity: the largest absolute and relative difference.

    ``kind`` groups rows measured on a common scale ("output", "loss", "grad",
    "buffer", "param", "lr"); ``step`` is the optimiser step after which the
    tensor was taken (0: the first forward/backward); ``name`` the tensor's name.
    ``ref_abs`` (float32 comparisons only) is torch's own rounding error: the largest
    difference between torch's float32 result and its float64 result.
    """

    quantity: str
    max_abs: float
    max_rel: float
    kind: str = ""
    step: int = 0
    name: str = ""
    ref_abs: float | None = None
    own_abs: float | None = None

    def within(self, rtol: float) -> bool:
        """``max_rel <= rtol``, or (float32) ours at most REF_FACTOR x as far from float64 as torch."""
        if self.max_rel <= rtol:
            return True
        if self.ref_abs is None or self.own_abs is None:
            return False
        return self.own_abs <= REF_FACTOR * self.ref_abs


def as_f64(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor (this module does not import torch)
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float64, copy=True)  # a snapshot: training goes on


def abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        diff = np.atleast_1d(np.abs(a - b))
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities, NaN on both sides
    diff[np.atleast_1d(same)] = 0.0
    return float(np.max(np.where(np.isnan(diff), np.inf, diff)))


def _scale(b: np.ndarray) -> float:
    finite = np.abs(b[np.isfinite(b)])
    return float(finite.max()) if finite.size else 0.0


class Recorder:
    """Collects (quantity, ours, theirs[, reference]) per kind, then turns them into rows."""

    def __init__(self, dtype) -> None:
        self.fraction = FLOOR_FRACTION.get(np.dtype(dtype), 1.0)
        self.pending: list[tuple] = []

    def add(self, quantity: str, kind: str, ours, theirs, step: int = 0, name: str = "", ref=None) -> None:
        ours, theirs = as_f64(ours), as_f64(theirs)
        errors = (None, None)
        if ref is not None:
            ref = as_f64(ref)
            errors = (abs_diff(theirs, ref), abs_diff(ours, ref))
        self.pending.append((quantity, kind, step, name, ours, theirs, errors))

    def rows(self) -> list[Row]:
        scales: dict[tuple[str, int], float] = {}
        for _, kind, step, _, _, b, _ in self.pending:
            key = (kind, step)
            scales[key] = max(scales.get(key, 0.0), _scale(b))
        rows = []
        for quantity, kind, step, name, a, b, (ref_abs, own_abs) in self.pending:
            max_abs = abs_diff(a, b)
            floor = max(self.fraction * scales[(kind, step)], _TINY)
            max_rel = max_abs / max(_scale(b), floor) if max_abs > 0 else 0.0
            rows.append(Row(quantity, max_abs, max_rel, kind, step, name, ref_abs, own_abs))
        return rows


@dataclass
class CompareReport:
    """The differences between a twinnet model and its torch twin, one row per tensor.

    ``rows`` holds every comparison (quantity, max_abs, max_rel); ``max_abs`` and
    ``max_rel`` are the largest over all rows; ``passed(rtol)`` checks every row (default
    ``rtol``: 1e-10 for float64, 1e-5 for float32, where a row also passes within
    REF_FACTOR x torch's own float32 error, see the module docstring). ``dtype`` is the
    dtype compared in, ``model_dtype`` the model's own. ``str(report)`` is an aligned
    table with a verdict line; optimiser steps are folded to the worst step of each
    tensor there (``format(full=True)`` lists them all). ``series`` keeps whole
    trajectories where there are some (learning rates: ours, torch's).
    """

    rows: list[Row]
    dtype: np.dtype
    steps: int = 0
    title: str = "twin comparison"
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    model_dtype: np.dtype | None = None

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.rows), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((r.max_rel for r in self.rows), default=0.0)

    def tolerance(self) -> float:
        """The default ``rtol`` for this report's dtype."""
        return TOLERANCES.get(np.dtype(self.dtype), 1e-5)

    def failures(self, rtol: float | None = None) -> list[Row]:
        """Rows outside the tolerance (or NaN)."""
        rtol = self.tolerance() if rtol is None else rtol
        return [r for r in self.rows if not r.within(rtol)]

    def passed(self, rtol: float | None = None) -> bool:
        """True when every row is within ``rtol`` (default by dtype)."""
        return not self.failures(rtol)

    def worst(self) -> Row | None:
        """The row with the largest ``max_rel`` (None for an empty report)."""
        return max(self.rows, key=lambda r: (not r.max_rel <= math.inf, r.max_rel), default=None)

    def _display_rows(self, full: bool) -> list[Row]:
        if full:
            return list(self.rows)
        shown: list[Row] = []
        worst_step: dict[tuple[str, str], Row] = {}
        order = []
        for r in self.rows:
            if r.step == 0:
                shown.append(r)
                continue
            key = (r.kind, r.name)
            if key not in worst_step:
                order.append(key)
            if key not in worst_step or not r.max_rel <= worst_step[key].max_rel:
                worst_step[key] = r
        for key in order:
            r = worst_step[key]
            label = f"{r.name} after step {r.step}"
            if self.steps > 1:
                label += f" (worst of {self.steps})"
            shown.append(Row(label, r.max_abs, r.max_rel, r.kind, r.step, r.name, r.ref_abs, r.own_abs))
        return shown

    def _header(self, rtol: float) -> str:
        dtype = np.dtype(self.dtype)
        steps = f", {self.steps} optimiser step(s)" if self.steps else ""
        copies = ""
        if self.model_dtype is not None and np.dtype(self.model_dtype) != dtype:
            copies = f" copies of a {np.dtype(self.model_dtype)} model"
        rule = f"max_rel <= {rtol:.0e}"
        if any(r.ref_abs is not None for r in self.rows):
            rule += f" or max_abs <= {REF_FACTOR:g} x torch's own float32 error"
        return f"{self.title} ({dtype}{copies}{steps}, tolerance {rule})"

    def format(self, rtol: float | None = None, full: bool = False) -> str:
        """The table as text: one line per quantity, then the verdict."""
        rtol = self.tolerance() if rtol is None else rtol
        rows = self._display_rows(full)
        with_ref = any(r.ref_abs is not None for r in rows)
        width = max([len("quantity")] + [len(r.quantity) for r in rows])
        head = f"{'quantity':<{width}}  {'max_abs':>9}  {'max_rel':>9}"
        lines = [self._header(rtol), head + (f"  {'torch32-64':>10}" if with_ref else "")]
        for r in rows:
            ref = ""
            if with_ref:
                ref = f"  {r.ref_abs:>10.2e}" if r.ref_abs is not None else f"  {'':>10}"
            flag = "" if r.within(rtol) else "  <-- FAIL"
            lines.append(f"{r.quantity:<{width}}  {r.max_abs:>9.2e}  {r.max_rel:>9.2e}{ref}{flag}")
        bad = self.failures(rtol)
        worst = self.worst()
        if not self.rows:
            lines.append("PASSED: nothing to compare")
        elif bad:
            lines.append(
                f"FAILED: {len(bad)} of {len(self.rows)} quantities outside the tolerance "
                f"(worst: {worst.quantity}, max_rel {worst.max_rel:.2e})"
            )
        else:
            lines.append(
                f"PASSED: all {len(self.rows)} quantities within the tolerance "
                f"(worst: {worst.quantity}, max_rel {worst.max_rel:.2e})"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()
