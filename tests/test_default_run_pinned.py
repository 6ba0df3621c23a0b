"""The default `twinnet train` run, byte for byte: a pin against silent changes to the loop.

The SHA-256 of ``history.csv`` and ``model.safetensors`` of the default NumPy run
(``TrainConfig()``: MNIST, 784-512-256-10 ReLU, Adam 1e-3, cosine schedule, 8 epochs,
batch 128, seed 0, float32) were computed with the code from BEFORE the training loop was
rewritten into one Trainer with engine steppers (commit 4cae918), on this machine
(OpenBLAS) with ONE BLAS thread: OpenBLAS's results depend on its thread count (the
same run with 2 threads gives other bytes), so the test limits BLAS to one thread to
mean the same thing on every machine. A refactoring of the loop that changes any number of the default
run fails here. The expected values are that run's output, not this code's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from twinnet.config import TrainConfig
from twinnet.train.run import run_training

HISTORY_SHA256 = "703f98d2414cb1723ddd7322ba991fb486059dc85bfc13af2136c3185b9a4138"
MODEL_SHA256 = "0ae292a8cbdaf5c97e73342f806de4a82fa13e008720a81a4421702683fee7b8"


def _have_mnist() -> bool:
    root = Path(os.environ.get("TWINNET_DATA", "")) / "mnist"
    return bool(os.environ.get("TWINNET_DATA")) and root.is_dir()


@pytest.mark.slow
@pytest.mark.skipif(not _have_mnist(), reason="needs MNIST under $TWINNET_DATA")
def test_default_numpy_run_is_byte_identical_to_the_code_before_the_one_loop(tmp_path):
    out = tmp_path / "run"
    with threadpool_limits(1):
        result = run_training(TrainConfig(), out=out, progress=False, log=lambda *a: None)
    assert result.status == "completed"
    digest = {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in ("history.csv", "model.safetensors")}
    assert digest == {"history.csv": HISTORY_SHA256, "model.safetensors": MODEL_SHA256}
