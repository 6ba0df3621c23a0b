"""Losses: values and gradients against formulas written here, dtypes, extremes, bad input.

Finite-difference checks are in test_gradcheck.py and PyTorch comparisons of the default
losses in test_vs_torch_layers.py; ``reduction``, class weights and ``ignore_index`` are
compared with PyTorch here, through the twin's ``loss_to_torch``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from twinnet import losses

F32, F64 = np.float32, np.float64


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


# -- values and gradients from the formulas ---------------------------------------------------
def test_mse_value_and_gradient():
    pred = np.array([[1.0, 2.0], [3.0, -1.0]])
    target = np.array([[0.0, 2.0], [1.0, 1.0]])
    loss = losses.MSELoss()
    # mean of squares over all 4 elements: (1 + 0 + 4 + 4) / 4
    assert loss(pred, target) == 2.25
    # dL/dpred = 2 (pred - target) / 4
    np.testing.assert_array_equal(loss.backward(), [[0.5, 0.0], [1.0, -1.0]])


def test_bce_value_and_gradient():
    p = np.array([[0.9], [0.2], [0.6]])
    t = np.array([[1.0], [0.0], [0.5]])
    loss = losses.BCELoss()
    expected = -(math.log(0.9) + math.log(0.8) + 0.5 * math.log(0.6) + 0.5 * math.log(0.4)) / 3
    assert loss(p, t) == pytest.approx(expected, rel=1e-14)
    # dL/dp = (p - t) / (p (1 - p)) / N
    expected_grad = [[-0.1 / 0.09 / 3], [0.2 / 0.16 / 3], [0.1 / 0.24 / 3]]
    np.testing.assert_allclose(loss.backward(), expected_grad, rtol=1e-13)


def test_bce_with_logits_equals_bce_of_sigmoid():
    z = np.array([[-3.0, 0.0], [0.5, 4.0]])
    t = np.array([[0.0, 1.0], [1.0, 0.3]])
    loss = losses.BCEWithLogitsLoss()
    s = np.vectorize(sigmoid)(z)
    expected = -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert loss(z, t) == pytest.approx(expected, rel=1e-13)
    # the fused gradient: dL/dz = (sigmoid(z) - t) / N
    np.testing.assert_allclose(loss.backward(), (s - t) / 4, rtol=1e-13)


def test_bce_with_logits_pos_weight_scales_the_positive_term():
    z = np.array([[-1.0, 2.0], [0.5, -0.3]])
    t = np.array([[1.0, 0.0], [1.0, 0.5]])
    w = np.array([3.0, 0.5])  # one weight per output column
    loss = losses.BCEWithLogitsLoss(pos_weight=w)
    s = np.vectorize(sigmoid)(z)
    # L = -mean(w t log s + (1 - t) log(1 - s))
    expected = -np.mean(w * t * np.log(s) + (1 - t) * np.log(1 - s))
    assert loss(z, t) == pytest.approx(expected, rel=1e-13)
    # dL/dz = (-w t (1 - s) + (1 - t) s) / N
    np.testing.assert_allclose(loss.backward(), (-w * t * (1 - s) + (1 - t) * s) / 4, rtol=1e-13)
    # pos_weight = 1 is the plain loss
    plain, ones = losses.BCEWithLogitsLoss(), losses.BCEWithLogitsLoss(pos_weight=[1.0, 1.0])
    assert ones(z, t) == pytest.approx(plain(z, t), rel=1e-14)


def test_cross_entropy_value_and_gradient():
    logits = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 3.0]])
    labels = np.array([0, 1])
    loss = losses.CrossEntropyLoss()
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    assert loss(logits, labels) == pytest.approx(
        -(math.log(p[0, 0]) + math.log(p[1, 1])) / 2, rel=1e-14
    )
    onehot = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    # dL/dz = (softmax(z) - onehot) / B
    np.testing.assert_allclose(loss.backward(), (p - onehot) / 2, rtol=1e-13)


def test_cross_entropy_label_smoothing():
    logits = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 3.0]])
    labels = np.array([0, 2])
    eps, c = 0.2, 3
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    q = np.full((2, c), eps / c)
    q[[0, 1], labels] += 1 - eps  # q = (1 - eps) onehot + eps / C
    loss = losses.CrossEntropyLoss(label_smoothing=eps)
    assert loss(logits, labels) == pytest.approx(-(q * log_p).sum(axis=1).mean(), rel=1e-14)
    np.testing.assert_allclose(loss.backward(), (np.exp(log_p) - q) / 2, rtol=1e-13)


def test_losses_return_python_floats_and_use_the_latest_forward():
    loss = losses.MSELoss()
    value = loss(np.ones((2, 2), F32), np.zeros((2, 2)))
    assert type(value) is float
    loss(np.full((3, 1), 2.0), np.zeros(3))  # a (B,) target is accepted for a (B, 1) prediction
    np.testing.assert_array_equal(loss.backward(), np.full((3, 1), 4 / 3))


def test_vector_target_for_column_prediction():
    p = np.array([[0.25], [0.75]])
    assert losses.BCELoss()(p, np.array([0, 1])) == pytest.approx(-math.log(0.75))
    assert losses.BCEWithLogitsLoss()(np.zeros((2, 1)), [0, 1]) == pytest.approx(math.log(2))


# -- dtypes -----------------------------------------------------------------------------------
LOSS_CASES = {
    "MSELoss": (
        losses.MSELoss,
        lambda rng, s: rng.normal(size=s),
        lambda rng, s: rng.normal(size=s),
    ),
    "BCELoss": (
        losses.BCELoss,
        lambda rng, s: rng.uniform(0.05, 0.95, size=s),
        lambda rng, s: rng.integers(0, 2, size=s).astype(F64),
    ),
    "BCEWithLogitsLoss": (
        losses.BCEWithLogitsLoss,
        lambda rng, s: rng.normal(size=s),
        lambda rng, s: rng.integers(0, 2, size=s).astype(F64),
    ),
    "BCEWithLogitsLoss-pos_weight": (
        lambda: losses.BCEWithLogitsLoss(pos_weight=[2.0, 0.5, 1.0]),
        lambda rng, s: rng.normal(size=s),
        lambda rng, s: rng.integers(0, 2, size=s).astype(F64),
    ),
    "CrossEntropyLoss": (
        losses.CrossEntropyLoss,
        lambda rng, s: rng.normal(size=s),
        lambda rng, s: rng.integers(0, s[1], size=s[0]),
    ),
    "CrossEntropyLoss-smoothing": (
        lambda: losses.CrossEntropyLoss(label_smoothing=0.1),
        lambda rng, s: rng.normal(size=s),
        lambda rng, s: rng.integers(0, s[1], size=s[0]),
    ),
}


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_gradient_has_the_prediction_dtype_and_shape(name, dtype, rng):
    make, make_pred, make_target = LOSS_CASES[name]
    pred = make_pred(rng, (4, 3)).astype(dtype)
    loss = make()
    value = loss(pred, make_target(rng, (4, 3)))
    grad = loss.backward()
    assert type(value) is float and math.isfinite(value)
    assert grad.dtype == dtype and grad.shape == pred.shape and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_backward_before_forward_is_an_error(name):
    make = LOSS_CASES[name][0]
    loss = make()
    with pytest.raises(
        RuntimeError, match=rf"{type(loss).__name__}: backward called before forward"
    ):
        loss.backward()


@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_integer_prediction_is_rejected(name, rng):
    make, _, make_target = LOSS_CASES[name]
    loss = make()
    msg = rf"{type(loss).__name__} expects a floating numpy array as prediction, got int64"
    with pytest.raises(TypeError, match=msg):
        loss(np.ones((4, 3), dtype=np.int64), make_target(rng, (4, 3)))


# -- extreme values ---------------------------------------------------------------------------
@pytest.mark.parametrize("pos_weight", [None, [3.0, 3.0]])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_bce_with_logits_at_plus_minus_1e4(dtype, pos_weight):
    z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=dtype)
    t = np.array([[1.0, 0.0], [1.0, 0.0]])  # first row right and sure, second row wrong and sure
    loss = losses.BCEWithLogitsLoss(pos_weight)
    with np.errstate(over="raise", invalid="raise"):
        value = loss(z, t)
        grad = loss.backward()
    w = 1.0 if pos_weight is None else 3.0
    # right: log(1 + e^-1e4) = 0; wrong: -log sigmoid(-1e4) = 1e4 (times w for the positive)
    assert value == pytest.approx((w * 1e4 + 1e4) / 4, rel=1e-6)
    np.testing.assert_allclose(grad, [[0.0, 0.0], [-w / 4, 1 / 4]], atol=1e-7)
    assert grad.dtype == dtype


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_cross_entropy_with_logits_1e4_apart(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], dtype=dtype)
    loss = losses.CrossEntropyLoss()
    with np.errstate(over="raise", invalid="raise"):
        value = loss(logits, np.array([2, 1]))
        grad = loss.backward()
    # row 0 puts its mass 2e4 above the label: -log p = 2e4; row 1 is right and sure: 0
    assert value == pytest.approx(1e4, rel=1e-6)
    np.testing.assert_allclose(grad, [[0.5, 0.0, -0.5], [0.0, 0.0, 0.0]], atol=1e-7)
    assert grad.dtype == dtype


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_bce_clamps_log_at_minus_100_like_pytorch(dtype):
    p = np.array([[0.0], [1.0], [0.0], [1.0]], dtype=dtype)
    t = np.array([[1.0], [0.0], [0.0], [1.0]])
    loss = losses.BCELoss()
    with np.errstate(all="raise"):
        value = loss(p, t)
    assert value == pytest.approx((100 + 100 + 0 + 0) / 4)  # log 0 -> -100, never inf
    grad = loss.backward()
    # denominator p (1 - p) floored at 1e-12: (p - t) / 1e-12 / N
    np.testing.assert_allclose(grad, np.array([[-1e12], [1e12], [0.0], [0.0]]) / 4, rtol=1e-6)
    assert grad.dtype == dtype


# -- bad input --------------------------------------------------------------------------------
LOGITS = np.zeros((3, 5))


@pytest.mark.parametrize(
    ("target", "error", "msg"),
    [
        (np.array([0, 5, 1]), ValueError, r"label 5 out of range for 5 classes \(expected 0..4\)"),
        (np.array([0, -1, 1]), ValueError, r"label -1 out of range for 5 classes"),
        (
            np.array([0.0, 1.0, 2.0]),
            TypeError,
            r"integer class indices as target, got dtype float64",
        ),
        (
            np.array([True, False, True]),
            TypeError,
            r"integer class indices as target, got dtype bool",
        ),
        (
            np.array([[0], [1], [2]]),
            ValueError,
            r"target shape \(3, 1\) does not fit logits \(3, 5\); expected \(3,\)",
        ),
        (np.array([0, 1]), ValueError, r"target shape \(2,\) does not fit logits \(3, 5\)"),
    ],
    ids=["label-too-large", "label-negative", "float-labels", "bool-labels", "column", "too-few"],
)
def test_cross_entropy_rejects_bad_targets(target, error, msg):
    loss = losses.CrossEntropyLoss()
    with pytest.raises(error, match="CrossEntropyLoss.*" + msg):
        loss(LOGITS, target)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        loss.backward()  # a rejected forward caches nothing


def test_cross_entropy_rejects_non_2d_logits():
    with pytest.raises(ValueError, match=r"logits of shape \(batch, classes\), got \(5,\)"):
        losses.CrossEntropyLoss()(np.zeros(5), np.array([1]))


@pytest.mark.parametrize("eps", [-0.1, 1.5])
def test_cross_entropy_label_smoothing_range(eps):
    with pytest.raises(
        ValueError, match=re.escape(f"label_smoothing must be in [0, 1], got {eps}")
    ):
        losses.CrossEntropyLoss(label_smoothing=eps)


@pytest.mark.parametrize("loss", [losses.MSELoss(), losses.BCELoss(), losses.BCEWithLogitsLoss()])
def test_target_shape_must_match_prediction(loss):
    msg = re.escape(
        f"{type(loss).__name__}: target shape (3, 2) does not match prediction shape (2, 3)"
    )
    with pytest.raises(ValueError, match=msg):
        loss(np.full((2, 3), 0.5), np.zeros((3, 2)))


def test_empty_batch_and_non_numeric_target():
    with pytest.raises(
        ValueError, match=r"MSELoss expects a non-empty batch, got prediction shape \(0, 2\)"
    ):
        losses.MSELoss()(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(TypeError, match=r"MSELoss expects a numeric target, got dtype <U1"):
        losses.MSELoss()(np.zeros((1, 2)), np.array([["a", "b"]]))


@pytest.mark.parametrize("bad", [1.5, -0.01, float("nan")])
def test_bce_rejects_values_that_are_not_probabilities(bad):
    p = np.array([[0.5], [bad]])
    with pytest.raises(
        ValueError, match=r"BCELoss expects probabilities in \[0, 1\].*BCEWithLogitsLoss"
    ):
        losses.BCELoss()(p, np.array([[1.0], [0.0]]))


# -- reduction, class weights and ignore_index, against PyTorch (issue 15, item 9) -------------
REDUCTION_CASES = {
    "MSE": (lambda **kw: losses.MSELoss(**kw), lambda rng: rng.normal(size=(5, 3))),
    "BCE": (lambda **kw: losses.BCELoss(**kw), lambda rng: rng.uniform(0.05, 0.95, (5, 3))),
    "BCEWithLogits": (
        lambda **kw: losses.BCEWithLogitsLoss(**kw),
        lambda rng: rng.uniform(0, 1, (5, 3)),
    ),
    "BCEWithLogits-pos_weight": (
        lambda **kw: losses.BCEWithLogitsLoss(pos_weight=[2.0, 0.5, 1.5], **kw),
        lambda rng: rng.uniform(0, 1, (5, 3)),
    ),
    "CrossEntropy": (lambda **kw: losses.CrossEntropyLoss(**kw), lambda rng: rng.integers(0, 3, 5)),
    "CrossEntropy-weight-ignore-smoothing": (
        lambda **kw: losses.CrossEntropyLoss(
            weight=[0.3, 2.0, 1.2], ignore_index=1, label_smoothing=0.2, **kw
        ),
        lambda rng: np.array([0, 1, 2, 2, 1]),
    ),
}


def against_torch(torch, loss, pred, target, upstream):
    """Value and dL/dpred of ``loss`` and of its twin (``twin.loss_to_torch``) after the same
    upstream gradient: an array of the loss's shape for "none", a scalar otherwise."""
    from twinnet import twin

    theirs = twin.loss_to_torch(loss, pred.dtype)
    pt = torch.from_numpy(pred.copy()).requires_grad_(True)
    value_t = theirs(pt, twin.target_to_torch(loss, target, pred.shape, pred.dtype))
    value_t.backward(torch.as_tensor(upstream, dtype=value_t.dtype).reshape(value_t.shape))
    value = loss(pred, target)
    grad = loss.backward(upstream)
    return value, grad, value_t.detach().numpy(), pt.grad.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(REDUCTION_CASES))
