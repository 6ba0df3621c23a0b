"""Adagrad: per-coordinate step sizes from the running sum of squared gradients.

Same update, order and defaults as ``torch.optim.Adagrad``::

    g   = grad + weight_decay * w
    clr = lr / (1 + (step - 1) * lr_decay)
    s   = s + g^2                      (s starts at initial_accumulator_value)
    w   = w - clr * g / (sqrt(s) + eps)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinnet.optim.optimizer import Hyper, Optimizer, descent_grad


def adagrad_update(w: np.ndarray, grad: np.ndarray, state: dict[str, Any], t1: np.ndarray,
                   t2: np.ndarray, *, lr: float, lr_decay: float, weight_decay: float,
                   initial_accumulator_value: float, eps: float) -> None:
    """One Adagrad step on ``w`` in place; ``t1``, ``t2`` are scratch arrays shaped like ``w``."""
    if not state:
        state["step"] = 0
        state["sum"] = np.full_like(w, initial_accumulator_value)
    state["step"] += 1
    step = state["step"]
    state_sum = state["sum"]

    # g = grad + wd * w
    g = descent_grad(w, grad, weight_decay, False, out=t1)
    # clr = lr / (1 + (step - 1) * lr_decay)
    clr = lr / (1 + (step - 1) * lr_decay)
    # s = s + g * g
    np.multiply(g, g, out=t2)
    state_sum += t2
    # w = w + (-clr * g) / (sqrt(s) + eps)
    np.sqrt(state_sum, out=t2)
    t2 += eps
    np.multiply(g, -clr, out=t1)
    np.divide(t1, t2, out=t1)
    w += t1


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad`` semantics and defaults).

    Hyperparameters are given by position or keyword, in torch's order.

    State per parameter: ``"step"`` (int) and ``"sum"``.
    """

    hypers = (
        Hyper("lr", 1e-2, ">= 0", "Learning rate."),
        Hyper("lr_decay", 0.0, ">= 0", "The step size at step t is lr / (1 + (t - 1) * lr_decay)."),
        Hyper("weight_decay", 0.0, ">= 0", "Coupled L2 coefficient: g += wd * w."),
        Hyper("initial_accumulator_value", 0.0, ">= 0",
              "Starting value of the squared-gradient sum."),
        Hyper("eps", 1e-10, ">= 0", "Added to sqrt(sum)."),
    )
    state_names = ("step", "sum")
    update_rule = staticmethod(adagrad_update)
