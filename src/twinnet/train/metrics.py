"""Evaluation metrics on NumPy arrays: accuracy, log loss, ROC AUC.

``scores`` are what the model outputs: logits of shape (N, C) for a multiclass model,
a single logit (N,) or (N, 1) for a binary one. Probabilities are derived here with a
numerically stable softmax / sigmoid.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def probabilities(scores: np.ndarray, task: str) -> np.ndarray:
    """Class probabilities: (N, C) softmax for multiclass, (N,) P(y=1) for binary."""
    if task == "binary":
        return special.expit(scores.reshape(-1).astype(np.float64))
    return special.softmax(scores.astype(np.float64), axis=1)


def predict_labels(scores: np.ndarray, task: str) -> np.ndarray:
    """Predicted class index for each row."""
    if task == "binary":
        return (scores.reshape(-1) > 0).astype(np.int64)
    return scores.argmax(axis=1)


def accuracy(scores: np.ndarray, y: np.ndarray, task: str = "multiclass") -> float:
    """Fraction of rows whose predicted class equals the label."""
    return float(np.mean(predict_labels(scores, task) == y.reshape(-1)))


def log_loss(scores: np.ndarray, y: np.ndarray, task: str = "multiclass", eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of the true class, probabilities clipped to [eps, 1-eps]."""
    p = probabilities(scores, task)
    y = y.reshape(-1).astype(np.int64)
    if task == "binary":
        p = np.clip(p, eps, 1 - eps)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    p_true = np.clip(p[np.arange(len(y)), y], eps, 1.0)
    return float(-np.mean(np.log(p_true)))


def roc_auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve for a binary task: the probability that a random
    positive scores higher than a random negative (ties count one half), computed from
    average ranks (Mann-Whitney U). NaN when only one class is present."""
    s = scores.reshape(-1).astype(np.float64)
    y = y.reshape(-1).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    # U = sum of positive ranks - n_pos (n_pos + 1) / 2;  AUC = U / (n_pos n_neg)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank."""
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # boundaries of runs of equal values
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_a)) + 1]
    ends = np.r_[starts[1:], len(a)]
    avg = (starts + ends + 1) / 2.0  # average of 1-based ranks start+1 .. end
    ranks_sorted = np.repeat(avg, ends - starts)
    ranks = np.empty(len(a))
    ranks[order] = ranks_sorted
    return ranks


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y_true.reshape(-1), y_pred.reshape(-1)), 1)
    return m


def evaluate_scores(scores: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """The standard metrics for a task: accuracy and log loss; ROC AUC for binary;
    for regression the mean squared error."""
    if task == "regression":
        diff = scores.astype(np.float64) - y.reshape(scores.shape)
        return {"mse": float(np.mean(diff**2))}
    out = {"accuracy": accuracy(scores, y, task), "log_loss": log_loss(scores, y, task)}
    if task == "binary":
        out["auc"] = roc_auc(scores, y)
    return out