def test_reduction_matches_torch_in_float64(name, reduction, torch_or_skip):
    rng = np.random.default_rng(7)
    make, make_target = REDUCTION_CASES[name]
    pred = rng.normal(size=(5, 3))
    if name == "BCE":
        pred = rng.uniform(0.02, 0.98, (5, 3))
    target = make_target(rng)
    loss = make(reduction=reduction)
    loss_shape = (5,) if name.startswith("CrossEntropy") else (5, 3)
    upstream = rng.normal(size=loss_shape) if reduction == "none" else float(rng.normal())
    value, grad, value_t, grad_t = against_torch(torch_or_skip, loss, pred, target, upstream)
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.shape == loss_shape and value.dtype == F64
    else:
        assert type(value) is float
    np.testing.assert_allclose(value, value_t, rtol=1e-12, atol=1e-14)
    assert grad.shape == pred.shape and grad.dtype == F64
    np.testing.assert_allclose(grad, grad_t, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
def test_cross_entropy_weight_and_ignore_index_match_torch(reduction, smoothing, dtype, torch_or_skip):
    rng = np.random.default_rng(3)
    pred = rng.normal(size=(9, 4)).astype(dtype)
    target = np.array([0, -100, 3, 1, 3, -100, 2, 0, 1])  # torch's default ignore_index
    loss = losses.CrossEntropyLoss(
        weight=[0.5, 2.0, 1.0, 3.0], reduction=reduction, label_smoothing=smoothing
    )
    upstream = rng.normal(size=9) if reduction == "none" else 0.7
    value, grad, value_t, grad_t = against_torch(torch_or_skip, loss, pred, target, upstream)
    tol = 1e-12 if dtype == F64 else 1e-5
    np.testing.assert_allclose(value, value_t, rtol=tol, atol=tol)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, grad_t, rtol=tol, atol=tol)
    assert not grad[[1, 5]].any(), "ignored rows get no gradient"


