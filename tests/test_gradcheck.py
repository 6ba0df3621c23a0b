"""Every hand-written backward against centred finite differences, in float64.

Shapes and data are drawn with hypothesis (batch sizes include 1); each tensor must
reach a relative error ||analytic - numeric|| / (||analytic|| + ||numeric||) below
1e-7. Layers are checked under an MSE loss against a random target, so the upstream
gradient each layer receives is random too (never the all-ones of a ``.sum()``).
The second half tests ``check.gradcheck`` itself: that it catches wrong backwards and
leaves the model as it found it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twinnet import check, losses, nn
from twinnet.nn import init as nninit

F64 = np.float64
TOL = 1e-7
# derandomize: the same examples on every run, so a pass (or a failure) is reproducible
GRAD_SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)

batches = st.integers(1, 4)
features = st.integers(1, 5)
seeds = st.integers(0, 2**32 - 1)


def assert_gradcheck(model, loss_fn, x, y, **kwargs):
    """gradcheck passes, and through the relative error of every tensor (not its atol branch)."""
    report = check.gradcheck(model, loss_fn, x, y, **kwargs)
    assert report.passed, f"\n{report}"
    assert report.max_rel_error < TOL, f"\n{report}"
    return report


def check_layer(layer, x, rng):
    """Gradcheck ``layer`` alone under an MSE loss with a random target."""
    target = rng.normal(size=layer(x).shape)
    return assert_gradcheck(layer, losses.MSELoss(), x, target)


def away_from_kink(rng, shape):
    """Random values with |x| in [1e-3, 3]: finite differences never step over 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(1e-3, 3.0, size=shape)


def randomise_affine(layer, rng):
    """Give gamma and beta random values, so a backward that ignores them fails."""
    layer.weight.data[...] = rng.uniform(0.5, 2.0, size=layer.weight.shape)
    if getattr(layer, "bias", None) is not None:
        layer.bias.data[...] = rng.normal(size=layer.bias.shape)


# -- Linear -----------------------------------------------------------------------------------
@pytest.mark.parametrize("init", sorted(nninit.WEIGHT_INITS))
@pytest.mark.parametrize("bias", [True, False])
@GRAD_SETTINGS
@given(b=batches, d_in=features, d_out=features, seed=seeds)
def test_linear(init, bias, b, d_in, d_out, seed):
    rng = np.random.default_rng(seed)
    layer = nn.Linear(d_in, d_out, bias=bias, init=init, dtype=F64, rng=rng)
    report = check_layer(layer, rng.normal(size=(b, d_in)), rng)
    expected = ["weight", "bias", "input"] if bias else ["weight", "input"]
    assert [c.name for c in report.checks] == expected


# -- activations ------------------------------------------------------------------------------
SMOOTH_ACTIVATIONS = {
    "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh,
    "GELU-none": lambda: nn.GELU("none"),
    "GELU-tanh": lambda: nn.GELU("tanh"),
    "SiLU": nn.SiLU,
    "Softmax": nn.Softmax,
    "Softmax-dim0": lambda: nn.Softmax(dim=0),
    "Identity": nn.Identity,
}
KINKED_ACTIVATIONS = {
    "ReLU": nn.ReLU,
    "LeakyReLU": nn.LeakyReLU,
    "LeakyReLU-0.2": lambda: nn.LeakyReLU(0.2),
}


@pytest.mark.parametrize("name", sorted(SMOOTH_ACTIVATIONS))
@GRAD_SETTINGS
@given(b=batches, d=features, seed=seeds)
def test_smooth_activation(name, b, d, seed):
    rng = np.random.default_rng(seed)
    # |x| <= 3 keeps saturating layers (tanh'(3) = 0.01) far above finite-difference rounding
    check_layer(SMOOTH_ACTIVATIONS[name](), rng.uniform(-3, 3, size=(b, d)), rng)


@pytest.mark.parametrize("name", sorted(KINKED_ACTIVATIONS))
@GRAD_SETTINGS
@given(b=batches, d=features, seed=seeds)
def test_relu_family_away_from_kink(name, b, d, seed):
    rng = np.random.default_rng(seed)
    check_layer(KINKED_ACTIVATIONS[name](), away_from_kink(rng, (b, d)), rng)


# -- SwiGLU -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
@GRAD_SETTINGS
@given(b=batches, d_in=features, hidden=features, d_out=st.none() | features, seed=seeds)
def test_swiglu(bias, b, d_in, hidden, d_out, seed):
    rng = np.random.default_rng(seed)
    layer = nn.SwiGLU(d_in, hidden, d_out, bias=bias, dtype=F64, rng=rng)
    check_layer(layer, rng.normal(size=(b, d_in)), rng)


