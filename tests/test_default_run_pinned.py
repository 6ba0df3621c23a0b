"""The default `twinnet train` run, byte for byte: a pin against silent changes to the loop.

The expected checksums are of the default NumPy run (``TrainConfig()``: MNIST,
784-512-256-10 ReLU, Adam 1e-3, cosine schedule, 8 epochs, batch 128, seed 0, float32)
computed with the code from BEFORE the training loop was rewritten into one Trainer with
engine steppers (commit 4cae918), on this machine (OpenBLAS), with ONE BLAS thread:
OpenBLAS's results depend on its thread count (the same run with 2 threads gives another
history.csv), so the test limits BLAS to one thread to mean the same on every machine.

- ``history.csv``: the SHA-256 of the file's bytes.
- ``model.safetensors``: the SHA-256 of every tensor (name, dtype, shape, bytes, sorted by
  name) and of the metadata as sorted JSON. Not of the raw file: the safetensors library
  writes the ``__metadata__`` entries in its hash map's order, which changes from process
  to process (three saves of one dict in three processes gave three orders), so the raw
  bytes of the same weights and metadata differ between any two runs, old code or new.

A refactoring of the loop that changes any number, name or metadata of the default run
fails here. The expected values are the old code's output, not this code's.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from twinnet.checkpoint import load_tensors
from twinnet.config import TrainConfig
from twinnet.train.run import run_training

HISTORY_SHA256 = "703f98d2414cb1723ddd7322ba991fb486059dc85bfc13af2136c3185b9a4138"
MODEL_SHA256 = "d20fc23fbaa9771dd5fdf4e275897791f4694cde211a00028755b5b92254c63c"


def model_sha256(path: Path) -> str:
    """Checksum of a weights file's content: tensors (sorted) and metadata (sorted JSON)."""
    tensors, metadata = load_tensors(path)
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    h.update(json.dumps(metadata, sort_keys=True).encode())
    return h.hexdigest()


def _have_mnist() -> bool:
    root = Path(os.environ.get("TWINNET_DATA", "/nonexistent")) / "mnist"
    return (root / "train-images-idx3-ubyte.gz").exists()


@pytest.mark.slow
@pytest.mark.skipif(not _have_mnist(), reason="needs MNIST under $TWINNET_DATA")
def test_default_numpy_run_is_byte_identical_to_the_code_before_the_one_loop(tmp_path):
    out = tmp_path / "run"
    with threadpool_limits(1):
        result = run_training(TrainConfig(), out=out, progress=False, log=lambda *a: None)
    assert result.status == "completed"
    assert hashlib.sha256((out / "history.csv").read_bytes()).hexdigest() == HISTORY_SHA256
    assert model_sha256(out / "model.safetensors") == MODEL_SHA256
