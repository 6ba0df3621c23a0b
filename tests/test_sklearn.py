"""twinnet.sklearn: MLPClassifier / MLPRegressor against scikit-learn's own MLP.

The objective is checked number by number against scikit-learn's ``_backprop``
(loss and every gradient, with alpha and sample weights, for each output head);
accuracy on digits against scikit-learn's MLPClassifier with the same budget; error
messages by running both estimators on the same bad input.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import special
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from twinnet import checkpoint, losses, nn
from twinnet.check import gradcheck
from twinnet.sklearn import MLPClassifier, MLPRegressor
from twinnet.sklearn._base import backward_params
from twinnet.sklearn._objective import Objective, row_losses

NO_TORCH = "PyTorch not installed (pip install twinnet[torch])"


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Tests run two per core under xdist: keep BLAS from oversubscribing the cores."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    """Fixed split of scikit-learn's digits: (X_train, X_test, y_train, y_test)."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def blobs():
    """A small, standardised 3-class problem: (X (120, 6), y)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(3, 6))
    y = np.repeat(np.arange(3), 40)
    X = centers[y] + rng.normal(size=(120, 6))
    return StandardScaler().fit_transform(X), y


def quiet_fit(est, *args, **kwargs):
    """fit without the ConvergenceWarning of a deliberately short run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


# -- the objective is scikit-learn's, gradient for gradient -------------------------------
def _sklearn_backprop(sk, X, Y, sample_weight):
    """Loss and gradients of scikit-learn's MLP at its current weights (its private _backprop)."""
    activations = [X] + [None] * (sk.n_layers_ - 1)
    deltas = [None] * (sk.n_layers_ - 1)
    coef_grads = [np.empty_like(c) for c in sk.coefs_]
    intercept_grads = [np.empty_like(b) for b in sk.intercepts_]
    return sk._backprop(X, Y, sample_weight, activations, deltas, coef_grads, intercept_grads)


HEADS = {
    # name: (estimator classes, target maker)
    "multiclass": (MLPClassifier, SkMLPClassifier),
    "binary": (MLPClassifier, SkMLPClassifier),
    "multilabel": (MLPClassifier, SkMLPClassifier),
    "regression": (MLPRegressor, SkMLPRegressor),
}


def _targets(head, rng, n):
    if head == "multiclass":
        return rng.integers(0, 4, n)
    if head == "binary":
        return rng.integers(0, 2, n)
    if head == "multilabel":
        return rng.integers(0, 2, (n, 3))
    return rng.normal(size=(n, 2))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("head", list(HEADS))