# -- normalisation ----------------------------------------------------------------------------
def norm_eps(n):
    """The eps for normalising over n values. Over only 2, x_hat = +-(x1 - x2) / sqrt((x1 - x2)^2
    + 4 eps) is nearly constant with the default eps 1e-5: dL/dx shrinks to the size of
    finite-difference rounding and no relative error can be measured. A large eps keeps it
    measurable (and checks that eps enters the backward correctly)."""
    return 1.0 if n == 2 else 1e-5


@pytest.mark.parametrize("affine", [True, False])
@GRAD_SETTINGS
@given(b=st.integers(2, 5), d=features, seed=seeds)
def test_batchnorm_train(affine, b, d, seed):
    rng = np.random.default_rng(seed)
    layer = nn.BatchNorm1d(d, eps=norm_eps(b), affine=affine, dtype=F64)
    if affine:
        randomise_affine(layer, rng)
    check_layer(layer, 2 + 3 * rng.normal(size=(b, d)), rng)


@GRAD_SETTINGS
@given(b=batches, d=features, seed=seeds)
def test_batchnorm_eval_uses_running_stats(b, d, seed):
    rng = np.random.default_rng(seed)
    layer = nn.BatchNorm1d(d, momentum=0.5, dtype=F64)
    randomise_affine(layer, rng)
    for _ in range(3):  # training steps move the running statistics away from (0, 1)
        layer(rng.normal(loc=2.0, scale=3.0, size=(8, d)))
    assert not np.allclose(layer.running_mean, 0) and not np.allclose(layer.running_var, 1)
    layer.eval()
    check_layer(layer, rng.normal(size=(b, d)), rng)


@GRAD_SETTINGS
@given(b=st.integers(2, 5), d=features, seed=seeds)
def test_batchnorm_without_running_stats_in_eval(b, d, seed):
    # track_running_stats=False normalises with batch statistics in eval mode too
    rng = np.random.default_rng(seed)
    layer = nn.BatchNorm1d(d, norm_eps(b), track_running_stats=False, dtype=F64).eval()
    randomise_affine(layer, rng)
    check_layer(layer, rng.normal(size=(b, d)), rng)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"bias": False}, {"elementwise_affine": False}],
    ids=["affine", "no-bias", "plain"],
)
@GRAD_SETTINGS
@given(b=batches, d=st.integers(2, 6), seed=seeds)
def test_layernorm(kwargs, b, d, seed):
    rng = np.random.default_rng(seed)
    layer = nn.LayerNorm(d, norm_eps(d), dtype=F64, **kwargs)
    if layer.elementwise_affine:
        randomise_affine(layer, rng)
    check_layer(layer, 1 + 2 * rng.normal(size=(b, d)), rng)


@GRAD_SETTINGS
@given(b=batches, t=st.integers(1, 3), d=st.integers(2, 4), seed=seeds)
def test_layernorm_on_sequences(b, t, d, seed):
    rng = np.random.default_rng(seed)
    layer = nn.LayerNorm(d, norm_eps(d), dtype=F64)
    randomise_affine(layer, rng)
    check_layer(layer, rng.normal(size=(b, t, d)), rng)


# -- Dropout ----------------------------------------------------------------------------------
@GRAD_SETTINGS
@given(b=batches, d=features, p=st.sampled_from([0.0, 0.2, 0.5, 0.9]), seed=seeds)
def test_dropout_mask_from_its_rng(b, d, p, seed):
    # gradcheck restores the layer's rng before each forward, so every pass draws one mask
    rng = np.random.default_rng(seed)
    check_layer(nn.Dropout(p, rng=seed), rng.normal(size=(b, d)), rng)


@GRAD_SETTINGS
@given(b=batches, d=features, p=st.sampled_from([0.2, 0.5]), seed=seeds)
def test_dropout_fixed_mask(b, d, p, seed):
    rng = np.random.default_rng(seed)
    layer = nn.Dropout(p)
    layer.fix_mask(rng.random((b, d)) >= p)
    check_layer(layer, rng.normal(size=(b, d)), rng)


def test_dropout_eval_is_identity_for_gradcheck(rng):
    check_layer(nn.Dropout(0.5).eval(), rng.normal(size=(3, 4)), rng)


# -- losses (the prediction is the checked input) ----------------------------------------------
@GRAD_SETTINGS
@given(b=batches, c=features, seed=seeds)
def test_mse_loss(b, c, seed):
    rng = np.random.default_rng(seed)
    assert_gradcheck(
        nn.Identity(), losses.MSELoss(), rng.normal(size=(b, c)), rng.normal(size=(b, c))
    )


