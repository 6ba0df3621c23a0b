"""Adagrad: per-coordinate step sizes from the running sum of squared gradients.

Same update, order and defaults as ``torch.optim.Adagrad``::

    g   = grad + weight_decay * w
    clr = lr / (1 + (step - 1) * lr_decay)
    s   = s + g^2                      (s starts at initial_accumulator_value)
    w   = w - clr * g / (sqrt(s) + eps)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from twinnet.nn.parameter import Parameter
from twinnet.optim.optimizer import Optimizer, check_nonnegative


def adagrad_update(
    w: np.ndarray,
    grad: np.ndarray,
    state: dict[str, Any],
    t1: np.ndarray,
    t2: np.ndarray,
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    initial_accumulator_value: float,
    eps: float,
) -> None:
    """One Adagrad step on ``w`` in place; ``t1``, ``t2`` are scratch arrays shaped like ``w``."""
    if not state:
        state["step"] = 0
        state["sum"] = np.full_like(w, initial_accumulator_value)
    state["step"] += 1
    step = state["step"]
    state_sum = state["sum"]

    g = grad
    if weight_decay != 0:
        # g = grad + wd * w
        np.multiply(w, weight_decay, out=t1)
        t1 += grad
        g = t1
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

    Args:
        params: Parameters or parameter groups (dicts with ``"params"``).
        lr: learning rate (>= 0).
        lr_decay: the step size at step t is ``lr / (1 + (t - 1) * lr_decay)``.
        weight_decay: coupled L2 coefficient (``g += wd * w``).
        initial_accumulator_value: starting value of the squared-gradient sum.
        eps: added to ``sqrt(sum)`` (>= 0).

    State per parameter: ``"step"`` (int) and ``"sum"``.
    """

    update_rule = staticmethod(adagrad_update)

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["lr"] = check_nonnegative("lr", group["lr"])
        group["lr_decay"] = check_nonnegative("lr_decay", group["lr_decay"])
        group["weight_decay"] = check_nonnegative("weight_decay", group["weight_decay"])
        group["initial_accumulator_value"] = check_nonnegative(
            "initial_accumulator_value", group["initial_accumulator_value"]
        )
        group["eps"] = check_nonnegative("eps", group["eps"])

    def _hyperparameters(self, group: dict[str, Any]) -> dict[str, Any]:
        return dict(
            lr=float(group["lr"]),
            lr_decay=float(group["lr_decay"]),
            weight_decay=float(group["weight_decay"]),
            initial_accumulator_value=float(group["initial_accumulator_value"]),
            eps=float(group["eps"]),
        )
