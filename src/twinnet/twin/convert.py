"""twinnet <-> torch.nn conversion, through ONE table of conventions.

``LAYER_TABLE`` below is the only place that knows how a twinnet layer corresponds to
a torch layer: which constructor arguments carry over and which tensors are copied.
No tensor needs a transpose or a rename, because the engine follows PyTorch's layout
(``Linear.weight`` is (out_features, in_features), state names like ``0.weight``,
``1.running_mean``, ``2.gate.weight``); a future layer that needs one adds it to its row
(``renames``), nowhere else. Every copy asserts shape and dtype first and is exact:
the arrays are copied bit for bit, in their own dtype (float32 stays float32, float64
stays float64).

The rows of the convolutional layers live in :mod:`twinnet.twin.convert_conv`
(``CONV_RULES``, spliced into the table); the row type and the dtype maps in
:mod:`twinnet.twin.rules`.

Containers (``Sequential``, ``SwiGLU``, ``Residual``) are converted child by child under the same
names, so ``state_dict`` keys agree on both sides. The training flag of every module
is mirrored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from twinnet import losses, nn
from twinnet.twin.convert_conv import CONV_RULES
from twinnet.twin.rules import (
    BN_TENSORS,
    LayerRule,
    _batchnorm,
    _np_dtype_of,
    _params_dtype,
    _plain,
    numpy_dtype,
    torch_dtype,
)


class TorchSwiGLU(torch.nn.Module):
    """torch twin of :class:`twinnet.nn.SwiGLU`: ``y = down(silu(gate(x)) * up(x))``.

    Children ``gate``, ``up``, ``down`` are ``torch.nn.Linear``, so ``state_dict`` names
    match the engine's (``gate.weight``, ``up.bias``, ...).
    """

    def __init__(self, gate: torch.nn.Linear, up: torch.nn.Linear, down: torch.nn.Linear):
        super().__init__()
        if gate.out_features != up.out_features or down.in_features != gate.out_features:
            raise ValueError(
                "TorchSwiGLU needs gate and up with the same out_features and down taking "
                f"them in, got gate {tuple(gate.weight.shape)}, up {tuple(up.weight.shape)}, "
                f"down {tuple(down.weight.shape)}"
            )
        self.gate, self.up, self.down = gate, up, down

    @property
    def in_features(self) -> int:
        return self.gate.in_features

    @property
    def hidden_features(self) -> int:
        return self.gate.out_features

    @property
    def out_features(self) -> int:
        return self.down.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


def _torch_linear(m: nn.Linear, _children) -> torch.nn.Linear:
    return torch.nn.Linear(
        m.in_features, m.out_features, bias=m.bias is not None, dtype=torch_dtype(m.weight.dtype)
    )


def _our_linear(t: torch.nn.Linear, _children) -> nn.Linear:
    return nn.Linear(
        t.in_features,
        t.out_features,
        bias=t.bias is not None,
        init="zeros",  # overwritten by the copy; draws no random numbers
        dtype=numpy_dtype(t.weight.dtype),
    )


def _torch_layernorm(m: nn.LayerNorm, _children) -> torch.nn.LayerNorm:
    return torch.nn.LayerNorm(
        m.normalized_shape,
        eps=m.eps,
        elementwise_affine=m.elementwise_affine,
        bias=getattr(m, "bias", None) is not None,
        dtype=_params_dtype(m, ("weight",)),
    )


def _our_layernorm(t: torch.nn.LayerNorm, _children) -> nn.LayerNorm:
    return nn.LayerNorm(
        tuple(t.normalized_shape),
        eps=t.eps,
        elementwise_affine=t.elementwise_affine,
        bias=t.bias is not None,
        dtype=_np_dtype_of(t, ("weight",)),
    )


def _our_swiglu(t: TorchSwiGLU, children: dict[str, nn.Module]) -> nn.SwiGLU:
    gate, up, down = children["gate"], children["up"], children["down"]
    layer = nn.SwiGLU(
        gate.in_features,
        gate.out_features,
        down.out_features,
        bias=gate.bias is not None,
        init="zeros",
        dtype=gate.weight.dtype,
    )
    # the converted children replace the freshly built ones (same names, same shapes)
    layer.gate, layer.up, layer.down = gate, up, down
    return layer


def _our_softmax(t: torch.nn.Softmax, _children) -> nn.Softmax:
    # torch's dim=None means "dim 1 for a 2-D input", i.e. the last axis of a batch
    return nn.Softmax(dim=-1 if t.dim is None else t.dim)


LAYER_TABLE: tuple[LayerRule, ...] = (
    LayerRule(nn.Linear, torch.nn.Linear, _torch_linear, _our_linear, ("weight", "bias")),
    LayerRule(nn.Sigmoid, torch.nn.Sigmoid, *_plain(nn.Sigmoid, torch.nn.Sigmoid)),
    LayerRule(nn.Tanh, torch.nn.Tanh, *_plain(nn.Tanh, torch.nn.Tanh)),
    LayerRule(nn.ReLU, torch.nn.ReLU, *_plain(nn.ReLU, torch.nn.ReLU)),
    LayerRule(
        nn.LeakyReLU,
        torch.nn.LeakyReLU,
        *_plain(nn.LeakyReLU, torch.nn.LeakyReLU, "negative_slope"),
    ),
    LayerRule(nn.GELU, torch.nn.GELU, *_plain(nn.GELU, torch.nn.GELU, "approximate")),
    LayerRule(nn.SiLU, torch.nn.SiLU, *_plain(nn.SiLU, torch.nn.SiLU)),
    LayerRule(
        nn.Softmax,
        torch.nn.Softmax,
        _plain(nn.Softmax, torch.nn.Softmax, "dim")[0],
        _our_softmax,
    ),
    LayerRule(nn.Identity, torch.nn.Identity, *_plain(nn.Identity, torch.nn.Identity)),
    LayerRule(nn.Dropout, torch.nn.Dropout, *_plain(nn.Dropout, torch.nn.Dropout, "p")),
    LayerRule(
        nn.BatchNorm1d,
        torch.nn.BatchNorm1d,
        *_batchnorm(nn.BatchNorm1d, torch.nn.BatchNorm1d),
        (*BN_TENSORS, "num_batches_tracked"),
    ),
    LayerRule(
        nn.LayerNorm, torch.nn.LayerNorm, _torch_layernorm, _our_layernorm, ("weight", "bias")
    ),
    LayerRule(
        nn.SwiGLU,
        TorchSwiGLU,
        lambda m, ch: TorchSwiGLU(ch["gate"], ch["up"], ch["down"]),
        _our_swiglu,
    ),
    *CONV_RULES,  # Conv2d, pooling, Flatten, BatchNorm2d, Residual: twin/convert_conv.py
    LayerRule(
        nn.Sequential,
        torch.nn.Sequential,
        lambda m, ch: torch.nn.Sequential(*ch.values()),
        lambda t, ch: nn.Sequential(*ch.values()),
    ),
)

_BY_OURS = {rule.ours: rule for rule in LAYER_TABLE}
_BY_THEIRS = {rule.theirs: rule for rule in LAYER_TABLE}


def _supported(attr: str) -> str:
    return ", ".join(getattr(rule, attr).__name__ for rule in LAYER_TABLE)


def _rule(layer, table: dict, side: str, direction: str) -> LayerRule:
    # exact type: a subclass may override forward/backward, so it is not the same layer
    rule = table.get(type(layer))
    if rule is None:
        raise TypeError(
            f"{direction} does not support {type(layer).__module__}.{type(layer).__name__}; "
            f"supported {side} layers: {_supported('ours' if side == 'twinnet' else 'theirs')}"
        )
    return rule


def _own_tensor(module, name: str):
    """A module's own parameter or buffer (as an array or tensor), or None if absent."""
    if isinstance(module, torch.nn.Module):
        value = module._parameters.get(name, module._buffers.get(name))
        return None if value is None else value.detach()
    if name in module._parameters:
        return module._parameters[name].data
    if name in module._buffers:
        return getattr(module, name)
    return None