@GRAD_SETTINGS
@given(b=batches, c=features, soft=st.booleans(), seed=seeds)
def test_bce_loss(b, c, soft, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, size=(b, c))  # probabilities away from 0 and 1
    t = rng.uniform(size=(b, c)) if soft else rng.integers(0, 2, size=(b, c)).astype(F64)
    assert_gradcheck(nn.Identity(), losses.BCELoss(), p, t)


@GRAD_SETTINGS
@given(b=batches, c=features, pos_weight=st.booleans(), seed=seeds)
def test_bce_with_logits_loss(b, c, pos_weight, seed):
    rng = np.random.default_rng(seed)
    weight = rng.uniform(0.2, 5.0, size=c) if pos_weight else None
    t = rng.integers(0, 2, size=(b, c)).astype(F64)
    assert_gradcheck(
        nn.Identity(), losses.BCEWithLogitsLoss(weight), 3 * rng.normal(size=(b, c)), t
    )


@GRAD_SETTINGS
@given(b=batches, c=st.integers(2, 6), smoothing=st.sampled_from([0.0, 0.1, 0.5]), seed=seeds)
def test_cross_entropy_loss(b, c, smoothing, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=b)
    loss = losses.CrossEntropyLoss(label_smoothing=smoothing)
    assert_gradcheck(nn.Identity(), loss, 3 * rng.normal(size=(b, c)), labels)


@GRAD_SETTINGS
@given(
    b=batches,
    c=st.integers(2, 6),
    smoothing=st.sampled_from([0.0, 0.2]),
    reduction=st.sampled_from(["mean", "sum"]),
    seed=seeds,
)
def test_cross_entropy_with_class_weights_and_ignored_targets(b, c, smoothing, reduction, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=b)
    labels[1:][rng.random(b - 1) < 0.4] = -100  # some rows ignored, never the first
    loss = losses.CrossEntropyLoss(
        weight=rng.uniform(0.2, 3.0, size=c), reduction=reduction, label_smoothing=smoothing
    )
    assert_gradcheck(nn.Identity(), loss, 3 * rng.normal(size=(b, c)), labels)


@GRAD_SETTINGS
@given(b=batches, c=features, seed=seeds)
def test_sum_reduction_of_every_loss(b, c, seed):
    rng = np.random.default_rng(seed)
    z, t = rng.normal(size=(b, c)), rng.integers(0, 2, size=(b, c)).astype(F64)
    assert_gradcheck(nn.Identity(), losses.MSELoss(reduction="sum"), z, rng.normal(size=(b, c)))
    assert_gradcheck(nn.Identity(), losses.BCELoss(reduction="sum"), rng.uniform(0.05, 0.95, (b, c)), t)
    bce = losses.BCEWithLogitsLoss(rng.uniform(0.2, 5.0, size=c), reduction="sum")
    assert_gradcheck(nn.Identity(), bce, 3 * z, t)


def test_rejects_a_loss_that_is_not_reduced():
    with pytest.raises(ValueError, match="gradcheck needs a scalar loss; MSELoss has reduction='none'"):
        check.gradcheck(nn.Identity(), losses.MSELoss(reduction="none"), np.ones((1, 2)), np.ones((1, 2)))


# -- whole networks ---------------------------------------------------------------------------
def test_deep_network_with_every_smooth_layer(rng):
    model = nn.Sequential(
        nn.Linear(4, 6, dtype=F64, rng=rng),
        nn.LayerNorm(6, dtype=F64),
        nn.GELU(),
        nn.SwiGLU(6, 5, dtype=F64, rng=rng),
        nn.Tanh(),
        nn.BatchNorm1d(6, dtype=F64),
        nn.Dropout(0.3, rng=1),
        nn.Linear(6, 5, init="xavier_normal", dtype=F64, rng=rng),
        nn.SiLU(),
        nn.Linear(5, 3, dtype=F64, rng=rng),
    )
    x = rng.normal(size=(5, 4))
    report = assert_gradcheck(model, losses.CrossEntropyLoss(label_smoothing=0.1), x, rng.integers(0, 3, size=5))
    assert {c.name for c in report.checks} == {n for n, _ in model.named_parameters()} | {"input"}


def test_bias_before_batchnorm_has_exactly_zero_gradient(rng):
    # BatchNorm subtracts the batch mean, so a bias in front of it cannot change the loss:
    # its true gradient is 0 and passes through the atol branch, not the relative error
    model = nn.Sequential(nn.Linear(3, 4, dtype=F64, rng=rng), nn.BatchNorm1d(4, dtype=F64))
    report = check.gradcheck(
        model, losses.MSELoss(), rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    )
    assert report.passed, f"\n{report}"
    assert np.abs(report["0.bias"].analytic).max() < 1e-12
    assert report["0.bias"].max_abs_error < report.atol
    assert report["0.weight"].rel_error < TOL and report["input"].rel_error < TOL


