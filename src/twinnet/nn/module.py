"""Module: the base class of every layer, and Sequential, a chain of layers.

A module owns parameters (trainable, with gradients), buffers (state that is saved but
not trained, like BatchNorm's running mean) and child modules. Like PyTorch, these are
registered simply by assigning them as attributes, and they get dotted names from the
attribute path (``0.weight``, ``block.norm.bias``).

Every module implements two methods:

- ``forward(x)`` computes the output and caches what backward will need;
- ``backward(grad_out)`` receives dL/d(output), adds dL/d(param) into each
  ``param.grad`` and returns dL/d(input).

Hooks, with PyTorch's signatures: ``register_forward_hook(hook)`` calls
``hook(module, args, output)`` after every ``module(x)`` (``args`` is ``(x,)``; a
returned value replaces the output), and ``register_full_backward_hook(hook)`` calls
``hook(module, grad_input, grad_output)`` after every ``backward`` (tuples
``(dL/dx,)`` and ``(dL/dy,)``; ``grad_input`` is ``(None,)`` when no input gradient is
computed, as for a first ``Linear`` with ``input_grad = False``; a returned tuple
replaces ``grad_input``). Both return a handle whose ``remove()`` takes the hook off.
Backward hooks fire for the ``backward`` a layer defines: ``Module.__init_subclass__``
wraps it once per class, and the wrapper costs one dictionary check when no hook is
registered.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from types import MappingProxyType

import numpy as np

from twinnet.nn.parameter import Parameter


class RemovableHandle:
    """What ``register_*_hook`` returns: ``handle.remove()`` takes the hook off (twice is
    harmless); also a context manager that removes it on exit."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self.hooks, self.id = hooks, next(RemovableHandle._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _with_backward_hooks(backward: Callable) -> Callable:
    """``backward`` that then calls the module's full backward hooks (see the module
    docstring). A subclass calling ``super().backward`` fires the hooks once."""

    @functools.wraps(backward)
    def hooked(self, grad_out, *args, **kwargs):
        hooks = self._backward_hooks
        if not hooks or self.__dict__.get("_in_backward"):
            return backward(self, grad_out, *args, **kwargs)
        object.__setattr__(self, "_in_backward", True)
        try:
            grad_in = backward(self, grad_out, *args, **kwargs)
        finally:
            object.__setattr__(self, "_in_backward", False)
        for hook in tuple(hooks.values()):
            result = hook(self, (grad_in,), (grad_out,))
            if result is not None:
                grad_in = result[0]
        return grad_in

    return hooked


