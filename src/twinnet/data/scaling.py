"""Scaling fitted on the training split and applied to every split (and to new inputs).

"standard" is (x - mean) / std; "minmax" is (x - min) / (max - min); a zero std or
range is replaced by 1. Images use one global mean and std over all pixels; tabular
data is scaled per feature. The fitted statistics are a JSON-able dict, so a run
folder can scale new inputs exactly as in training.
"""

from __future__ import annotations

import numpy as np

SCALES = ("standard", "minmax", "none")


def fit_scaler(x: np.ndarray, method: str, per_feature: bool) -> dict:
    """Fit ``method`` ("standard", "minmax", "none") on x (N, d); return a JSON-able dict.

    The result describes ``(x - shift) / scale`` with ``shift``/``scale`` floats
    (global) or lists of d floats (per feature).
    """
    if method not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {method!r}")
    if method == "none":
        return {"method": "none"}
    if len(x) == 0:
        raise ValueError("cannot fit a scaler on an empty training split")
    if method == "standard":
        mean, std = _moments(x, per_feature)
        shift, scale = mean, np.where(std > 0, std, 1.0)
    else:
        lo = x.min(axis=0) if per_feature else x.min()
        hi = x.max(axis=0) if per_feature else x.max()
        shift = np.asarray(lo, dtype=np.float64)
        rng = np.asarray(hi, dtype=np.float64) - shift
        scale = np.where(rng > 0, rng, 1.0)
    return {
        "method": method,
        "per_feature": per_feature,
        "formula": "(x - shift) / scale",
        "shift": shift.tolist(),  # float or list of floats
        "scale": scale.tolist(),
        "fitted_on": f"train ({len(x)} samples)",
    }


def apply_scaler(x: np.ndarray, scaler_info: dict, dtype=np.float32) -> np.ndarray:
    """Apply ``scaler_info`` (from ``fit_scaler`` / ``splits.scaler_info``) to raw x (N, d).

    Returns a new C-contiguous array of ``dtype``; ``x`` is not modified.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (samples, features), got shape {x.shape}")
    method = scaler_info.get("method")
    if method not in SCALES:
        raise ValueError(f"scaler_info method must be one of {', '.join(SCALES)}, got {method!r}")
    out = np.empty(x.shape, dtype=dtype)  # (N, d)
    out[...] = x
    if method == "none":
        return out
    shift = np.asarray(scaler_info["shift"], dtype=dtype)
    scale = np.asarray(scaler_info["scale"], dtype=dtype)
    if shift.ndim == 1 and shift.shape != (x.shape[1],):
        raise ValueError(f"the scaler was fitted on {shift.shape[0]} features, x has {x.shape[1]}")
    out -= shift
    out /= scale
    return out


def _moments(x: np.ndarray, per_feature: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=0) in float64, per column or over all values.

    Global statistics never make a float64 copy of x (MNIST would need 400 MB)."""
    if per_feature:
        x64 = x.astype(np.float64)
        return x64.mean(axis=0), x64.std(axis=0)
    rows = max(1, 1_000_000 // max(1, x.shape[1]))  # ~8 MB of float64 at a time
    chunks = range(0, len(x), rows)
    mean = sum(float(x[i : i + rows].sum(dtype=np.float64)) for i in chunks) / x.size
    ss = sum(float(((x[i : i + rows].astype(np.float64) - mean) ** 2).sum()) for i in chunks)
    return np.float64(mean), np.sqrt(np.float64(ss / x.size))
