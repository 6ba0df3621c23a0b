"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.

Same update, order and defaults as ``torch.optim.SGD`` (lr defaults to 1e-3)::

    g = grad + weight_decay * w                       (coupled L2)
    b = g                          on the first step   (no dampening on the first step)
    b = momentum * b + (1 - dampening) * g             afterwards
    g = g + momentum * b  (nesterov)   or   g = b
    w = w - lr * g
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from twinnet.nn.parameter import Parameter
from twinnet.optim.optimizer import Optimizer, check_bool, check_nonnegative, check_real


def sgd_update(
    w: np.ndarray,
    grad: np.ndarray,
    state: dict[str, Any],
    t1: np.ndarray,
    t2: np.ndarray,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
) -> None:
    """One SGD step on ``w`` in place; ``t1``, ``t2`` are scratch arrays shaped like ``w``."""
    g = grad
    if weight_decay != 0:
        # g = grad + wd * w
        np.multiply(w, weight_decay, out=t1)
        t1 += grad
        g = t1
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

    Args:
        params: Parameters or parameter groups (dicts with ``"params"``).
        lr: learning rate (>= 0). Default 1e-3, as in torch 2.x.
        momentum: momentum factor (>= 0).
        dampening: dampening for momentum (not applied on the first step).
        weight_decay: coupled L2 coefficient, added to the gradient as ``wd * w``
            (the gradient of ``L2Penalty(wd)``, i.e. of ``wd/2 * ||w||^2``).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).

    State per parameter: ``"momentum_buffer"`` (only when momentum != 0).
    """

    update_rule = staticmethod(sgd_update)

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["lr"] = check_nonnegative("lr", group["lr"])
        group["momentum"] = check_nonnegative("momentum", group["momentum"])
        group["dampening"] = check_real("dampening", group["dampening"])
        group["weight_decay"] = check_nonnegative("weight_decay", group["weight_decay"])
        group["nesterov"] = check_bool("nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "nesterov momentum requires momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _hyperparameters(self, group: dict[str, Any]) -> dict[str, Any]:
        return dict(
            lr=float(group["lr"]),
            momentum=float(group["momentum"]),
            dampening=float(group["dampening"]),
            weight_decay=float(group["weight_decay"]),
            nesterov=bool(group["nesterov"]),
        )
