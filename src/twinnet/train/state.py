"""Saving and restoring the complete training state in one safetensors file.

The state of a run is a nested structure of numbers, strings and NumPy arrays (model
weights, optimiser moments, RNG states, counters, history). ``save_state`` moves every
array into the safetensors tensor table under a path-like key and keeps the rest as a
JSON document in the file's metadata, so resuming needs no pickle and the file is
written atomically in one rename.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from twinnet.checkpoint import CheckpointError, load_tensors, save_tensors

_TENSOR_TAG = "__tensor__"
_TUPLE_TAG = "__tuple__"


def _split(obj, path: str, tensors: dict):
    """Replace arrays in ``obj`` by {"__tensor__": key}; collect them in ``tensors``."""
    if isinstance(obj, np.ndarray):
        tensors[path] = obj
        return {_TENSOR_TAG: path}
    if isinstance(obj, dict):
        return {str(k): _split(v, f"{path}/{k}", tensors) for k, v in obj.items()} | (
            {"__intkeys__": True} if obj and all(isinstance(k, int) for k in obj) else {}
        )
    if isinstance(obj, tuple):
        return {_TUPLE_TAG: [_split(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class _BadState(ValueError):
    """A state document that ``_split`` cannot have written (the file was edited)."""


def _join(obj, tensors: dict, where: str = "state"):
    """Undo ``_split``; ``where`` is the path of ``obj``, for the error message."""
    if isinstance(obj, dict):
        if _TENSOR_TAG in obj:
            key = obj[_TENSOR_TAG]
            if not isinstance(key, str) or key not in tensors:
                raise _BadState(f"{where} refers to a missing tensor {key!r}")
            return tensors[key]
        if _TUPLE_TAG in obj:
            if not isinstance(obj[_TUPLE_TAG], list):
                raise _BadState(f"{where} is a malformed tuple")
            return tuple(_join(v, tensors, f"{where}/{i}") for i, v in enumerate(obj[_TUPLE_TAG]))
        intkeys = obj.get("__intkeys__", False)
        out = {}
        for k, v in obj.items():
            if k == "__intkeys__":
                continue
            if intkeys:
                if not k.lstrip("-").isdigit():
                    raise _BadState(f"{where} should have integer keys, got {k!r}")
                k = int(k)
            out[k] = _join(v, tensors, f"{where}/{k}")
        return out
    if isinstance(obj, list):
        return [_join(v, tensors, f"{where}/{i}") for i, v in enumerate(obj)]
    return obj


def save_state(path: str | Path, state: dict) -> None:
    """Write a nested state (arrays anywhere inside) atomically to a safetensors file."""
    tensors: dict[str, np.ndarray] = {}
    doc = _split(state, "state", tensors)
    save_tensors(path, tensors, metadata={"format": "twinnet-train-state", "state": json.dumps(doc)})


def load_state(path: str | Path) -> dict:
    """Read a state written by ``save_state`` (validated header, no pickle)."""
    tensors, metadata = load_tensors(path)
    if metadata.get("format") != "twinnet-train-state" or "state" not in metadata:
        raise CheckpointError(f"{path}: not a twinnet training-state file")
    try:
        doc = json.loads(metadata["state"])
    except (json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise CheckpointError(f"{path}: training state metadata is not valid JSON") from None
    try:
        return _join(doc, tensors)
    except _BadState as e:
        raise CheckpointError(f"{path}: training state {e}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: training state is nested too deeply") from None
