"""The default `twinnet train` run, byte for byte: a pin against silent changes to the loop.

The expected checksums are of the default NumPy run (``TrainConfig()``: MNIST,
784-512-256-10 ReLU, Adam 1e-3, cosine schedule, 8 epochs, batch 128, seed 0, float32)
computed with the code from BEFORE the training loop was rewritten into one Trainer with
engine steppers (commit 4cae918), on this machine (OpenBLAS), with ONE BLAS thread:
OpenBLAS's results depend on its thread count (the same run with 2 threads gives another
history.csv), so the test limits BLAS to one thread to mean the same on every machine.

- ``history.csv``: the SHA-256 of the file's bytes.
- ``model.safetensors``: the SHA-256 of every tensor (name, dtype, shape, bytes, sorted by
  name); of the metadata but its config, as sorted JSON; and of the saved config as
  sorted JSON, leaving out the keys added since (``model``, issue 20's CNN runs, which
  must then hold its default "mlp"). Not of the raw file: the safetensors library writes
  the ``__metadata__`` entries in its hash map's order, which changes from process to
  process (three saves of one dict in three processes gave three orders), so the raw
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
TENSORS_SHA256 = "fc54c852da5a718d19ead1496092de7328c306e54b2d5c480bcf1c2b706b7f27"
METADATA_SHA256 = "9c36c7a6688bcfc695953744230110405ef57f4049bcefa0a7f709a97281d591"  # all but config
CONFIG_SHA256 = "341d3bd6bd79f3a82c0b8376b9569bc1ae6f53421396a526e4080f9d935295cd"
NEW_CONFIG_KEYS = {"model": "mlp"}  # keys added to TrainConfig since 4cae918, with their defaults


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model_checksums(path: Path) -> dict[str, str]:
    """Checksums of a weights file's content: tensors (sorted), metadata, config."""
    tensors, metadata = load_tensors(path)
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    config = json.loads(metadata["config"])
    for key, default in NEW_CONFIG_KEYS.items():
        assert config.pop(key) == default, key
    return {
        "tensors": h.hexdigest(),
        "metadata": _sha(json.dumps({k: v for k, v in metadata.items() if k != "config"}, sort_keys=True)),
        "config": _sha(json.dumps(config, sort_keys=True)),
    }


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
    expected = {"tensors": TENSORS_SHA256, "metadata": METADATA_SHA256, "config": CONFIG_SHA256}
    assert model_checksums(out / "model.safetensors") == expected
