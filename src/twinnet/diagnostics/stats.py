"""Per-layer statistics of a network on one probe batch.

One probe forward and backward pass through the model sees, at every *leaf* module
(a module without children: ``Linear``, ``ReLU``, ``BatchNorm1d``, ...), its input
``x``, its output ``y`` and the gradient of the loss with respect to its input
``dL/dx``, and reduces them at once to the numbers below. The NumPy engine is
probed through ``nn.Module`` forward and full backward hooks (PyTorch's semantics);
``torch_hooks.py`` registers the same hooks on a ``torch.nn.Module``; both hand the
same arrays to the same functions (:mod:`twinnet.diagnostics.measures`), so a model
and its PyTorch twin report the same numbers.

=====================  ==============================================================
statistic              meaning (per leaf module, on the probe batch)
=====================  ==============================================================
``act_mean``           mean of the output over every element
``act_std``            standard deviation (population, ddof=0) of the output
``dead_fraction``      ReLU family: fraction of units (output features) whose output
                       is <= 0 for EVERY probe example (for ReLU: exactly 0, and no
                       gradient reaches the unit's weights; for LeakyReLU: only the
                       leak slope carries gradient)
``dead_units``         the same as a count
``saturated_fraction`` Sigmoid/Tanh: fraction of units that are saturated on at least
                       99% of the probe examples; an example is saturated where the
                       local derivative is below 0.01 (sigmoid: y(1-y) < 0.01, i.e.
                       y < 0.0101 or y > 0.9899; tanh: 1-y^2 < 0.01, i.e. |y| > 0.995)
``saturated_units``    the same as a count
``saturated_share``    share of all (example, unit) outputs that are saturated
``grad_input_norm``    ||dL/dx||, Frobenius norm over the batch, L the mean probe loss;
                       not for a layer whose input is the probe batch itself: the
                       gradient with respect to the data says nothing about training,
                       and the engine skips that product (``Linear.input_grad``)
``<p>_norm``           ||p|| for each own parameter ``p`` (``weight``, ``bias``, ...)
``<p>_grad_norm``      ||dL/dp|| on the probe batch
``<p>_update_ratio``   ||p_after - p_before|| / ||p_before||: the size of the last
                       optimiser step relative to the parameter (``lr * |update| /
                       |param|`` for plain SGD); only when a snapshot from just before
                       that step is given; NaN when ||p_before|| = 0
=====================  ==============================================================

Rows for the whole model use the layer name ``(model)``: ``probe_loss`` and
``grad_norm`` (global gradient norm over all parameters). Activation layers also get
a histogram of their pre-activation (their input), see :class:`ProbeStats`.

Probing never changes training: parameter gradients, buffers (BatchNorm running
statistics), dropout generators and every layer's cached arrays are restored
afterwards, and the optimiser is never touched. The probe runs in the model's current
mode (train mode during training, so BatchNorm uses batch statistics and Dropout
drops), which is the network the optimiser sees.
"""


from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from twinnet.diagnostics.measures import (  # noqa: F401 - the public names live here too
    ACTIVATIONS,
    MODEL,
    RELU_FAMILY,
    SATURATED_SHARE,
    SATURATING,
    SATURATION_DERIVATIVE,
    LayerCapture,
    ProbeStats,
    _check_bins,
    assemble,
    histogram,
    layer_labels,
    layer_statistics,
    output_statistics,
    update_ratio,
)
from twinnet.nn.module import Sequential


# -- the NumPy engine -------------------------------------------------------------------
def is_torch_module(obj) -> bool:
    """True for a ``torch.nn.Module`` (checked without importing torch)."""
    return any(
        c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__
    )


def leaf_modules(model) -> list[tuple[str, object]]:
    """(name, module) of every module without children, in ``named_modules`` order."""
    return [(name or MODEL, m) for name, m in model.named_modules() if not m._modules]


def snapshot_parameters(model) -> dict[str, np.ndarray]:
    """Copies of every parameter value, keyed by full name (for update ratios); a torch
    module gives NumPy copies of its parameters."""
    if is_torch_module(model):
        from twinnet.diagnostics.torch_hooks import torch_snapshot

        return torch_snapshot(model)
    return {name: p.data.copy() for name, p in model.named_parameters()}


