"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.

Same update, order and defaults as ``torch.optim.SGD`` (lr defaults to 1e-3)::

    g = -grad if maximize else grad
    g = g + weight_decay * w                           (coupled L2)
    b = g                          on the first step   (no dampening on the first step)
    b = momentum * b + (1 - dampening) * g             afterwards
    g = g + momentum * b  (nesterov)   or   g = b
    w = w - lr * g
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinnet.optim.optimizer import Hyper, Optimizer, descent_grad


def sgd_update(w: np.ndarray, grad: np.ndarray, state: dict[str, Any], t1: np.ndarray,
               t2: np.ndarray, *, lr: float, momentum: float, dampening: float,
               weight_decay: float, nesterov: bool, maximize: bool) -> None:
    """One SGD step on ``w`` in place; ``t1``, ``t2`` are scratch arrays shaped like ``w``."""
    # g = (-grad if maximize else grad) + wd * w
    g = descent_grad(w, grad, weight_decay, maximize, out=t1)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            # first step: b = g (dampening is not applied)
            state["momentum_buffer"] = buf = g.copy()
        else:
            # b = momentum * b + (1 - dampening) * g
            buf *= momentum
            if dampening == 0:
                buf += g
            else:
                np.multiply(g, 1.0 - dampening, out=t2)
                buf += t2
        if nesterov:
            # g = g + momentum * b
            np.multiply(buf, momentum, out=t2)
            t2 += g
            g = t2
        else:
            g = buf
    # w = w - lr * g
    np.multiply(g, -lr, out=t2)
    w += t2


class SGD(Optimizer):
    """Stochastic gradient descent (``torch.optim.SGD`` semantics and defaults).

    Hyperparameters are given by position or keyword, in torch's order. ``weight_decay``
    is coupled L2: ``wd * w`` is added to the gradient (the gradient of
    ``L2Penalty(wd)``, i.e. of ``wd/2 * ||w||^2``).

    State per parameter: ``"momentum_buffer"`` (only when momentum != 0).
    """

    hypers = (
        Hyper("lr", 1e-3, ">= 0", "Learning rate (torch 2.x default)."),
        Hyper("momentum", 0.0, ">= 0", "Momentum factor."),
        Hyper("dampening", 0.0, "real", "Dampening of the momentum (not on the first step)."),
        Hyper("weight_decay", 0.0, ">= 0", "Coupled L2 coefficient: g += wd * w."),
        Hyper("nesterov", False, "bool", "Nesterov momentum (needs momentum > 0, dampening 0)."),
        Hyper("maximize", False, "bool", "Ascend the objective: step along +grad.",
              keyword_only=True),
    )
    state_names = ("momentum_buffer",)
    update_rule = staticmethod(sgd_update)

    def _check_relations(self, group: dict[str, Any]) -> None:
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "nesterov momentum requires momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )
