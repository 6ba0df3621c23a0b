"""Gradient clipping, in place, with ``torch.nn.utils`` semantics.

Call between ``model.backward(...)`` and ``optimizer.step()``::

    total = optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from twinnet.nn.parameter import Parameter
from twinnet.optim.optimizer import check_nonnegative, check_real


def _as_list(params: Parameter | Iterable[Parameter]) -> list[Parameter]:
    """Parameters from a single Parameter, a list or a generator (consumed once)."""
    if isinstance(params, Parameter):
        return [params]
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"expected Parameters, but params[{i}] is {type(p).__name__}")
    return params


def clip_grad_norm_(
    params: Parameter | Iterable[Parameter],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradients viewed as one vector
    (``norm_type=inf`` or ``"inf"``: the largest ``|g|``). Every gradient is then
    multiplied in place by ``min(max_norm / (total + 1e-6), 1)``, exactly as torch's
    ``clip_grad_norm_`` (so nothing changes unless ``total`` exceeds about
    ``max_norm``; a NaN total makes the gradients NaN, as in torch).

    Args:
        params: Parameters (a list, a generator or a single one).
        max_norm: the largest allowed norm (>= 0).
        norm_type: p of the p-norm (> 0), or ``inf``.
        error_if_nonfinite: raise ValueError if the total norm is NaN or infinite.

    Returns:
        The total norm before clipping, as a Python float.
    """
    params = _as_list(params)
    max_norm = check_nonnegative("max_norm", max_norm)
    norm_type = float(norm_type)  # accepts "inf"
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    if not params:
        return 0.0

    # the norm of the per-tensor norms is the norm of everything concatenated
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(p.grad))) if p.grad.size else 0.0 for p in params)
    elif norm_type == 2.0:
        # ||g||_2 = sqrt(sum_i ||g_i||^2); dot keeps float32 grads in float32
        total = math.sqrt(sum(float(np.dot(p.grad.ravel(), p.grad.ravel())) for p in params))
    else:
        per_tensor = [float(np.sum(np.abs(p.grad) ** norm_type)) for p in params]
        total = sum(per_tensor) ** (1.0 / norm_type)

    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(
            f"the total norm of order {norm_type} of the gradients is {total}, so they "
            "cannot be clipped; pass error_if_nonfinite=False to scale them anyway"
        )
    # g = g * min(max_norm / (total + 1e-6), 1)
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # also when coef is NaN, like torch's clamp
        for p in params:
            p.grad *= coef
    return total


def clip_grad_value_(params: Parameter | Iterable[Parameter], clip_value: float) -> None:
    """Clip every gradient element into ``[-clip_value, clip_value]``, in place."""
    params = _as_list(params)
    clip_value = check_real("clip_value", clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for p in params:
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