def test_loss_and_gradients_equal_sklearn_backprop(head, weighted):
    rng = np.random.default_rng(1)
    n, alpha = 24, 0.3
    X = rng.normal(size=(n, 5))
    y = _targets(head, rng, n)
    w = rng.uniform(0.0, 3.0, n) if weighted else None
    ours_cls, sk_cls = HEADS[head]
    kwargs = dict(hidden_layer_sizes=(7, 6), alpha=alpha, max_iter=1, random_state=0)
    ours = quiet_fit(ours_cls(dtype="float64", activation="tanh", **kwargs), X, y)
    sk = quiet_fit(sk_cls(activation="tanh", **kwargs), X, y)
    linears = [m for m in ours.model_.modules() if isinstance(m, nn.Linear)]
    for layer, i in zip(linears, range(len(linears)), strict=True):
        sk.coefs_[i] = layer.weight.data.T.copy()
        sk.intercepts_[i] = layer.bias.data.copy()

    if head == "regression":
        Y_sk, target = y, y
    else:
        Y_sk = sk._label_binarizer.transform(y)
        target = np.searchsorted(ours.classes_, y) if head == "multiclass" else Y_sk.astype(float)
    sk_loss, sk_coef_grads, sk_intercept_grads = _sklearn_backprop(sk, X, Y_sk, w)

    model = ours.model_.train()
    model.zero_grad()
    objective = Objective(head, ours.n_outputs_, alpha)
    loss, grad, total = objective(model(X), target, w)
    backward_params(model, grad)
    loss += objective.penalty([m.weight for m in linears], total)

    if head == "regression":
        # scikit-learn follows the gradient of 1/2 sum_k (z - t)^2 but reports the loss
        # averaged over the K outputs; we report the objective whose gradient we follow
        k = ours.n_outputs_
        penalty = (
            0.5
            * alpha
            * sum(float(np.sum(c * c)) for c in sk.coefs_)
            / (n if w is None else w.sum())
        )
        sk_loss = k * (sk_loss - penalty) + penalty
    assert loss == pytest.approx(sk_loss, rel=1e-12)
    for i, layer in enumerate(linears):
        np.testing.assert_allclose(layer.weight.grad.T, sk_coef_grads[i], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(layer.bias.grad, sk_intercept_grads[i], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_training_follows_sklearns_trajectory_from_the_same_init(blobs, solver):
    """Full batch, same initial weights: the loss curve is scikit-learn's, epoch by epoch."""
    X, y = blobs
    kwargs = dict(
        hidden_layer_sizes=(16,),
        solver=solver,
        max_iter=50,
        shuffle=False,
        alpha=1e-3,
        learning_rate_init=0.01,
        random_state=0,
    )
    sk = quiet_fit(SkMLPClassifier(**kwargs), X, y)
    # scikit-learn's initial weights: its _init_coef, replayed from the same seed
    replay = SkMLPClassifier(**kwargs)
    replay._random_state = np.random.RandomState(0)
    init = [replay._init_coef(a, b, np.float64) for a, b in [(6, 16), (16, 3)]]

    ours = quiet_fit(
        MLPClassifier(dtype="float64", warm_start=True, **{**kwargs, "max_iter": 1}), X, y
    )
    for layer, (coef, intercept) in zip(ours.model_[::2], init, strict=True):
        layer.weight.data[...] = coef.T
        layer.bias.data[...] = intercept
    quiet_fit(ours.set_params(max_iter=50), X, y)  # a fresh optimiser, as in scikit-learn
    # SGD is the same update; Adam differs only in where eps goes (torch adds it after the
    # bias correction, scikit-learn before: an eps larger by 1/sqrt(1 - beta_2^t))
    rtol = 1e-9 if solver == "sgd" else 1e-4
    np.testing.assert_allclose(ours.loss_curve_[1:], sk.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=10 * rtol)


@pytest.mark.parametrize("norm", [None, "batch"])
def test_backward_params_equals_model_backward(norm):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(9, 5))
    y = rng.integers(0, 3, 9)
    clf = quiet_fit(MLPClassifier((6, 4), norm=norm, dtype="float64", max_iter=1), X, y)
    model, loss_fn = clf.model_.train(), losses.CrossEntropyLoss()
    grads = []
    for run in (model.backward, lambda g: backward_params(model, g)):
        model.zero_grad()
        loss_fn(model(X), y)
        run(loss_fn.backward())
        grads.append([p.grad.copy() for p in model.parameters()])
    for full, skipped in zip(*grads, strict=True):
        np.testing.assert_array_equal(full, skipped)


@pytest.mark.parametrize("head", list(HEADS))
def test_row_losses_average_to_the_engine_loss(head):
    rng = np.random.default_rng(2)
    z = rng.normal(scale=3.0, size=(10, 4 if head == "multiclass" else 3))
    if head == "multiclass":
        target, engine = rng.integers(0, 4, 10), losses.CrossEntropyLoss()
    elif head == "regression":
        target, engine = rng.normal(size=(10, 3)), losses.MSELoss()
    else:
        target, engine = rng.integers(0, 2, (10, 3)).astype(float), losses.BCEWithLogitsLoss()
    assert row_losses(head, z, target).mean() == pytest.approx(engine(z, target), rel=1e-13)


def test_unit_weights_give_the_unweighted_objective():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(8, 5)).astype(np.float32)
    target = rng.integers(0, 5, 8)
    obj = Objective("multiclass", 5, alpha=0.0)
    loss0, grad0, s0 = obj(z, target, None)
    grad0 = grad0.copy()
    loss1, grad1, s1 = obj(z, target, np.ones(8))
    assert (s0, grad1.dtype) == (s1, np.float32)
    np.testing.assert_array_equal(grad0, grad1)
    assert loss1 == pytest.approx(loss0, rel=1e-6)


# -- accuracy: GridSearchCV on digits, against scikit-learn's MLP --------------------------
def _search(mlp, X_train, y_train):
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)])
    grid = {"mlp__alpha": [1e-4, 1e-2], "mlp__learning_rate_init": [1e-3, 3e-3]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)


