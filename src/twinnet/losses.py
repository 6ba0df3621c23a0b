"""Loss functions, with PyTorch's ``reduction`` and its defaults.

Each loss is called as ``loss = loss_fn(pred, target)`` and then ``loss_fn.backward()``
returns dL/d(pred), with the same shape and dtype as ``pred``.

``reduction`` (every loss, as in PyTorch): ``"mean"`` (default) averages the
per-element losses, ``"sum"`` adds them, and both return a Python float;
``"none"`` returns the per-element losses as an array (of ``pred``'s shape, or (B,)
for CrossEntropyLoss), and its ``backward(grad_out)`` then needs the upstream
gradient dL/d(loss) of that shape. ``backward(g)`` with a scalar ``g`` scales the
gradient of a reduced loss (default 1).

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

REDUCTIONS = ("mean", "sum", "none")


class Loss:
    """Base class: ``forward(pred, target)`` then ``backward() -> dL/dpred``."""

    def __init__(self, *, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__} reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
                f"got {reduction!r}"
            )
        self.reduction = reduction
        self._cache = None

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        return self.forward(pred, target)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        """The loss of ``pred`` against ``target``: a Python float (``"mean"``, ``"sum"``)
        or the per-element losses (``"none"``); caches what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, grad_out=None) -> np.ndarray:
        """dL/d(pred) of the last ``forward``: same shape and dtype as ``pred``.
        ``grad_out`` is dL/d(loss): a scalar (default 1) for a reduced loss, an array of
        the loss's shape (required) for ``reduction="none"``."""
        raise NotImplementedError

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}: backward called before forward")
        return self._cache

    def _reduce(self, per_element: np.ndarray, divisor=None) -> float | np.ndarray:
        """The reduced loss: mean (sum / ``divisor`` when given), sum, or the array itself."""
        if self.reduction == "none":
            return per_element
        if self.reduction == "sum":
            return float(np.sum(per_element))
        if divisor is None:
            return float(np.mean(per_element))
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 is nan, as in torch
            return float(np.sum(per_element) / divisor)

    def _upstream(self, grad_out, loss_shape: tuple, dtype):
        """dL/d(loss) checked: an array of the loss's shape for "none", else a float."""
        name = type(self).__name__
        if self.reduction == "none":
            if grad_out is None:
                raise ValueError(
                    f"{name}(reduction='none').backward needs the upstream gradient dL/dloss "
                    f"of shape {loss_shape}"
                )
            grad_out = np.asarray(grad_out)
            if grad_out.shape != loss_shape:
                raise ValueError(
                    f"{name}.backward: grad_out shape {grad_out.shape} does not match the loss "
                    f"shape {loss_shape}"
                )
            return grad_out.astype(dtype, copy=False)
        if grad_out is None:
            return None
        if np.ndim(grad_out) != 0:
            raise ValueError(
                f"{name}(reduction={self.reduction!r}).backward takes a scalar grad_out, "
                f"got shape {np.shape(grad_out)}"
            )
        return float(grad_out)

    def _scale(self, local: np.ndarray, grad_out, count) -> np.ndarray:
        """dL/dpred from d(per-element loss)/dpred ``local``: times dL/d(loss), and divided
        by ``count`` for "mean" (``local / count`` exactly when grad_out is 1)."""
        g = self._upstream(grad_out, local.shape, local.dtype)
        if self.reduction == "none":
            return local * g
        if self.reduction == "sum":
            return local if g is None else local * g
        with np.errstate(invalid="ignore", divide="ignore"):
            return local / count if g is None else local * (g / count)

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

    def _repr_args(self) -> list[str]:
        return [] if self.reduction == "mean" else [f"reduction={self.reduction!r}"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_args())})"