def _check_pair(path: str, name: str, ours, theirs) -> bool:
    """True when both sides have tensor ``name``; raise on any structural mismatch."""
    if ours is None and theirs is None:
        return False
    where = f"{path}.{name}" if path else name
    if ours is None or theirs is None:
        side = "twinnet" if ours is None else "torch"
        raise ValueError(f"tensor {where!r} is missing on the {side} side")
    ours_shape, theirs_shape = tuple(np.shape(ours)), tuple(theirs.shape)
    if ours_shape != theirs_shape:
        raise ValueError(
            f"tensor {where!r}: twinnet shape {ours_shape}, torch shape {theirs_shape}"
        )
    ours_dtype = np.asarray(ours).dtype
    if ours_dtype != np.dtype(str(theirs.dtype).removeprefix("torch.")):
        raise ValueError(
            f"tensor {where!r}: twinnet dtype {ours_dtype}, torch dtype {theirs.dtype}"
        )
    return True


def _copy_into_torch(path: str, layer: nn.Module, module: torch.nn.Module, rule: LayerRule):
    for name in rule.tensors:
        ours, theirs = _own_tensor(layer, name), _own_tensor(module, rule.renames.get(name, name))
        if _check_pair(path, name, ours, theirs):
            with torch.no_grad():
                theirs.copy_(torch.from_numpy(np.array(ours, copy=True)))


def _copy_into_ours(path: str, module: torch.nn.Module, layer: nn.Module, rule: LayerRule):
    for name in rule.tensors:
        ours, theirs = _own_tensor(layer, name), _own_tensor(module, rule.renames.get(name, name))
        if _check_pair(path, name, ours, theirs):
            ours[...] = theirs.cpu().numpy()


