"""One table per optimiser and schedule: everything that names a hyperparameter reads it.

The signature, the checks, ``defaults``/param groups, ``optim.create``, config
validation, ``twinnet train --help``, the scikit-learn estimators and the twin's
optimiser mirror all come from each class's ``hypers``; torch's signatures are the
reference for names, order and defaults.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from twinnet import optim
from twinnet.config import ConfigError, TrainConfig
from twinnet.nn.parameter import Parameter
from twinnet.optim import lr_scheduler as sch

NO_TORCH = "PyTorch not installed (pip install twinnet[torch])"
CLASSES = [optim.SGD, optim.RMSprop, optim.Adagrad, optim.Adam, optim.AdamW]
SCHEDULERS = [sch.StepLR, sch.ExponentialLR, sch.CosineAnnealingLR, sch.OneCycleLR,
              sch.ReduceLROnPlateau]


def param():
    return Parameter(np.zeros(3))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_hyperparameter_is_stated_once_and_everything_agrees(cls):
    table = [h for h in cls.hypers if h.init]
    sig = inspect.signature(cls)
    assert list(sig.parameters)[1:] == [h.name for h in table]
    opt = cls([param()])
    assert set(opt.defaults) == {h.name for h in cls.hypers}
    assert set(opt.param_groups[0]) - {"params"} == set(opt.defaults)
    assert set(opt.state_dict()["param_groups"][0]) - {"params"} == set(opt.defaults)
    for h in table:
        assert opt.defaults[h.name] == h.default
        assert h.name in cls.__doc__  # the generated Hyperparameters section


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_positional_and_keyword_calls_agree(cls):
    positional = [h for h in cls.hypers if h.init and not h.keyword_only]
    values = [0.5 if h.name == "lr" else h.default for h in positional]
    by_position = cls([param()], *values)
    by_keyword = cls([param()], **{h.name: v for h, v in zip(positional, values, strict=True)})
    assert by_position.defaults == by_keyword.defaults
    assert by_position.defaults["lr"] == 0.5
    with pytest.raises(TypeError, match=f"{cls.__name__}\\(\\): too many positional"):
        cls([param()], *values, 1.0, 2.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        cls([param()], learning_rate=0.1)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_bad_value_names_the_rule_and_the_value(cls):
    with pytest.raises(ValueError, match=r"^lr must be >= 0, got -0.1$"):
        cls([param()], lr=-0.1)
    with pytest.raises(ValueError, match=r"param group 1: lr must be >= 0, got -1.0"):
        cls([{"params": [param()]}, {"params": [param()], "lr": -1.0}])


@pytest.mark.torch
@pytest.mark.parametrize("cls", CLASSES + SCHEDULERS, ids=lambda c: c.__name__)
def test_signature_is_torchs(cls):
    """Same names, same order, same defaults as torch for every hyperparameter we have."""
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    module = torch.optim if cls in CLASSES else torch.optim.lr_scheduler
    theirs = inspect.signature(getattr(module, cls.__name__)).parameters
    ours = inspect.signature(cls).parameters
    for name, p in ours.items():
        assert name in theirs, name
        assert p.kind == theirs[name].kind, name
        if p.default is not inspect.Parameter.empty:
            assert p.default == theirs[name].default, name
    positional = [n for n, p in theirs.items() if p.kind == p.POSITIONAL_OR_KEYWORD and n in ours]
    assert positional == [n for n, p in ours.items() if p.kind == p.POSITIONAL_OR_KEYWORD]


def test_create_builds_by_name():
    opt = optim.create("adam", [param()], lr=3e-4)
    assert type(opt) is optim.Adam and opt.defaults["lr"] == 3e-4
    nesterov = optim.create("nesterov", [param()], lr=0.1)
    assert type(nesterov) is optim.SGD
    assert nesterov.defaults["momentum"] == 0.9 and nesterov.defaults["nesterov"] is True
    assert optim.create("momentum", [param()], momentum=0.5).defaults["momentum"] == 0.5
    with pytest.raises(ValueError, match="optimizer must be one of .*'adamw'.*got 'adan'"):
        optim.create("adan", [param()])
    with pytest.raises(ValueError, match="lr must be >= 0, got -0.1"):
        optim.create("sgd", [param()], lr=-0.1)


def test_scheduler_create_and_table():
    opt = optim.SGD([param()], lr=0.1)
    sched = sch.create("cosine", opt, T_max=10)
    assert type(sched) is sch.CosineAnnealingLR and sched.T_max == 10
    assert set(sched.state_dict()) >= {"T_max", "eta_min", "last_epoch"}
    with pytest.raises(TypeError, match="missing a required argument: 'T_max'"):
        sch.create("cosine", opt)
    with pytest.raises(ValueError, match="scheduler must be one of"):
        sch.create("cyclic", opt)
    with pytest.raises(TypeError, match="gamma must be a real number, got str 'x'"):
        sch.StepLR(opt, 3, gamma="x")


def test_unknown_state_entry_is_refused_on_load():
    p = param()
    opt = optim.Adam([p])
    p.grad[...] = 1.0
    opt.step()
    state = opt.state_dict()
    state["state"][0]["momentum_buffer"] = np.zeros(3)
    with pytest.raises(ValueError, match="'momentum_buffer' of parameter 0 is not a state of Adam"):
        opt.load_state_dict(state)


def test_config_checks_with_the_optimizer_table():
    with pytest.raises(ConfigError, match=r"config key 'lr': expected a number > 0, got -0.1"):
        TrainConfig(lr=-0.1)  # the run's own policy, stricter than the optimiser's lr >= 0
    with pytest.raises(ConfigError, match=r"config key 'lr': expected a finite number, got 'x'"):
        TrainConfig(lr="x")
    with pytest.raises(ConfigError, match=r"config key 'momentum': momentum must be >= 0, got -1"):
        TrainConfig(optimizer="nesterov", momentum=-1.0)
    with pytest.raises(ConfigError, match=r"config key 'weight_decay': weight_decay must be >= 0"):
        TrainConfig(optimizer="adamw", weight_decay=-1.0)
    with pytest.raises(ConfigError, match=r"config key 'lr': expected a finite number"):
        TrainConfig(lr=float("inf"))
    assert set(TrainConfig.__dataclass_fields__) >= {"optimizer", "lr", "momentum"}
    from twinnet.config import OPTIMIZERS, SCHEDULES

    assert OPTIMIZERS == tuple(optim.OPTIMIZERS)
    assert SCHEDULES == tuple(sch.recipes.RECIPES)


def test_train_help_lists_every_optimizer_and_hyperparameter(capsys):
    from twinnet.cli.main import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for name, (cls, _) in optim.OPTIMIZERS.items():
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(name + " "))
        for h in cls.hypers:
            if h.init:
                assert f"{h.name} {h.rule}" in line, (name, h.name)
    for name in sch.recipes.RECIPES:
        assert f"  {name} " in text


def test_recipes_build_what_the_names_say():
    opt = optim.SGD([param()], lr=0.1, momentum=0.9)
    expected = {"step": (sch.StepLR, "epoch"), "exponential": (sch.ExponentialLR, "epoch"),
                "cosine": (sch.CosineAnnealingLR, "step"), "warmup-cosine": (sch.LinearWarmup, "step"),
                "onecycle": (sch.OneCycleLR, "step"), "plateau": (sch.ReduceLROnPlateau, "epoch")}
    for name, (cls, interval) in expected.items():
        built, when = sch.recipes.build(name, opt, epochs=3, steps_per_epoch=10)
        assert type(built) is cls and when == interval, name
    assert sch.recipes.build("none", opt, 3, 10) == (None, None)
    warm, _ = sch.recipes.build("cosine", opt, 3, 10, warmup_steps=4)
    assert type(warm) is sch.LinearWarmup and warm.warmup_steps == 4


@pytest.mark.torch
def test_twin_mirror_reads_the_tables():
    pytest.importorskip("torch", reason=NO_TORCH)
    from twinnet.twin.optim import OPTIMIZER_TABLE

    for rule in OPTIMIZER_TABLE:
        assert rule.hyper == tuple(h.name for h in rule.ours.hypers if h.init)
        assert rule.state == rule.ours.state_names
    assert {rule.ours for rule in OPTIMIZER_TABLE} == {cls for cls, _ in optim.OPTIMIZERS.values()}


def test_sklearn_estimators_check_with_the_optimizer_table():
    pytest.importorskip("sklearn")
    from twinnet.sklearn import MLPClassifier

    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match="'learning_rate_init' parameter .*lr must be >= 0"):
        MLPClassifier(learning_rate_init=-1.0).fit(X, y)
    with pytest.raises(ValueError, match=r"'beta_2' parameter .*must be in \[0, 1\), got 1.0"):
        MLPClassifier(beta_2=1.0).fit(X, y)
    with pytest.raises(ValueError, match="'momentum' parameter .*momentum must be >= 0"):
        MLPClassifier(solver="adam", momentum=-0.5).fit(X, y)
