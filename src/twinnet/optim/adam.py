"""Adam and AdamW: momentum plus per-coordinate scaling, with bias correction.

Same update, order and defaults as ``torch.optim.Adam`` / ``torch.optim.AdamW``::

    g = -grad if maximize else grad
    g = g + weight_decay * w               Adam: coupled L2 (the gradient of wd/2 ||w||^2)
    w = w * (1 - lr * weight_decay)        AdamW: decoupled decay, applied before the update
    m = lerp(m, g, 1 - beta1)              = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    vmax = max(vmax, v)                    amsgrad only; then v := vmax below
    step_size = lr / (1 - beta1^t)
    denom = sqrt(v) / sqrt(1 - beta2^t) + eps          (eps after bias correction)
    w = w - step_size * m / denom
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinnet.nn.placement import zeros_beside
from twinnet.optim import fused
from twinnet.optim.hyper import replaced
from twinnet.optim.optimizer import Hyper, Optimizer, descent_grad, lerp_

# quarter pages after the parameter (the gradient takes the first): nn/placement.py
MOMENT_SLOTS = {"exp_avg": 2, "exp_avg_sq": 3}


def adam_update(w: np.ndarray, grad: np.ndarray, state: dict[str, Any], t1: np.ndarray,
                t2: np.ndarray, *, lr: float, betas: tuple[float, float], eps: float,
                weight_decay: float, amsgrad: bool, maximize: bool,
                decoupled_weight_decay: bool) -> None:
    """One Adam(W) step on ``w`` in place; ``t1``, ``t2`` are scratch arrays shaped like ``w``."""
    beta1, beta2 = betas
    if not state:
        state["step"] = 0
        # the moments sit beside w in memory, as the gradient does (see nn/placement.py)
        state["exp_avg"] = zeros_beside(w, MOMENT_SLOTS["exp_avg"])
        state["exp_avg_sq"] = zeros_beside(w, MOMENT_SLOTS["exp_avg_sq"])
    if amsgrad and "max_exp_avg_sq" not in state:
        state["max_exp_avg_sq"] = np.zeros_like(w)
    state["step"] += 1
    step = state["step"]
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    # the same arithmetic as below in one compiled loop, bit-identical (twinnet.optim.fused)
    if not amsgrad and not maximize and fused.adam_step(
        w, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
        weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay, step=step,
    ):
        return

    if weight_decay != 0 and decoupled_weight_decay:
        # w = w * (1 - lr * wd)
        w *= 1.0 - lr * weight_decay
    # g = (-grad if maximize else grad) + wd * w   (coupled decay: Adam)
    g = descent_grad(w, grad, 0.0 if decoupled_weight_decay else weight_decay, maximize, out=t1)
    # m = m + (1 - beta1) * (g - m)
    lerp_(exp_avg, g, 1.0 - beta1, t2)
    # v = beta2 * v + (1 - beta2) * g * g
    exp_avg_sq *= beta2
    np.multiply(g, 1.0 - beta2, out=t2)
    t2 *= g
    exp_avg_sq += t2

    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5

    if amsgrad:
        # vmax = max(vmax, v)
        max_exp_avg_sq = state["max_exp_avg_sq"]
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        np.sqrt(max_exp_avg_sq, out=t2)
    else:
        np.sqrt(exp_avg_sq, out=t2)
    # denom = sqrt(v) / sqrt(1 - beta2^t) + eps
    t2 /= bias_correction2_sqrt
    t2 += eps
    # w = w + (-step_size * m) / denom
    np.multiply(exp_avg, -step_size, out=t1)
    np.divide(t1, t2, out=t1)
    w += t1


class Adam(Optimizer):
    """Adam (``torch.optim.Adam`` semantics and defaults).

    Hyperparameters are given by position or keyword, in torch's order. ``weight_decay``
    is coupled L2: ``g += wd * w`` before the moments (so the decay is rescaled by Adam's
    per-coordinate step, unlike AdamW), the same as adding ``L2Penalty(wd)`` (penalty
    ``wd/2 * ||w||^2``) to the loss; ``decoupled_weight_decay=True`` applies
    ``w *= 1 - lr * wd`` instead (this is AdamW).

    State per parameter: ``"step"`` (int), ``"exp_avg"``, ``"exp_avg_sq"`` and
    ``"max_exp_avg_sq"`` (amsgrad).
    """

    hypers = (
        Hyper("lr", 1e-3, ">= 0", "Learning rate."),
        Hyper("betas", (0.9, 0.999), "pair in [0, 1)",
              "Decay rates of the first and second moment estimates."),
        Hyper("eps", 1e-8, ">= 0", "Added to the bias-corrected sqrt(v)."),
        Hyper("weight_decay", 0.0, ">= 0", "Coupled L2 coefficient: g += wd * w."),
        Hyper("amsgrad", False, "bool", "Use the running maximum of v (AMSGrad)."),
        Hyper("maximize", False, "bool", "Ascend the objective: step along +grad.",
              keyword_only=True),
        Hyper("decoupled_weight_decay", False, "bool", "Decay as AdamW: w *= 1 - lr * wd.",
              keyword_only=True),
    )
    state_names = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    state_slots = MOMENT_SLOTS
    update_rule = staticmethod(adam_update)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (``torch.optim.AdamW`` semantics and defaults).

    The decay shrinks the weights directly, ``w *= 1 - lr * weight_decay``, before the
    Adam update, instead of being added to the gradient (where Adam's per-coordinate
    normalisation would rescale it). Its default is 1e-2, as in torch.
    """

    hypers = replaced(
        Adam.hypers,
        weight_decay=Hyper("weight_decay", 1e-2, ">= 0", "Decoupled decay: w *= 1 - lr * wd."),
        decoupled_weight_decay=Hyper("decoupled_weight_decay", True, "bool", init=False),
    )