def test_gridsearch_pipeline_on_digits_matches_sklearn_accuracy(digits):
    X_train, X_test, y_train, y_test = digits
    budget = dict(hidden_layer_sizes=(100,), solver="adam", max_iter=100, batch_size=200)
    scores = {}
    for name, cls in (("twinnet", MLPClassifier), ("sklearn", SkMLPClassifier)):
        search = _search(cls(random_state=0, **budget), X_train, y_train)
        assert set(search.best_params_) == {"mlp__alpha", "mlp__learning_rate_init"}
        accs = [search.score(X_test, y_test)]
        for seed in (1, 2):  # the chosen settings again with two more seeds, to average the noise
            best = search.best_estimator_.set_params(mlp__random_state=seed)
            accs.append(quiet_fit(best, X_train, y_train).score(X_test, y_test))
        scores[name] = float(np.mean(accs))
    assert isinstance(search.best_estimator_, Pipeline)
    print(f"test accuracy (mean of 3 seeds): {scores}")
    assert scores["twinnet"] >= scores["sklearn"] - 0.01, scores
    assert scores["twinnet"] > 0.95


# -- targets ---------------------------------------------------------------------------------
def test_string_labels(blobs):
    X, y = blobs
    names = np.array(["cat", "dog", "bird"])[y]
    clf = MLPClassifier(
        hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.01, random_state=0
    )
    quiet_fit(clf, X, names)
    assert list(clf.classes_) == ["bird", "cat", "dog"]
    pred = clf.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-12)
    assert clf.score(X, names) > 0.9


def test_binary_uses_one_logit(blobs):
    X, y = blobs
    keep = y < 2
    labels = np.where(y[keep] == 1, "yes", "no")
    clf = MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=40, learning_rate_init=0.01, random_state=0
    )
    quiet_fit(clf, X[keep], labels)
    assert clf.n_outputs_ == 1 and clf.model_[-1].out_features == 1
    z = clf.model_(X[keep].astype(np.float32))[:, 0].astype(np.float64)
    proba = clf.predict_proba(X[keep])
    np.testing.assert_allclose(proba[:, 1], special.expit(z), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X[keep]), np.where(z > 0, "yes", "no"))
    assert clf.score(X[keep], labels) > 0.95


def test_multilabel_indicator_targets():
    X, Y = make_multilabel_classification(n_samples=300, n_features=10, n_classes=4, random_state=0)
    kwargs = dict(hidden_layer_sizes=(32,), max_iter=150, random_state=0)
    clf = quiet_fit(MLPClassifier(**kwargs), X, Y)
    np.testing.assert_array_equal(clf.classes_, np.arange(4))
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    pred = clf.predict(X)
    assert pred.shape == (300, 4) and set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)  # independent sigmoids: rows need not sum to 1
    z = clf.model_(X.astype(np.float32)).astype(np.float64)
    np.testing.assert_allclose(proba, special.expit(z), rtol=1e-12)
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    sk = quiet_fit(SkMLPClassifier(**kwargs), X, Y)
    # subset accuracy on the training set, like scikit-learn's
    assert clf.score(X, Y) >= sk.score(X, Y) - 0.05


def test_regressor_single_and_multi_output():
    X, y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(axis=0)
    kwargs = dict(hidden_layer_sizes=(32,), max_iter=300, random_state=0, learning_rate_init=0.01)
    reg = quiet_fit(MLPRegressor(**kwargs), X, y)
    pred = reg.predict(X)
    assert pred.shape == (200, 2) and pred.dtype == np.float64
    assert reg.score(X, y) > 0.98
    one = quiet_fit(MLPRegressor(**kwargs), X, y[:, 0])
    assert one.predict(X).shape == (200,)
    assert one.model_.parameters()[0].dtype == np.float32  # float64 X did not upcast the net


# -- incremental and repeated fitting ------------------------------------------------------------
def test_partial_fit_streams_batches(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(16,), random_state=0, learning_rate_init=0.01)
    for epoch in range(20):
        for part in np.array_split(np.arange(120), 4):
            if epoch == 0 and part[0] == 0:
                clf.partial_fit(X[part], y[part], classes=[0, 1, 2])
            else:
                clf.partial_fit(X[part], y[part])
            assert clf.n_iter_ == 1
    assert clf.t_ == 20 * 120
    assert len(clf.loss_curve_) == 80
    assert clf.score(X, y) > 0.9
    # a batch without some classes is fine; a class never declared is not
    clf.partial_fit(X[y == 0], y[y == 0])
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y + 1)