# -- the checker itself -----------------------------------------------------------------------
class GELUWithTanhBackward(nn.GELU):
    """Exact-erf forward, but the tanh approximation's derivative in backward: close, wrong."""

    def backward(self, grad_out):
        exact, self.approximate = self.approximate, "tanh"
        try:
            return super().backward(grad_out)
        finally:
            self.approximate = exact


class LinearForgettingBiasGrad(nn.Linear):
    """Accumulates dL/dW and returns dL/dx correctly but never fills dL/db."""

    def backward(self, grad_out):
        self.weight.grad += grad_out.T @ self._x
        return grad_out @ self.weight.data


def test_catches_backward_that_does_not_match_forward(rng):
    # the two GELU derivatives differ by about 1e-3: a loose comparison misses it, float64 does not
    x = 2 * rng.normal(size=(4, 5))
    report = check.gradcheck(GELUWithTanhBackward(), losses.MSELoss(), x, rng.normal(size=(4, 5)))
    assert not report.passed
    assert report["input"].rel_error > 1e-5
    assert "FAILED" in str(report) and "NO" in str(report)


def test_catches_a_missing_parameter_gradient_and_names_it(rng):
    layer = LinearForgettingBiasGrad(3, 2, dtype=F64, rng=rng)
    report = check.gradcheck(
        layer, losses.MSELoss(), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    )
    assert not report.passed
    assert report["weight"].rel_error < TOL and report["input"].rel_error < TOL
    assert report["bias"].rel_error == pytest.approx(1.0)  # analytic 0 against a real gradient


def test_rejects_float32_model_and_input(rng):
    with pytest.raises(TypeError, match=r"float64.*\['weight', 'bias'\]"):
        check.gradcheck(
            nn.Linear(2, 2, rng=rng), losses.MSELoss(), np.ones((1, 2)), np.ones((1, 2))
        )
    with pytest.raises(TypeError, match=r"float64.*\['input'\]"):
        check.gradcheck(
            nn.Linear(2, 2, dtype=F64, rng=rng),
            losses.MSELoss(),
            np.ones((1, 2), np.float32),
            np.ones((1, 2)),
        )


def test_rejects_non_positive_eps(rng):
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        check.gradcheck(nn.Identity(), losses.MSELoss(), np.ones((1, 2)), np.ones((1, 2)), eps=0)


def test_leaves_model_as_it_found_it(rng):
    model = nn.Sequential(
        nn.Linear(3, 4, dtype=F64, rng=rng), nn.BatchNorm1d(4, dtype=F64), nn.Dropout(0.5, rng=7)
    )
    for p in model.parameters():
        p.grad[...] = rng.normal(size=p.shape)  # gradients the user had accumulated
    before = model.state_dict()
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    rng_state = model[2].rng.bit_generator.state
    x = rng.normal(size=(5, 3))

    assert check.gradcheck(model, losses.MSELoss(), x, rng.normal(size=(5, 4))).passed

    after = model.state_dict()
    assert after.keys() == before.keys()
    for k in before:  # weights and BatchNorm running stats (also num_batches_tracked)
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, grads[n], err_msg=n)
    assert model[2].rng.bit_generator.state == rng_state


def test_input_is_not_modified_and_can_be_skipped(rng):
    x = rng.normal(size=(3, 2))
    x_before = x.copy()
    report = check.gradcheck(
        nn.Linear(2, 2, dtype=F64, rng=rng),
        losses.MSELoss(),
        x,
        rng.normal(size=(3, 2)),
        check_input=False,
    )
    np.testing.assert_array_equal(x, x_before)
    assert [c.name for c in report.checks] == ["weight", "bias"]
    with pytest.raises(KeyError, match=r"no tensor named 'input'.*\['weight', 'bias'\]"):
        report["input"]


def test_relative_error_is_a_norm_ratio():
    a = np.array([3.0, 4.0])
    assert check.relative_error(a, a) == 0.0
    assert check.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    # ||a - n|| / (||a|| + ||n||) = 5 / (5 + 0)
    assert check.relative_error(a, np.zeros(2)) == pytest.approx(1.0)
    # ||(3,4) - (3,4.1)|| / (5 + ||(3, 4.1)||)
    n = np.array([3.0, 4.1])
    assert check.relative_error(a, n) == pytest.approx(0.1 / (5 + np.hypot(3, 4.1)))