@contextmanager
def preserved(model, loss_fn=None):
    """Run a probe pass inside this block; afterwards the model and the loss are exactly
    as before: every ``param.grad`` (the original array objects), buffer contents,
    dropout generator states and every module attribute (layer caches, masks). Inside,
    each ``param.grad`` is a fresh zero array, so the probe's gradients are its own."""
    modules = [m for _, m in model.named_modules()]
    attrs = [dict(m.__dict__) for m in modules]
    loss_attrs = (
        dict(loss_fn.__dict__) if loss_fn is not None and hasattr(loss_fn, "__dict__") else None
    )
    buffers = [
        (m, name, np.array(getattr(m, name), copy=True)) for m in modules for name in m._buffers
    ]
    rngs = [
        (m.rng, m.rng.bit_generator.state)
        for m in modules
        if isinstance(getattr(m, "rng", None), np.random.Generator)
    ]
    params = model.parameters()
    grads = [p.grad for p in params]
    for p in params:
        p.grad = np.zeros_like(p.data)
    try:
        yield
    finally:
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        for rng, state in rngs:
            rng.bit_generator.state = state
        for m, saved in zip(modules, attrs, strict=True):
            m.__dict__.clear()
            m.__dict__.update(saved)
        for m, name, value in buffers:
            current = getattr(m, name)
            if isinstance(current, np.ndarray):
                current[...] = value
            else:
                object.__setattr__(m, name, type(current)(value))
        if loss_attrs is not None:
            loss_fn.__dict__.clear()
            loss_fn.__dict__.update(loss_attrs)


def _capture_hooks(module, cap: LayerCapture, data: np.ndarray) -> list:
    """Forward and full backward hooks that feed ``cap``; returns their handles. A module
    whose input is ``data`` itself gets no ``grad_input_norm`` (as with torch, where the
    data needs no gradient)."""
    sees_data = [False]

    def forward_hook(_module, args, output):
        cap.see_forward(args[0], output)
        sees_data[0] = args[0] is data

    def backward_hook(_module, grad_input, _grad_output):
        if not sees_data[0]:
            cap.see_backward(grad_input[0])

    return [
        module.register_forward_hook(forward_hook),
        module.register_full_backward_hook(backward_hook),
    ]


def collect_stats(
    model,
    loss_fn,
    x,
    y,
    histogram_bins: int = 30,
    before: dict[str, np.ndarray] | None = None,
) -> ProbeStats:
    """Per-layer statistics of ``model`` on the probe batch (x, y), without side effects.

    ``model``: a twinnet Module (or a ``torch.nn.Module`` with a torch ``loss_fn``: then
    :func:`twinnet.diagnostics.torch_hooks.diagnose_torch` does the work). ``before``:
    :func:`snapshot_parameters` taken just before the last optimiser step, to add the
    ``<p>_update_ratio`` rows. A module called twice in one forward pass reports its
    last call.

    Shapes: x (B, in_features); y as ``loss_fn`` expects it.
    """
    if is_torch_module(model):
        from twinnet.diagnostics.torch_hooks import diagnose_torch

        return diagnose_torch(model, x, y, loss_fn, histogram_bins=histogram_bins, before=before)
    _check_bins(histogram_bins)
    x = np.asarray(x)
    with preserved(model, loss_fn):
        first = model[0] if isinstance(model, Sequential) and len(model) else None
        if hasattr(first, "input_grad"):
            first.input_grad = False  # as in Trainer.fit: skip dL/d(data) (undone by preserved)
        captures, handles = [], []
        for name, module in leaf_modules(model):
            cap = LayerCapture(name, type(module).__name__, histogram_bins)
            handles += _capture_hooks(module, cap, x)
            captures.append((cap, module))
        try:
            with np.errstate(all="ignore"):
                out = model(x)
                loss = loss_fn(out, y)
                model.backward(loss_fn.backward())
        finally:
            for handle in handles:
                handle.remove()
        for cap, module in captures:
            cap.params = {pname: (p.data, p.grad) for pname, p in module._parameters.items()}
        return assemble([c for c, _ in captures], loss, before, type(model).__name__)


