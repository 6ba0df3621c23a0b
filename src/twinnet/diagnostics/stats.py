"""Per-layer statistics of a network on one probe batch.

One probe forward and backward pass through the model sees, at every *leaf* module
(a module without children: ``Linear``, ``ReLU``, ``BatchNorm1d``, ...), its input
``x``, its output ``y`` and the gradient of the loss with respect to its input
``dL/dx``, and reduces them at once to the numbers below. The NumPy engine is
instrumented by wrapping each leaf's ``forward``/``backward`` for the duration of the
probe; ``torch_hooks.py`` registers forward/backward hooks on a ``torch.nn.Module``;
both hand the same arrays to the same functions (:func:`output_statistics`,
:func:`layer_statistics`, :func:`assemble`), so a model and its PyTorch twin report
the same numbers.

=====================  ==============================================================
statistic              meaning (per leaf module, on the probe batch)
=====================  ==============================================================
``act_mean``           mean of the output over every element
``act_std``            standard deviation (population, ddof=0) of the output
``dead_fraction``      ReLU family: fraction of units (output features) whose output
                       is <= 0 for EVERY probe example (for ReLU: exactly 0, and no
                       gradient reaches the unit's weights; for LeakyReLU: only the
                       leak slope carries gradient)
``dead_units``         the same as a count
``saturated_fraction`` Sigmoid/Tanh: fraction of units that are saturated on at least
                       99% of the probe examples; an example is saturated where the
                       local derivative is below 0.01 (sigmoid: y(1-y) < 0.01, i.e.
                       y < 0.0101 or y > 0.9899; tanh: 1-y^2 < 0.01, i.e. |y| > 0.995)
``saturated_units``    the same as a count
``saturated_share``    share of all (example, unit) outputs that are saturated
``grad_input_norm``    ||dL/dx||, Frobenius norm over the batch, L the mean probe loss;
                       not for a layer whose input is the probe batch itself: the
                       gradient with respect to the data says nothing about training,
                       and the engine skips that product (``Linear.input_grad``)
``<p>_norm``           ||p|| for each own parameter ``p`` (``weight``, ``bias``, ...)
``<p>_grad_norm``      ||dL/dp|| on the probe batch
``<p>_update_ratio``   ||p_after - p_before|| / ||p_before||: the size of the last
                       optimiser step relative to the parameter (``lr * |update| /
                       |param|`` for plain SGD); only when a snapshot from just before
                       that step is given; NaN when ||p_before|| = 0
=====================  ==============================================================

Rows for the whole model use the layer name ``(model)``: ``probe_loss`` and
``grad_norm`` (global gradient norm over all parameters). Activation layers also get
a histogram of their pre-activation (their input), see :class:`ProbeStats`.

Probing never changes training: parameter gradients, buffers (BatchNorm running
statistics), dropout generators and every layer's cached arrays are restored
afterwards, and the optimiser is never touched. The probe runs in the model's current
mode (train mode during training, so BatchNorm uses batch statistics and Dropout
drops), which is the network the optimiser sees.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from twinnet.nn.module import Sequential

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


# -- the NumPy engine -------------------------------------------------------------------
def is_torch_module(obj) -> bool:
    """True for a ``torch.nn.Module`` (checked without importing torch)."""
    return any(
        c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__
    )


def leaf_modules(model) -> list[tuple[str, object]]:
    """(name, module) of every module without children, in ``named_modules`` order."""
    return [(name or MODEL, m) for name, m in model.named_modules() if not m._modules]


def snapshot_parameters(model) -> dict[str, np.ndarray]:
    """Copies of every parameter value, keyed by full name (for update ratios)."""
    return {name: p.data.copy() for name, p in model.named_parameters()}


@contextmanager
def preserved(model, loss_fn=None):
    """Run a probe pass inside this block; afterwards the model and the loss are exactly
    as before: every ``param.grad`` (the original array objects), buffer contents,
    dropout generator states and every module attribute (layer caches, masks). Inside,
    each ``param.grad`` is a fresh zero array, so the probe's gradients are its own."""
    modules = [m for _, m in model.named_modules()]
    attrs = [dict(m.__dict__) for m in modules]
    loss_attrs = (
        dict(loss_fn.__dict__) if loss_fn is not None and hasattr(loss_fn, "__dict__") else None
    )
    buffers = [
        (m, name, np.array(getattr(m, name), copy=True)) for m in modules for name in m._buffers
    ]
    rngs = [
        (m.rng, m.rng.bit_generator.state)
        for m in modules
        if isinstance(getattr(m, "rng", None), np.random.Generator)
    ]
    params = model.parameters()
    grads = [p.grad for p in params]
    for p in params:
        p.grad = np.zeros_like(p.data)
    try:
        yield
    finally:
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        for rng, state in rngs:
            rng.bit_generator.state = state
        for m, saved in zip(modules, attrs, strict=True):
            m.__dict__.clear()
            m.__dict__.update(saved)
        for m, name, value in buffers:
            current = getattr(m, name)
            if isinstance(current, np.ndarray):
                current[...] = value
            else:
                object.__setattr__(m, name, type(current)(value))
        if loss_attrs is not None:
            loss_fn.__dict__.clear()
            loss_fn.__dict__.update(loss_attrs)


