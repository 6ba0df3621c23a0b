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


# -- benchmarks/user_loop.py: the loop a user writes, each contender in its own process ---------

USER_LOOP = SCRIPT.parent / "user_loop.py"


@pytest.fixture(scope="module")
def user_loop():
    spec = importlib.util.spec_from_file_location("user_loop", USER_LOOP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_contender_kind_trains(user_loop):
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64)
    kinds = [k for k in user_loop.KINDS if not k.startswith("torch")]
    try:
        import torch  # noqa: F401

        kinds += ["torch", "torch_products"]
    except ImportError:
        pass
    for kind in kinds:
        user_loop.KINDS[kind]([784, 16, 12, 10], x, y, 8)(3)  # three steps run without error


def test_the_numpy_loop_learns(user_loop):
    # the 40-line loop is a fair contender only if it is a correct one: the loss must fall
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 784)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    x = (centres[y] + 0.5 * rng.normal(size=(96, 784))).astype(np.float32)
    run = user_loop.numpy_loop([784, 16, 3], x, y, 32, lr=1e-2)
    before = _cross_entropy(run.params, x, y)
    run(30)
    assert _cross_entropy(run.params, x, y) < 0.5 * before


def _cross_entropy(params, x, y):
    h = np.maximum(x @ params[0].T + params[1], 0)
    z = h @ params[2].T + params[3]
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def test_a_worker_process_answers_requests(user_loop):
    w = user_loop.Worker("products", 256)
    try:
        first = w.ask(layers=[784, 8, 10], batch=32, steps=2, bandwidth=True)
        second = w.ask(layers=[784, 64, 10], batch=32, steps=2)
    finally:
        w.close()
    assert first["rate"] > 0 and first["cpu_rate"] > 0 and first["bandwidth"] > 0
    assert second["rate"] > 0 and "bandwidth" not in second
    if second["peak_mb"] is not None:  # Linux: /proc/self/status
        assert second["peak_mb"] >= first["peak_mb"] >= first["base_mb"] > 0


def test_the_ceiling_compares_numpys_products_with_pytorchs_step(user_loop):
    # two rounds, hand-made rates: products / PyTorch = 3/2 then 4/2 -> median 1.75
    per_round = {name: [{"rate": a}, {"rate": b}] for name, a, b in (
        ("twinnet loop", 1.0, 1.0), ("PyTorch", 2.0, 2.0), ("products", 3.0, 4.0), ("PyTorch products", 6.0, 6.0))}
    row = user_loop.summarise(per_round, [784, 10], 128)
    assert row["ratios"]["products / PyTorch"][0] == 1.75
    assert row["ratios"]["PyTorch products / products"][0] == 1.75  # 6/3 and 6/4
    lines = user_loop.ceiling_table({("m", 128): row})
    assert lines[-1] == "| m | 128 | 4 | 6 | 2 | 1.75 (1.62-1.88) | 1.75 (1.62-1.88) |"


def test_rounds_visit_every_contender_in_a_new_order(user_loop):
    calls = []

    def ask(name, **req):
        calls.append((name, req["batch"], "bandwidth" in req))
        return {"rate": 1.0}

    names = ["twinnet loop", "PyTorch", "products"]
    configs = {("m", 32): ([784, 10], 32), ("m", 128): ([784, 10], 128)}
    results = user_loop.measure(ask, names, configs, rounds=4, budget=1e6, pause=0.0)
    assert len(calls) == 4 * 2 * 3
    assert all(len(results[c][n]) == 4 for c in configs for n in names)
    orders = {tuple(n for n, _, _ in calls[i : i + 3]) for i in range(0, len(calls), 3)}
    assert len(orders) > 1  # not always the same neighbour
    assert {(n, b) for n, b, bw in calls if bw} == {("products", 32)}  # bandwidth: batch 32 only


def test_ratios_and_roofline_arithmetic(user_loop):
    # round 2 runs on a slower machine: both sides alike, the per-round ratio holds
    per_round = {
        "twinnet loop": [{"rate": 300.0}, {"rate": 150.0}, {"rate": 330.0}],
        "PyTorch": [{"rate": 200.0}, {"rate": 120.0}, {"rate": 200.0}],
        "products": [{"rate": 640.0, "bandwidth": 1e10}, {"rate": 320.0, "bandwidth": 1e10},
                     {"rate": 640.0, "bandwidth": 1e10}],
    }
    layers = [784, 10]  # 7850 parameters
    row = user_loop.summarise(per_round, layers, 32)
    assert row["rates"]["twinnet loop"] == 300 and row["rates"]["PyTorch"] == 200
    # per-round ratios 1.5, 1.25, 1.65: median 1.5 (not 300 / 200 by chance: 330 / 200 = 1.65)
    assert row["ratios"]["twinnet loop / PyTorch"] == (1.5, 1.38, 1.57)
    # roofline of round 1: 32 / 640 s of products + 7 arrays x 4 bytes x 7850 / 1e10 s
    seconds = 32 / 640 + 7 * 4 * 7850 / 1e10
    assert user_loop.roofline(640.0, 32, layers, 1e10) == pytest.approx(32 / seconds)
    assert row["ratios"]["twinnet loop / products"][0] == round(300 / 640, 2)
    assert row["bandwidth_gb_s"] == 10.0
    lines = user_loop.table({("seed", 32): row}, ["twinnet loop"], ["PyTorch", "products", "roofline"])
    assert lines[2].startswith("| seed | 32 | 300 | 200 | 640 | ")
    assert "| 1.5 (1.38-1.57) |" in lines[2]


def test_products_count_and_parameters(user_loop):
    assert user_loop.n_products([784, 512, 256, 10]) == 8  # 3 forward, 3 dW, 2 dx
    assert user_loop.n_params([784, 512, 256, 10]) == 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10


def test_readme_section_is_replaced_not_duplicated(user_loop, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nother\n")
    user_loop.write_readme(["## first", "a"], "table", readme)
    user_loop.write_readme(["### curve", "c"], "cost", readme)
    user_loop.write_readme(["## second", "b"], "table", readme)
    text = readme.read_text()
    begin, _ = user_loop.MARKERS["table"]
    assert text.count(begin) == 1 and "## second" in text and "## first" not in text
    assert "### curve" in text  # the other section is kept
    assert text.startswith("# Benchmarks\n\nother\n")
