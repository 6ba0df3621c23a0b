"""The playground's settings: one plain dict from the browser, validated, turned into data
and a ``TrainConfig``, and exported as TOML and Python.

Keys that are also config keys (activation, lr, batch_size, ...) are checked by
``TrainConfig`` itself, so a bad value in the page reads exactly like a bad value in a
config file ("config key 'lr': expected a number > 0, got -1"). The few keys a config
file does not have (the input features, the loss, label noise, drawn points) are
checked here in the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twinnet.config import ConfigError, TrainConfig

# dataset name in the page -> (how it is made, task); "registry" sets come from twinnet.data
DATASETS = {
    "spirals": "registry",
    "two-spirals": "registry",
    "xor": "registry",
    "circles": "sklearn",
    "blobs": "sklearn",
    "sine": "registry",
    "digits": "registry",
    "mnist": "registry",
    "fashion-mnist": "registry",
    "drawn": "points",
    "upload": "upload",
}
# the sets whose inputs are points (x1, x2) of a plane: the input features apply to them
PLANE_DATASETS = ["spirals", "two-spirals", "xor", "circles", "blobs", "drawn", "upload"]
IMAGE_SETS = {"digits": 8, "mnist": 28, "fashion-mnist": 28}  # name -> image side
# MNIST-size sets are cut to this many examples: the playground trains while you watch
IMAGE_SUBSET = 6000

# input feature name -> function of the two raw inputs (x1, x2) -> (N,)
FEATURES = {
    "x1": lambda a, b: a,
    "x2": lambda a, b: b,
    "x1^2": lambda a, b: a * a,
    "x2^2": lambda a, b: b * b,
    "x1*x2": lambda a, b: a * b,
    "sin x1": lambda a, b: np.sin(np.pi * a),
    "sin x2": lambda a, b: np.sin(np.pi * b),
}
LOSSES = ("auto", "cross-entropy", "bce", "mse")

DEFAULTS = {
    "dataset": "spirals",
    "features": ["x1", "x2"],
    "hidden": [8, 8],
    "activation": "tanh",
    "init": "auto",
    "loss": "auto",
    "optimizer": "adam",
    "lr": 0.01,
    "schedule": "none",
    "batch_size": 16,
    "weight_decay": 0.0,
    "clip_grad_norm": 0.0,
    "dropout": 0.0,
    "norm": "none",
    "label_noise": 0.0,
    "val_fraction": 0.2,
    "seed": 0,
    "epochs": 300,
    "points": [],
}
MAX_HIDDEN_LAYERS = 6
MAX_WIDTH = 64
MAX_POINTS = 600


@dataclass
class Settings:
    """Validated playground settings: ``values`` (the page's dict, completed with
    defaults) and ``config`` (the TrainConfig for its config keys; ``layers`` holds the
    input and output sizes once the data is known)."""

    values: dict
    config: TrainConfig

    def __getattr__(self, key):
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None


def _need(cond: bool, key: str, expected: str, value) -> None:
    if not cond:
        raise ConfigError(f"config key {key!r}: expected {expected}, got {value!r}")


def validate(raw: dict) -> Settings:
    """Check every value of the page's settings dict; ConfigError names the first bad one."""
    if not isinstance(raw, dict):
        raise ConfigError(f"settings: expected a table of keys, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"settings: unknown key {unknown[0]!r}; valid keys are {', '.join(DEFAULTS)}")
    v = {**DEFAULTS, **raw}
    _need(v["dataset"] in DATASETS, "dataset", f"one of {list(DATASETS)}", v["dataset"])
    feats = v["features"]
    _need(
        isinstance(feats, list) and len(feats) >= 1 and all(f in FEATURES for f in feats) and len(set(feats)) == len(feats),
        "features", f"one or more distinct names of {list(FEATURES)}", feats,
    )  # fmt: skip
    hidden = v["hidden"]
    _need(
        isinstance(hidden, list) and len(hidden) <= MAX_HIDDEN_LAYERS
        and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_WIDTH for n in hidden),
        "hidden", f"up to {MAX_HIDDEN_LAYERS} layer widths, each an integer in 1..{MAX_WIDTH}", hidden,
    )  # fmt: skip
    _need(v["loss"] in LOSSES, "loss", f"one of {list(LOSSES)}", v["loss"])
    noise = v["label_noise"]
    _need(_number(noise) and 0 <= noise <= 0.5, "label_noise", "a share in [0, 0.5]", noise)
    _check_points(v["points"])
    if v["dataset"] == "drawn":
        labels = {p[2] for p in v["points"]}
        _need(len(v["points"]) >= 4 and len(labels) >= 2, "points",
              "at least 4 drawn points of at least 2 classes (click on the plane to add points)",
              f"{len(v['points'])} points of {len(labels)} classes")  # fmt: skip
    values = {k: v[k] for k in ("activation", "init", "optimizer", "lr", "schedule", "batch_size",
                                "weight_decay", "clip_grad_norm", "dropout", "norm", "val_fraction", "seed", "epochs")}  # fmt: skip
    # the same checks as a config file; layers are a placeholder until the data is known
    config = TrainConfig.from_dict(
        {**values, "dataset": v["dataset"], "layers": [2, *hidden, 1], "dtype": "float32"}, source="settings"
    )
    return Settings(values=v, config=config)


