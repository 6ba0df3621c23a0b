"""The objective the estimators minimise: scikit-learn's MLP loss, computed with twinnet.

Per mini-batch of B examples with weights w_i (all 1 without ``sample_weight``) and
S = sum_i w_i, the objective is exactly scikit-learn's (``_multilayer_perceptron.py``,
``_backprop``)::

    J = sum_i w_i l_i / S  +  alpha / (2 S) * sum_layers ||W||^2

with l_i, per output head (z_i the row of logits / predictions):

- multiclass: softmax cross-entropy, l_i = -log softmax(z_i)[y_i]   (CrossEntropyLoss)
- binary and multilabel: sigmoid cross-entropy summed over the K outputs,
  l_i = sum_k bce(z_ik, t_ik)                        (K * BCEWithLogitsLoss per row)
- regression: half the squared error summed over the K outputs,
  l_i = 1/2 sum_k (z_ik - t_ik)^2                     (K/2 * MSELoss per row).
  This is the objective whose gradient scikit-learn follows; its *reported* loss
  averages over the outputs instead (``squared_loss``), so for K > 1 our
  ``loss_curve_`` is larger than scikit-learn's by the factor K on the data term.

The penalty is on the Linear weights only (not on biases or normalisation
parameters), and it is divided by the batch's total weight S, so with the same alpha
it is as strong as in scikit-learn (which also makes it weaker for larger batches).

twinnet's losses are mean-reduced over the batch, and their gradient row i depends
only on row i, so the weighted gradient is the mean-loss gradient with row i scaled by
``w_i * B / S`` (times the head's scale above). The loss *value* of a weighted batch
needs the per-example losses, which :func:`row_losses` computes with the same
formulas as the engine's losses (tests check they agree).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from twinnet import losses, nn

HEADS = ("multiclass", "binary", "multilabel", "regression")


def row_losses(head: str, z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-example loss (B,) whose mean is the engine loss of ``head`` (before scaling)."""
    if head == "multiclass":
        # -log softmax(z)[y] = logsumexp(z) - z[y]
        return special.logsumexp(z, axis=1) - z[np.arange(len(z)), target]
    if head == "regression":
        d = z - target
        return np.mean(d * d, axis=1)
    # max(z, 0) - z t + log(1 + exp(-|z|)), averaged over the outputs
    return np.mean(np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z))), axis=1)


class Objective:
    """Loss and dL/d(output) of a batch, weighted, with scikit-learn's scaling and alpha.

    ``head`` picks the loss (see the module docstring); ``n_outputs`` is K.
    """

    def __init__(self, head: str, n_outputs: int, alpha: float):
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head = head
        self.alpha = float(alpha)
        if head == "multiclass":
            self.loss_fn, self.scale = losses.CrossEntropyLoss(), 1.0
        elif head == "regression":  # 1/2 sum over outputs = K/2 * mean over outputs
            self.loss_fn, self.scale = losses.MSELoss(), 0.5 * n_outputs
        else:  # binary (K = 1) and multilabel: sum over outputs = K * mean over outputs
            self.loss_fn, self.scale = losses.BCEWithLogitsLoss(), float(n_outputs)

    def __call__(
        self, z: np.ndarray, target: np.ndarray, weight: np.ndarray | None
    ) -> tuple[float, np.ndarray, float]:
        """(loss J without the penalty, dJ/dz (B, K), S the batch's total weight).

        ``z`` (B, K) network outputs; ``target`` (B,) class indices for multiclass, else
        (B, K); ``weight`` (B,) float64 or None.
        """
        b = z.shape[0]
        loss = self.loss_fn(z, target)
        grad = self.loss_fn.backward()  # (B, K), the gradient of the batch mean
        if weight is None:
            if self.scale != 1.0:
                grad *= self.scale
            return self.scale * loss, grad, float(b)
        total = float(weight.sum())
        # dJ/dz_i = scale * w_i * B / S * d(mean loss)/dz_i
        grad *= (weight * (self.scale * b / total)).astype(grad.dtype)[:, None]
        # J = scale * sum_i w_i l_i / S
        loss = self.scale * float(weight @ row_losses(self.head, z, target)) / total
        return loss, grad, total

    def penalty(self, weights: list[nn.Parameter], total: float) -> float:
        """Add alpha/S * W to each weight's gradient; return alpha/(2S) * sum ||W||^2."""
        if self.alpha == 0.0:
            return 0.0
        c = self.alpha / total
        sq = 0.0
        for p in weights:
            w = p.data.ravel()
            sq += float(np.dot(w, w))
            # dP/dW = alpha / S * W
            p.grad += p.data * p.data.dtype.type(c)
        return 0.5 * c * sq
