"""The numbers of the per-layer statistics, from captured arrays.

Shared by the NumPy path (:mod:`twinnet.diagnostics.stats`, through ``nn.Module``
hooks) and the torch path (:mod:`twinnet.diagnostics.torch_hooks`, through torch's
hooks): both hand the same arrays to the same functions, so a model and its PyTorch
twin report the same numbers. What each statistic means is listed in
:mod:`twinnet.diagnostics.stats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MODEL = "(model)"  # layer name of the whole-model rows

RELU_FAMILY = frozenset({"ReLU", "LeakyReLU", "ReLU6", "RReLU"})
SATURATING = frozenset({"Sigmoid", "Tanh"})
ACTIVATIONS = (
    RELU_FAMILY
    | SATURATING
    | frozenset({"GELU", "SiLU", "ELU", "SELU", "CELU", "Softplus", "Mish", "Hardtanh", "Softmax"})
)
SATURATION_DERIVATIVE = 0.01  # an example is saturated where dy/dx < this
SATURATED_SHARE = 0.99  # a unit is saturated when saturated on >= this share of examples


@dataclass
class LayerCapture:
    """What one probe pass measured at one leaf module.

    The forward hook calls :meth:`see_forward` with the module's input and output, the
    backward hook :meth:`see_backward` with dL/dinput; both reduce the arrays to numbers
    at once and keep no reference to them (holding a few (B, D) arrays alive across the
    pass costs fresh memory pages, a noticeable share of a probe's time). ``params``
    maps a local parameter name (``weight``) to (value, gradient) arrays.
    """

    name: str
    type: str
    histogram_bins: int = 30
    forward: list[tuple[str, float]] = field(default_factory=list)
    histogram: dict | None = None
    grad_input_norm: float | None = None
    params: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)

    def see_forward(self, x: np.ndarray | None, y: np.ndarray | None) -> None:
        self.forward, self.histogram = output_statistics(self.type, x, y, self.histogram_bins)

    def see_backward(self, grad_x: np.ndarray | None) -> None:
        if grad_x is not None:
            with np.errstate(all="ignore"):
                self.grad_input_norm = _norm(grad_x)


@dataclass
class ProbeStats:
    """The statistics of one probe pass.

    ``rows``: dicts with ``layer``, ``layer_type``, ``statistic``, ``value`` (float), in
    module order. ``histograms``: dicts with ``layer``, ``layer_type``, ``counts`` (list
    of int), ``edges`` (list of float, one longer) and ``nonfinite`` (values left out).
    """

    loss: float
    rows: list[dict] = field(default_factory=list)
    histograms: list[dict] = field(default_factory=list)

    def value(self, layer: str, statistic: str) -> float:
        """The value of one statistic of one layer (KeyError when it was not recorded)."""
        for r in self.rows:
            if r["layer"] == layer and r["statistic"] == statistic:
                return r["value"]
        raise KeyError(f"no statistic {statistic!r} for layer {layer!r}")

    def table(self) -> dict[tuple[str, str], float]:
        """{(layer, statistic): value}."""
        return {(r["layer"], r["statistic"]): r["value"] for r in self.rows}


# -- the numbers, from captured arrays (shared by the NumPy and the torch paths) --------
def _norm(a: np.ndarray) -> float:
    """||a|| (Frobenius) in the array's own dtype (a float32 BLAS dot: no float64 copy of
    a large weight on the hot path); redone in float64 only if float32 overflowed."""
    flat = np.ravel(a)
    # ||a|| = sqrt(sum a^2)
    value = math.sqrt(float(np.dot(flat, flat)))
    if not math.isfinite(value) and flat.dtype != np.float64 and np.isfinite(flat).all():
        flat = flat.astype(np.float64)
        value = math.sqrt(float(np.dot(flat, flat)))
    return value


def _std(y: np.ndarray) -> float:
    """Population std in the array's dtype (pairwise sums), float64 only on overflow."""
    value = float(y.std())
    if not math.isfinite(value) and y.dtype != np.float64 and np.isfinite(y).all():
        value = float(y.astype(np.float64).std())
    return value


def _units(a: np.ndarray) -> np.ndarray:
    """View as (examples, units): the last axis holds the units; in images (N, C, H, W)
    the channels are the units (a dead channel is <= 0 at every position of every image)."""
    if a.ndim == 4:
        return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])  # (N*H*W, C)
    return a.reshape(-1, a.shape[-1]) if a.ndim >= 2 else a.reshape(-1, 1)


def histogram(values: np.ndarray, bins: int) -> dict:
    """Counts and ``bins`` equal-width bins from the smallest to the largest finite entry
    of ``values`` (non-finite entries are counted apart). Like ``np.histogram`` (the last
    bin includes its right edge), computed in the array's dtype for speed."""
    flat = np.asarray(values).ravel()
    finite = np.isfinite(flat)
    kept = flat if finite.all() else flat[finite]
    if kept.size == 0:
        counts, edges = np.zeros(bins, dtype=np.int64), np.linspace(0.0, 1.0, bins + 1)
    else:
        lo, hi = float(kept.min()), float(kept.max())
        if lo == hi:  # one value: a unit-wide range around it, as np.histogram does
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        # bin index = floor((v - lo) / width), the maximum folded into the last bin
        scale = kept.dtype.type(bins / (hi - lo))
        index = ((kept - kept.dtype.type(lo)) * scale).astype(np.intp)
        np.clip(index, 0, bins - 1, out=index)
        counts = np.bincount(index, minlength=bins)
    return {
        "counts": [int(c) for c in counts],
        "edges": [float(e) for e in edges],
        "nonfinite": int(flat.size - kept.size),
    }