def to_torch(model: nn.Module, device: str | torch.device | None = None) -> torch.nn.Module:
    """The torch twin of a twinnet model: same structure, names, dtype, mode and weights.

    Every parameter and buffer is copied bit for bit (``state_dict`` keys are equal).
    Dropout becomes ``torch.nn.Dropout`` with its own random masks (``compare`` shares
    the masks instead). Raises TypeError for a layer that has no twin.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_torch expects a twinnet nn.Module, got {type(model).__name__}")
    module = _to_torch("", model)
    return module if device is None else module.to(device)


def _to_torch(path: str, layer: nn.Module) -> torch.nn.Module:
    rule = _rule(layer, _BY_OURS, "twinnet", "to_torch")
    children = {
        name: _to_torch(f"{path}.{name}" if path else name, child)
        for name, child in layer.named_children()
    }
    module = rule.make_torch(layer, children)
    _copy_into_torch(path, layer, module, rule)
    module.training = layer.training  # this module only; children were set already
    return module


def from_torch(module: torch.nn.Module) -> nn.Module:
    """The twinnet model of a torch module built from supported layers.

    Weights, buffers and training flags are copied exactly; the dtype is kept. A
    ``torch.nn.Sequential`` with named children (an OrderedDict) becomes an
    ``nn.Sequential`` whose children are numbered, as twinnet's always are.
    Raises TypeError naming an unsupported layer (e.g. ``Conv1d``) and listing the
    supported ones.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    return _from_torch("", module)


def _from_torch(path: str, module: torch.nn.Module) -> nn.Module:
    rule = _rule(module, _BY_THEIRS, "torch", "from_torch")
    children = {
        name: _from_torch(f"{path}.{name}" if path else name, child)
        for name, child in module.named_children()
    }
    layer = rule.make_ours(module, children)
    _copy_into_ours(path, module, layer, rule)
    object.__setattr__(layer, "training", module.training)
    return layer


# -- losses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossRule:
    """A twinnet loss, its torch twin (built for a dtype) and how its target converts."""

    ours: type
    make_torch: Callable[[Any, torch.dtype], torch.nn.Module]
    class_target: bool  # integer class indices (CrossEntropy) vs a float array like pred


def _torch_bce_logits(loss: losses.BCEWithLogitsLoss, dtype: torch.dtype):
    pos_weight = None
    if loss.pos_weight is not None:
        # the engine casts pos_weight to the prediction's dtype; so does the twin
        pos_weight = torch.from_numpy(np.asarray(loss.pos_weight, dtype=numpy_dtype(dtype)))
    return torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction=loss.reduction)


def _torch_cross_entropy(loss: losses.CrossEntropyLoss, dtype: torch.dtype):
    weight = None
    if loss.weight is not None:
        # the engine casts the class weights to the prediction's dtype; so does the twin
        weight = torch.from_numpy(np.asarray(loss.weight, dtype=numpy_dtype(dtype)))
    return torch.nn.CrossEntropyLoss(
        weight=weight,
        ignore_index=loss.ignore_index,
        reduction=loss.reduction,
        label_smoothing=loss.label_smoothing,
    )


LOSS_TABLE: tuple[LossRule, ...] = (
    LossRule(losses.MSELoss, lambda loss, dtype: torch.nn.MSELoss(reduction=loss.reduction), False),
    LossRule(losses.BCELoss, lambda loss, dtype: torch.nn.BCELoss(reduction=loss.reduction), False),
    LossRule(losses.BCEWithLogitsLoss, _torch_bce_logits, False),
    LossRule(losses.CrossEntropyLoss, _torch_cross_entropy, True),
)
_LOSS_BY_OURS = {rule.ours: rule for rule in LOSS_TABLE}


def _loss_rule(loss_fn) -> LossRule:
    rule = _LOSS_BY_OURS.get(type(loss_fn))
    if rule is None:
        supported = ", ".join(r.ours.__name__ for r in LOSS_TABLE)
        raise TypeError(
            f"the twin does not support the loss {type(loss_fn).__name__}; supported: {supported}"
        )
    return rule


def loss_to_torch(loss_fn: losses.Loss, dtype=torch.float32) -> torch.nn.Module:
    """The torch twin of a twinnet loss (same reduction, class weights, ignore_index and
    label smoothing), for predictions of ``dtype``.

    ``dtype`` (torch or NumPy) matters only for tensors inside the loss (``pos_weight``,
    CrossEntropyLoss's ``weight``).
    """
    if not isinstance(dtype, torch.dtype):
        dtype = torch_dtype(dtype)
    return _loss_rule(loss_fn).make_torch(loss_fn, dtype)


def target_to_torch(loss_fn: losses.Loss, target, pred_shape, dtype, device=None) -> torch.Tensor:
    """The target as the torch loss needs it, converted the way the engine converts it.

    Class indices become int64; any other target is cast to the prediction's dtype and
    a (B,) target for a (B, 1) prediction is reshaped, as the engine's losses do.
    """
    target = np.asarray(target)
    if _loss_rule(loss_fn).class_target:
        return torch.as_tensor(target.astype(np.int64), device=device)
    if not isinstance(dtype, torch.dtype):
        dtype = torch_dtype(dtype)
    pred_shape = tuple(pred_shape)
    if target.shape != pred_shape and target.ndim == 1 and pred_shape == (target.shape[0], 1):
        target = target.reshape(pred_shape)
    return torch.as_tensor(target.astype(numpy_dtype(dtype)), device=device)
