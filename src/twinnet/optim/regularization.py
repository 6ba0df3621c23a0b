"""Weight penalties as part of the objective, and parameter groups for weight decay.

Three ways to shrink weights, and how they relate (``lam``/``wd`` the coefficient,
``lr`` the learning rate):

- **A penalty in the loss** (this module): ``L2Penalty(lam)`` adds
  ``lam/2 * sum(w^2)`` to the loss and ``lam * w`` to ``p.grad``;
  ``L1Penalty(lam)`` adds ``lam * sum(|w|)`` and ``lam * sign(w)`` (0 at w = 0, like
  torch's ``abs`` backward). The penalty is part of the objective you report and
  every optimiser sees its gradient.
- **Coupled weight decay**, ``weight_decay=wd`` in ``SGD``, ``RMSprop``, ``Adagrad``,
  ``Adam`` (torch semantics): the optimiser adds ``wd * w`` to the gradient. That is
  exactly ``L2Penalty(wd)`` (with the 1/2 convention above) except that the penalty's
  value is not in the reported loss. For SGD it equals shrinking ``w`` by
  ``lr * wd`` per step; for Adam the added gradient is rescaled per coordinate by
  ``1/sqrt(v)``, so weights with large gradients are barely decayed.
- **Decoupled weight decay**, ``AdamW(weight_decay=wd)``: ``w *= 1 - lr * wd`` each
  step, outside the adaptive update, so every weight shrinks at the same relative
  rate. It is not the gradient of any penalty added to the loss when the optimiser
  is adaptive (Loshchilov & Hutter, "Decoupled Weight Decay Regularization").

Biases and normalisation scales/shifts are usually exempt from decay: use
:func:`param_groups` for optimiser decay and ``skip_1d=True`` for penalties.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from twinnet.nn.parameter import Parameter
from twinnet.optim.optimizer import check_nonnegative


def _selected(params: Parameter | Iterable[Parameter], skip_1d: bool) -> list[Parameter]:
    if isinstance(params, Parameter):
        params = [params]
    selected = []
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"expected Parameters, but params[{i}] is {type(p).__name__}")
        if not (skip_1d and p.data.ndim <= 1):
            selected.append(p)
    return selected


class _Penalty:
    """What both penalties share: the coefficient, the 1-D exemption, the repr."""

    def __init__(self, lam: float, skip_1d: bool = False):
        self.lam = check_nonnegative("lam", lam)
        self.skip_1d = bool(skip_1d)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lam={self.lam}, skip_1d={self.skip_1d})"


class L2Penalty(_Penalty):
    """``lam/2 * sum(w^2)`` over the parameters; its gradient ``lam * w``.

    ``penalty(params)`` returns the value (add it to the loss you report);
    ``penalty.backward(params)`` adds ``lam * w`` into each ``p.grad`` (call after
    ``model.backward`` and before ``optimizer.step``). Equivalent to
    ``weight_decay=lam`` in SGD/Adam (coupled L2). With ``skip_1d`` parameters with
    ``ndim <= 1`` (biases, normalisation parameters) are left out.
    """

    def __call__(self, params: Parameter | Iterable[Parameter]) -> float:
        # P = lam/2 * sum w^2
        total = 0.0
        for p in _selected(params, self.skip_1d):
            w = p.data.ravel()
            total += float(np.dot(w, w))
        return 0.5 * self.lam * total

    def backward(self, params: Parameter | Iterable[Parameter]) -> None:
        # dP/dw = lam * w
        for p in _selected(params, self.skip_1d):
            p.grad += self.lam * p.data


class L1Penalty(_Penalty):
    """``lam * sum(|w|)`` over the parameters; its (sub)gradient ``lam * sign(w)``.

    Same interface as :class:`L2Penalty`. The subgradient at ``w = 0`` is 0. Drives
    weights to exactly zero only with a proximal step; with plain gradient steps the
    weights oscillate around 0 at the scale ``lr * lam``.
    """

    def __call__(self, params: Parameter | Iterable[Parameter]) -> float:
        # P = lam * sum |w|
        total = 0.0
        for p in _selected(params, self.skip_1d):
            total += float(np.sum(np.abs(p.data)))
        return self.lam * total

    def backward(self, params: Parameter | Iterable[Parameter]) -> None:
        # dP/dw = lam * sign(w)
        for p in _selected(params, self.skip_1d):
            p.grad += self.lam * np.sign(p.data)


def _is_1d(name: str, p: Parameter) -> bool:
    return p.data.ndim <= 1


def param_groups(
    model: Any,
    weight_decay: float,
    no_decay: Callable[[str, Parameter], bool] = _is_1d,
) -> list[dict[str, Any]]:
    """Split ``model.named_parameters()`` into a decayed and a non-decayed group.

    Returns ``[{"params": [...], "weight_decay": weight_decay},
    {"params": [...], "weight_decay": 0.0}]`` (always two groups, possibly one empty),
    ready for any optimiser: ``AdamW(param_groups(model, 0.01), lr=1e-3)``. By default
    parameters with ``ndim <= 1`` (biases, LayerNorm/BatchNorm scale and shift) are not
    decayed; pass ``no_decay(name, p) -> bool`` to choose otherwise. ``model`` only needs
    a ``named_parameters()`` method yielding ``(name, Parameter)`` pairs.
    """
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    if not hasattr(model, "named_parameters"):
        raise TypeError(
            f"model must have named_parameters() (an nn.Module), got {type(model).__name__}"
        )
    decay, keep = [], []
    for name, p in model.named_parameters():
        (keep if no_decay(name, p) else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]
