"""Adam and AdamW: momentum plus per-coordinate scaling, with bias correction.

Same update, order and defaults as ``torch.optim.Adam`` / ``torch.optim.AdamW``::

    g = grad + weight_decay * w            Adam: coupled L2 (the gradient of wd/2 ||w||^2)
    w = w * (1 - lr * weight_decay)        AdamW: decoupled decay, applied before the update
    m = lerp(m, g, 1 - beta1)              = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    vmax = max(vmax, v)                    amsgrad only; then v := vmax below
    step_size = lr / (1 - beta1^t)
    denom = sqrt(v) / sqrt(1 - beta2^t) + eps          (eps after bias correction)
    w = w - step_size * m / denom
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from twinnet.nn.parameter import Parameter
from twinnet.optim import fused
from twinnet.optim.optimizer import (
    Optimizer,
    check_bool,
    check_nonnegative,
    check_real,
    check_unit_interval,
    lerp_,
)


def adam_update(
    w: np.ndarray,
    grad: np.ndarray,
    state: dict[str, Any],
    t1: np.ndarray,
    t2: np.ndarray,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    decoupled_weight_decay: bool,
) -> None:
    """One Adam(W) step on ``w`` in place; ``t1``, ``t2`` are scratch arrays shaped like ``w``."""
    if not state:
        state["step"] = 0
        state["exp_avg"] = np.zeros_like(w)
        state["exp_avg_sq"] = np.zeros_like(w)
    if amsgrad and "max_exp_avg_sq" not in state:
        state["max_exp_avg_sq"] = np.zeros_like(w)
    state["step"] += 1
    step = state["step"]
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    # the same arithmetic as below in one compiled loop, bit-identical (twinnet.optim.fused)
    if not amsgrad and fused.adam_step(
        w, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
        weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay, step=step,
    ):
        return

    g = grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            # w = w * (1 - lr * wd)
            w *= 1.0 - lr * weight_decay
        else:
            # g = grad + wd * w
            np.multiply(w, weight_decay, out=t1)
            t1 += grad
            g = t1
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

    Args:
        params: Parameters or parameter groups (dicts with ``"params"``).
        lr: learning rate (>= 0).
        betas: decay rates of the first and second moment estimates, each in [0, 1).
        eps: added to the bias-corrected ``sqrt(v)`` (>= 0).
        weight_decay: coupled L2: ``g += wd * w`` before the moments (so the decay is
            rescaled by Adam's per-coordinate step, unlike AdamW). Same as adding
            ``L2Penalty(wd)`` (penalty ``wd/2 * ||w||^2``) to the loss.
        amsgrad: use the running maximum of ``v`` (AMSGrad).
        decoupled_weight_decay: apply ``w *= 1 - lr * wd`` instead (this is AdamW).

    State per parameter: ``"step"`` (int), ``"exp_avg"``, ``"exp_avg_sq"`` and
    ``"max_exp_avg_sq"`` (amsgrad).
    """

    update_rule = staticmethod(adam_update)

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        decoupled_weight_decay: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["lr"] = check_nonnegative("lr", group["lr"])
        group["eps"] = check_nonnegative("eps", group["eps"])
        betas = group["betas"]
        if isinstance(betas, str) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = (
            check_unit_interval("betas[0]", check_real("betas[0]", betas[0])),
            check_unit_interval("betas[1]", check_real("betas[1]", betas[1])),
        )
        group["weight_decay"] = check_nonnegative("weight_decay", group["weight_decay"])
        group["amsgrad"] = check_bool("amsgrad", group["amsgrad"])
        group["decoupled_weight_decay"] = check_bool(
            "decoupled_weight_decay", group["decoupled_weight_decay"]
        )

    def _hyperparameters(self, group: dict[str, Any]) -> dict[str, Any]:
        beta1, beta2 = group["betas"]
        return dict(
            lr=float(group["lr"]),
            beta1=float(beta1),
            beta2=float(beta2),
            eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]),
            amsgrad=bool(group["amsgrad"]),
            decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
        )


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (``torch.optim.AdamW`` semantics and defaults).

    The decay shrinks the weights directly, ``w *= 1 - lr * weight_decay``, before the
    Adam update, instead of being added to the gradient (where Adam's per-coordinate
    normalisation would rescale it). Default ``weight_decay=1e-2`` as in torch.
    """

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            decoupled_weight_decay=True,
        )
