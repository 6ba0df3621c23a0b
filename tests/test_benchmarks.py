"""The benchmark script still runs: every contender trains, and the README table is written.

No timing is asserted here (the numbers live in benchmarks/README.md); this only keeps
the script from rotting.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_contender_trains_and_the_table_is_written(throughput, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 784)).astype(np.float32), rng.integers(0, 10, 64)
    names = ["twinnet", "twinnet-numpy", "floor", "sklearn"]
    try:
        import torch  # noqa: F401

        names += ["pytorch", "pytorch-fused"]
    except ImportError:
        pass
    monkeypatch.setattr(throughput.time, "sleep", lambda s: None)
    rates = throughput.measure(x, y, [784, 16, 10], batch=8, steps=3, repeats=1, names=names)
    assert sorted(rates) == sorted(names)
    assert all(r > 0 for r in rates.values())

    monkeypatch.setattr(throughput, "HERE", tmp_path)
    row = {"model": "tiny", "batch": 8, **{k: round(v) for k, v in rates.items()}, "twinnet/floor": 1.0}
    results = {"machine": "test", "data": "random", "throughput": [row], "gradcheck_20_64_32_1_seconds": 0.1}
    throughput.write_readme(results)
    table = (tmp_path / "README.md").read_text()
    assert f"| tiny | 8 | {row['twinnet']} | {row['twinnet-numpy']} |" in table
