"""``coefs_``, ``intercepts_`` (readable and assignable, in scikit-learn's layout) and ``save``."""

from __future__ import annotations

import json
import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from twinnet import nn
from twinnet.checkpoint import save_weights


def _bias_or_zeros(layer: nn.Linear) -> np.ndarray:
    """The bias to write into; a layer without one (before a BatchNorm) takes only zeros,
    into a scratch array."""
    return np.zeros(layer.out_features, layer.weight.data.dtype) if layer.bias is None else layer.bias.data


class WeightsMixin:
    """The fitted network's weights as scikit-learn names them.

    Reading ``coefs_`` / ``intercepts_`` gives copies of the Linear weights (fan_in,
    fan_out) and biases. Assigning a list sets the weights the next ``partial_fit``, or
    ``fit`` with ``warm_start=True``, starts from; the list may be filled in after the
    assignment, item by item, as scikit-learn's own ``test_fit`` does. A plain ``fit``
    re-initialises, as scikit-learn's does. Shapes are checked when the weights are used.
    """

    @property
    def coefs_(self) -> list[np.ndarray]:
        """The Linear weights in scikit-learn's layout, one (fan_in, fan_out) per layer."""
        if "_assigned_coefs" in self.__dict__:
            return self.__dict__["_assigned_coefs"]
        return [m.weight.data.T.copy() for m in self._linears()]

    @coefs_.setter
    def coefs_(self, value: list) -> None:
        self.__dict__["_assigned_coefs"] = value

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """The Linear biases, one (fan_out,) array per layer."""
        if "_assigned_intercepts" in self.__dict__:
            return self.__dict__["_assigned_intercepts"]
        # a Linear before a BatchNorm has no bias (norm="batch"): its intercept is 0
        return [np.zeros(m.out_features, m.weight.data.dtype) if m.bias is None
                else m.bias.data.copy() for m in self._linears()]

    @intercepts_.setter
    def intercepts_(self, value: list) -> None:
        self.__dict__["_assigned_intercepts"] = value

    def _linears(self) -> list[nn.Linear]:
        return [m for m in self.model_.modules() if isinstance(m, nn.Linear)]

    def _drop_assigned_weights(self) -> None:
        self.__dict__.pop("_assigned_coefs", None)
        self.__dict__.pop("_assigned_intercepts", None)

    def _apply_assigned_weights(self) -> bool:
        """Copy assigned coefs_/intercepts_ into ``model_`` (all checked first); True if any."""
        linears = self._linears()
        copies = []
        for name, layout in (("coefs", lambda m: m.weight.data.T),
                             ("intercepts", lambda m: _bias_or_zeros(m))):
            values = self.__dict__.get(f"_assigned_{name}")
            if values is None:
                continue
            if len(values) != len(linears):
                raise ValueError(
                    f"{name}_ has {len(values)} arrays, the network has {len(linears)} layers"
                )
            for i, (value, layer) in enumerate(zip(values, linears, strict=True)):
                target = layout(layer)
                value = np.asarray(value, dtype=target.dtype)
                if value.shape != target.shape:
                    raise ValueError(
                        f"{name}_[{i}] has shape {value.shape}, layer {i} needs {target.shape}"
                    )
                copies.append((target, value))
        for target, value in copies:
            target[...] = value
        self._drop_assigned_weights()
        return bool(copies)

    def save(self, path) -> None:
        """Write ``model_``'s weights to a safetensors file (atomically).

        Tensor names are ``model_.named_parameters()``'s (``0.weight``, ...); the
        metadata records the estimator class, its parameters, ``n_features_in_`` and, for
        a classifier, ``classes_`` (as JSON strings). Load the weights back into a
        network of the same shape with ``twinnet.checkpoint.load_weights(path, model)``.
        """
        check_is_fitted(self)
        params = {
            k: v if isinstance(v, str | numbers.Number | tuple | list | None) else repr(v)
            for k, v in self.get_params().items()
        }
        metadata = {
            "estimator": type(self).__name__,
            "params": json.dumps(params, default=repr),
            "n_features_in": str(self.n_features_in_),
        }
        if hasattr(self, "classes_"):
            metadata["classes"] = json.dumps(np.asarray(self.classes_).tolist(), default=str)
        save_weights(path, self.model_, metadata)
