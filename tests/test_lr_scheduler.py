"""Tests of twinnet.optim.lr_scheduler: closed-form trajectories, torch, state dicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from twinnet import optim
from twinnet.nn.parameter import Parameter
from twinnet.optim import lr_scheduler as sch

NO_TORCH = "PyTorch not installed (pip install twinnet[torch])"
BASE_LRS = [0.1, 0.02]
STEPS = 50


def make_opt(cls=optim.SGD, **kwargs):
    """An optimiser with two param groups of base lr 0.1 and 0.02."""
    groups = [
        {"params": [Parameter(np.zeros(3))], "lr": BASE_LRS[0]},
        {"params": [Parameter(np.zeros((2, 2)))], "lr": BASE_LRS[1]},
    ]
    return cls(groups, **kwargs)


def trajectory(sched, steps=STEPS, metric=None):
    """[lrs at step 0, lrs after 1 step, ...], also checking the optimiser holds them."""
    lrs = [sched.get_last_lr()]
    for t in range(steps):
        sched.step() if metric is None else sched.step(metric[t])
        last = sched.get_last_lr()
        assert last == [g["lr"] for g in sched.optimizer.param_groups]
        lrs.append(last)
    return np.array(lrs)


def expected(fn, steps=STEPS):
    return np.array([[fn(base, t) for base in BASE_LRS] for t in range(steps + 1)])


# -- closed-form references ------------------------------------------------------------------
def cosine(base, t, T_max, eta_min):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2


def warmup(base, t, W, start_factor):
    return base * (start_factor + (1 - start_factor) * min(t, W) / W)


CLOSED_FORM = [
    ("step", lambda o: sch.StepLR(o, step_size=7, gamma=0.5),
     lambda base, t: base * 0.5 ** (t // 7)),
    ("exponential", lambda o: sch.ExponentialLR(o, gamma=0.9),
     lambda base, t: base * 0.9**t),
    ("cosine", lambda o: sch.CosineAnnealingLR(o, T_max=20, eta_min=1e-3),  # past T_max too
     lambda base, t: cosine(base, t, 20, 1e-3)),
    ("warmup", lambda o: sch.LinearWarmup(o, warmup_steps=10, start_factor=0.1),
     lambda base, t: warmup(base, t, 10, 0.1)),
    ("warmup_cosine",
     lambda o: sch.LinearWarmup(o, 10, start_factor=0.1, after=sch.CosineAnnealingLR(o, T_max=40)),
     lambda base, t: warmup(base, t, 10, 0.1) if t < 10 else cosine(base, t - 10, 40, 0.0)),
    ("warmup_exponential_default_factor",
     lambda o: sch.LinearWarmup(o, 5, after=sch.ExponentialLR(o, gamma=0.95)),
     lambda base, t: warmup(base, t, 5, 1 / 3) if t < 5 else base * 0.95 ** (t - 5)),
    ("warmup_nested",
     lambda o: sch.LinearWarmup(
         o, 4, 0.5, after=sch.LinearWarmup(o, 6, 0.0, after=sch.StepLR(o, 10))),
     lambda base, t: (warmup(base, t, 4, 0.5) if t < 4 else
                      warmup(base, t - 4, 6, 0.0) if t < 10 else base * 0.1 ** ((t - 10) // 10))),
]


@pytest.mark.parametrize("name, make, fn", CLOSED_FORM, ids=[c[0] for c in CLOSED_FORM])
def test_trajectory_matches_closed_form(name, make, fn):
    opt = make_opt()
    got = trajectory(make(opt))
    assert np.max(np.abs(got - expected(fn))) < 1e-15
    assert [g["initial_lr"] for g in opt.param_groups] == BASE_LRS


def one_cycle_ref(t, max_lr, total, pct_start=0.3, strategy="cos", div=25.0, final_div=1e4,
                  three_phase=False, m_base=0.85, m_max=0.95):
    """OneCycle from its definition: (lr, momentum) at step t."""
    def anneal(a, b, pct):
        if strategy == "cos":
            return b + (a - b) * (1 + math.cos(math.pi * pct)) / 2
        return a + (b - a) * pct

    initial = max_lr / div
    low = initial / final_div
    up = pct_start * total - 1
    if three_phase:
        down = 2 * pct_start * total - 2
        if t <= up:
            return anneal(initial, max_lr, t / up), anneal(m_max, m_base, t / up)
        if t <= down:
            pct = (t - up) / (down - up)
            return anneal(max_lr, initial, pct), anneal(m_base, m_max, pct)
        return anneal(initial, low, (t - down) / (total - 1 - down)), m_max
    if t <= up:
        return anneal(initial, max_lr, t / up), anneal(m_max, m_base, t / up)
    pct = (t - up) / (total - 1 - up)
    return anneal(max_lr, low, pct), anneal(m_base, m_max, pct)


ONE_CYCLE = [
    dict(total_steps=STEPS),
    dict(total_steps=STEPS, anneal_strategy="linear", pct_start=0.25),
    dict(epochs=5, steps_per_epoch=10, three_phase=True, div_factor=10.0, final_div_factor=100.0),
    dict(total_steps=STEPS, base_momentum=0.8, max_momentum=0.9),
]


@pytest.mark.parametrize("kwargs", ONE_CYCLE)
@pytest.mark.parametrize("cls", ["SGD", "Adam"])
def test_one_cycle_matches_closed_form_with_momentum(kwargs, cls):
    extra = dict(momentum=0.9) if cls == "SGD" else {}
    opt = make_opt(getattr(optim, cls), **extra)
    s = sch.OneCycleLR(opt, max_lr=[1.0, 0.5], **kwargs)
    ref_kw = {k: v for k, v in kwargs.items() if k not in ("epochs", "steps_per_epoch",
                                                           "total_steps", "anneal_strategy",
                                                           "div_factor", "final_div_factor",
                                                           "base_momentum", "max_momentum")}
    ref_kw.update(strategy=kwargs.get("anneal_strategy", "cos"),
                  div=kwargs.get("div_factor", 25.0), final_div=kwargs.get("final_div_factor", 1e4),
                  m_base=kwargs.get("base_momentum", 0.85), m_max=kwargs.get("max_momentum", 0.95))
    for t in range(STEPS):  # steps 0 .. total-1
        if t > 0:
            s.step()
        for group, max_lr in zip(opt.param_groups, [1.0, 0.5], strict=True):
            lr, m = one_cycle_ref(t, max_lr, STEPS, **ref_kw)
            assert abs(group["lr"] - lr) < 1e-14
            momentum = group["momentum"] if cls == "SGD" else group["betas"][0]
            assert abs(momentum - m) < 1e-14
            if cls == "Adam":
                assert group["betas"][1] == 0.999
    s.step()  # torch allows reaching step == total_steps ...
    with pytest.raises(ValueError, match="total_steps=50"):
        s.step()  # ... but not beyond


def test_reduce_on_plateau_by_hand():
    opt = make_opt()
    opt.param_groups[0]["lr"] = 1.0
    s = sch.ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.1, cooldown=1,
                              min_lr=[0.3, 0.0])
    metrics = [10, 9, 9.5, 9.2, 9.1, 8, 8, 8, 8, 8, 1, 1, 1, 1]
    got = trajectory(s, steps=len(metrics), metric=metrics)[:, 0]
    # 9 is not < 10 * (1 - 0.1): bad epochs 1, 2, 3 > patience -> halve; 9.1 falls in the
    # cooldown; 8 is the new best, then 3 bad epochs -> halve again but not below min_lr
    np.testing.assert_array_equal(
        got, [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    )
    assert s.best == 1.0 and s.last_epoch == len(metrics)


def test_reduce_on_plateau_max_abs_and_eps():
    opt = make_opt()
    s = sch.ReduceLROnPlateau(opt, mode="max", threshold_mode="abs", threshold=0.5, patience=0)
    got = trajectory(s, steps=4, metric=[1.0, 1.4, 2.0, 2.1])
    # 1.4 is not > 1.0 + 0.5: reduce at once (patience 0); 2.0 is; 2.1 is not
    np.testing.assert_allclose(got[:, 0], [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-15)
    tiny = make_opt()
    tiny.param_groups[1]["lr"] = 1e-8
    s = sch.ReduceLROnPlateau(tiny, patience=0)
    s.step(1.0)
    s.step(2.0)  # the reduction 1e-8 -> 1e-9 is below eps = 1e-8: skipped
    assert tiny.param_groups[1]["lr"] == 1e-8 and tiny.param_groups[0]["lr"] == pytest.approx(0.01)


def test_scheduled_lr_is_used_by_the_optimiser():
    theta = Parameter(np.array([0.0]))
    opt = optim.SGD([theta], lr=0.1)
    s = sch.StepLR(opt, step_size=2, gamma=0.5)
    used = []
    for _ in range(6):
        used.append(opt.param_groups[0]["lr"])
        theta.grad[...] = 1.0
        opt.step()
        s.step()
    assert used == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    np.testing.assert_allclose(theta.data, [-sum(used)], rtol=1e-15)


def test_initial_lr_is_kept_by_a_second_scheduler():
    opt = make_opt()
    sch.ExponentialLR(opt, gamma=0.5).step()
    s2 = sch.StepLR(opt, step_size=3)
    assert s2.base_lrs == BASE_LRS


# -- torch --------------------------------------------------------------------------------
def _torch_opt(torch, cls="SGD", **kwargs):
    groups = [{"params": [torch.zeros(3, requires_grad=True)], "lr": BASE_LRS[0]},
              {"params": [torch.zeros(2, 2, requires_grad=True)], "lr": BASE_LRS[1]}]
    return getattr(torch.optim, cls)(groups, **kwargs)


def _torch_trajectory(s, steps=STEPS, metric=None):
    lrs = [[g["lr"] for g in s.optimizer.param_groups]]
    for t in range(steps):
        s.optimizer.step()  # no grads: a no-op that keeps torch from warning about the order
        s.step() if metric is None else s.step(metric[t])
        lrs.append([g["lr"] for g in s.optimizer.param_groups])
    return np.array(lrs)


TORCH_PAIRS = [
    ("step", lambda o: sch.StepLR(o, 7, gamma=0.5),
     lambda T, o: T.StepLR(o, 7, gamma=0.5)),
    ("exponential", lambda o: sch.ExponentialLR(o, 0.9),
     lambda T, o: T.ExponentialLR(o, 0.9)),
    ("cosine", lambda o: sch.CosineAnnealingLR(o, T_max=20, eta_min=1e-3),
     lambda T, o: T.CosineAnnealingLR(o, T_max=20, eta_min=1e-3)),
    ("warmup", lambda o: sch.LinearWarmup(o, 10, start_factor=0.1),
     lambda T, o: T.LinearLR(o, start_factor=0.1, total_iters=10)),
    ("warmup_cosine",
     lambda o: sch.LinearWarmup(o, 10, start_factor=0.1, after=sch.CosineAnnealingLR(o, 40)),
     lambda T, o: T.SequentialLR(o, [T.LinearLR(o, start_factor=0.1, total_iters=10),
                                     T.CosineAnnealingLR(o, 40)], milestones=[10])),
    ("warmup_step",
     lambda o: sch.LinearWarmup(o, 5, start_factor=0.5, after=sch.StepLR(o, 4, 0.7)),
     lambda T, o: T.SequentialLR(o, [T.LinearLR(o, start_factor=0.5, total_iters=5),
                                     T.StepLR(o, 4, 0.7)], milestones=[5])),
    ("one_cycle", lambda o: sch.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS),
     lambda T, o: T.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS)),
    ("one_cycle_linear_3phase",
     lambda o: sch.OneCycleLR(o, 0.3, epochs=10, steps_per_epoch=5, anneal_strategy="linear",
                              three_phase=True, pct_start=0.2),
     lambda T, o: T.OneCycleLR(o, 0.3, epochs=10, steps_per_epoch=5, anneal_strategy="linear",
                               three_phase=True, pct_start=0.2)),
]


def _momenta(opt, cls):
    return [g["momentum"] if cls == "SGD" else g["betas"][0] for g in opt.param_groups]


@pytest.mark.torch
@pytest.mark.parametrize("cls", ["SGD", "Adam"])
@pytest.mark.parametrize("name, ours, theirs", TORCH_PAIRS, ids=[p[0] for p in TORCH_PAIRS])
def test_matches_torch(name, ours, theirs, cls):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    kwargs = dict(momentum=0.9) if cls == "SGD" else {}
    opt = make_opt(getattr(optim, cls), **kwargs)
    topt = _torch_opt(torch, cls, **kwargs)
    s, ts = ours(opt), theirs(torch.optim.lr_scheduler, topt)
    got, got_m = [s.get_last_lr()], [_momenta(opt, cls)]
    want, want_m = [[g["lr"] for g in topt.param_groups]], [_momenta(topt, cls)]
    for _ in range(STEPS - 1 if "one_cycle" in name else STEPS):
        s.step()
        got.append(s.get_last_lr())
        got_m.append(_momenta(opt, cls))
        topt.step()  # no grads: a no-op that keeps torch from warning about the order
        ts.step()
        want.append([g["lr"] for g in topt.param_groups])
        want_m.append(_momenta(topt, cls))
    assert np.max(np.abs(np.array(got) - np.array(want))) < 1e-12
    # momentum: cycled by OneCycleLR, untouched by the others
    assert np.max(np.abs(np.array(got_m) - np.array(want_m))) < 1e-12
    if "one_cycle" in name:
        assert np.ptp(np.array(got_m)) > 0.05


PLATEAU_CASES = [
    dict(factor=0.5, patience=2, threshold=0.1, cooldown=1, min_lr=[0.03, 0.0]),
    dict(mode="max", threshold_mode="abs", threshold=0.05, patience=1, factor=0.3),  # hits eps
    dict(patience=0, threshold=0.0, min_lr=1e-4),
]


@pytest.mark.torch
@pytest.mark.parametrize("kwargs", PLATEAU_CASES)
def test_reduce_on_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    t = np.arange(STEPS)
    metric = 1 + 1 / (1 + t // 8) + 0.05 * np.abs(np.sin(t))  # falls in steps, with noise
    metric = list(-metric if kwargs.get("mode") == "max" else metric)
    got = trajectory(sch.ReduceLROnPlateau(make_opt(), **kwargs), metric=metric)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(_torch_opt(torch), **kwargs)
    want = _torch_trajectory(ts, metric=metric)
    assert np.max(np.abs(got - want)) < 1e-12
    assert len(np.unique(got[:, 0])) > 2  # the case did reduce the lr, more than once


# -- state dicts --------------------------------------------------------------------------------
ROUND_TRIP = [
    ("step", lambda o: sch.StepLR(o, 3, gamma=0.5), None),
    ("exponential", lambda o: sch.ExponentialLR(o, 0.9), None),
    ("cosine", lambda o: sch.CosineAnnealingLR(o, 15, eta_min=1e-4), None),
    ("warmup_cosine", lambda o: sch.LinearWarmup(o, 8, 0.2, after=sch.CosineAnnealingLR(o, 20)),
     None),
    ("one_cycle", lambda o: sch.OneCycleLR(o, max_lr=0.5, total_steps=30), None),
    ("plateau", lambda o: sch.ReduceLROnPlateau(o, patience=1, factor=0.5),
     [3, 2, 2, 2, 2, 1.5, 1.5, 1.5, 1.5, 1.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
]


@pytest.mark.parametrize("scheduler_first", [True, False])
@pytest.mark.parametrize("name, make, metric", ROUND_TRIP, ids=[r[0] for r in ROUND_TRIP])
def test_state_dict_round_trip(name, make, metric, scheduler_first):
    """Optimiser + scheduler saved mid-run through JSON, restored in a fresh process."""
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((25, 3))
    ws = Parameter(np.ones(3))
    opt = optim.SGD([ws], lr=0.1, momentum=0.9)
    s = make(opt)

    def run(opt, s, w, ts):
        lrs = []
        for t in ts:
            w.grad[...] = grads[t]
            opt.step()
            s.step() if metric is None else s.step(metric[t])
            lrs.append(s.get_last_lr())
        return lrs

    run(opt, s, ws, range(10))
    saved_w = ws.data.copy()
    saved_opt = opt.state_dict()
    saved_sched = json.loads(json.dumps(s.state_dict()))  # JSON-able, no optimiser inside
    assert "optimizer" not in saved_sched
    rest = run(opt, s, ws, range(10, 25))

    w2 = Parameter(saved_w)
    opt2 = optim.SGD([w2], lr=0.1, momentum=0.9)
    if scheduler_first:  # torch's recommended order
        s2 = make(opt2)
        opt2.load_state_dict(saved_opt)
    else:  # the other order works too: load_state_dict re-applies the lr
        opt2.load_state_dict(saved_opt)
        s2 = make(opt2)
    s2.load_state_dict(saved_sched)
    assert s2.get_last_lr() == [opt2.param_groups[0]["lr"]] == [saved_opt["param_groups"][0]["lr"]]
    rest2 = run(opt2, s2, w2, range(10, 25))
    assert rest2 == rest
    np.testing.assert_array_equal(w2.data, ws.data)


def test_one_cycle_round_trip_restores_adam_betas_bitwise():
    def fresh():
        p = Parameter(np.ones((2, 3)))
        o = optim.Adam([p], lr=0.01)
        return p, o, sch.OneCycleLR(o, max_lr=0.05, total_steps=40)

    rng = np.random.default_rng(1)
    grads = rng.standard_normal((30, 2, 3))
    p, o, s = fresh()
    for t in range(12):
        p.grad[...] = grads[t]
        o.step()
        s.step()
    saved = (p.data.copy(), o.state_dict(), json.loads(json.dumps(s.state_dict())))
    for t in range(12, 30):
        p.grad[...] = grads[t]
        o.step()
        s.step()
    p2, o2, s2 = fresh()
    p2.data[...] = saved[0]
    o2.load_state_dict(saved[1])
    s2.load_state_dict(saved[2])
    assert o2.param_groups[0]["betas"] == saved[1]["param_groups"][0]["betas"]
    for t in range(12, 30):
        p2.grad[...] = grads[t]
        o2.step()
        s2.step()
    np.testing.assert_array_equal(p.data, p2.data)
    assert o.param_groups[0]["betas"] == o2.param_groups[0]["betas"]


# -- bad input ----------------------------------------------------------------------------------
def test_bad_input_raises():
    opt = make_opt()
    other = make_opt()
    with pytest.raises(TypeError, match="optimizer must be a twinnet Optimizer, got list"):
        sch.StepLR([], 3)
    with pytest.raises(ValueError, match="step_size must be a positive int, got 0"):
        sch.StepLR(opt, 0)
    with pytest.raises(ValueError, match="T_max must be a positive int, got -5"):
        sch.CosineAnnealingLR(opt, -5)
    with pytest.raises(ValueError, match="warmup_steps must be a positive int, got 0"):
        sch.LinearWarmup(opt, 0)
    with pytest.raises(ValueError, match=r"start_factor must be in \[0, 1\], got 1.5"):
        sch.LinearWarmup(opt, 5, start_factor=1.5)
    with pytest.raises(ValueError, match="same optimizer"):
        sch.LinearWarmup(opt, 5, after=sch.StepLR(other, 3))
    with pytest.raises(TypeError, match="after must be a closed-form scheduler"):
        sch.LinearWarmup(opt, 5, after=sch.ReduceLROnPlateau(opt))
    with pytest.raises(ValueError, match="needs total_steps, or epochs and steps_per_epoch"):
        sch.OneCycleLR(opt, 0.1)
    with pytest.raises(ValueError, match="one value per param group"):
        sch.OneCycleLR(opt, [0.1, 0.2, 0.3], total_steps=10)
    with pytest.raises(ValueError, match="Adagrad has neither"):
        sch.OneCycleLR(make_opt(optim.Adagrad), 0.1, total_steps=10)
    sch.OneCycleLR(make_opt(optim.Adagrad), 0.1, total_steps=10, cycle_momentum=False)
    with pytest.raises(ValueError, match="anneal_strategy must be 'cos' or 'linear'"):
        sch.OneCycleLR(opt, 0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match=r"pct_start must be in \[0, 1\], got 1.2"):
        sch.OneCycleLR(opt, 0.1, total_steps=10, pct_start=1.2)
    with pytest.raises(ValueError, match="factor must be < 1, got 1.0"):
        sch.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'median'"):
        sch.ReduceLROnPlateau(opt, mode="median")
    with pytest.raises(ValueError, match="missing"):
        sch.StepLR(opt, 3).load_state_dict({"last_epoch": 3})
