"""Checkpoints in safetensors format: weights and training state, never pickle.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
describing each tensor (dtype, shape, byte offsets) plus an optional string-to-string
``__metadata__``, then the raw tensor bytes. Nothing in it can execute code. Before a
single tensor byte is read we validate the header ourselves: its size (a crafted
length cannot make us allocate gigabytes), that it is JSON, that every dtype, shape
and offset is consistent with the file size, and, when a model is given, that names,
shapes and dtypes match the model. Files are written atomically (temp file, fsync,
rename), so a crash never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from twinnet.utils import atomic_write

# a header is a few KB for any model twinnet builds; 16 MB is far beyond that
MAX_HEADER_BYTES = 16 * 1024 * 1024

_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U64": np.uint64,
    "U32": np.uint32,
    "U16": np.uint16,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


class CheckpointError(ValueError):
    """A checkpoint file that is not a valid safetensors file or does not fit the model."""


def read_header(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """Validate the header of a safetensors file; return (tensor entries, metadata).

    Raises CheckpointError naming the file and what is wrong. Reads at most
    8 + MAX_HEADER_BYTES bytes.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, too short)")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER_BYTES or n > size - 8:
                raise CheckpointError(
                    f"{path}: not a safetensors file (header length {n} bytes is larger than "
                    f"{'the file' if n > size - 8 else 'the 16 MB limit'})"
                )
            raw = f.read(n)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint not found: {path}") from None
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        # RecursionError: a crafted header of deeply nested brackets
        raise CheckpointError(f"{path}: not a safetensors file (header is not JSON)") from None
    except _DuplicateKey as e:
        # two entries under one name: a reader taking the other one would see another tensor
        raise CheckpointError(f"{path}: header names {e} twice") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (header is not a JSON object)")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise CheckpointError(f"{path}: metadata must map strings to strings")
    data_size = size - 8 - n
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise CheckpointError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(o) for o in offsets)
            or not offsets[0] <= offsets[1] <= data_size
        ):
            raise CheckpointError(
                f"{path}: tensor {name!r} has byte offsets {offsets!r} outside the "
                f"{data_size} bytes of data (truncated file?)"
            )
        expected = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
        if offsets[1] - offsets[0] != expected:
            raise CheckpointError(
                f"{path}: tensor {name!r} claims shape {shape} ({expected} bytes of {dtype}) "
                f"but spans {offsets[1] - offsets[0]} bytes"
            )
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    end = 0
    for start, stop, name in spans:
        if start != end:
            raise CheckpointError(f"{path}: tensor {name!r} overlaps or leaves a gap in the data")
        end = stop
    if end != data_size:
        raise CheckpointError(f"{path}: {data_size - end} bytes of data belong to no tensor")
    return header, metadata


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """json object hook: a dict, refusing a key that appears twice."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(repr(key))
        out[key] = value
    return out


def _is_count(v) -> bool:
    """A JSON integer >= 0 (JSON true/false are not numbers, though Python's bool is an int)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def load_tensors(
    path: str | os.PathLike, expected: dict[str, np.ndarray] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read every tensor of a safetensors file after validating its header.

    With ``expected`` (name -> array, e.g. a model's ``state_dict()``), names, shapes
    and dtypes must match exactly; one CheckpointError lists every mismatch.
    """
    header, metadata = read_header(path)
    if expected is not None:
        problems = []
        for name in sorted(set(expected) - set(header)):
            problems.append(f"missing {name!r}")
        for name in sorted(set(header) - set(expected)):
            problems.append(f"unexpected {name!r}")
        for name in sorted(set(header) & set(expected)):
            want = np.asarray(expected[name])
            shape, dtype = tuple(header[name]["shape"]), np.dtype(_DTYPES[header[name]["dtype"]])
            if shape != want.shape:
                problems.append(f"{name!r} has shape {shape} in the file, {want.shape} in the model")
            elif dtype != want.dtype:
                problems.append(f"{name!r} has dtype {dtype} in the file, {want.dtype} in the model")
        if problems:
            raise CheckpointError(
                f"{path} does not fit this model (different architecture?): " + "; ".join(problems)
            )
    from safetensors import SafetensorError, safe_open

    # the header is known to be sane now; the library reads the data. Should it still
    # disagree (or the file change under us), that is a bad file, not a crash.
    try:
        with safe_open(str(path), framework="np") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except SafetensorError as e:
        raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from None
    return tensors, metadata


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` (and string ``metadata``) to ``path`` atomically in safetensors format."""
    from safetensors.numpy import save

    # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them shape (1,))
    arrays = {k: np.require(v, requirements="C") for k, v in tensors.items()}
    atomic_write(path, save(arrays, metadata=metadata))  # also removes orphan temp files


def save_weights(path: str | os.PathLike, model, metadata: dict[str, str] | None = None) -> None:
    """Save a model's parameters and buffers, named as ``named_parameters()`` gives them."""
    save_tensors(path, model.state_dict(), metadata)


def load_weights(path: str | os.PathLike, model) -> dict[str, str]:
    """Load weights saved by ``save_weights`` into ``model`` in place; return the metadata.

    The file is validated against the model first (names, shapes, dtypes).
    """
    tensors, metadata = load_tensors(path, expected=model.state_dict())
    model.load_state_dict(tensors)
    return metadata


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (validated header, no tensor read)."""
    return read_header(path)[1]
