"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

Same update, order and defaults as ``torch.optim.RMSprop``::

    g   = grad + weight_decay * w
    v   = alpha * v + (1 - alpha) * g^2
    avg = sqrt(v) + eps                                   or, centered:
    m   = lerp(m, g, 1 - alpha);  avg = sqrt(v - m^2) + eps
    w   = w - lr * g / avg                                (momentum = 0)
    b   = momentum * b + g / avg;  w = w - lr * b         (momentum > 0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinnet.optim.optimizer import Hyper, Optimizer, descent_grad, lerp_


def rmsprop_update(w: np.ndarray, grad: np.ndarray, state: dict[str, Any], t1: np.ndarray,
                   t2: np.ndarray, *, lr: float, alpha: float, eps: float,
                   weight_decay: float, momentum: float, centered: bool) -> None:
    """One RMSprop step on ``w`` in place; ``t1``, ``t2`` are scratch arrays shaped like ``w``."""
    if not state:
        state["step"] = 0
        state["square_avg"] = np.zeros_like(w)
    if momentum > 0 and "momentum_buffer" not in state:
        state["momentum_buffer"] = np.zeros_like(w)
    if centered and "grad_avg" not in state:
        state["grad_avg"] = np.zeros_like(w)
    state["step"] += 1
    square_avg = state["square_avg"]

    # g = grad + wd * w
    g = descent_grad(w, grad, weight_decay, False, out=t1)
    # v = alpha * v + (1 - alpha) * g * g
    square_avg *= alpha
    np.multiply(g, 1.0 - alpha, out=t2)
    t2 *= g
    square_avg += t2
    if centered:
        # m = m + (1 - alpha) * (g - m);  avg = sqrt(v - m * m)
        grad_avg = state["grad_avg"]
        lerp_(grad_avg, g, 1.0 - alpha, t2)
        np.multiply(grad_avg, grad_avg, out=t2)
        np.subtract(square_avg, t2, out=t2)
        np.sqrt(t2, out=t2)
    else:
        np.sqrt(square_avg, out=t2)
    t2 += eps  # avg = ... + eps, outside the square root
    if momentum > 0:
        # b = momentum * b + g / avg;  w = w - lr * b
        buf = state["momentum_buffer"]
        buf *= momentum
        np.divide(g, t2, out=t2)
        buf += t2
        np.multiply(buf, -lr, out=t2)
        w += t2
    else:
        # w = w + (-lr * g) / avg
        np.multiply(g, -lr, out=t1)
        np.divide(t1, t2, out=t1)
        w += t1


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop`` semantics and defaults).

    Hyperparameters are given by position or keyword, in torch's order.

    State per parameter: ``"step"`` (int), ``"square_avg"``, and ``"momentum_buffer"``
    (momentum > 0), ``"grad_avg"`` (centered).
    """

    hypers = (
        Hyper("lr", 1e-2, ">= 0", "Learning rate."),
        Hyper("alpha", 0.99, ">= 0", "Smoothing constant of the squared-gradient average."),
        Hyper("eps", 1e-8, ">= 0", "Added to the root mean square, outside the square root."),
        Hyper("weight_decay", 0.0, ">= 0", "Coupled L2 coefficient: g += wd * w."),
        Hyper("momentum", 0.0, ">= 0", "Momentum factor."),
        Hyper("centered", False, "bool",
              "Normalise by an estimate of the gradient's variance, not its raw second moment."),
    )
    state_names = ("step", "square_avg", "momentum_buffer", "grad_avg")
    update_rule = staticmethod(rmsprop_update)
