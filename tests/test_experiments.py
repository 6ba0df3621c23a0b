"""The experiments: each quick run must reproduce its claim, write results.json and a PNG.

Every test is independent (its own tmp folder), so ``pytest -n 2`` spreads them over
workers. BLAS is limited to one thread per test: the matrices are small, and two
workers each spinning two OpenBLAS threads on two cores slow each other down badly.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from twinnet.cli.main import main
from twinnet.experiments import (
    EXPERIMENTS,
    common,
    depth_vs_width,
    double_descent,
    lr_sweep,
    perceptron,
    run_experiment,
)
from twinnet.experiments.universal_approximation import spline_net


@pytest.fixture(autouse=True)
def one_blas_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1):
        yield


def quick(name: str, tmp_path) -> dict:
    """Run experiment ``name`` in quick mode; check the files it must leave behind."""
    out = tmp_path / name
    results = run_experiment(name, out, quick=True)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == results
    assert on_disk["name"] == name and on_disk["claim"] == EXPERIMENTS[name][1]
    assert isinstance(on_disk["claim_holds"], bool) and on_disk["quick"] is True
    assert on_disk["plots"], "an experiment must save at least one plot"
    for png in on_disk["plots"]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return results


# -- the command line ---------------------------------------------------------------------


def test_list_prints_every_name_and_claim(capsys):
    assert main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    assert len(EXPERIMENTS) >= 12
    for name, (_, claim) in EXPERIMENTS.items():
        assert name in out and claim in out


def test_cli_runs_xor_quick_into_out_folder(tmp_path, capsys):
    out = tmp_path / "xor-run"
    assert main(["experiment", "xor", "--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(out.glob("*.png"))
    assert results["claim_holds"] is True
    assert results["mlp_accuracy"] == 1.0 and results["logistic_accuracy"] <= 0.75
    printed = capsys.readouterr().out
    assert "claim HELD" in printed and "logistic regression" in printed


def test_cli_rejects_unknown_experiment_and_missing_name(capsys):
    assert main(["experiment", "no-such-thing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown experiment 'no-such-thing'" in err and "xor" in err
    assert main(["experiment"]) == 2
    assert "--list" in capsys.readouterr().err


# -- one test per experiment, each asserting its claim ---------------------------------------


def test_xor(tmp_path):
    r = quick("xor", tmp_path)
    assert r["logistic_accuracy"] <= 0.75
    assert r["best_random_linear_accuracy"] == 0.75  # 3 of 4 is the best a line can do
    assert r["mlp_accuracy"] == 1.0
    assert r["claim_holds"]


def test_perceptron(tmp_path):
    r = quick("perceptron", tmp_path)
    sep = r["separable"]
    assert sep["converged"]
    assert sep["mistakes"] <= sep["bound_max_margin"] <= sep["bound_generating_line"]
    assert sep["gamma_max_margin"] >= sep["gamma_generating_line"] > 0
    assert not r["xor"]["converged"] and r["xor"]["cycle_period_epochs"] >= 1
    assert r["claim_holds"]


def test_init_variance(tmp_path):
    r = quick("init-variance", tmp_path)
    ratio = r["last_over_first"]
    he = ratio["He (var 2/n_in)"]
    assert 0.5 <= he <= 2.0, f"He last/first variance ratio {he}"
    assert ratio["Xavier (var 2/(n_in+n_out))"] < 0.5
    assert ratio["too small (var 0.001)"] < 1e-3  # vanishes
    assert ratio["too large (var 1)"] > 1e3  # explodes
    assert r["claim_holds"]


def test_vanishing_gradients(tmp_path):
    r = quick("vanishing-gradients", tmp_path)
    sig, relu = r["sigmoid_ratio"], r["relu_ratio"]
    # about 4e-7 for sigmoid against 9e-2 for ReLU
    assert sig < 1e-3 * relu, f"sigmoid layer1/last ratio {sig:.3g}, ReLU {relu:.3g}"
    assert relu > 1e-2
    assert r["claim_holds"]


def test_dead_relu(tmp_path):
    r = quick("dead-relu", tmp_path)
    assert r["relu_dead_high_lr"] > r["relu_dead_low_lr"] + 0.1
    assert r["leaky_relu_dead_high_lr"] <= 0.02
    assert r["gelu_dead_high_lr"] <= 0.02
    assert r["claim_holds"]


def test_lr_sweep(tmp_path):
    r = quick("lr-sweep", tmp_path)
    labels = r["labels"]
    assert labels["adam"]["0.1"] in ("diverges", "oscillates")
    assert labels["sgd"]["0.0001"] == "too slow"
    for opt in ("adam", "sgd"):
        assert list(labels[opt].values()).count("best") == 1
        assert set(labels[opt].values()) <= {"best", "diverges", "oscillates", "too slow", "ok"}
    assert r["claim_holds"]


def test_optimizers(tmp_path):
    r = quick("optimizers", tmp_path)
    assert all(r["loss_decreases"].values())
    assert r["loss_end_equal_lr"]["Adam"] < 0.75 * r["loss_end_equal_lr"]["SGD"]
    assert r["claim_holds"]


def test_click(tmp_path):
    r = quick("click", tmp_path)
    assert r["mlp"]["test"]["auc"] > r["logistic"]["test"]["auc"]
    assert r["mlp"]["val"]["auc"] > r["logistic"]["val"]["auc"]
    assert r["oracle"]["test"]["auc"] >= r["mlp"]["test"]["auc"] - 0.01
    assert r["claim_holds"]


def test_universal_approximation(tmp_path):
    r = quick("universal-approximation", tmp_path)
    for name, errs in r["max_error_least_squares"].items():
        assert all(b <= a * (1 + 1e-9) for a, b in zip(errs, errs[1:], strict=False)), name
        assert errs[-1] < errs[0] / 100, name
    for slope in r["loglog_slope_last_5_widths"].values():
        assert -2.5 < slope < -1.5
    assert r["claim_holds"]


def test_depth_vs_width(tmp_path):
    r = quick("depth-vs-width", tmp_path)
    assert r["deep_params"] == 6 * r["folds"] + 1
    assert r["deep_constructed_max_error"] < 1e-9
    assert r["shallow_same_params_mse"] > 0.1 * r["target_variance"]
    assert r["shallow_same_params_least_squares_mse"] > 0.1 * r["target_variance"]
    assert r["claim_holds"]


def test_double_descent_pipeline(tmp_path):
    r = quick("double-descent", tmp_path)
    assert isinstance(r["non_monotonic"], bool)
    for curve in (r["random_features"], r["trained_mlp"]):
        assert len(curve["widths"]) == len(curve["test_error"]) == len(curve["train_error"])
        assert all(0.0 <= e <= 1.0 for e in curve["test_error"])
        assert isinstance(curve["non_monotonic"], bool)
    # past the threshold the random-features net fits every (noisy) training label
    rf = r["random_features"]
    assert all(
        e == 0.0 for w, e in zip(rf["widths"], rf["train_error"], strict=True) if w >= r["n_train"]
    )


def test_ablation_rows(tmp_path):
    r = quick("ablation", tmp_path)
    rows = r["rows"]
    assert rows[0]["factor"] == "baseline" and len(rows) == 6
    assert {row["factor"] for row in rows[1:]} == {
        "width",
        "depth",
        "activation",
        "optimizer",
        "norm",
    }
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["seconds"] > 0 and row["params"] > 0
    base = rows[0]
    changed = [
        k for k in ("width", "depth", "activation", "optimizer", "norm") if rows[1][k] != base[k]
    ]
    assert changed == [rows[1]["factor"]]  # one factor at a time


# -- helpers, with hand-made inputs ---------------------------------------------------------


def test_lr_sweep_labelling_rules():
    steps = np.arange(100)
    first = 2.3
    curves = {
        0.1: np.full(100, np.nan),  # blew up
        0.01: first * np.exp(-steps / 40.0) + 0.05 * np.sin(steps),  # bouncy, poor level
        0.001: first * np.exp(-steps / 10.0),  # the best
        0.0001: first * np.exp(-steps / 400.0),  # crawling
    }
    curves[0.01][0] = curves[0.001][0] = curves[0.0001][0] = first
    labels = lr_sweep.label_curves(curves)
    assert labels == {0.1: "diverges", 0.01: "oscillates", 0.001: "best", 0.0001: "too slow"}
    # stuck at its starting loss above the best lr: diverges, even without NaN
    stuck = {0.1: np.full(50, first), 0.01: first * np.exp(-np.arange(50) / 5.0)}
    assert lr_sweep.label_curves(stuck) == {0.1: "diverges", 0.01: "best"}


def test_perceptron_cycle_detection_on_xor():
    xa = perceptron.augment(np.array([[0.0, 0], [0, 1], [1, 0], [1, 1]]))
    res = perceptron.perceptron(xa, np.array([-1, 1, 1, -1]), max_epochs=10)
    assert not res["converged"] and res["mistakes_per_epoch"] == [4] * 10
    assert perceptron.find_cycle(res["epoch_end_weights"]) == (0, 1)  # back to w = 0 each epoch


def test_max_margin_beats_any_other_separator():
    rng = np.random.default_rng(1)
    x, y = perceptron.separable_data(50, rng)
    xa = perceptron.augment(x)
    u = perceptron.max_margin_separator(xa, y)
    gamma = perceptron.margin(u, xa, y)
    for _ in range(200):
        v = np.append(perceptron.TRUE_W, perceptron.TRUE_B) + 0.1 * rng.standard_normal(3)
        assert perceptron.margin(v, xa, y) <= gamma + 1e-9


def test_folding_net_is_the_sawtooth():
    x = np.linspace(0, 1, 4097)[:, None]
    for k in (1, 3, 6):
        net = depth_vs_width.folding_net(k)
        assert np.max(np.abs(net(2 * x - 1) - depth_vs_width.sawtooth(x, k))) < 1e-12
        assert net.num_parameters() == 6 * k + 1


def test_spline_net_interpolates_piecewise_linear_targets():
    x = np.linspace(-1, 1, 513)[:, None]
    y = np.abs(x - 0.5) - 2 * np.abs(x)  # kinks at 0 and 0.5, both on the width-4 grid
    net = spline_net(4, x, y)
    assert np.max(np.abs(net(x) - y)) < 1e-10


def test_non_monotonic_flag():
    assert double_descent.non_monotonic([0.5, 0.3, 0.2, 0.6, 0.25, 0.2]) == (True, 3)
    assert double_descent.non_monotonic([0.5, 0.3, 0.2, 0.19, 0.1]) == (False, None)
    assert double_descent.non_monotonic([0.5, 0.3, 0.31, 0.2]) == (False, None)  # within tolerance


def test_save_results_writes_plain_json(tmp_path):
    import time

    r = common.save_results(
        tmp_path / "new",
        "demo",
        "a claim",
        np.bool_(True),
        True,
        time.perf_counter(),
        ["p.png"],
        a=np.float32(1.5),
        b=np.arange(3),
        c=math.nan,
        d={1: np.inf},
    )
    on_disk = json.loads((tmp_path / "new" / "results.json").read_text())
    assert on_disk == r
    assert r["claim_holds"] is True and r["a"] == 1.5 and r["b"] == [0, 1, 2]
    assert r["c"] is None and r["d"] == {"1": None}


def test_moving_average():
    np.testing.assert_allclose(common.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(common.moving_average([1, 2, 3], 1), [1, 2, 3])
