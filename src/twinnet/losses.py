"""Loss functions, mean-reduced over the batch like PyTorch's defaults.

Each loss is called as ``loss = loss_fn(pred, target)`` (a Python float) and then
``loss_fn.backward()`` returns dL/d(pred), with the same shape and dtype as ``pred``.

Which output each loss assumes (STYLE 3: never tie an output activation to a loss
silently):

- ``MSELoss``: any real-valued prediction.
- ``BCELoss``: probabilities in [0, 1] (after a Sigmoid layer).
- ``BCEWithLogitsLoss``: raw logits; the sigmoid is fused inside (stable, preferred).
- ``CrossEntropyLoss``: raw logits of shape (B, C); the softmax is fused inside.
"""

from __future__ import annotations

import numpy as np
from scipy import special


class Loss:
    """Base class: ``forward(pred, target) -> float`` then ``backward() -> dL/dpred``."""

    def __init__(self) -> None:
        self._cache = None

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        return self.forward(pred, target)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        """The loss of ``pred`` against ``target``, a mean over the batch, as a Python
        float; caches what ``backward`` needs."""
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        """dL/d(pred) of the last ``forward``: same shape and dtype as ``pred``."""
        raise NotImplementedError

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}: backward called before forward")
        return self._cache

    def _check_pred(self, pred) -> None:
        # float32 or float64 only: scipy's expit would turn a float16 gradient into float64
        if not isinstance(pred, np.ndarray) or pred.dtype not in (np.float32, np.float64):
            kind = pred.dtype if isinstance(pred, np.ndarray) else type(pred).__name__
            raise TypeError(
                f"{type(self).__name__} expects a floating numpy array as prediction, got {kind} "
                "(float32 or float64)"
            )
        if pred.ndim == 0 or pred.size == 0:  # (B, 0) too: the mean of nothing is nan
            raise ValueError(f"{type(self).__name__} expects a non-empty batch, got prediction shape {pred.shape}")

    def _float_target(self, pred: np.ndarray, target) -> np.ndarray:
        """The target as an array of pred's dtype and shape; (B,) is accepted for (B, 1)."""
        target = np.asarray(target)
        if target.dtype.kind not in "fiub":
            raise TypeError(f"{type(self).__name__} expects a numeric target, got dtype {target.dtype}")
        if target.shape != pred.shape and target.ndim == 1 and pred.shape == (target.shape[0], 1):
            target = target.reshape(pred.shape)
        if target.shape != pred.shape:
            raise ValueError(
                f"{type(self).__name__}: target shape {target.shape} does not match prediction shape {pred.shape}"
            )
        return target.astype(pred.dtype, copy=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    """L = mean((pred - target)^2) over every element."""

    def forward(self, pred, target):
        self._check_pred(pred)
        diff = pred - self._float_target(pred, target)
        self._cache = diff
        return float(np.mean(diff * diff))

    def backward(self):
        diff = self._cached()
        # dL/dpred = 2 (pred - target) / N_elements
        return diff * (2.0 / diff.size)


# PyTorch floors p (1 - p) in BCELoss's gradient at its float constant 1e-12, which is
# 9.99999996e-13 even in float64; the same number here makes the two agree exactly at p = 0, 1
_BCE_GRAD_FLOOR = float(np.float32(1e-12))


class BCELoss(Loss):
    """Binary cross-entropy on probabilities p in [0, 1]:
    L = -mean(t log p + (1 - t) log(1 - p)), each log clamped at -100 as PyTorch does,
    so p = 0 or 1 gives a large finite loss rather than inf.
    """

    def forward(self, pred, target):
        self._check_pred(pred)
        t = self._float_target(pred, target)
        if np.any((pred < 0) | (pred > 1)) or np.isnan(pred).any():
            raise ValueError("BCELoss expects probabilities in [0, 1]; for logits use BCEWithLogitsLoss")
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(pred), -100)
            log_1mp = np.maximum(np.log1p(-pred), -100)
        self._cache = (pred, t)
        return float(-np.mean(t * log_p + (1 - t) * log_1mp))

    def backward(self):
        p, t = self._cached()
        # dL/dp = (p - t) / (p (1 - p)) / N, the denominator floored at 1e-12 as in PyTorch
        return (p - t) / np.maximum(p * (1 - p), _BCE_GRAD_FLOOR) / p.size


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits z, with the sigmoid fused in:
    L = mean(max(z, 0) - z t + log(1 + exp(-|z|))), finite for any z (even +-1e4).

    ``pos_weight`` (optional, broadcast over the last axis) weights the positive term,
    as in PyTorch.
    """

    def __init__(self, pos_weight=None):
        super().__init__()
        self.pos_weight = None if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)

    def forward(self, pred, target):
        self._check_pred(pred)
        z, t = pred, self._float_target(pred, target)
        if self.pos_weight is None:
            # -[t log s(z) + (1 - t) log(1 - s(z))] = max(z, 0) - z t + log(1 + exp(-|z|))
            loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        else:
            w = self.pos_weight.astype(z.dtype)
            # -[w t log s(z) + (1 - t) log(1 - s(z))], with -log s(z) = softplus(-z)
            loss = w * t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z)
        self._cache = (z, t)
        return float(np.mean(loss))

    def backward(self):
        z, t = self._cached()
        s = special.expit(z)
        if self.pos_weight is None:
            # dL/dz = (sigmoid(z) - t) / N
            return (s - t) / z.size
        w = self.pos_weight.astype(z.dtype)
        # dL/dz = (-w t (1 - s) + (1 - t) s) / N
        return (-w * t * (1 - s) + (1 - t) * s) / z.size


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits (B, C) with integer class targets (B,).

    L = mean_b [ logsumexp(z_b) - sum_c q_bc z_bc ], where q is the one-hot target,
    smoothed to q = (1 - eps) onehot + eps / C with ``label_smoothing=eps``.
    The gradient is the famous fused form dL/dz = (softmax(z) - q) / B.
    """

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, pred, target):
        self._check_pred(pred)
        if pred.ndim != 2:
            raise ValueError(f"CrossEntropyLoss expects logits of shape (batch, classes), got {pred.shape}")
        target = np.asarray(target)
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"CrossEntropyLoss expects integer class indices as target, got dtype {target.dtype}"
            )
        b, c = pred.shape
        if target.shape != (b,):
            raise ValueError(f"CrossEntropyLoss: target shape {target.shape} does not fit logits {pred.shape}; expected ({b},)")
        lo, hi = target.min(), target.max()
        if lo < 0 or hi >= c:
            bad = lo if lo < 0 else hi
            raise ValueError(f"CrossEntropyLoss: label {bad} out of range for {c} classes (expected 0..{c - 1})")
        rows = np.arange(b)
        # log softmax via log-sum-exp, shifted by the row max so exp never overflows
        shifted = pred - pred.max(axis=1, keepdims=True)  # (B, C)
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, 1)
        log_probs = shifted - log_sum  # (B, C)
        nll = -log_probs[rows, target]  # (B,)
        eps = self.label_smoothing
        if eps > 0:
            # smoothed: (1 - eps) * nll + eps * mean_c(-log p_c)
            loss = (1 - eps) * nll.mean() + eps * (-log_probs.mean(axis=1)).mean()
        else:
            loss = nll.mean()
        self._cache = (log_probs, target)
        return float(loss)

    def backward(self):
        log_probs, target = self._cached()
        b, c = log_probs.shape
        grad = np.exp(log_probs)  # softmax (B, C)
        eps = self.label_smoothing
        # dL/dz = (softmax - q) / B,  q = (1 - eps) onehot + eps / C
        if eps > 0:
            grad -= eps / c
        grad[np.arange(b), target] -= 1 - eps
        grad /= b
        return grad

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(label_smoothing={self.label_smoothing})"