class Module:
    """Base class for layers and models (same API shape as ``torch.nn.Module``)."""

    # no hooks: class-level empty tables (read-only); registering gives the instance its own
    _forward_hooks = MappingProxyType({})
    _backward_hooks = MappingProxyType({})

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__:
            cls.backward = _with_backward_hooks(cls.__dict__["backward"])

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() "
                "before assigning attributes"
            )
        if name in self._buffers and not isinstance(value, Parameter | Module):
            table, entry = self._buffers, True  # assigning to a buffer keeps it a buffer
        elif isinstance(value, Parameter):
            table, entry = self._parameters, value
        elif isinstance(value, Module):
            table, entry = self._modules, value
        else:
            table, entry = None, None
        # forget the name in the other tables; in its own table a replaced entry keeps its
        # place (as in torch), so names and Sequential's order survive reassignment
        for other in (self._parameters, self._buffers, self._modules):
            if other is not table:
                other.pop(name, None)
        if table is not None:
            table[name] = entry
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep ``value`` as saved, non-trainable state (in ``state_dict``, not in ``parameters``)."""
        object.__setattr__(self, name, value)
        self._buffers[name] = True

    # -- the two methods every layer implements ----------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output for input ``x`` and cache what ``backward`` will need."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Given dL/d(output) of the last ``forward``, add dL/d(param) into every
        ``param.grad`` (accumulating, like PyTorch) and return dL/d(input)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``module(x)`` is ``module.forward(x)``, then the forward hooks."""
        y = self.forward(x)
        if self._forward_hooks:
            for hook in tuple(self._forward_hooks.values()):
                result = hook(self, (x,), y)
                if result is not None:
                    y = result
        return y

    # -- hooks (PyTorch's signatures) -------------------------------------------------
    def _hook_table(self, name: str) -> dict:
        table = self.__dict__.get(name)
        if table is None:
            table = {}
            object.__setattr__(self, name, table)
        return table

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``module(x)``; ``args == (x,)``.
        A non-None return value replaces the output. Hooks run in registration order."""
        table = self._hook_table("_forward_hooks")
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle

    def register_full_backward_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` after every ``backward``:
        ``grad_input == (dL/dx,)`` (``(None,)`` when the layer computes no input
        gradient), ``grad_output == (dL/dy,)``. A returned tuple replaces ``grad_input``.
        Hooks run in registration order."""
        table = self._hook_table("_backward_hooks")
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle

    # -- traversal ----------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and all descendants, depth first, with dotted names ('' for self)."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(name, Parameter) pairs, named as PyTorch names them (``0.weight``, ``2.bias``)."""
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> list[Parameter]:
        """Every Parameter of this module and its descendants, in ``named_parameters`` order."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, mod in self.named_modules(prefix):
            for name in mod._buffers:
                yield (f"{mod_name}.{name}" if mod_name else name), getattr(mod, name)

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # -- modes --------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant (Dropout, BatchNorm care)."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode on this module and every descendant; same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set the gradient of every parameter to zero (see ``Parameter.zero_grad``)."""
        for p in self.parameters():
            p.zero_grad()

    # -- state --------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed by dotted name."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: np.array(b, copy=True) for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy ``state`` into this module's arrays in place.

        With ``strict`` (the default) the names must match exactly; shapes must always
        match. One ``ValueError`` lists every missing, unexpected and mis-shaped tensor.
        """
        targets: dict[str, tuple[Module, str, bool]] = {}
        for mod_name, mod in self.named_modules():
            for name in mod._parameters:
                targets[f"{mod_name}.{name}" if mod_name else name] = (mod, name, True)
            for name in mod._buffers:
                targets[f"{mod_name}.{name}" if mod_name else name] = (mod, name, False)

        problems = []
        if strict:
            missing = sorted(set(targets) - set(state))
            unexpected = sorted(set(state) - set(targets))
            problems += [f"missing tensor {k!r}" for k in missing]
            problems += [f"unexpected tensor {k!r}" for k in unexpected]
        for key, value in state.items():
            if key not in targets:
                continue
            mod, name, is_param = targets[key]
            current = mod._parameters[name].data if is_param else getattr(mod, name)
            value = np.asarray(value)
            if value.shape != np.shape(current):
                problems.append(
                    f"{key!r}: checkpoint has shape {value.shape}, model has {np.shape(current)}"
                )
        if problems:
            raise ValueError(
                f"cannot load state into {type(self).__name__}: " + "; ".join(problems)
            )
        for key, value in state.items():
            if key not in targets:
                continue
            mod, name, is_param = targets[key]
            if is_param:
                mod._parameters[name].data[...] = value
            else:
                current = getattr(mod, name)
                if isinstance(current, np.ndarray):
                    current[...] = value
                else:  # a scalar buffer such as a step counter
                    object.__setattr__(mod, name, type(current)(np.asarray(value)))

    # -- display ------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)


class Sequential(Module):
    """Layers applied one after another; backward runs them in reverse.

    Children are named ``0``, ``1``, ... so parameter names match
    ``torch.nn.Sequential`` (``0.weight``, ``0.bias``, ``2.weight``, ...).
    """

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential expects Module instances, got {type(layer).__name__} at position {i}"
                )
            setattr(self, str(i), layer)

    @property
    def layers(self) -> list[Module]:
        return list(self._modules.values())

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Run every layer's backward in reverse and return dL/d(input).

        ``input_grad=False``: the caller needs no dL/d(input) (the input is the data), so
        None is returned, and a first layer with an ``input_grad`` switch (``Linear``,
        ``Conv2d``) skips that product for this call; parameter gradients are the same.
        """
        layers = list(self._modules.values())
        first = layers[0] if layers and not input_grad and hasattr(layers[0], "input_grad") else None
        was = first.input_grad if first is not None else None
        if first is not None:
            first.input_grad = False
        try:
            for layer in reversed(layers):
                grad_out = layer.backward(grad_out)
        finally:
            if first is not None:
                first.input_grad = was
        return grad_out if input_grad else None


def check_input(
    layer: Module, x, features: int | None = None, ndim: int | None = 2, dtype=None
) -> None:
    """Raise a clear error when ``x`` cannot go into ``layer``.

    ``features`` is the size the last axis must have (None: any); ``ndim`` the number
    of axes (None: at least 1); ``dtype`` the layer's parameter dtype, which ``x`` must
    have (None: float32 or float64), so float32 is never silently upcast. Other floats
    (float16, longdouble) are refused: scipy's special functions would return float64
    for them. Cheap enough to run on every forward.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer!r} expects a numpy array, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{layer!r} expects a floating-point array (float32 or float64), got dtype {x.dtype}; "
            "convert with x.astype(np.float32)"
        )
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{layer!r} has {np.dtype(dtype)} parameters but got {x.dtype} input; "
            f"convert with x.astype(np.{np.dtype(dtype)})"
        )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(
            f"{layer!r} expects input of shape (batch, {features if features else 'features'}), "
            f"got shape {x.shape}"
        )
    if x.ndim == 0:
        raise ValueError(f"{layer!r} expects an array of at least one axis, got a 0-d array")
    if features is not None and x.shape[-1] != features:
        raise ValueError(
            f"{layer!r} expects {features} features in the last axis, got input of shape {x.shape}"
        )


def check_cached(layer: Module, cache) -> None:
    """Raise when backward is called without a forward to take its cache from."""
    if cache is None:
        raise RuntimeError(f"{layer!r}: backward called before forward (nothing cached)")


def check_grad(layer: Module, grad_out, shape: tuple[int, ...]) -> None:
    """Raise unless ``grad_out`` (dL/dy) is an array of the last output's ``shape``:
    NumPy would broadcast a (1, d) gradient against a (B, d) output without a word."""
    if not isinstance(grad_out, np.ndarray):
        raise TypeError(f"{layer!r}: backward expects dL/dy as a numpy array, got {type(grad_out).__name__}")
    if grad_out.shape != shape:
        raise ValueError(
            f"{layer!r}: backward expects dL/dy of the output's shape {shape}, got shape {grad_out.shape}"
        )
