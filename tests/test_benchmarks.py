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
    rates = throughput.measure(x, y, [784, 16, 10], batch=8, steps=3, repeats=2, names=names)
    assert sorted(rates) == sorted(names)
    assert all(len(r) == 2 and min(r) > 0 for r in rates.values())

    row = {"model": "seed tiny", "batch": 128, **throughput.summarise(rates)}
    monkeypatch.setattr(throughput, "HERE", tmp_path)
    results = {"machine": "test", "data": "random", "throughput": [row], "gradcheck_20_64_32_1_seconds": 0.1,
               "train_peak_rss_mb": {"twinnet": 440.0}, "default_run": {"twinnet": {"test_accuracy": 0.98}},
               "time_to_98": {"twinnet": {"seconds": 3.1, "epoch": 3}, "sklearn": {"seconds": None, "accuracy": 0.97}}}
    throughput.write_readme(results)
    readme = (tmp_path / "README.md").read_text()
    assert f"| seed tiny | 128 | {row['twinnet']} | {row['twinnet-numpy']} |" in readme
    assert "| peak RSS of `twinnet train` | <= 600 MB | 440.0 MB |" in readme
    assert "| twinnet | 0.98 |" in readme and "3.1 s (epoch 3)" in readme and "not reached (0.97 after the last epoch)" in readme


def test_ratios_are_medians_of_per_round_ratios(throughput):
    # the machine slows down in round 2: both contenders alike, the ratio holds
    rates = {"twinnet": [40.0, 20.0, 42.0], "pytorch": [30.0, 16.0, 28.0]}
    row = throughput.summarise(rates)
    assert row["twinnet"] == 40 and row["pytorch"] == 28  # medians of the rates
    assert row["twinnet/pytorch"] == 1.33  # median of 1.333, 1.25, 1.5: not 40 / 28 = 1.43
    lo, hi = row["twinnet/pytorch IQR"]
    assert lo <= 1.33 <= hi
    assert "twinnet/twinnet" not in row