def _instrument(module, cap: LayerCapture, data: np.ndarray) -> None:
    """Wrap ``module.forward``/``backward`` (instance attributes, removed by ``preserved``).
    A module whose input is ``data`` itself gets no ``grad_input_norm``."""
    forward, backward = module.forward, module.backward
    sees_data = []

    def probe_forward(x):
        y = forward(x)
        cap.see_forward(x, y)
        sees_data[:] = [x is data]
        return y

    def probe_backward(grad_out):
        grad_in = backward(grad_out)
        if not sees_data[0]:
            cap.see_backward(grad_in)
        return grad_in

    object.__setattr__(module, "forward", probe_forward)
    object.__setattr__(module, "backward", probe_backward)


def collect_stats(
    model,
    loss_fn,
    x,
    y,
    histogram_bins: int = 30,
    before: dict[str, np.ndarray] | None = None,
) -> ProbeStats:
    """Per-layer statistics of ``model`` on the probe batch (x, y), without side effects.

    ``model``: a twinnet Module (or a ``torch.nn.Module`` with a torch ``loss_fn``: then
    :func:`twinnet.diagnostics.torch_hooks.diagnose_torch` does the work). ``before``:
    :func:`snapshot_parameters` taken just before the last optimiser step, to add the
    ``<p>_update_ratio`` rows. A module called twice in one forward pass reports its
    last call.

    Shapes: x (B, in_features); y as ``loss_fn`` expects it.
    """
    if is_torch_module(model):
        from twinnet.diagnostics.torch_hooks import diagnose_torch

        return diagnose_torch(model, x, y, loss_fn, histogram_bins=histogram_bins, before=before)
    _check_bins(histogram_bins)
    x = np.asarray(x)
    with preserved(model, loss_fn):
        first = model[0] if isinstance(model, Sequential) and len(model) else None
        if hasattr(first, "input_grad"):
            first.input_grad = False  # as in Trainer.fit: skip dL/d(data) (undone by preserved)
        captures = []
        for name, module in leaf_modules(model):
            cap = LayerCapture(name, type(module).__name__, histogram_bins)
            _instrument(module, cap, x)
            captures.append((cap, module))
        with np.errstate(all="ignore"):
            out = model(x)
            loss = loss_fn(out, y)
            model.backward(loss_fn.backward())
        for cap, module in captures:
            cap.params = {pname: (p.data, p.grad) for pname, p in module._parameters.items()}
        return assemble([c for c, _ in captures], loss, before, type(model).__name__)


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
