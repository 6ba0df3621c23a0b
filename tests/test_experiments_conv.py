"""The convolution experiments: quick runs hold their claims, and the measurement can fail."""

from __future__ import annotations

import json

import numpy as np

from twinnet import nn
from twinnet.experiments import EXPERIMENTS, mlp_vs_cnn, run_experiment
from twinnet.experiments import translation_equivariance as te


def test_translation_equivariance_quick(tmp_path):
    results = run_experiment("translation-equivariance", tmp_path, quick=True)
    assert results["claim_holds"]
    assert json.loads((tmp_path / "results.json").read_text())["claim"] == EXPERIMENTS[te.NAME][1]
    assert (tmp_path / "translation_equivariance.png").stat().st_size > 0
    rows = {tuple(r["shift"]): r for r in results["rows"]}
    assert max(r["conv"] for r in rows.values()) < 1e-12  # exact, for every shift
    assert rows[(2, 2)]["maxpool"] < 1e-12 and rows[(0, 1)]["maxpool"] > 0.1  # even yes, odd no
    assert max(r["global_avg"] for r in rows.values()) < 1e-12


def test_a_strided_convolution_is_not_equivariant_to_odd_shifts(rng):
    """The measurement is not blind: a stride-2 convolution fails it for a 1-pixel shift."""
    x = te.on_canvas(rng.uniform(size=(3, 6, 6)), margin=8)
    strided = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1, dtype=np.float64, rng=rng))
    same = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, dtype=np.float64, rng=rng))
    assert te.measure(same, x, [(1, 0)])[0]["conv"] < 1e-12
    assert te.measure(strided, x, [(1, 0)])[0]["conv"] > 0.1


def test_shift_and_canvas():
    img = np.arange(4.0).reshape(1, 2, 2)
    canvas = te.on_canvas(img, margin=1)
    assert canvas.shape == (1, 1, 4, 4) and canvas[0, 0, 1:3, 1:3].tolist() == [[0, 1], [2, 3]]
    moved = te.shift(canvas, 1, -1)
    assert moved[0, 0, 2:4, 0:2].tolist() == [[0, 1], [2, 3]]


def test_mlp_vs_cnn_parameter_counts_by_hand(rng):
    # 64-32-10 MLP: 64*32 + 32 + 32*10 + 10
    assert mlp_vs_cnn.mlp(64, 32, rng).num_parameters() == 2410
    # CNN c=4 on 8x8: conv 1->4 (4*9 + 4), conv 4->8 (8*4*9 + 8), linear 8*2*2 -> 10 (32*10 + 10)
    assert mlp_vs_cnn.cnn(8, 4, rng).num_parameters() == 40 + 296 + 330


def test_mlp_vs_cnn_smallest_reaching():
    rows = [
        {"family": "MLP", "params": 100, "accuracy": 0.90},
        {"family": "MLP", "params": 400, "accuracy": 0.95},
        {"family": "CNN", "params": 50, "accuracy": 0.96},
        {"family": "CNN", "params": 20, "accuracy": 0.94},
    ]
    assert mlp_vs_cnn.smallest_reaching(rows, "MLP", 0.95)["params"] == 400
    assert mlp_vs_cnn.smallest_reaching(rows, "CNN", 0.95)["params"] == 50


def test_mlp_vs_cnn_quick(tmp_path):
    results = run_experiment("mlp-vs-cnn", tmp_path, quick=True)
    families = [r["family"] for r in results["rows"]]
    assert families.count("MLP") == 4 and families.count("CNN") == 3
    need_mlp, need_cnn = results["smallest_mlp"], results["smallest_cnn"]
    assert need_mlp["accuracy"] >= results["accuracy_both_reach"] <= need_cnn["accuracy"]
    assert results["parameter_ratio"] == need_mlp["params"] / need_cnn["params"]
    assert results["claim_holds"] == (results["parameter_ratio"] >= 3)
    # on the 8x8 digits (seeded) the CNN needs 3.6x fewer parameters: 666 against 2410
    assert results["claim_holds"], results
    assert (tmp_path / "mlp_vs_cnn.png").stat().st_size > 0