def test_weighted_cross_entropy_mean_divides_by_the_weights_of_kept_targets():
    # hand-computed: two classes with equal logits, so every -log p = log 2
    logits = np.zeros((3, 2))
    target = np.array([0, 1, 7])
    loss = losses.CrossEntropyLoss(weight=[1.0, 3.0], ignore_index=7)
    # (1 * log 2 + 3 * log 2) / (1 + 3): the ignored row counts in neither sum
    assert loss(logits, target) == pytest.approx(math.log(2), rel=1e-15)
    # rows: w_y (softmax - onehot) / 4 = [1 * (0.5 - 1), 1 * 0.5] / 4, [3 * 0.5, 3 * (0.5 - 1)] / 4
    np.testing.assert_allclose(
        loss.backward(), [[-0.125, 0.125], [0.375, -0.375], [0.0, 0.0]], rtol=1e-15
    )
    # label smoothing eps: adds (eps / C) sum_c w_c (-log p_c) per kept row, over the same 4
    smooth = losses.CrossEntropyLoss(weight=[1.0, 3.0], ignore_index=7, label_smoothing=0.5)
    expected = (0.5 * 4 * math.log(2) + 0.25 * 2 * 4 * math.log(2)) / 4
    assert smooth(logits, target) == pytest.approx(expected, rel=1e-15)