def test_partial_fit_regressor_continues_from_fit():
    X, y = make_regression(n_samples=100, n_features=4, random_state=0)
    y = y / y.std()
    reg = quiet_fit(MLPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0), X, y)
    before = reg.loss_curve_[-1]
    for _ in range(20):
        reg.partial_fit(X, y)
    assert len(reg.loss_curve_) == 25 and reg.loss_curve_[-1] < before


def test_warm_start_continues_training(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, warm_start=True, random_state=0)
    quiet_fit(clf, X, y)
    first = [p.data.copy() for p in clf.model_.parameters()]
    model = clf.model_
    quiet_fit(clf, X, y)
    assert clf.model_ is model  # same network, trained further
    assert len(clf.loss_curve_) == 10 and clf.n_iter_ == 5 and clf.t_ == 10 * 120
    assert clf.loss_curve_[5] < clf.loss_curve_[0]
    assert any(
        not np.array_equal(a, p.data) for a, p in zip(first, model.parameters(), strict=True)
    )
    cold = quiet_fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0), X, y)
    assert cold.loss_curve_ == clf.loss_curve_[:5]  # the warm fit's first call is an ordinary fit
    clf.set_params(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        clf.fit(X, y)


def test_early_stopping_records_validation_scores_and_keeps_best(blobs):
    X, y = blobs
    seed, fraction = 3, 0.25
    clf = MLPClassifier(
        hidden_layer_sizes=(16,),
        early_stopping=True,
        validation_fraction=fraction,
        n_iter_no_change=3,
        max_iter=300,
        random_state=seed,
    ).fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ == len(clf.loss_curve_) < 300
    assert clf.best_validation_score_ == max(scores)
    assert clf.best_loss_ is None
    # the same split as the estimator's (after the seed it draws for the weights) ...
    rs = np.random.RandomState(seed)
    rs.randint(np.iinfo(np.int32).max)
    _, val = train_test_split(np.arange(120), random_state=rs, test_size=fraction, stratify=y)
    # ... scores the restored weights at the best epoch's score
    assert clf.score(X[val], y[val]) == clf.best_validation_score_
    plain = quiet_fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=3), X, y)
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None


def test_convergence_warning_and_stopping(blobs):
    X, y = blobs
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    kwargs = dict(hidden_layer_sizes=(8,), max_iter=200, tol=10.0, n_iter_no_change=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier(**kwargs).fit(X, y)
    # no epoch after the first improves by tol=10: stop when the count exceeds 2, as sklearn
    assert clf.n_iter_ == SkMLPClassifier(**kwargs).fit(X, y).n_iter_ == 4


def test_verbose_prints_the_loss(blobs, capsys):
    X, y = blobs
    quiet_fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, verbose=True), X, y)
    assert "Iteration 2, loss = " in capsys.readouterr().out


# -- sample weights -------------------------------------------------------------------------------
def _full_batch(cls, **kwargs):
    # n <= 200: batch_size="auto" is the whole set; no shuffling: the runs see the same data
    return cls(
        hidden_layer_sizes=(10,),
        max_iter=30,
        shuffle=False,
        random_state=0,
        dtype="float64",
        **kwargs,
    )


