"""benchmarks/conv.py still runs: both contenders step every layer, the rounds alternate,
ratios are medians of per-round ratios, and the README section is replaced in place.
No timing is asserted (the numbers live in benchmarks/README.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "conv.py"


@pytest.fixture(scope="module")
def conv():
    spec = importlib.util.spec_from_file_location("conv_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twinnet_worker_times_every_layer(conv):
    seconds = conv.worker("twinnet", min_seconds=0.0, batch=2)
    assert list(seconds) == list(conv.LAYERS) and min(seconds.values()) > 0


def test_torch_worker_times_every_layer(conv, torch_or_skip):
    seconds = conv.worker("torch", min_seconds=0.0, batch=2)
    assert list(seconds) == list(conv.LAYERS) and min(seconds.values()) > 0


def test_profile_times_every_phase(conv):
    phases = conv.profile(batch=2, repeats=1)
    assert "col2im" not in phases["LeNet conv1 1->6 5x5 pad 2 @28x28"]  # first layer: no dL/dx
    assert {"im2col", "forward matmul W cols", "dW matmul", "col2im"} <= set(
        phases["3x3 32->64 pad 1 @28x28"]
    )


def test_rounds_alternate_and_ratios_are_per_round(conv):
    calls = []

    def fake_run(name, min_seconds, batch):
        calls.append(name)
        slow = 2.0 if len(calls) > 2 else 1.0  # the machine slows down after round 1, for both
        return {layer: slow * (1.0 if name == "twinnet" else 0.5) for layer in conv.LAYERS}

    times = conv.measure(rounds=3, min_seconds=0.0, run=fake_run)
    assert calls == ["twinnet", "torch", "torch", "twinnet", "twinnet", "torch"]
    row = conv.summarise(next(iter(times.values())))
    assert row["ratio"] == 0.5 and row["ratio_iqr"] == [0.5, 0.5]  # unmoved by the slowdown
    assert row["twinnet_ms"] == 2000.0 and row["torch_ms"] == 1000.0


def test_readme_section_is_replaced_not_duplicated(conv, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nother sections\n")
    rows = {"layer A": {"twinnet_ms": 10.0, "torch_ms": 8.0, "ratio": 0.8, "ratio_iqr": [0.7, 0.9]}}
    conv.write_readme(conv.section(rows, {"layer A": {"im2col": 1.0}}, 9, "test machine"), readme)
    rows["layer A"]["ratio"] = 0.75
    conv.write_readme(conv.section(rows, None, 9, "test machine"), readme)
    text = readme.read_text()
    assert text.startswith("# Benchmarks\n\nother sections\n")
    assert text.count(conv.BEGIN) == 1 and "| layer A | 10.0 | 8.0 | 0.75 (0.7-0.9) |" in text
