"""The scikit-learn estimators' fixes of issue 15 item 8: onecycle with every solver, no
silent momentum override, sample_weight with norm="batch", assignable coefs_."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification  # noqa: E402

from twinnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=120, n_features=6, n_informative=4, random_state=0)


def fitted_schedule(X, y, max_iter=3, **params):
    """The estimator after a onecycle fit, and the momentum/beta1 seen at every step."""
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=max_iter, random_state=0,
                        schedule="onecycle", **params)
    seen = []
    real = clf._make_optimizer

    def spying_optimizer():
        opt = real()
        step = opt.step

        def recording_step(closure=None):
            g = opt.param_groups[0]
            seen.append(g["betas"][0] if "betas" in g else g.get("momentum"))
            return step(closure)

        opt.step = recording_step
        return opt

    clf._make_optimizer = spying_optimizer
    with pytest.warns(Warning):  # max_iter reached
        clf.fit(X, y)
    return clf, np.array(seen, dtype=float)


def test_onecycle_fits_with_adagrad(data):
    clf, seen = fitted_schedule(*data, max_iter=40, solver="adagrad", learning_rate_init=0.1)
    assert np.isnan(seen).all()  # Adagrad has no momentum: nothing is cycled
    assert clf.loss_curve_[-1] < 0.8 * clf.loss_curve_[0] and clf.score(*data) > 0.65


@pytest.mark.parametrize("solver, params", [
    ("sgd", dict(momentum=0.0)),
    ("rmsprop", dict()),
])
def test_onecycle_keeps_a_momentum_of_zero(data, solver, params):
    _, seen = fitted_schedule(*data, solver=solver, **params)
    assert (seen == 0.0).all()


@pytest.mark.parametrize("solver, params, top", [
    ("sgd", dict(momentum=0.6), 0.6),
    ("adam", dict(beta_1=0.5), 0.5),
    ("adamw", dict(), 0.9),
])
def test_onecycle_cycles_the_users_momentum(data, solver, params, top):
    _, seen = fitted_schedule(*data, max_iter=20, solver=solver, **params)
    assert seen[0] == pytest.approx(top)
    assert seen.max() == pytest.approx(top) and seen.min() == pytest.approx(top - 0.1, abs=1e-3)


def test_sample_weight_with_batch_norm_is_refused(data):
    X, y = data
    w = np.ones(len(y))
    w[:10] = 3.0
    with pytest.raises(ValueError, match="sample_weight with norm='batch' is not supported"):
        MLPClassifier(hidden_layer_sizes=(4,), norm="batch", max_iter=2).fit(X, y, sample_weight=w)
    # equal weights are exactly the unweighted fit, so they are allowed
    kw = dict(hidden_layer_sizes=(4,), norm="batch", max_iter=2, random_state=0)
    with pytest.warns(Warning):
        a = MLPClassifier(**kw).fit(X, y, sample_weight=np.full(len(y), 2.0))
    with pytest.warns(Warning):
        b = MLPClassifier(**kw).fit(X, y)
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-5, atol=1e-6)


def test_sklearn_test_fit_worked_example():
    """scikit-learn's test_fit (sklearn/neural_network/tests/test_mlp.py), as written there:
    weights set through coefs_/intercepts_, one partial_fit, the hand-worked numbers."""
    X = np.array([[0.6, 0.8, 0.7]])
    y = np.array([0])
    mlp = MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
                        random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0,
                        dtype="float64")
    mlp.coefs_ = [0] * 2
    mlp.intercepts_ = [0] * 2
    mlp.n_outputs_ = 1
    mlp.coefs_[0] = np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]])
    mlp.coefs_[1] = np.array([[0.1], [0.2]])
    mlp.intercepts_[0] = np.array([0.1, 0.1])
    mlp.intercepts_[1] = np.array([1.0])
    mlp.partial_fit(X, y, classes=[0, 1])
    np.testing.assert_almost_equal(
        mlp.coefs_[0],
        np.array([[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]]),
        decimal=3,
    )
    np.testing.assert_almost_equal(mlp.coefs_[1], np.array([[0.04706], [0.154089]]), decimal=3)
    np.testing.assert_almost_equal(mlp.intercepts_[0], np.array([0.098333, 0.09626]), decimal=3)
    np.testing.assert_almost_equal(mlp.intercepts_[1], np.array(0.9235), decimal=3)
    np.testing.assert_almost_equal(mlp.predict_proba(X)[0, 1], 0.739, decimal=3)


def test_assigned_weights_are_checked_and_used_by_predict(data):
    X, y = data
    reg = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with pytest.warns(Warning):
        reg.fit(X, y.astype(float))
    reg.coefs_ = [np.zeros((6, 3)), np.zeros((3, 1))]
    reg.intercepts_ = [np.zeros(3), np.array([2.5])]
    np.testing.assert_allclose(reg.predict(X[:4]), 2.5)
    assert reg.coefs_[1].shape == (3, 1)
    reg.coefs_ = [np.zeros((6, 4)), np.zeros((4, 1))]
    with pytest.raises(ValueError, match=r"coefs_\[0\] has shape \(6, 4\), layer 0 needs \(6, 3\)"):
        reg.predict(X)


def test_regressor_default_init_is_scikit_learns(data):
    """init="auto" is scikit-learn's Glorot init (benchmarks/sklearn_init.md), for both."""
    X, y = data
    kw = dict(hidden_layer_sizes=(5,), max_iter=1, random_state=0, learning_rate_init=1e-9)
    with pytest.warns(Warning):
        auto = MLPRegressor(**kw).fit(X, y.astype(float))
    with pytest.warns(Warning):
        glorot = MLPRegressor(init="sklearn", **kw).fit(X, y.astype(float))
    for a, b in zip(auto.coefs_ + auto.intercepts_, glorot.coefs_ + glorot.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    bound = np.sqrt(6.0 / (5 + 1))
    assert np.abs(auto.coefs_[1]).max() <= bound and np.abs(auto.intercepts_[1]).max() > 0
    with pytest.warns(Warning):
        clf = MLPClassifier(**kw).fit(X, y)
    with pytest.warns(Warning):
        glorot = MLPClassifier(init="sklearn", **kw).fit(X, y)
    np.testing.assert_array_equal(clf.coefs_[0], glorot.coefs_[0])
