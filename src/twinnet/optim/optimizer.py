"""Optimizer: the base class of every optimiser (parameter groups, state, checkpoints).

An optimiser is a pure update rule over (param, grad, state) applied in place, so every
reference to ``p.data`` held elsewhere stays valid. It knows nothing about layers: it
sees a list of :class:`~twinnet.nn.parameter.Parameter` objects, optionally split into
*parameter groups* that carry their own hyperparameters, exactly like ``torch.optim``::

    opt = SGD(model.parameters(), lr=0.1)
    opt = SGD([{"params": decay, "weight_decay": 1e-4},
               {"params": no_decay, "weight_decay": 0.0}], lr=0.1, momentum=0.9)

``opt.param_groups`` is a list of dicts; a learning-rate scheduler changes
``group["lr"]`` between steps, and every step reads the hyperparameters afresh from
the group. ``opt.state`` maps each Parameter to a dict of its state (``"step"``,
moment estimates, ...), created lazily on the first step.

Checkpoints (``state_dict``) follow torch's layout and hold only NumPy arrays and plain
Python values, so a checkpoint writer can put the arrays in safetensors and the rest in
JSON, without pickle::

    {"state": {0: {"step": 3, "exp_avg": ndarray, ...}, ...},
     "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), ..., "params": [0, 1]}, ...]}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from twinnet.nn.parameter import Parameter
from twinnet.nn.placement import zeros_beside
from twinnet.optim.hyper import (
    Hyper,
    Tabled,
    bind,
    check_bool,
    check_nonnegative,
    check_real,
    check_unit_interval,
    document,
)

# the checks live with the tables (twinnet.optim.hyper); re-exported for their old callers
__all__ = ["Optimizer", "Hyper", "check_bool", "check_nonnegative", "check_real",
           "check_unit_interval", "descent_grad", "lerp_"]


class Optimizer(Tabled):
    """Base class: parameter groups, lazily created per-parameter state, checkpoints.

    A subclass states its hyperparameters once, in :attr:`hypers` (see
    :mod:`twinnet.optim.hyper`): the constructor ``Cls(params, lr, ...)``, its checks,
    ``defaults`` and every param group's entries come from that table. It also sets
    :attr:`update_rule`, which :meth:`step` applies to every parameter of every group
    with the group's hyperparameters as keyword arguments, and names the per-parameter
    state entries in :attr:`state_names`.

    Args:
        params: an iterable of Parameters, or of dicts (parameter groups) each with a
            ``"params"`` entry and optionally its own hyperparameters.
        *args, **kwargs: the hyperparameters of :attr:`hypers`, used where a group does
            not set them.
    """

    #: the names of the per-parameter state entries (``"step"``, ``"exp_avg"``, ...)
    state_names: tuple[str, ...] = ()
    #: state arrays placed beside their parameter in memory (name -> quarter page, see
    #: ``twinnet.nn.placement``), where the update rule creates them and on loading
    state_slots: dict[str, int] = {}

    def __init__(self, *args: Any, **kwargs: Any):
        # the signature is the table's: (params, lr=..., ..., *, maximize=...)
        params, self.defaults = bind(type(self), args, kwargs)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Parameter, dict[str, Any]] = {}
        self._scratch_bufs: dict[np.dtype, list[np.ndarray]] = {}

        if isinstance(params, Parameter | np.ndarray | Mapping):
            raise TypeError(
                "params must be an iterable of Parameters or of dicts (parameter groups), "
                f"got a single {type(params).__name__}; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        if sum(len(g["params"]) for g in self.param_groups) == 0:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")

    # -- parameter groups -------------------------------------------------------------
    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group (a dict with ``"params"`` and optional hyperparameters)."""
        index = len(self.param_groups)
        if not isinstance(param_group, Mapping):
            raise TypeError(
                f"param group {index} must be a dict, got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(f"param group {index} has no 'params' entry")
        unknown = sorted(set(param_group) - set(self.defaults) - {"params", "initial_lr"})
        if unknown:
            raise ValueError(
                f"param group {index} has unknown hyperparameter(s) {unknown} for "
                f"{type(self).__name__}; known: {sorted(self.defaults)}"
            )
        params = param_group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, np.ndarray | Mapping | str):
            raise TypeError(
                f"param group {index}: 'params' must be an iterable of Parameters, "
                f"got {type(params).__name__}"
            )
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"{type(self).__name__} can only optimize Parameters, but params[{i}] "
                    f"of param group {index} is {type(p).__name__}"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"param group {index} contains the same Parameter more than once")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(
                f"param group {index} shares Parameters with an earlier group; "
                "a Parameter may appear in only one group"
            )

        group = {name: param_group.get(name, default) for name, default in self.defaults.items()}
        group.update({k: v for k, v in param_group.items() if k not in group and k != "params"})
        prefix = f"param group {index}: " if index > 0 or len(param_group) > 1 else ""
        try:
            self._check_group(group)
        except (TypeError, ValueError) as err:
            raise type(err)(prefix + str(err)) from None
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate one group's hyperparameters in place, normalising them (Python floats)."""
        for h in self.hypers:
            group[h.name] = h.check(group[h.name])
        self._check_relations(group)

    def _check_relations(self, group: dict[str, Any]) -> None:
        """Constraints between hyperparameters (SGD: nesterov needs momentum); none here."""

    # -- the training-loop API --------------------------------------------------------
    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (see ``Parameter.zero_grad``)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad()

    #: the per-parameter update ``rule(w, grad, state, t1, t2, **hyperparameters)``,
    #: applied in place (e.g. ``staticmethod(sgd_update)``)
    update_rule: Callable[..., None] | None = None

    def _hyperparameters(self, group: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``update_rule`` for one group, as Python scalars
        (a scheduler or a user may have put a NumPy scalar into the group, and NumPy
        scalars would upcast float32 parameters)."""
        return {h.name: _plain(group[h.name]) for h in self.hypers}

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Update every parameter once from its ``.grad``; returns ``closure()`` if given."""
        if self.update_rule is None:
            raise NotImplementedError(f"{type(self).__name__} has no update_rule")
        loss = None if closure is None else closure()
        for group in self.param_groups:
            hyper = self._hyperparameters(group)
            for p in group["params"]:
                t1, t2 = self._scratch(p)
                self.update_rule(p.data, p.grad, self.state.setdefault(p, {}), t1, t2, **hyper)
        return loss

    def _scratch(self, p: Parameter) -> tuple[np.ndarray, np.ndarray]:
        """Two work arrays shaped like ``p`` (views of buffers shared by all parameters).

        The buffers are allocated once per dtype at the size of the largest parameter,
        so a step allocates no parameter-sized temporaries.
        """
        bufs = self._scratch_bufs.get(p.data.dtype)
        if bufs is None or bufs[0].size < p.data.size:
            size = max(
                q.data.size
                for g in self.param_groups
                for q in g["params"]
                if q.data.dtype == p.data.dtype
            )
            size = max(size, p.data.size)
            bufs = [np.empty(size, dtype=p.data.dtype) for _ in range(2)]
            self._scratch_bufs[p.data.dtype] = bufs
        n = p.data.size
        return bufs[0][:n].reshape(p.data.shape), bufs[1][:n].reshape(p.data.shape)

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A copy of the optimiser state, keyed by parameter position (torch's layout).

        ``{"state": {index: {name: ndarray | int | float}}, "param_groups": [{hyper...,
        "params": [index, ...]}]}``; indices count parameters across groups in order.
        Arrays are copies, so the dict is a snapshot. Only ndarrays and plain Python
        values (numbers, bools, strings, lists, tuples) appear: no pickle needed.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: _plain(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                s = self.state.get(p)
                if s:
                    state[index[id(p)]] = {
                        k: v.copy() if isinstance(v, np.ndarray) else _plain(v)
                        for k, v in s.items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters and state saved by :meth:`state_dict`.

        Everything is validated before anything changes (number of groups and of
        parameters per group, state indices, array shapes, hyperparameter values).
        Arrays are copied in place into existing state arrays where they exist (cast to
        the parameter's dtype), otherwise new arrays are created. Integer keys may
        arrive as strings (JSON). Afterwards training continues bit-identically.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{name}.load_state_dict expects a dict, got {type(state_dict).__name__}"
            )
        missing = [k for k in ("state", "param_groups") if k not in state_dict]
        if missing:
            raise ValueError(f"optimizer state dict is missing {missing}")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter group(s), "
                f"{name} has {len(self.param_groups)}"
            )

        by_index: dict[int, Parameter] = {}
        new_groups = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            saved_params = list(saved.get("params", []))
            if len(saved_params) != len(group["params"]):
                raise ValueError(
                    f"parameter group {gi} has {len(saved_params)} parameter(s) in the loaded "
                    f"state dict, {len(group['params'])} in {name}"
                )
            for idx, p in zip(saved_params, group["params"], strict=True):
                by_index[int(idx)] = p
            new_group = {k: v for k, v in group.items() if k != "params"}
            new_group.update({k: v for k, v in saved.items() if k != "params"})
            try:
                self._check_group(new_group)
            except (TypeError, ValueError) as err:
                raise type(err)(f"loaded parameter group {gi}: {err}") from None
            new_group["params"] = group["params"]
            new_groups.append(new_group)

        new_state: dict[Parameter, dict[str, Any]] = {}
        for key, saved in dict(state_dict["state"]).items():
            idx = int(key)
            if idx not in by_index:
                raise ValueError(f"loaded state dict has state for unknown parameter index {idx}")
            p = by_index[idx]
            entry = {}
            for k, v in dict(saved).items():
                if self.state_names and k not in self.state_names:
                    raise ValueError(
                        f"state {k!r} of parameter {idx} is not a state of {name}; "
                        f"known: {list(self.state_names)}"
                    )
                if isinstance(v, np.ndarray | list):
                    v = np.asarray(v)
                    if v.shape != p.data.shape:
                        raise ValueError(
                            f"state {k!r} of parameter {idx}: loaded shape {v.shape}, "
                            f"parameter has shape {p.data.shape}"
                        )
                elif k == "step":
                    if float(v) != int(float(v)) or int(float(v)) < 0:
                        raise ValueError(
                            f"state 'step' of parameter {idx} must be an int >= 0, got {v!r}"
                        )
                    v = int(float(v))
                entry[k] = v
            new_state[p] = entry

        # All checks passed: commit.
        for group, new_group in zip(self.param_groups, new_groups, strict=True):
            group.clear()
            group.update(new_group)
        old_state = self.state
        self.state = {}
        for p, entry in new_state.items():
            old = old_state.get(p, {})
            s = {}
            for k, v in entry.items():
                if isinstance(v, np.ndarray):
                    cur = old.get(k)
                    if isinstance(cur, np.ndarray) and cur.shape == v.shape:
                        cur[...] = v  # in place: references to the state stay valid
                        s[k] = cur
                    elif k in self.state_slots:  # placed beside the parameter, as the update places it
                        s[k] = zeros_beside(p.data, self.state_slots[k])
                        s[k][...] = v
                    else:
                        s[k] = np.array(v, dtype=p.data.dtype, copy=True)
                else:
                    s[k] = v
            self.state[p] = s

    # -- display --------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"  param group {i}: {len(group['params'])} parameter(s)")
            for k, v in group.items():
                if k != "params":
                    lines.append(f"    {k}: {v}")
        lines.append(")")
        return "\n".join(lines)


document(Optimizer)


def _plain(value: Any) -> Any:
    """Plain-Python copy of a hyperparameter or scalar state value (JSON-friendly)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def descent_grad(
    w: np.ndarray, grad: np.ndarray, weight_decay: float, maximize: bool, out: np.ndarray
) -> np.ndarray:
    """The gradient a step descends, torch's prelude: ``-grad`` if maximising, plus the
    coupled L2 term ``wd * w``; written into ``out`` unless it is ``grad`` itself."""
    g = grad
    if maximize:
        # g = -grad (torch negates first, before the weight decay)
        g = np.negative(grad, out=out)
    if weight_decay != 0:
        # g = g + wd * w
        np.multiply(w, weight_decay, out=out)
        if maximize:
            out -= grad
        else:
            out += grad
        g = out
    return g


def lerp_(start: np.ndarray, end: np.ndarray, weight: float, tmp: np.ndarray) -> None:
    """``start += weight * (end - start)`` in place, in the two-branch form torch uses.

    torch's ``lerp_`` computes ``start + w*(end-start)`` for ``|w| < 0.5`` and
    ``end - (end-start)*(1-w)`` otherwise (more accurate near w = 1). ``tmp`` is scratch.
    """
    np.subtract(end, start, out=tmp)  # end - start
    if abs(weight) < 0.5:
        tmp *= weight
        start += tmp
    else:
        tmp *= weight - 1.0
        np.add(end, tmp, out=start)
