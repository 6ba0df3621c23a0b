"""The convolution experiments: quick runs hold their claims, and the measurement can fail."""

from __future__ import annotations

import json

import numpy as np

from twinnet import nn
from twinnet.experiments import EXPERIMENTS, run_experiment
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