class MSELoss(Loss):
    """L = mean((pred - target)^2) over every element (or their sum, or each one)."""

    def forward(self, pred, target):
        self._check_pred(pred)
        diff = pred - self._float_target(pred, target)
        self._cache = diff
        return self._reduce(diff * diff)

    def backward(self, grad_out=None):
        diff = self._cached()
        g = self._upstream(grad_out, diff.shape, diff.dtype)
        if self.reduction == "none":
            # dL/dpred = 2 (pred - target) dL/dloss
            return 2 * diff * g
        # dL/dpred = 2 (pred - target) g / N_elements ("sum": without / N)
        g = 1.0 if g is None else g
        return diff * (2.0 * g / (diff.size if self.reduction == "mean" else 1))


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
        return self._reduce(-(t * log_p + (1 - t) * log_1mp))

    def backward(self, grad_out=None):
        p, t = self._cached()
        # dL/dp = (p - t) / (p (1 - p)) / N, the denominator floored at 1e-12 as in PyTorch
        return self._scale((p - t) / np.maximum(p * (1 - p), _BCE_GRAD_FLOOR), grad_out, p.size)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits z, with the sigmoid fused in:
    L = mean(max(z, 0) - z t + log(1 + exp(-|z|))), finite for any z (even +-1e4).

    ``pos_weight`` (optional, broadcast over the last axis) weights the positive term,
    as in PyTorch.
    """

    def __init__(self, pos_weight=None, *, reduction: str = "mean"):
        super().__init__(reduction=reduction)
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
        return self._reduce(loss)

    def backward(self, grad_out=None):
        z, t = self._cached()
        s = special.expit(z)
        if self.pos_weight is None:
            # dL/dz = (sigmoid(z) - t) / N
            return self._scale(s - t, grad_out, z.size)
        w = self.pos_weight.astype(z.dtype)
        # dL/dz = (-w t (1 - s) + (1 - t) s) / N
        return self._scale(-w * t * (1 - s) + (1 - t) * s, grad_out, z.size)

    def _repr_args(self) -> list[str]:
        pos = [] if self.pos_weight is None else [f"pos_weight={self.pos_weight.tolist()}"]
        return pos + super()._repr_args()


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits (B, C) with integer class targets (B,), as PyTorch's.

    Per row b with target y: l_b = w_y (1 - eps) (-log p_by) + (eps / C) sum_c w_c (-log p_bc),
    with p = softmax(z_b) (log-sum-exp, stable), ``label_smoothing=eps`` and class
    ``weight`` w (all 1 when not given). Rows whose target is ``ignore_index`` have
    l_b = 0 and no gradient. ``"mean"`` divides the sum of l_b by the sum of w_y over the
    rows not ignored (the number of those rows without weights; nan when every row is
    ignored, as in PyTorch). Without weights the gradient is the famous fused form
    dL/dz = (softmax(z) - q) / B, q = (1 - eps) onehot + eps / C.
    """

    def __init__(
        self,
        weight=None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        super().__init__(reduction=reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer):
            raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = int(ignore_index)
        self.weight = None
        if weight is not None:
            w = np.asarray(weight, dtype=np.float64)
            if w.ndim != 1 or w.size == 0 or not np.isfinite(w).all():
                raise ValueError(
                    f"CrossEntropyLoss weight must be a 1-D array of finite numbers, one per class, got {weight!r}"
                )
            self.weight = w

    def _check_target(self, target, b: int, c: int) -> np.ndarray:
        target = np.asarray(target)
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"CrossEntropyLoss expects integer class indices as target, got dtype {target.dtype}"
            )
        if target.shape != (b,):
            raise ValueError(f"CrossEntropyLoss: target shape {target.shape} does not fit logits ({b}, {c}); expected ({b},)")
        labels = target[target != self.ignore_index]
        if labels.size and (labels.min() < 0 or labels.max() >= c):
            bad = labels.min() if labels.min() < 0 else labels.max()
            raise ValueError(f"CrossEntropyLoss: label {bad} out of range for {c} classes (expected 0..{c - 1})")
        if self.weight is not None and self.weight.shape != (c,):
            raise ValueError(f"CrossEntropyLoss weight has {self.weight.size} entries for {c} classes")
        return target

    def forward(self, pred, target):
        self._check_pred(pred)
        if pred.ndim != 2:
            raise ValueError(f"CrossEntropyLoss expects logits of shape (batch, classes), got {pred.shape}")
        b, c = pred.shape
        target = self._check_target(target, b, c)
        # log softmax via log-sum-exp, shifted by the row max so exp never overflows
        shifted = pred - pred.max(axis=1, keepdims=True)  # (B, C)
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, 1)
        log_probs = shifted - log_sum  # (B, C)
        eps = self.label_smoothing
        kept = target != self.ignore_index  # (B,)
        safe = np.where(kept, target, 0)  # ignored rows index class 0, then are zeroed
        self._cache = (log_probs, safe, kept)
        if self.weight is None and kept.all() and self.reduction == "mean":
            nll = -log_probs[np.arange(b), safe]  # (B,)
            if eps > 0:
                # smoothed: (1 - eps) * nll + eps * mean_c(-log p_c)
                return float((1 - eps) * nll.mean() + eps * (-log_probs.mean(axis=1)).mean())
            return float(nll.mean())
        w = np.ones(c, pred.dtype) if self.weight is None else self.weight.astype(pred.dtype)
        w_row = np.where(kept, w[safe], 0).astype(pred.dtype)  # (B,) w_y, 0 when ignored
        nll = -w_row * log_probs[np.arange(b), safe]  # (B,)
        per_row = (1 - eps) * nll
        if eps > 0:
            smooth = np.where(kept, -(log_probs * w).sum(axis=1), 0)  # (B,) sum_c w_c (-log p_c)
            per_row = per_row + (eps / c) * smooth
        return self._reduce(per_row.astype(pred.dtype, copy=False), divisor=w_row.sum())

    def backward(self, grad_out=None):
        log_probs, safe, kept = self._cached()
        b, c = log_probs.shape
        rows = np.arange(b)
        grad = np.exp(log_probs)  # softmax (B, C)
        eps = self.label_smoothing
        if self.weight is None:
            # dl_b/dz = softmax - q,  q = (1 - eps) onehot + eps / C
            if eps > 0:
                grad -= eps / c
            grad[rows, safe] -= 1 - eps
            count = int(kept.sum())  # a Python int: float32 stays float32
        else:
            w = self.weight.astype(grad.dtype)
            w_row = w[safe]  # (B,)
            # dl_b/dz = (1 - eps) w_y (softmax - onehot) + (eps / C) (softmax sum_c w_c - w)
            smooth = (eps / c) * (grad * w.sum() - w)
            grad *= (1 - eps) * w_row[:, None]
            grad[rows, safe] -= (1 - eps) * w_row
            grad += smooth
            count = np.where(kept, w_row, 0).sum()
        grad[~kept] = 0
        g = self._upstream(grad_out, (b,), grad.dtype)
        if self.reduction == "none":
            return grad * g[:, None]
        if self.reduction == "mean" and kept.any():  # every row ignored: zero, as in torch
            if g is None:
                grad /= count
            else:
                grad *= g / count
        elif self.reduction == "sum" and g is not None:
            grad *= g
        return grad

    def _repr_args(self) -> list[str]:
        args = [] if self.weight is None else [f"weight={self.weight.tolist()}"]
        if self.ignore_index != -100:
            args.append(f"ignore_index={self.ignore_index}")
        return [*args, *super()._repr_args(), f"label_smoothing={self.label_smoothing}"]
