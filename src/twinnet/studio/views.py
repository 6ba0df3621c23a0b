"""What the playground's panels show, computed from the live model (the page only draws).

Each function returns plain JSON-ready values. Large grids travel as base64 of uint8
(a probability p in [0, 1] as round(255 p)): a 100x100 heat map of 3 classes is 40 kB.
"""

from __future__ import annotations

import base64

import numpy as np

from twinnet.diagnostics import collect_stats, findings, layer_labels
from twinnet.diagnostics.findings import overfitting
from twinnet.models import ACTIVATIONS
from twinnet.nn import Linear
from twinnet.train import metrics as M

# the hidden activations (identity included: a linear network's units are ramps over the plane)
ACTIVATION_TYPES = {type(f()).__name__ for f in ACTIVATIONS.values()}
HEATMAP_GRID = 100  # cells per side of the decision-boundary map
UNIT_STRIDE = 3  # a hidden unit's map takes every 3rd cell of the heat map's grid (34 x 34)
UNIT_GRID = 34  # cells per side of an input feature's map
CURVE_POINTS = 200  # points of a 1-D regression fit


def b64_uint8(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


def _quantise(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(values - lo) / (hi - lo) as 0..255 rounded to nearest (lo == hi: all 128; NaN: 0)."""
    if not hi > lo:
        return np.full(values.shape, 128, dtype=np.uint8)
    scaled = (values - values.dtype.type(lo)) * values.dtype.type(255.0 / (hi - lo)) + values.dtype.type(0.5)
    np.clip(scaled, 0, 255, out=scaled)
    return np.nan_to_num(scaled, nan=0.0).astype(np.uint8)


def plane_grid(extent: list[float], n: int) -> np.ndarray:
    """(n*n, 2) cell centres over [x1_min, x1_max] x [x2_min, x2_max], row 0 at the top
    (largest x2), as an image is stored."""
    x1 = np.linspace(extent[0], extent[1], n)
    x2 = np.linspace(extent[3], extent[2], n)
    a, b = np.meshgrid(x1, x2)  # (n, n) each
    return np.stack([a.ravel(), b.ravel()], axis=1)


def plane_inputs(pd, n: int) -> np.ndarray:
    """The network's inputs at the n x n cell centres (cached: the plane never moves)."""
    if n not in pd.grid_cache:
        pd.grid_cache[n] = pd.transform(plane_grid(pd.extent, n))
    return pd.grid_cache[n]


def _eval_mode(model):
    class _Eval:
        def __enter__(self):
            self.was = model.training
            model.eval()

        def __exit__(self, *exc):
            model.train(self.was)

    return _Eval()


def forward_layers(model, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The model's output on ``x`` in eval mode and each hidden activation's output
    (N, units), in order."""
    hidden = []
    with _eval_mode(model), np.errstate(all="ignore"):
        h = x
        for module in model:
            h = module(h)
            if type(module).__name__ in ACTIVATION_TYPES:
                hidden.append(h)
    return h, hidden


def plane_views(model, pd, task: str, n: int = HEATMAP_GRID) -> tuple[dict | None, list[dict]]:
    """(output, units): the output over the plane and every hidden unit's map, from one
    forward pass over the n x n grid (the unit maps use every ``UNIT_STRIDE``-th cell)."""
    if pd.n_raw == 1:
        return output_curve(model, pd)
    out, hidden = forward_layers(model, plane_inputs(pd, n))
    return output_map(out, task, n), unit_maps(hidden, n)


def output_curve(model, pd) -> tuple[dict, list[dict]]:
    """The regression fit of 1-D data along x, and each hidden unit's curve along x
    (``"kind": "curve"``: ``CURVE_POINTS`` values per unit)."""
    lo, hi = pd.extent[:2]
    xs = np.linspace(lo, hi, CURVE_POINTS)
    out, hidden = forward_layers(model, pd.transform(xs[:, None]))
    fit = {"kind": "curve", "x": xs.round(4).tolist(), "y": np.asarray(out[:, 0], np.float64).round(4).tolist()}
    units = unit_maps(hidden, CURVE_POINTS, stride=1)
    for layer in units:
        layer["kind"] = "curve"
    return fit, units


def output_map(out: np.ndarray, task: str, n: int) -> dict:
    """The decision boundary (classification: class probabilities per cell) or the
    regression surface (the prediction per cell) from the outputs ``out`` (n*n, C)."""
    if task == "regression":
        values = out[:, 0]
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        return {"kind": "values", "n": n, "lo": lo, "hi": hi, "data": b64_uint8(_quantise(values, lo, hi))}
    probs = _probabilities(out, task)
    return {"kind": "probs", "n": n, "classes": probs.shape[1], "data": b64_uint8(_quantise(probs, 0.0, 1.0))}


def _probabilities(scores: np.ndarray, task: str) -> np.ndarray:
    """(N, C) class probabilities in float32, as ``metrics.probabilities`` computes them
    in float64 (softmax; binary: 1 - sigmoid, sigmoid): the map keeps 8 bits of them."""
    with np.errstate(over="ignore"):
        if task == "binary":
            p = 1 / (1 + np.exp(-scores[:, :1]))  # (N, 1)
            return np.concatenate([1 - p, p], axis=1)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))  # (N, C)
        return e / e.sum(axis=1, keepdims=True)


def unit_maps(hidden: list[np.ndarray], n: int, stride: int | None = None) -> list[dict]:
    """Every hidden unit's activation over the plane, per layer: {"n", "lo", "hi",
    "units": [base64 m*m per unit]}, scaled to the layer's own range. ``stride=1``: the
    activations are along a line of ``n`` points (1-D data), sent whole."""
    layers = []
    for h in hidden:
        if stride == 1:
            m = n
        else:
            h = h.reshape(n, n, -1)[::UNIT_STRIDE, ::UNIT_STRIDE]  # (m, m, units)
            m = h.shape[0]
            h = h.reshape(m * m, -1)
        finite = h[np.isfinite(h)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        q = _quantise(h, lo, hi)
        layers.append({"n": m, "lo": lo, "hi": hi, "units": [b64_uint8(q[:, j]) for j in range(h.shape[1])]})
    return layers


def feature_maps(pd, n: int = UNIT_GRID) -> dict | None:
    """Each input feature (x1, x1^2, sin x1, ...) over the plane, for the input nodes."""
    if pd.n_raw != 2:
        return None
    f = plane_inputs(pd, n)  # (n*n, F)
    lo, hi = f.min(axis=0), f.max(axis=0)
    maps = [b64_uint8(_quantise(f[:, j], float(lo[j]), float(hi[j]))) for j in range(f.shape[1])]
    return {"n": n, "maps": maps, "lo": lo.tolist(), "hi": hi.tolist()}


def network(model) -> list[dict]:
    """Each Linear layer's weights (out, in) and biases, rounded for the diagram."""
    out = []
    for module in model:
        if isinstance(module, Linear):
            w = np.asarray(module.weight.data, np.float64)
            b = None if module.bias is None else np.asarray(module.bias.data, np.float64).round(4).tolist()
            out.append({"weight": w.round(4).tolist(), "bias": b})
    return out


def metrics_on(trainer, x: np.ndarray, y: np.ndarray) -> dict:
    """Loss and accuracy (classification) or mse (regression) with the Trainer's own evaluate."""
    result = trainer.evaluate(x, y)
    keep = {"loss": result["loss"]}
    if "accuracy" in result:
        keep["accuracy"] = result["accuracy"]
    return keep


def layer_panel(stats) -> list[dict]:
    """Per leaf layer of one probe (``collect_stats``): its label, histogram of the
    pre-activation (activation layers) and the numbers the diagnostics record."""
    by_layer: dict[str, dict] = {}
    for r in stats.rows:
        if r["layer"] == "(model)":
            continue
        entry = by_layer.setdefault(r["layer"], {"layer": r["layer"], "type": r["layer_type"], "stats": {}})
        entry["stats"][r["statistic"]] = _finite(r["value"])
    labels = layer_labels([(k, e["type"]) for k, e in by_layer.items()])
    for h in stats.histograms:
        if h["layer"] in by_layer:
            by_layer[h["layer"]]["histogram"] = {"counts": h["counts"], "edges": [round(e, 5) for e in h["edges"]]}
    for k, e in by_layer.items():
        e["label"] = labels[k]
    return list(by_layer.values())


def _finite(v: float):
    return float(v) if np.isfinite(v) else None


def probe(model, loss_fn, x, y, before):
    """``collect_stats`` on the probe batch: the same numbers as ``twinnet train --diagnostics``."""
    return collect_stats(model, loss_fn, x, y, before=before)


def plain_findings(rows: list[dict], epochs: list[dict]) -> list[dict]:
    """The diagnostics' findings on the rows recorded so far (the same rules as the
    report) and the overfitting finding on the per-epoch history (train and val loss)."""
    found = findings(rows) + (overfitting(epochs) if epochs else [])
    return [{"severity": f.severity, "message": f.message, "rule": f.rule, "step": f.step} for f in found]


def confusion(trainer, pd, task: str) -> list[list[int]] | None:
    if task == "regression":
        return None
    scores = trainer.predict(pd.x_val)
    pred = M.predict_labels(scores, task)
    return M.confusion_matrix(pd.y_val.reshape(-1), pred, pd.n_classes).tolist()


def image_examples(pd, count: int = 24) -> dict | None:
    """The first ``count`` validation images (pixels 0..255) for the example grid."""
    if pd.image_side is None:
        return None
    x = pd.raw_val[:count].astype(np.float64)
    lo, hi = float(x.min()), float(x.max())
    return {"side": pd.image_side, "count": len(x), "labels": pd.y_val[:count].tolist(), "data": b64_uint8(_quantise(x, lo, hi))}


def image_predictions(trainer, pd, task: str, count: int = 24) -> list[int] | None:
    if pd.image_side is None:
        return None
    return M.predict_labels(trainer.predict(pd.x_val[:count]), task).tolist()