def test_zero_weight_rows_are_ignored(blobs):
    X, y = blobs
    w = np.random.default_rng(0).integers(0, 2, 120).astype(float)
    keep = w > 0
    weighted = quiet_fit(_full_batch(MLPClassifier), X, y, sample_weight=w)
    removed = quiet_fit(_full_batch(MLPClassifier), X[keep], y[keep])
    np.testing.assert_allclose(weighted.predict_proba(X), removed.predict_proba(X), rtol=1e-9)
    np.testing.assert_allclose(weighted.loss_curve_, removed.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_integer_weights_equal_repeated_rows(blobs, cls):
    X, y = blobs
    w = np.random.default_rng(1).integers(0, 4, 120)
    weighted = quiet_fit(_full_batch(cls), X, y, sample_weight=w)
    repeated = quiet_fit(_full_batch(cls), np.repeat(X, w, axis=0), np.repeat(y, w))
    method = "predict_proba" if cls is MLPClassifier else "predict"
    np.testing.assert_allclose(
        getattr(weighted, method)(X), getattr(repeated, method)(X), rtol=1e-9, atol=1e-12
    )


def test_integer_weights_approximate_repeated_rows_with_minibatches(digits):
    X_train, X_test, y_train, y_test = digits
    X_train, X_test = X_train / 16, X_test / 16
    w = np.random.default_rng(2).integers(1, 4, len(y_train))  # mean 2
    Xr, yr = np.repeat(X_train, w, axis=0), np.repeat(y_train, w)
    kwargs = dict(hidden_layer_sizes=(32,), max_iter=40, random_state=0, learning_rate_init=3e-3)
    # batches twice as large on the data twice as long: the same number of steps
    weighted = quiet_fit(MLPClassifier(batch_size=100, **kwargs), X_train, y_train, sample_weight=w)
    repeated = quiet_fit(MLPClassifier(batch_size=2 * 100, **kwargs), Xr, yr)
    agree = np.mean(weighted.predict(X_test) == repeated.predict(X_test))
    assert agree > 0.95
    assert abs(weighted.score(X_test, y_test) - repeated.score(X_test, y_test)) < 0.02


def test_scaling_all_weights_changes_only_the_penalty_strength(blobs):
    X, y = blobs
    w = np.random.default_rng(3).uniform(0.5, 2.0, 120)
    # the data term sum w l / S is scale-free ...
    a = quiet_fit(_full_batch(MLPClassifier, alpha=0.0), X, y, sample_weight=w)
    b = quiet_fit(_full_batch(MLPClassifier, alpha=0.0), X, y, sample_weight=10 * w)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-9)
    # ... the penalty alpha / (2 S) ||W||^2 is not: 10x the weights is alpha / 10 (as sklearn)
    c = quiet_fit(_full_batch(MLPClassifier, alpha=1.0), X, y, sample_weight=10 * w)
    d = quiet_fit(_full_batch(MLPClassifier, alpha=0.1), X, y, sample_weight=w)
    np.testing.assert_allclose(c.predict_proba(X), d.predict_proba(X), rtol=1e-9)


def test_negative_weights_are_rejected(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        MLPClassifier().fit(X, y, sample_weight=-np.ones(120))


# -- bad input: the same exceptions and messages as scikit-learn's MLP ----------------------
def _outcome(action):
    try:
        action()
    except Exception as err:  # noqa: BLE001 - we compare whatever each library raises
        return type(err), str(err)
    return None, "no error"


@pytest.fixture(scope="module")
def fitted_pair(blobs):
    """(ours, scikit-learn's) MLPClassifier and MLPRegressor fitted on the same data."""
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return {
            "classifier": (
                MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y),
                SkMLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y),
            ),
            "regressor": (
                MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(X, y.astype(float)),
                SkMLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(X, y.astype(float)),
            ),
        }


def _bad(X, value):
    X = X.copy()
    X[3, 2] = value
    return X


BAD_PREDICT = {
    "NaN": lambda X: _bad(X, np.nan),
    "inf": lambda X: _bad(X, np.inf),
    "wrong number of features": lambda X: X[:, :4],
    "1-D X": lambda X: X[0],
    "complex X": lambda X: X + 1j,
    "no samples": lambda X: X[:0],
}


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
@pytest.mark.parametrize("case", list(BAD_PREDICT))
def test_predict_errors_match_sklearn(fitted_pair, blobs, case, method):
    X, y = blobs
    bad = BAD_PREDICT[case](X)
    for kind, (ours, theirs) in fitted_pair.items():
        if not hasattr(theirs, method):
            continue
        args = (bad,) if method != "score" else (bad, y[: len(bad)] if bad.ndim == 2 else y[:1])
        mine = _outcome(lambda est=ours, args=args: getattr(est, method)(*args))
        expected = _outcome(lambda est=theirs, args=args: getattr(est, method)(*args))
        assert expected[0] is not None, f"{kind} {case}: scikit-learn raised nothing"
        assert mine == expected, kind


BAD_FIT = {
    "NaN in X": lambda X, y: (_bad(X, np.nan), y),
    "inf in X": lambda X, y: (_bad(X, -np.inf), y),
    "1-D X": lambda X, y: (X[:, 0], y),
    "NaN in y": lambda X, y: (X, np.where(np.arange(len(y)) == 5, np.nan, y)),
    "y of another length": lambda X, y: (X, y[:-1]),
    "y is None": lambda X, y: (X, None),
    "no samples": lambda X, y: (X[:0], y[:0]),
}