def output_statistics(
    kind: str, x: np.ndarray | None, y: np.ndarray | None, histogram_bins: int = 30
) -> tuple[list[tuple[str, float]], dict | None]:
    """(statistic, value) pairs of a layer of type ``kind`` from its input ``x`` and output
    ``y``, and its pre-activation histogram (activation layers only, else None). See the
    module docstring for each statistic."""
    out: list[tuple[str, float]] = []
    hist = None
    with np.errstate(all="ignore"):
        if y is not None and y.size:
            out.append(("act_mean", float(y.mean(dtype=np.float64))))
            out.append(("act_std", _std(y)))
            units = _units(y)  # (N, U)
            if kind in RELU_FAMILY:
                # dead: output <= 0 for every example (ReLU: exactly 0), so no gradient flows
                dead = np.all(units <= 0, axis=0)  # (U,)
                out += [("dead_fraction", float(dead.mean())), ("dead_units", float(dead.sum()))]
            elif kind in SATURATING:
                # sigmoid: dy/dx = y (1 - y);  tanh: dy/dx = 1 - y^2
                local = units * (1 - units) if kind == "Sigmoid" else 1 - units * units
                share = (local < SATURATION_DERIVATIVE).mean(axis=0)  # (U,) saturated examples
                saturated = share >= SATURATED_SHARE
                out += [
                    ("saturated_fraction", float(saturated.mean())),
                    ("saturated_units", float(saturated.sum())),
                    ("saturated_share", float(share.mean())),
                ]
        if kind in ACTIVATIONS and x is not None and x.size:
            hist = histogram(x, histogram_bins)
    return out, hist


def layer_statistics(cap: LayerCapture) -> list[tuple[str, float]]:
    """Every (statistic, value) pair of one captured layer, in a fixed order."""
    out = list(cap.forward)
    with np.errstate(all="ignore"):
        if cap.grad_input_norm is not None:
            out.append(("grad_input_norm", cap.grad_input_norm))
        for pname, (value, grad) in cap.params.items():
            out.append((f"{pname}_norm", _norm(value)))
            if grad is not None:
                out.append((f"{pname}_grad_norm", _norm(grad)))
    return out


def update_ratio(before: np.ndarray, after: np.ndarray) -> float:
    """||after - before|| / ||before|| (NaN when ||before|| = 0)."""
    base = _norm(before)
    if base == 0.0:
        return math.nan
    # Δw = w_after - w_before: exact in float32 too when the two are within a factor 2
    return _norm(np.subtract(after, before)) / base


def assemble(
    captures: list[LayerCapture],
    loss: float,
    before: dict[str, np.ndarray] | None = None,
    root_type: str = "Module",
) -> ProbeStats:
    """Turn the captures of one probe pass into :class:`ProbeStats`.

    ``before``: parameter values keyed by full name (``0.weight``) from just before the
    last optimiser step, for the ``<p>_update_ratio`` rows.
    """
    stats = ProbeStats(loss=float(loss))
    grad_sq = 0.0
    for cap in captures:
        pairs, hist = layer_statistics(cap), cap.histogram
        for pname, (value, _) in cap.params.items():
            full = pname if cap.name == MODEL else f"{cap.name}.{pname}"
            if before is not None and full in before:
                pairs.append((f"{pname}_update_ratio", update_ratio(before[full], value)))
        for statistic, value in pairs:
            stats.rows.append(
                {"layer": cap.name, "layer_type": cap.type, "statistic": statistic, "value": value}
            )
            if statistic.endswith("_grad_norm") and statistic != "grad_input_norm":
                grad_sq += value * value
        if hist is not None:
            stats.histograms.append({"layer": cap.name, "layer_type": cap.type, **hist})
    stats.rows.append(
        {"layer": MODEL, "layer_type": root_type, "statistic": "probe_loss", "value": float(loss)}
    )
    stats.rows.append(
        {
            "layer": MODEL,
            "layer_type": root_type,
            "statistic": "grad_norm",
            "value": math.sqrt(grad_sq),
        }
    )
    return stats



def _check_bins(bins) -> None:
    if not isinstance(bins, int | np.integer) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"histogram_bins must be a positive integer, got {bins!r}")



# -- layer names a person can read ---------------------------------------------------------
def layer_labels(layers: list[tuple[str, str]]) -> dict[str, str]:
    """Human-friendly labels from (name, type) pairs in module order, e.g.
    ``{"3": "layer 3 (ReLU, after Linear 2)"}``: an activation names the layer with
    parameters just before it."""
    labels: dict[str, str] = {}
    previous: tuple[str, str] | None = None
    for name, kind in layers:
        if name == MODEL:
            labels[name] = f"the whole model ({kind})"
            continue
        if kind in ACTIVATIONS and previous is not None:
            labels[name] = f"layer {name} ({kind}, after {previous[1]} {previous[0]})"
        else:
            labels[name] = f"layer {name} ({kind})"
        if kind not in ACTIVATIONS and kind not in ("Dropout", "Identity"):
            previous = (name, kind)
    return labels