def test_cross_entropy_with_every_row_ignored_is_nan_with_zero_gradient_as_in_torch():
    loss = losses.CrossEntropyLoss(label_smoothing=0.1)
    assert math.isnan(loss(np.ones((2, 3)), np.array([-100, -100])))
    np.testing.assert_array_equal(loss.backward(), np.zeros((2, 3)))
    summed = losses.CrossEntropyLoss(reduction="sum")
    assert summed(np.ones((2, 3)), np.array([-100, -100])) == 0.0


def test_sum_and_none_relate_to_mean_by_hand():
    pred = np.array([[1.0, 2.0], [3.0, -1.0]])
    target = np.array([[0.0, 2.0], [1.0, 1.0]])
    assert losses.MSELoss(reduction="sum")(pred, target) == 9.0
    none = losses.MSELoss(reduction="none")
    np.testing.assert_array_equal(none(pred, target), [[1.0, 0.0], [4.0, 4.0]])
    # dL/dpred = 2 (pred - target) * dL/dloss, element by element
    np.testing.assert_array_equal(
        none.backward(np.array([[1.0, 5.0], [0.5, -2.0]])), [[2.0, 0.0], [2.0, 8.0]]
    )


def test_reduction_errors_are_clear():
    with pytest.raises(
        ValueError, match=r"MSELoss reduction must be one of 'mean', 'sum', 'none', got 'avg'"
    ):
        losses.MSELoss(reduction="avg")
    none = losses.BCEWithLogitsLoss(reduction="none")
    none(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"needs the upstream gradient dL/dloss of shape \(2, 3\)"):
        none.backward()
    with pytest.raises(ValueError, match=r"grad_out shape \(3,\) does not match the loss shape \(2, 3\)"):
        none.backward(np.ones(3))
    mean = losses.MSELoss()
    mean(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"takes a scalar grad_out, got shape \(2, 3\)"):
        mean.backward(np.ones((2, 3)))