@pytest.mark.parametrize("case", list(BAD_FIT))
def test_fit_errors_match_sklearn(blobs, case):
    X, y = BAD_FIT[case](*blobs)
    for ours, theirs in ((MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)):
        yy = y if y is None or ours is MLPClassifier else np.asarray(y, dtype=float)
        mine = _outcome(lambda c=ours, yy=yy: c(max_iter=2).fit(X, yy))
        expected = _outcome(lambda c=theirs, yy=yy: c(max_iter=2).fit(X, yy))
        assert expected[0] is not None
        assert mine == expected, ours.__name__


OTHER_ERRORS = {
    "unfitted predict": lambda cls, X, y: cls().predict(X),
    "partial_fit without classes": lambda cls, X, y: cls().partial_fit(X, y),
    "partial_fit with early stopping": lambda cls, X, y: cls(early_stopping=True).partial_fit(
        X, y, classes=[0, 1, 2]
    ),
    "partial_fit with new classes": lambda cls, X, y: (
        cls(max_iter=2).partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y + 1)
    ),
    "partial_fit with other classes": lambda cls, X, y: (
        cls(max_iter=2).partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y, classes=[0, 1])
    ),
    "warm start with new classes": lambda cls, X, y: (
        cls(max_iter=2, warm_start=True).fit(X, y).fit(X, y + 1)
    ),
    "sample_weight of another length": lambda cls, X, y: cls().fit(X, y, sample_weight=[1, 2]),
    "all sample weights zero": lambda cls, X, y: cls().fit(X, y, sample_weight=np.zeros(len(y))),
    "features at predict differ from fit": lambda cls, X, y: (
        cls(max_iter=2).fit(X, y).predict(X[:, :-1])
    ),
    "early stopping validation set too small": lambda cls, X, y: cls(
        early_stopping=True, validation_fraction=0.01
    ).fit(X[:60], y[:60]),
}


@pytest.mark.parametrize("case", list(OTHER_ERRORS))
def test_other_errors_match_sklearn(blobs, case):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mine = _outcome(lambda: OTHER_ERRORS[case](MLPClassifier, X, y))
        expected = _outcome(lambda: OTHER_ERRORS[case](SkMLPClassifier, X, y))
    assert expected[0] is not None
    assert mine == expected


def test_not_fitted_error_type(blobs):
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(blobs[0])


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha=-1.0), "'alpha' parameter of MLPClassifier must be in"),
        (dict(solver="lbfgs"), "'solver' parameter"),
        (dict(hidden_layer_sizes=(10, 0)), "'hidden_layer_sizes' parameter"),
        (dict(activation="softplus"), "'activation' parameter"),
        (dict(batch_size=0), "'batch_size' parameter"),
        (dict(max_iter=0), "'max_iter' parameter"),
        (dict(dropout=1.0), "'dropout' parameter"),
        (dict(norm="group"), "'norm' parameter"),
        (dict(schedule="linear"), "'schedule' parameter"),
        (dict(dtype="float16"), "'dtype' parameter"),
        (dict(init="orthogonal"), "'init' parameter"),
        (dict(validation_fraction=1.0), "'validation_fraction' parameter"),
    ],
)
def test_bad_parameters_raise_at_fit_not_init(blobs, params, match):
    clf = MLPClassifier(**params)  # storing is never an error
    with pytest.raises(ValueError, match=match):
        clf.fit(*blobs)


def test_bad_parameter_type_is_a_type_error(blobs):
    with pytest.raises(TypeError, match="'learning_rate_init' parameter .* real number"):
        MLPClassifier(learning_rate_init="fast").fit(*blobs)


