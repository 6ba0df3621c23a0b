"""Tests of twinnet.optim: optimisers, state dicts, clipping, penalties.

Every optimiser configuration is driven on a fixed quadratic and compared with a plain
reference loop written here from the published update rule (independent of the
implementation), and, when PyTorch is installed, with torch.optim itself.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from twinnet import optim
from twinnet.nn.module import Module
from twinnet.nn.parameter import Parameter

# -- the test problem: f(x) = 0.5 x^T A x - b^T x, x = concat(w (5,), M (3, 4)) ---------------
N = 17
_rng = np.random.default_rng(1234)
_Q, _ = np.linalg.qr(_rng.standard_normal((N, N)))
A = _Q @ np.diag(np.linspace(0.5, 2.0, N)) @ _Q.T  # SPD, eigenvalues in [0.5, 2]
B = _rng.standard_normal(N)
X0 = _rng.standard_normal(N)
STEPS = 100
NO_TORCH = "PyTorch not installed (pip install twinnet[torch])"


def quad_grad(x: np.ndarray) -> np.ndarray:
    # df/dx = A x - b
    return A @ x - B


def make_params(dtype=np.float64) -> tuple[Parameter, Parameter]:
    w = Parameter(X0[:5].astype(dtype), name="w")
    M = Parameter(X0[5:].reshape(3, 4).astype(dtype), name="M")
    return w, M


def flat(w: Parameter, M: Parameter) -> np.ndarray:
    return np.concatenate([w.data.ravel(), M.data.ravel()])


def set_grads(w: Parameter, M: Parameter) -> None:
    g = quad_grad(flat(w, M).astype(np.float64)).astype(w.data.dtype)
    w.grad[...] = g[:5]
    M.grad[...] = g[5:].reshape(3, 4)


def run_ours(cls, kwargs, steps=STEPS, dtype=np.float64):
    w, M = make_params(dtype)
    opt = cls([w, M], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        set_grads(w, M)
        opt.step()
    return flat(w, M)


# -- reference update rules, one plain loop each (whole vector, not in place) -------------
def ref_sgd(x, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    buf = None
    for _ in range(steps):
        g = quad_grad(x) + weight_decay * x
        if momentum != 0:
            buf = g if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        x = x - lr * g
    return x


def ref_rmsprop(x, steps, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    v = np.zeros_like(x)
    g_avg = np.zeros_like(x)
    buf = np.zeros_like(x)
    for _ in range(steps):
        g = quad_grad(x) + weight_decay * x
        v = alpha * v + (1 - alpha) * g**2
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            rms = np.sqrt(v - g_avg**2) + eps
        else:
            rms = np.sqrt(v) + eps
        if momentum > 0:
            buf = momentum * buf + g / rms
            x = x - lr * buf
        else:
            x = x - lr * g / rms
    return x


def ref_adagrad(x, steps, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                eps=1e-10):
    s = np.full_like(x, initial_accumulator_value)
    for t in range(1, steps + 1):
        g = quad_grad(x) + weight_decay * x
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g**2
        x = x - clr * g / (np.sqrt(s) + eps)
    return x


def ref_adam(x, steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             decoupled=False):
    b1, b2 = betas
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    v_max = np.zeros_like(x)
    for t in range(1, steps + 1):
        g = quad_grad(x)
        if decoupled:
            x = x * (1 - lr * weight_decay)  # AdamW: decay the weights, not the gradient
        else:
            g = g + weight_decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)  # torch: max of the raw v, bias-corrected after
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
    return x


def ref_adamw(x, steps, weight_decay=1e-2, **kw):
    return ref_adam(x, steps, weight_decay=weight_decay, decoupled=True, **kw)


# (id, our class name, kwargs, reference)
CONFIGS = [
    ("sgd", "SGD", dict(lr=0.1), ref_sgd),
    ("sgd_momentum", "SGD", dict(lr=0.1, momentum=0.9), ref_sgd),
    ("sgd_dampening", "SGD", dict(lr=0.1, momentum=0.9, dampening=0.5), ref_sgd),
    ("sgd_nesterov", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True), ref_sgd),
    ("sgd_weight_decay", "SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.1), ref_sgd),
    ("rmsprop", "RMSprop", dict(lr=0.01), ref_rmsprop),
    ("rmsprop_momentum", "RMSprop", dict(lr=0.01, momentum=0.9), ref_rmsprop),
    ("rmsprop_centered", "RMSprop", dict(lr=0.01, centered=True, momentum=0.5), ref_rmsprop),
    ("rmsprop_wd_alpha", "RMSprop", dict(lr=0.003, alpha=0.9, weight_decay=0.1), ref_rmsprop),
    ("adagrad_lr_decay", "Adagrad",
     dict(lr=0.5, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.05), ref_adagrad),
    ("adam", "Adam", dict(lr=0.02), ref_adam),
    ("adam_amsgrad", "Adam", dict(lr=0.02, amsgrad=True), ref_adam),
    ("adam_weight_decay", "Adam", dict(lr=0.02, weight_decay=0.1), ref_adam),
    ("adam_betas_eps", "Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-3), ref_adam),
    ("adamw", "AdamW", dict(lr=0.02, weight_decay=0.1), ref_adamw),
    ("adamw_amsgrad", "AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True), ref_adamw),
]
IDS = [c[0] for c in CONFIGS]


# -- the seed's hand-worked example ---------------------------------------------------------
def test_sgd_minimises_theta_squared_by_hand():
    theta = Parameter(np.array([5.0]))
    opt = optim.SGD([theta], lr=0.1)
    seen = []
    for _ in range(4):
        opt.zero_grad()
        theta.grad[...] = 2 * theta.data  # d(theta^2)/dtheta
        opt.step()
        seen.append(theta.data[0])
    np.testing.assert_allclose(seen, [4.0, 3.2, 2.56, 2.048], rtol=0, atol=1e-12)


def test_sgd_diverges_with_too_large_lr():
    theta = Parameter(np.array([5.0]))
    opt = optim.SGD([theta], lr=1.1)  # theta <- theta - 1.1 * 2 theta = -1.2 theta
    sizes = [5.0]
    for _ in range(5):
        opt.zero_grad()
        theta.grad[...] = 2 * theta.data
        opt.step()
        sizes.append(abs(theta.data[0]))
    assert all(b > a for a, b in zip(sizes, sizes[1:], strict=False))
    np.testing.assert_allclose(sizes[-1], 5.0 * 1.2**5, rtol=1e-12)


# -- every configuration against the reference loop ------------------------------------
@pytest.mark.parametrize("name, cls, kwargs, ref", CONFIGS, ids=IDS)
def test_matches_reference_update_rule(name, cls, kwargs, ref):
    ours = run_ours(getattr(optim, cls), kwargs)
    expected = ref(X0.copy(), STEPS, **kwargs)
    assert np.max(np.abs(ours - expected)) < 1e-12
    assert np.max(np.abs(ours - X0)) > 1e-2  # it did move


def test_configurations_are_all_different():
    """Each option changes the trajectory (so each reference test checks that option)."""
    finals = {name: run_ours(getattr(optim, cls), kw) for name, cls, kw, _ in CONFIGS}
    names = list(finals)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.max(np.abs(finals[a] - finals[b])) > 1e-6, (a, b)


def test_defaults_match_torch_2x():
    w, M = make_params()
    assert optim.SGD([w]).defaults == dict(
        lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
    )
    assert optim.RMSprop([w]).defaults == dict(
        lr=1e-2, momentum=0.0, alpha=0.99, eps=1e-8, centered=False, weight_decay=0.0
    )
    assert optim.Adagrad([w]).defaults == dict(
        lr=1e-2, lr_decay=0.0, eps=1e-10, weight_decay=0.0, initial_accumulator_value=0.0
    )
    adam = optim.Adam([w]).defaults
    assert adam["lr"] == 1e-3 and adam["betas"] == (0.9, 0.999) and adam["eps"] == 1e-8
    assert adam["weight_decay"] == 0.0 and adam["amsgrad"] is False
    assert adam["decoupled_weight_decay"] is False and adam["maximize"] is False
    adamw = optim.AdamW([w]).defaults
    assert adamw["weight_decay"] == 1e-2 and adamw["decoupled_weight_decay"] is True
    assert adamw["maximize"] is False


@pytest.mark.torch
@pytest.mark.parametrize("name, cls, kwargs, ref", CONFIGS, ids=IDS)
def test_matches_torch(name, cls, kwargs, ref):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    w, M = make_params()
    opt = getattr(optim, cls)([w, M], **kwargs)
    tw = torch.tensor(X0[:5].copy(), requires_grad=True)
    tM = torch.tensor(X0[5:].reshape(3, 4).copy(), requires_grad=True)
    topt = getattr(torch.optim, cls)([tw, tM], **kwargs)
    for _ in range(STEPS):
        opt.zero_grad()
        set_grads(w, M)
        opt.step()
        tx = np.concatenate([tw.detach().numpy().ravel(), tM.detach().numpy().ravel()])
        g = quad_grad(tx)
        tw.grad = torch.tensor(g[:5])
        tM.grad = torch.tensor(g[5:].reshape(3, 4))
        topt.step()
    tx = np.concatenate([tw.detach().numpy().ravel(), tM.detach().numpy().ravel()])
    assert np.max(np.abs(flat(w, M) - tx)) < 1e-10


# -- parameter groups -------------------------------------------------------------------
def test_param_groups_have_their_own_hyperparameters():
    w, M = make_params()
    opt = optim.SGD(
        [{"params": [w], "lr": 0.05, "weight_decay": 0.2}, {"params": [M]}],
        lr=0.1,
        momentum=0.9,
    )
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[1]["weight_decay"] == 0.0
    x = X0.copy()
    lr = np.r_[np.full(5, 0.05), np.full(12, 0.1)]
    wd = np.r_[np.full(5, 0.2), np.zeros(12)]
    buf = None
    for _ in range(30):
        opt.zero_grad()
        set_grads(w, M)
        opt.step()
        g = quad_grad(x) + wd * x
        buf = g if buf is None else 0.9 * buf + g
        x = x - lr * buf
    assert np.max(np.abs(flat(w, M) - x)) < 1e-12


def test_changing_group_lr_between_steps_takes_effect():
    theta = Parameter(np.array([1.0]))
    opt = optim.SGD([theta], lr=0.1)
    theta.grad[...] = 1.0
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(theta.data, [1.0 - 0.1 - 0.5], atol=1e-15)


class _Tiny(Module):
    def __init__(self):
        super().__init__()
        self.weight = Parameter(np.ones((3, 2)))
        self.bias = Parameter(np.zeros(3))
        self.norm_scale = Parameter(np.ones(3))
        self.out_weight = Parameter(np.ones((1, 3)))


def test_param_groups_helper_excludes_biases_and_norm_params():
    model = _Tiny()
    groups = optim.param_groups(model, weight_decay=0.01)
    assert len(groups) == 2
    assert groups[0]["weight_decay"] == 0.01 and groups[1]["weight_decay"] == 0.0
    assert [id(p) for p in groups[0]["params"]] == [id(model.weight), id(model.out_weight)]
    assert [id(p) for p in groups[1]["params"]] == [id(model.bias), id(model.norm_scale)]

    by_name = optim.param_groups(model, 0.1, no_decay=lambda name, p: name.startswith("out"))
    assert [id(p) for p in by_name[1]["params"]] == [id(model.out_weight)]

    opt = optim.AdamW(groups, lr=1e-3)
    assert opt.param_groups[0]["weight_decay"] == 0.01
    assert opt.param_groups[1]["weight_decay"] == 0.0
    for p in model.parameters():
        p.grad[...] = 0.0
    bias_before = model.bias.data.copy()
    opt.step()  # zero gradient: only decay could move the weights
    np.testing.assert_array_equal(model.bias.data, bias_before)
    np.testing.assert_allclose(model.weight.data, 1.0 - 1e-3 * 0.01, rtol=1e-15)


def test_empty_group_allowed_when_other_groups_have_params():
    model = _Tiny()
    groups = optim.param_groups(model, 0.01, no_decay=lambda name, p: False)
    assert groups[1]["params"] == []
    opt = optim.SGD(groups, lr=0.1)
    opt.step()


# -- in place, float32 --------------------------------------------------------------------
@pytest.mark.parametrize("name, cls, kwargs, ref", CONFIGS, ids=IDS)
def test_float32_stays_float32_and_updates_in_place(name, cls, kwargs, ref):
    w, M = make_params(np.float32)
    data_ids = [id(w.data), id(M.data)]
    grad_ids = [id(w.grad), id(M.grad)]
    opt = getattr(optim, cls)([w, M], **kwargs)
    state_arrays = None
    for _ in range(5):
        opt.zero_grad()
        set_grads(w, M)
        opt.step()
        arrays = {(i, k): v for i, p in enumerate((w, M))
                  for k, v in opt.state.get(p, {}).items() if isinstance(v, np.ndarray)}
        if state_arrays is None:
            state_arrays = {key: id(v) for key, v in arrays.items()}
        assert {key: id(v) for key, v in arrays.items()} == state_arrays  # same objects
        assert all(v.dtype == np.float32 for v in arrays.values())
    assert [id(w.data), id(M.data)] == data_ids and [id(w.grad), id(M.grad)] == grad_ids
    assert w.data.dtype == M.data.dtype == np.float32
    assert w.grad.dtype == M.grad.dtype == np.float32
    expected = ref(X0.copy(), 5, **kwargs)
    np.testing.assert_allclose(flat(w, M), expected, rtol=1e-4, atol=1e-5)


def test_mixed_dtypes_in_one_optimizer():
    a = Parameter(np.ones((4, 4), dtype=np.float32))
    b = Parameter(np.ones(30, dtype=np.float64))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad[...] = 1.0
    b.grad[...] = 1.0
    opt.step()
    assert a.data.dtype == np.float32 and b.data.dtype == np.float64
    np.testing.assert_allclose(a.data, 0.9, rtol=1e-6)
    # first Adam step: w - lr * g / (|g| + eps)
    np.testing.assert_allclose(b.data, 1.0 - 0.1 / (1.0 + 1e-8), rtol=1e-15)


def test_zero_grad_zeros_in_place():
    w, M = make_params()
    opt = optim.SGD([w, M], lr=0.1)
    set_grads(w, M)
    g = w.grad
    opt.zero_grad()
    assert w.grad is g
    assert not w.grad.any() and not M.grad.any()


def test_step_returns_closure_value():
    w, M = make_params()
    opt = optim.Adam([w, M])
    assert opt.step(lambda: 3.5) == 3.5
    assert opt.step() is None


# -- state dicts ----------------------------------------------------------------------------
_ALLOWED_LEAVES = (np.ndarray, int, float, bool, str, type(None))


def _assert_plain(obj, path="sd"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, int | str), f"{path}: key {k!r}"
            _assert_plain(v, f"{path}/{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _assert_plain(v, f"{path}/{i}")
    else:
        assert type(obj) in _ALLOWED_LEAVES, f"{path}: {type(obj).__name__}"


def _through_json(sd):
    """Arrays aside (they would go to safetensors), everything else through JSON."""
    arrays = {}

    def split(obj, path):
        if isinstance(obj, np.ndarray):
            arrays[path] = obj.copy()
            return {"__array__": path}
        if isinstance(obj, dict):
            return {k: split(v, f"{path}/{k}") for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [split(v, f"{path}/{i}") for i, v in enumerate(obj)]
        return obj

    def join(obj):
        if isinstance(obj, dict):
            if "__array__" in obj:
                return arrays[obj["__array__"]]
            return {k: join(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [join(v) for v in obj]
        return obj

    return join(json.loads(json.dumps(split(sd, ""))))


def test_state_dict_format():
    w, M = make_params()
    opt = optim.Adam([{"params": [w]}, {"params": [M], "lr": 0.01}], amsgrad=True)
    for _ in range(3):
        set_grads(w, M)
        opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == [0, 1]
    s1 = sd["state"][1]
    assert s1["step"] == 3 and type(s1["step"]) is int
    assert set(s1) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert s1["exp_avg"].shape == (3, 4)
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][1]["params"] == [1]
    assert sd["param_groups"][1]["lr"] == 0.01 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    _assert_plain(sd)
    # a snapshot: later steps do not change it
    before = s1["exp_avg"].copy()
    set_grads(w, M)
    opt.step()
    np.testing.assert_array_equal(sd["state"][1]["exp_avg"], before)


ROUND_TRIP = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "cls, kwargs", ROUND_TRIP, ids=[f"{c}{i}" for i, (c, _) in enumerate(ROUND_TRIP)]
)
def test_state_dict_round_trip_is_bit_identical(cls, kwargs, dtype):
    w, M = make_params(dtype)
    opt = getattr(optim, cls)([w, M], **kwargs)
    for _ in range(7):
        opt.zero_grad()
        set_grads(w, M)
        opt.step()
    saved = _through_json(opt.state_dict())
    w2 = Parameter(w.data.copy())
    M2 = Parameter(M.data.copy())
    opt2 = getattr(optim, cls)([w2, M2], lr=0.123)  # hyperparameters come from the checkpoint
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    for _ in range(13):
        for o, (a, b) in ((opt, (w, M)), (opt2, (w2, M2))):
            o.zero_grad()
            set_grads(a, b)
            o.step()
    np.testing.assert_array_equal(w.data, w2.data)
    np.testing.assert_array_equal(M.data, M2.data)
    for p, q in ((w, w2), (M, M2)):
        for k, v in opt.state.get(p, {}).items():
            np.testing.assert_array_equal(opt2.state[q][k], v)
            if isinstance(v, np.ndarray):
                assert opt2.state[q][k].dtype == dtype


def test_load_state_dict_copies_into_existing_state_in_place():
    w, M = make_params()
    opt = optim.Adam([w, M], lr=0.01)
    set_grads(w, M)
    opt.step()
    sd = opt.state_dict()
    set_grads(w, M)
    opt.step()
    exp_avg = opt.state[M]["exp_avg"]
    opt.load_state_dict(sd)
    assert opt.state[M]["exp_avg"] is exp_avg
    np.testing.assert_array_equal(exp_avg, sd["state"][1]["exp_avg"])
    assert opt.state[M]["step"] == 1


def test_load_state_dict_validates_before_changing_anything():
    w, M = make_params()
    opt = optim.Adam([w, M], lr=0.01)
    set_grads(w, M)
    opt.step()
    sd = opt.state_dict()

    other = optim.Adam([Parameter(np.zeros(5))], lr=0.01)
    with pytest.raises(ValueError, match="parameter group 0 has 2 parameter"):
        other.load_state_dict(sd)
    two_groups = optim.Adam([{"params": [w]}, {"params": [M]}])
    with pytest.raises(ValueError, match="2 parameter group"):
        optim.Adam([w, M]).load_state_dict(two_groups.state_dict())
    bad = opt.state_dict()
    bad["state"][1]["exp_avg"] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"loaded shape \(4, 3\), parameter has shape \(3, 4\)"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr must be >= 0, got -1.0"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"][7] = bad["state"].pop(1)
    with pytest.raises(ValueError, match="unknown parameter index 7"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="missing"):
        opt.load_state_dict({"state": {}})
    # nothing changed by the failed loads
    assert opt.param_groups[0]["lr"] == 0.01
    np.testing.assert_array_equal(opt.state[M]["exp_avg"], sd["state"][1]["exp_avg"])


# -- bad input ----------------------------------------------------------------------------
P = Parameter(np.zeros(3))
BAD = [
    (optim.SGD, dict(lr=-0.1), ValueError, r"lr must be >= 0, got -0\.1"),
    (optim.SGD, dict(lr=float("nan")), ValueError, r"lr must be >= 0, got nan"),
    (optim.SGD, dict(lr="0.1"), TypeError, r"lr must be a real number, got str"),
    (optim.SGD, dict(momentum=-0.5), ValueError, r"momentum must be >= 0, got -0\.5"),
    (optim.SGD, dict(weight_decay=-1), ValueError, r"weight_decay must be >= 0, got -1\.0"),
    (optim.SGD, dict(nesterov=True), ValueError,
     r"nesterov momentum requires momentum > 0 and dampening = 0, got momentum=0\.0"),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError,
     r"requires momentum > 0 and dampening = 0, got momentum=0\.9, dampening=0\.1"),
    (optim.RMSprop, dict(alpha=-0.1), ValueError, r"alpha must be >= 0, got -0\.1"),
    (optim.RMSprop, dict(eps=-1e-8), ValueError, r"eps must be >= 0, got -1e-08"),
    (optim.RMSprop, dict(momentum=-1), ValueError, r"momentum must be >= 0"),
    (optim.RMSprop, dict(weight_decay=-1), ValueError, r"weight_decay must be >= 0"),
    (optim.Adagrad, dict(lr_decay=-0.1), ValueError, r"lr_decay must be >= 0, got -0\.1"),
    (optim.Adagrad, dict(initial_accumulator_value=-1), ValueError,
     r"initial_accumulator_value must be >= 0"),
    (optim.Adagrad, dict(eps=-1.0), ValueError, r"eps must be >= 0, got -1\.0"),
    (optim.Adam, dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\] must be in \[0, 1\), got 1\.0"),
    (optim.Adam, dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\] must be in \[0, 1\), got -0\.1"),
    (optim.Adam, dict(betas=(0.9,)), ValueError, r"betas must be a pair"),
    (optim.Adam, dict(eps=-1e-8), ValueError, r"eps must be >= 0"),
    (optim.Adam, dict(lr=-1e-3), ValueError, r"lr must be >= 0, got -0\.001"),
    (optim.Adam, dict(weight_decay=-0.1), ValueError, r"weight_decay must be >= 0, got -0\.1"),
    (optim.AdamW, dict(weight_decay=-0.1), ValueError, r"weight_decay must be >= 0, got -0\.1"),
    (optim.AdamW, dict(betas=(0.9, 1.5)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
]


@pytest.mark.parametrize("cls, kwargs, exc, match", BAD)
def test_bad_hyperparameters_raise(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls([P], **kwargs)


def test_bad_params_raise():
    with pytest.raises(ValueError, match="SGD got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam(iter([]))
    with pytest.raises(TypeError, match=r"only optimize Parameters, but params\[1\] .* is ndarray"):
        optim.SGD([P, np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(P, lr=0.1)
    with pytest.raises(ValueError, match="param group 1: lr must be >= 0, got -1.0"):
        optim.SGD([{"params": [P]}, {"params": [Parameter(np.zeros(2))], "lr": -1}], lr=0.1)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        optim.SGD([{"params": [P], "weight_decy": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([P, P], lr=0.1)
    with pytest.raises(ValueError, match="only one group"):
        optim.SGD([{"params": [P]}, {"params": [P]}], lr=0.1)
    with pytest.raises(ValueError, match="no 'params' entry"):
        optim.SGD([{"lr": 0.1}])


def test_accepts_a_generator_of_parameters():
    model = _Tiny()
    opt = optim.SGD((p for p in model.parameters()), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 4


# -- gradient clipping --------------------------------------------------------------------
def _grads(*arrays):
    ps = []
    for a in arrays:
        p = Parameter(np.zeros_like(np.asarray(a, dtype=np.float64)))
        p.grad[...] = a
        ps.append(p)
    return ps


def test_clip_grad_norm_by_hand():
    a, b = _grads([3.0, 4.0], [[12.0]])  # total 2-norm sqrt(9 + 16 + 144) = 13
    total = optim.clip_grad_norm_([a, b], max_norm=6.5)
    assert total == 13.0 and isinstance(total, float)
    coef = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * coef, 4.0 * coef], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [[12.0 * coef]], rtol=1e-15)

    a, b = _grads([3.0, 4.0], [[12.0]])
    g_before = a.grad
    total = optim.clip_grad_norm_(iter([a, b]), max_norm=100.0)  # a generator works
    assert total == 13.0 and a.grad is g_before
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])  # below max_norm: untouched

    a, b = _grads([3.0, -4.0], [[-12.0]])
    total = optim.clip_grad_norm_([a, b], max_norm=6.0, norm_type=math.inf)
    assert total == 12.0
    np.testing.assert_allclose(b.grad, [[-12.0 * 6.0 / (12.0 + 1e-6)]], rtol=1e-15)

    a, b = _grads([3.0, -4.0], [[-12.0]])
    assert optim.clip_grad_norm_([a, b], max_norm=1.0, norm_type=1) == 19.0


def test_clip_grad_norm_float32_and_bad_input():
    p = Parameter(np.zeros(10, dtype=np.float32))
    p.grad[...] = 3.0
    optim.clip_grad_norm_([p], 1.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(p.grad), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="max_norm must be >= 0, got -1.0"):
        optim.clip_grad_norm_([p], -1.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        optim.clip_grad_norm_([p], 1.0, norm_type=0)
    with pytest.raises(TypeError, match=r"params\[0\] is ndarray"):
        optim.clip_grad_norm_([np.zeros(3)], 1.0)
    p.grad[0] = np.inf
    with pytest.raises(ValueError, match="total norm"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_by_hand():
    a, b = _grads([-3.0, 0.5, 2.0], [[1.5, -0.2]])
    g = a.grad
    optim.clip_grad_value_((p for p in (a, b)), 1.0)
    assert a.grad is g
    np.testing.assert_array_equal(a.grad, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad, [[1.0, -0.2]])
    with pytest.raises(ValueError, match="clip_value must be >= 0, got -1.0"):
        optim.clip_grad_value_([a], -1.0)


@pytest.mark.torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((4, 3)), rng.standard_normal(5), rng.standard_normal((2, 2, 2))]
    ours = _grads(*arrays)
    theirs = [torch.zeros(a.shape, dtype=torch.float64, requires_grad=True) for a in arrays]
    for t, a in zip(theirs, arrays, strict=True):
        t.grad = torch.tensor(a)
    total = optim.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert abs(total - float(t_total)) < 1e-12
    for p, t in zip(ours, theirs, strict=True):
        assert np.max(np.abs(p.grad - t.grad.numpy())) < 1e-12

    ours = _grads(*arrays)
    for t, a in zip(theirs, arrays, strict=True):
        t.grad = torch.tensor(a)
    optim.clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, t in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


# -- penalties ------------------------------------------------------------------------------
def test_l2_penalty_by_hand_and_gradient():
    w = Parameter(np.array([[1.0, -2.0], [3.0, 0.0]]))
    bias = Parameter(np.array([4.0, -1.0]))
    pen = optim.L2Penalty(0.1)
    assert pen([w, bias]) == pytest.approx(0.05 * (1 + 4 + 9 + 16 + 1), abs=1e-15)
    pen.backward([w, bias])
    np.testing.assert_allclose(w.grad, 0.1 * w.data, rtol=1e-15)
    np.testing.assert_allclose(bias.grad, [0.4, -0.1], rtol=1e-15)
    skip = optim.L2Penalty(0.1, skip_1d=True)
    assert skip([w, bias]) == pytest.approx(0.05 * 14, abs=1e-15)
    bias.zero_grad()
    skip.backward([w, bias])
    assert not bias.grad.any()


def test_l1_penalty_by_hand_and_gradient():
    w = Parameter(np.array([[1.0, -2.0], [3.0, 0.0]]))
    pen = optim.L1Penalty(0.5)
    assert pen(w) == 3.0
    pen.backward(w)
    np.testing.assert_array_equal(w.grad, [[0.5, -0.5], [0.5, 0.0]])


@pytest.mark.parametrize("penalty", [optim.L2Penalty(0.3), optim.L1Penalty(0.3)])
def test_penalty_gradient_by_finite_differences(penalty):
    rng = np.random.default_rng(3)
    w = Parameter(rng.standard_normal((3, 4)) + 0.1)  # away from |w| kinks at 0
    penalty.backward([w])
    eps = 1e-6
    numeric = np.zeros_like(w.data)
    for i in np.ndindex(w.data.shape):
        old = w.data[i]
        w.data[i] = old + eps
        up = penalty([w])
        w.data[i] = old - eps
        down = penalty([w])
        w.data[i] = old
        numeric[i] = (up - down) / (2 * eps)
    err = np.linalg.norm(w.grad - numeric) / (np.linalg.norm(w.grad) + np.linalg.norm(numeric))
    assert err < 1e-7


@pytest.mark.parametrize(
    "cls, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.02))]
)
def test_coupled_weight_decay_equals_l2_penalty(cls, kwargs):
    """weight_decay=wd in SGD/Adam is exactly L2Penalty(wd) = wd/2 ||w||^2 in the loss."""
    w, M = make_params()
    opt = getattr(optim, cls)([w, M], weight_decay=0.1, **kwargs)
    w2, M2 = make_params()
    opt2 = getattr(optim, cls)([w2, M2], **kwargs)
    pen = optim.L2Penalty(0.1)
    for _ in range(20):
        opt.zero_grad()
        set_grads(w, M)
        opt.step()
        opt2.zero_grad()
        set_grads(w2, M2)
        pen.backward([w2, M2])
        opt2.step()
    assert np.max(np.abs(flat(w, M) - flat(w2, M2))) < 1e-14


def test_decoupled_weight_decay_differs_from_l2_in_adam():
    w, M = make_params()
    adamw = optim.AdamW([w, M], lr=0.02, weight_decay=0.1)
    w2, M2 = make_params()
    adam = optim.Adam([w2, M2], lr=0.02, weight_decay=0.1)
    for _ in range(20):
        for o, (a, b) in ((adamw, (w, M)), (adam, (w2, M2))):
            o.zero_grad()
            set_grads(a, b)
            o.step()
    assert np.max(np.abs(flat(w, M) - flat(w2, M2))) > 1e-4


def test_penalty_bad_input():
    with pytest.raises(ValueError, match="lam must be >= 0, got -1.0"):
        optim.L2Penalty(-1)
    with pytest.raises(TypeError, match="expected Parameters"):
        optim.L1Penalty(0.1)([np.zeros(3)])
