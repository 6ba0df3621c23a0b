"""nn.init: scales of every scheme on large shapes, gains, fans, seeds, Linear's default."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinnet import nn
from twinnet.nn import init

SHAPE = (600, 400)  # (out, in): fan_in = 400, fan_out = 600; 240k draws pin a std to ~0.2%
FAN_IN, FAN_OUT = 400, 600
REL = 0.02  # "within a few %"


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_std(w, std, mean=0.0):
    assert abs(w.mean() - mean) < 0.01 * std
    assert w.std() == pytest.approx(std, rel=REL)


def assert_uniform(w, bound):
    """U(-bound, bound): inside the bound, reaching close to it, std = bound / sqrt(3)."""
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound
    assert_std(w, bound / math.sqrt(3))


# -- the published gains (torch.nn.init.calculate_gain) ---------------------------------------
@pytest.mark.parametrize(
    ("nonlinearity", "param", "gain"),
    [
        ("linear", None, 1.0),
        ("identity", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5.0 / 3.0),
        ("relu", None, math.sqrt(2.0)),
        ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2.0 / (1 + 0.2**2))),
        ("leaky_relu", 0, math.sqrt(2.0)),
        ("selu", None, 3.0 / 4.0),
    ],
)
def test_calculate_gain(nonlinearity, param, gain):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(gain, rel=1e-15)


def test_calculate_gain_matches_torch(torch_or_skip):
    torch = torch_or_skip
    for name, param in [("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.3),
                        ("selu", None), ("sigmoid", None), ("linear", None)]:  # fmt: skip
        assert init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param), rel=1e-15
        ), name


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match=r"unknown nonlinearity 'swish'; expected one of \["):
        init.calculate_gain("swish")


# -- fans -------------------------------------------------------------------------------------
def test_fan_in_and_fan_out():
    assert init.fan_in_and_fan_out((600, 400)) == (400, 600)  # weight (out, in)
    assert init.fan_in_and_fan_out((8, 3, 5, 5)) == (75, 200)  # conv-style receptive field
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got \(5,\)"):
        init.fan_in_and_fan_out((5,))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal(SHAPE, mode="fan_avg", rng=rng())


# -- scales -----------------------------------------------------------------------------------
def test_kaiming_normal_relu_std_is_sqrt_2_over_fan_in():
    assert_std(init.kaiming_normal(SHAPE, nonlinearity="relu", rng=rng()), math.sqrt(2 / FAN_IN))


def test_kaiming_normal_fan_out_mode():
    w = init.kaiming_normal(SHAPE, mode="fan_out", nonlinearity="relu", rng=rng())
    assert_std(w, math.sqrt(2 / FAN_OUT))


def test_kaiming_normal_leaky_relu_slope():
    w = init.kaiming_normal(SHAPE, a=0.2, nonlinearity="leaky_relu", rng=rng())
    assert_std(w, math.sqrt(2 / (1 + 0.2**2)) / math.sqrt(FAN_IN))


@pytest.mark.parametrize(("mode", "fan"), [("fan_in", FAN_IN), ("fan_out", FAN_OUT)])
def test_kaiming_uniform_bound_is_gain_times_sqrt_3_over_fan(mode, fan):
    w = init.kaiming_uniform(SHAPE, mode=mode, nonlinearity="relu", rng=rng())
    assert_uniform(w, math.sqrt(2) * math.sqrt(3 / fan))  # = sqrt(6 / fan)


@pytest.mark.parametrize("gain", [1.0, 5.0 / 3.0])
def test_xavier_uniform_bound(gain):
    w = init.xavier_uniform(SHAPE, gain=gain, rng=rng())
    assert_uniform(w, gain * math.sqrt(6 / (FAN_IN + FAN_OUT)))


@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0)])
def test_xavier_normal_std(gain):
    w = init.xavier_normal(SHAPE, gain=gain, rng=rng())
    assert_std(w, gain * math.sqrt(2 / (FAN_IN + FAN_OUT)))


def test_lecun_normal_std_is_sqrt_1_over_fan_in():
    assert_std(init.lecun_normal(SHAPE, rng=rng()), math.sqrt(1 / FAN_IN))


@pytest.mark.parametrize(("mode", "fan"), [("fan_in", FAN_IN), ("fan_out", FAN_OUT)])
def test_lecun_uniform_bound_is_sqrt_3_over_fan(mode, fan):
    # U(-a, a) has variance a^2 / 3 = 1 / fan: the variance of lecun_normal
    assert_uniform(init.lecun_uniform(SHAPE, rng=rng(), mode=mode), math.sqrt(3 / fan))


def test_zeros_and_dtypes():
    assert not init.zeros(SHAPE).any() and init.zeros(SHAPE).dtype == np.float32
    assert init.xavier_uniform(SHAPE, rng=rng()).dtype == np.float32  # float32 by default
    assert init.kaiming_normal(SHAPE, rng=rng(), dtype=np.float64).dtype == np.float64


# -- repeatability ----------------------------------------------------------------------------
SCHEMES = {
    "xavier_uniform": lambda g: init.xavier_uniform((5, 4), rng=g),
    "xavier_normal": lambda g: init.xavier_normal((5, 4), rng=g),
    "kaiming_uniform": lambda g: init.kaiming_uniform((5, 4), rng=g),
    "kaiming_normal": lambda g: init.kaiming_normal((5, 4), rng=g),
    "lecun_normal": lambda g: init.lecun_normal((5, 4), rng=g),
}


@pytest.mark.parametrize("name", list(SCHEMES))
def test_same_seed_same_weights(name):
    make = SCHEMES[name]
    np.testing.assert_array_equal(make(rng(7)), make(rng(7)))
    assert not np.array_equal(make(rng(7)), make(rng(8)))


@pytest.mark.parametrize("scheme", sorted(init.WEIGHT_INITS))
def test_same_seed_same_layers(scheme):
    a = nn.Sequential(
        nn.Linear(4, 3, init=scheme, rng=rng(3)), nn.SwiGLU(3, 5, init=scheme, rng=rng(4))
    )
    b = nn.Sequential(
        nn.Linear(4, 3, init=scheme, rng=rng(3)), nn.SwiGLU(3, 5, init=scheme, rng=rng(4))
    )
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


# -- Linear -----------------------------------------------------------------------------------
def test_linear_default_is_torch_uniform_1_over_sqrt_in():
    layer = nn.Linear(FAN_IN, FAN_OUT, rng=rng())
    bound = 1 / math.sqrt(FAN_IN)
    assert_uniform(layer.weight.data, bound)
    b = layer.bias.data
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    assert b.std() == pytest.approx(bound / math.sqrt(3), rel=0.15)  # only 600 draws
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32


@pytest.mark.parametrize(
    ("scheme", "std"),
    [
        ("xavier_uniform", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("xavier_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("kaiming_uniform", math.sqrt(2 / FAN_IN)),
        ("kaiming_normal", math.sqrt(2 / FAN_IN)),
        ("he_uniform", math.sqrt(2 / FAN_IN)),
        ("he_normal", math.sqrt(2 / FAN_IN)),
        ("lecun_normal", math.sqrt(1 / FAN_IN)),
        ("lecun_uniform", math.sqrt(1 / FAN_IN)),
        # torch's mode="fan_out", reachable by name (so from the CLI's --init too)
        ("kaiming_uniform_fan_out", math.sqrt(2 / FAN_OUT)),
        ("kaiming_normal_fan_out", math.sqrt(2 / FAN_OUT)),
        ("he_uniform_fan_out", math.sqrt(2 / FAN_OUT)),
        ("he_normal_fan_out", math.sqrt(2 / FAN_OUT)),
        ("lecun_normal_fan_out", math.sqrt(1 / FAN_OUT)),
        ("lecun_uniform_fan_out", math.sqrt(1 / FAN_OUT)),
    ],
)
def test_linear_named_inits(scheme, std):
    layer = nn.Linear(FAN_IN, FAN_OUT, init=scheme, dtype=np.float64, rng=rng())
    assert layer.weight.shape == SHAPE and layer.weight.dtype == np.float64
    assert_std(layer.weight.data, std)
    assert not layer.bias.data.any()  # biases start at zero with a named scheme


def test_linear_zeros_and_callable_init():
    assert not nn.Linear(3, 2, init="zeros").weight.data.any()

    def ones(shape, generator, dtype):
        return np.ones(shape, dtype)

    layer = nn.Linear(3, 2, init=ones, rng=rng())
    np.testing.assert_array_equal(layer.weight.data, np.ones((2, 3)))
    assert layer.init == "ones"


def test_fan_out_init_matches_torch_kaiming_normal_fan_out(torch_or_skip):
    torch = torch_or_skip
    w = torch.empty(SHAPE, dtype=torch.float64)
    torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    layer = nn.Linear(FAN_IN, FAN_OUT, init="he_normal_fan_out", dtype=np.float64, rng=rng())
    assert layer.weight.data.std() == pytest.approx(float(w.std()), rel=2 * REL)


def test_fan_out_init_reaches_the_train_config_and_build_mlp():
    from twinnet.config import TrainConfig
    from twinnet.models import build_mlp

    config = TrainConfig(dataset="digits", layers=[400, 600, 10], init="he_normal_fan_out")
    model = build_mlp(config.layers, init=config.init, dtype=np.float64, rng=0)
    assert_std(model[0].weight.data, math.sqrt(2 / FAN_OUT))  # (600, 400): fan_out = 600


@pytest.mark.parametrize("seed", [0, 5, np.int64(5)])
def test_linear_and_swiglu_take_an_int_seed(seed):
    a, b = nn.Linear(4, 3, rng=seed), nn.Linear(4, 3, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    s, t = nn.SwiGLU(3, 5, rng=seed), nn.SwiGLU(3, 5, rng=np.random.default_rng(seed))
    for (name, p), (_, q) in zip(s.named_parameters(), t.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert not np.array_equal(nn.Linear(4, 3, rng=1).weight.data, nn.Linear(4, 3, rng=2).weight.data)


@pytest.mark.parametrize("bad", ["0", 1.5, -1, True])
def test_linear_and_swiglu_reject_a_bad_rng(bad):
    for make, owner in ((lambda: nn.Linear(4, 3, rng=bad), "Linear"), (lambda: nn.SwiGLU(3, 5, rng=bad), "SwiGLU")):
        with pytest.raises(TypeError, match=f"{owner} rng must be a numpy Generator, an int seed >= 0 or None, got"):
            make()