# -- twinnet's own options ------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "adamw", "sgd", "rmsprop", "adagrad"])
def test_every_solver_learns(blobs, solver):
    X, y = blobs
    lr = {"sgd": 0.05, "adagrad": 0.05}.get(solver, 0.005)
    clf = quiet_fit(
        MLPClassifier(
            hidden_layer_sizes=(16,),
            solver=solver,
            learning_rate_init=lr,
            weight_decay=0.01 if solver == "adamw" else 0.0,
            max_iter=60,
            random_state=0,
        ),
        X,
        y,
    )
    assert clf.score(X, y) > 0.9
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_schedules(blobs):
    X, y = blobs
    for schedule in ("cosine", "onecycle", "plateau"):
        clf = quiet_fit(
            MLPClassifier(
                hidden_layer_sizes=(16,),
                schedule=schedule,
                max_iter=30,
                tol=0.0,
                random_state=0,
                learning_rate_init=0.03,
            ),
            X,
            y,
        )
        assert clf.n_iter_ == 30 and clf.score(X, y) > 0.9, schedule
        if schedule != "plateau":  # both anneal the lr to (almost) zero by the last step
            assert clf._optimizer.param_groups[0]["lr"] < 0.03 / 100
    with pytest.raises(ValueError, match="partial_fit does not support schedule='cosine'"):
        MLPClassifier(schedule="cosine").partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norm_and_dropout(blobs, norm):
    X, y = blobs
    clf = quiet_fit(
        MLPClassifier(
            hidden_layer_sizes=(16, 16),
            norm=norm,
            dropout=0.2,
            max_iter=60,
            batch_size=33,
            random_state=0,
        ),  # 120 = 3 * 33 + 21: uneven batches
        X,
        y,
    )
    kinds = {type(m).__name__ for m in clf.model_.modules()}
    assert {"BatchNorm1d" if norm == "batch" else "LayerNorm", "Dropout"} <= kinds
    assert not clf.model_.training  # fitted networks are left in eval mode
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))  # deterministic
    assert clf.score(X, y) > 0.9


def test_sklearn_init_and_float64(blobs):
    X, y = blobs
    clf = quiet_fit(
        MLPClassifier(
            hidden_layer_sizes=(5,),
            init="sklearn",
            dtype="float64",
            max_iter=1,
            learning_rate_init=1e-12,
            random_state=0,
        ),
        X,
        y,
    )
    first = clf.model_[0]
    bound = np.sqrt(6.0 / (6 + 5))
    assert first.weight.dtype == np.float64
    assert np.abs(first.weight.data).max() <= bound and np.abs(first.bias.data).max() <= bound
    assert np.abs(first.bias.data).max() > 0  # biases drawn too, as scikit-learn does


def test_sparse_input_gives_the_dense_result(blobs):
    X, y = blobs
    X = np.where(np.abs(X) > 1.5, X, 0.0)
    kwargs = dict(hidden_layer_sizes=(8,), max_iter=20, batch_size=32, random_state=0)
    dense = quiet_fit(MLPClassifier(**kwargs), X, y)
    sparse = quiet_fit(MLPClassifier(**kwargs), sp.csr_matrix(X), y)
    np.testing.assert_array_equal(dense.predict_proba(X), sparse.predict_proba(sp.csc_matrix(X)))


def test_same_seed_same_network(blobs):
    X, y = blobs
    a = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=7), X, y)
    b = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=7), X, y)
    c = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=8), X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


# -- the fitted network is an ordinary twinnet model ------------------------------------------
def test_model_is_a_twinnet_network_and_gradchecks(blobs):
    X, y = blobs
    clf = quiet_fit(
        MLPClassifier(
            hidden_layer_sizes=(5,), activation="tanh", dtype="float64", max_iter=5, random_state=0
        ),
        X,
        y,
    )
    names = [name for name, _ in clf.model_.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    np.testing.assert_array_equal(clf.coefs_[0], clf.model_[0].weight.data.T)
    report = gradcheck(clf.model_, losses.CrossEntropyLoss(), X[:6], y[:6])
    assert report.passed, str(report)


def test_torch_twin_gives_the_same_predictions(blobs):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    from twinnet import twin

    X, y = blobs
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=20, random_state=0), X, y)
    net = twin.to_torch(clf.model_)
    assert not net.training
    with torch.no_grad():
        logits = net(torch.from_numpy(X.astype(np.float32))).double()
    proba = torch.softmax(logits, dim=1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_save_writes_safetensors(blobs, tmp_path):
    X, y = blobs
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, y)
    path = tmp_path / "mlp.safetensors"
    clf.save(path)
    meta = checkpoint.read_metadata(path)
    assert meta["estimator"] == "MLPClassifier" and meta["classes"] == "[0, 1, 2]"
    assert meta["n_features_in"] == "6"
    other = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=1), X, y)
    assert not np.array_equal(other.predict_proba(X), clf.predict_proba(X))
    checkpoint.load_weights(path, other.model_)
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))


def test_feature_names_in():
    pd = pytest.importorskip(
        "pandas", reason="pandas not installed: feature names need a DataFrame"
    )
    X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    reg = quiet_fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=2), frame, y)
    np.testing.assert_array_equal(reg.feature_names_in_, ["a", "b", "c"])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        reg.predict(X)
    with pytest.raises(ValueError, match="feature names should match"):
        reg.predict(frame[["b", "a", "c"]])