def _check_points(points) -> None:
    ok = isinstance(points, list) and len(points) <= MAX_POINTS and all(
        isinstance(p, list) and len(p) == 3 and _number(p[0]) and _number(p[1])
        and abs(p[0]) <= 10 and abs(p[1]) <= 10
        and isinstance(p[2], int) and not isinstance(p[2], bool) and 0 <= p[2] <= 9
        for p in points
    )  # fmt: skip
    _need(ok, "points", f"up to {MAX_POINTS} points [x1, x2, class] with |x| <= 10 and class 0..9",
          points if not isinstance(points, list) else f"{len(points)} entries")  # fmt: skip


def _number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def resolve_loss(loss: str, task: str, n_classes: int | None) -> tuple[str, str]:
    """(loss, task) for the data's own task: "auto" keeps twinnet train's choice;
    "cross-entropy" on two classes trains two softmax outputs; "bce" needs two classes."""
    if loss == "auto":
        return {"multiclass": "cross-entropy", "binary": "bce", "regression": "mse"}[task], task
    if task == "regression" and loss != "mse":
        raise ConfigError(f"config key 'loss': this dataset is a regression task: expected 'mse' or 'auto', got {loss!r}")
    if task != "regression" and loss == "mse":
        raise ConfigError(f"config key 'loss': this dataset is classification: expected 'cross-entropy', 'bce' or 'auto', got {loss!r}")
    if loss == "bce":
        if n_classes != 2:
            raise ConfigError(f"config key 'loss': 'bce' needs two classes, this dataset has {n_classes}; use 'cross-entropy'")
        return "bce", "binary"
    return loss, ("multiclass" if loss == "cross-entropy" else task)


# -- export ---------------------------------------------------------------------------------
def export_toml(s: Settings, n_raw: int, train_outputs: int) -> str:
    """The TOML for ``twinnet train --config``, with a comment for what train does not have.

    ``n_raw``: the dataset's own inputs (train feeds those, not the studio's features);
    ``train_outputs``: the outputs twinnet train uses for the dataset's task."""
    layers = [n_raw, *s.hidden, train_outputs]
    notes = []
    dataset = s.dataset
    if DATASETS[dataset] != "registry":
        notes.append(f"# dataset {dataset!r} is made by the studio: save it as {dataset}.npz with arrays x and y")
        dataset = f"{dataset}.npz"
    if s.features != ["x1", "x2"] and dataset not in IMAGE_SETS and s.dataset != "sine":
        notes.append(f"# the studio fed the features {s.features}; twinnet train feeds the raw inputs x1, x2")
    if s.label_noise:
        notes.append(f"# the studio flipped {s.label_noise:.0%} of the training labels; twinnet train does not")
    if s.loss not in ("auto",):
        notes.append(f"# loss {s.loss!r}: twinnet train picks the loss from the dataset's task")
    config = s.config.replace(dataset=dataset, layers=list(layers),
                              n_samples=IMAGE_SUBSET if s.dataset in ("mnist", "fashion-mnist") else None)  # fmt: skip
    return "\n".join([*notes, config.to_toml()])


def export_python(s: Settings, layers: list[int], loss: str) -> str:
    """Python that builds the same model, loss and optimiser with twinnet."""
    c = s.config
    loss_code = {"cross-entropy": "losses.CrossEntropyLoss()", "bce": "losses.BCEWithLogitsLoss()",
                 "mse": "losses.MSELoss()"}[loss]  # fmt: skip
    return f'''import numpy as np

from twinnet import losses
from twinnet.config import TrainConfig
from twinnet.models import build_mlp
from twinnet.train.setup import make_optimizer

# the playground's network: {" -> ".join(map(str, layers))}, {c.activation}
model = build_mlp(
    {list(layers)},
    activation={c.activation!r},
    dropout={c.dropout!r},
    norm={c.norm!r},
    init={c.init!r},
    dtype=np.float32,
    rng=np.random.default_rng({c.seed}),
)
loss_fn = {loss_code}
config = TrainConfig(dataset={s.dataset!r}, layers={list(layers)}, optimizer={c.optimizer!r},
                     lr={c.lr!r}, weight_decay={c.weight_decay!r}, schedule={c.schedule!r})
optimizer = make_optimizer(config, model)  # biases and norm parameters are not decayed
''' + (f"# clip the gradient norm before each step: Trainer(..., clip_grad_norm={c.clip_grad_norm!r})\n"
       if c.clip_grad_norm else "")
