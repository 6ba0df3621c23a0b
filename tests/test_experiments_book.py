"""The experiments that reproduce the book chapter's remaining claims (issue 18).

Each quick run must reproduce its claim; the assertions are on the claim itself
(accuracies on either side of a line, identical rows, a norm that explodes), not on
numbers copied from a run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from twinnet.experiments import EXPERIMENTS, linear_collapse, run_experiment


@pytest.fixture(autouse=True)
def one_blas_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1):
        yield


def quick(name: str, tmp_path) -> dict:
    """Run experiment ``name`` in quick mode; check results.json and its PNG plots."""
    out = tmp_path / name
    results = run_experiment(name, out, quick=True)
    assert json.loads((out / "results.json").read_text()) == results
    assert results["claim"] == EXPERIMENTS[name][1] and results["quick"] is True
    assert results["plots"]
    for png in results["plots"]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return results


def test_linear_collapse(tmp_path):
    r = quick("linear-collapse", tmp_path)
    for name in ("xor_linear", "spirals_linear"):
        assert r[name]["max_diff_vs_single_matrix"] < 1e-10
        assert r[name]["accuracy"] == r[name]["single_matrix_accuracy"]
    assert r["xor_linear"]["accuracy"] <= 0.75 and r["xor_ReLU"]["accuracy"] == 1.0
    assert r["spirals_linear"]["accuracy"] < 0.6 < 0.9 < r["spirals_ReLU"]["accuracy"]
    assert r["claim_holds"]


def test_collapse_of_hand_made_layers():
    net = linear_collapse.build(3, 2, relu=False, seed=1)
    w, b = linear_collapse.collapse(net)
    x = np.random.default_rng(2).standard_normal((5, 3))
    expected = x
    for layer in net:  # by hand: one layer after the other
        expected = expected @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(x @ w.T + b, expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="only Linear"):
        linear_collapse.collapse(linear_collapse.build(3, 2, relu=True, seed=1))


def test_symmetry_breaking(tmp_path):
    r = quick("symmetry-breaking", tmp_path)
    s = r["starts"]
    assert s["zero"]["max_unit_spread"] == 0.0
    assert s["constant 0.5"]["max_unit_spread"] < 1e-9  # rows identical at every step
    assert s["constant 0.5"]["w1_moved_from_start"] > 0.01  # ... although they moved
    assert s["random (default)"]["final_unit_spread"] > 0.1
    assert s["random (default)"]["accuracy"] > s["constant 0.5"]["accuracy"]
    assert r["claim_holds"]


def test_exploding_gradients(tmp_path):
    r = quick("exploding-gradients", tmp_path)
    plain, clipped = r["no_clipping"], r["clipped"]
    assert plain["first_grad_norm"] > 1e3  # exploded from the first step
    assert plain["diverged"] and plain["steps_until_non_finite"] is not None
    assert not clipped["diverged"]
    assert clipped["final_loss"] < 0.01 * clipped["first_loss"]
    assert clipped["final_loss"] < r["target_variance"]
    assert r["claim_holds"]


def test_activation_table(tmp_path):
    r = quick("activation-table", tmp_path)
    t = r["table"]
    assert t["sigmoid"]["max_derivative"] == pytest.approx(0.25, abs=1e-9)
    assert t["tanh"]["max_derivative"] == pytest.approx(1.0, abs=1e-9)
    # GELU' = Phi(z) + z phi(z) peaks at z = sqrt(2): Phi(sqrt 2) + sqrt(2) phi(sqrt 2)
    from scipy.stats import norm

    gelu_peak = norm.cdf(np.sqrt(2)) + np.sqrt(2) * norm.pdf(np.sqrt(2))
    assert t["gelu"]["max_derivative"] == pytest.approx(gelu_peak, abs=1e-5)
    assert t["gelu"]["max_derivative"] > 1.08  # the text's bound does not hold
    assert t["silu"]["max_derivative"] == pytest.approx(1.0998, abs=1e-4)
    assert t["sigmoid"]["saturates"] == t["tanh"]["saturates"] == ["negative", "positive"]
    assert t["relu"]["derivative_exactly_zero"] == "z < 0"
    assert t["gelu"]["min_f"] == pytest.approx(-0.17, abs=5e-3)
    assert r["claim_holds"]