def test_cross_entropy_weight_and_ignore_index_errors():
    with pytest.raises(ValueError, match=r"weight has 2 entries for 3 classes"):
        losses.CrossEntropyLoss(weight=[1.0, 2.0])(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"weight must be a 1-D array of finite numbers"):
        losses.CrossEntropyLoss(weight=[[1.0, 2.0]])
    with pytest.raises(TypeError, match=r"ignore_index must be an int, got 0.5"):
        losses.CrossEntropyLoss(ignore_index=0.5)
    # only the ignore_index may lie outside 0..C-1
    loss = losses.CrossEntropyLoss(ignore_index=-1)
    loss(np.zeros((2, 3)), np.array([-1, 2]))
    with pytest.raises(ValueError, match=r"label -100 out of range for 3 classes"):
        loss(np.zeros((2, 3)), np.array([-100, 2]))
    assert repr(losses.CrossEntropyLoss(weight=[1, 2], ignore_index=0, reduction="sum")) == (
        "CrossEntropyLoss(weight=[1.0, 2.0], ignore_index=0, reduction='sum', label_smoothing=0.0)"
    )


def test_twin_compare_passes_with_class_weights_and_ignored_targets(torch_or_skip):
    from twinnet import nn, twin

    rng = np.random.default_rng(5)
    model = nn.Sequential(
        nn.Linear(4, 6, dtype=F64, rng=rng), nn.Tanh(), nn.Linear(6, 3, dtype=F64, rng=rng)
    )
    x = rng.normal(size=(8, 4))
    y = np.array([0, 2, -100, 1, 2, 0, -100, 1])
    loss = losses.CrossEntropyLoss(weight=[1.0, 0.2, 4.0], label_smoothing=0.1)
    assert twin.compare(model, loss, x, y).passed()
    assert twin.compare(model, losses.MSELoss(reduction="sum"), x, rng.normal(size=(8, 3))).passed()
