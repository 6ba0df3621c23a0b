"""Training configuration: a validated dataclass, read from TOML and flags, saved with every run.

Order of precedence: built-in defaults < ``--config FILE.toml`` < command-line flags.
The resolved configuration is written to the run folder as ``config.toml`` and is all
that is needed to rerun (or resume) the run.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from twinnet import optim
from twinnet.data.datasets import IMAGE_SHAPES
from twinnet.models import ACTIVATIONS, CNN_NORMS, MODELS, NORMS
from twinnet.nn.init import WEIGHT_INITS

# the optimiser and schedule names, and the rules of their hyperparameters, are the
# optim package's tables (optim.OPTIMIZERS, the classes' hypers, lr_scheduler.recipes)
OPTIMIZERS = tuple(optim.OPTIMIZERS)
SCHEDULES = tuple(optim.lr_scheduler.recipes.RECIPES)
# config keys that are optimiser hyperparameters of the same name
OPTIMIZER_KEYS = ("lr", "momentum", "weight_decay")
DTYPES = ("float32", "float64")
ENGINES = ("numpy", "torch")
INITS = ("default", "auto", *(k for k in WEIGHT_INITS if k != "default"))

# What each dataset trains best with when the user does not say otherwise (applied by
# ``twinnet train`` and ``TrainConfig.for_dataset`` to the keys left out). The input
# and output sizes follow the data ("auto"); measured with seeds 0, 1, 2: xor 100%,
# spirals 100%, digits 97.2-99.2%. No default changes the architecture beyond the sizes,
# and none is a key that can be None (config.toml leaves those out: --config of a saved
# config.toml reruns the same run).
DATASET_DEFAULTS: dict[str, dict] = {
    "mnist": {},
    "fashion-mnist": {},
    "digits": {"layers": ["auto", 256, "auto"], "label_smoothing": 0.1, "lr": 3e-3, "epochs": 40, "batch_size": 32},
    "xor": {"layers": ["auto", 8, "auto"], "activation": "tanh", "lr": 0.1, "epochs": 100, "batch_size": 4,
            "schedule": "none"},
    "click": {"layers": ["auto", 64, 32, "auto"], "epochs": 10},
    "click-book": {"layers": ["auto", 64, 32, "auto"], "epochs": 10},
    "spirals": {"layers": ["auto", 64, 64, "auto"], "lr": 0.01, "epochs": 60, "batch_size": 32},
    "two-spirals": {"layers": ["auto", 64, 64, "auto"], "lr": 0.01, "epochs": 60, "batch_size": 32},
    "sine": {"layers": ["auto", 64, 64, "auto"], "activation": "tanh", "lr": 0.01, "epochs": 100, "batch_size": 32},
}  # fmt: skip

DEFAULT_LAYERS = ("auto", 512, 256, "auto")  # the MLP's sizes; both ends follow the data

# Defaults of a model, applied like the dataset's (over them) to keys not given. The CNN
# overfits MNIST without dropout before its classifier (train 99.98%, test 99.12%);
# with 0.5 the same 8 epochs give 99.28% (torch engine, seed 0; docs/guide/convolution.md).
MODEL_DEFAULTS: dict[str, dict] = {
    "cnn": {"dropout": 0.5},
}


class ConfigError(ValueError):
    """A configuration value or key that is not valid; the message names it."""


@dataclass
class TrainConfig:
    """Everything a training run depends on. Defaults train the 784-512-256-10 ReLU MLP
    on MNIST to 98.4% test accuracy in about 15 s of training on 2 CPU cores."""

    dataset: str = "mnist"
    data_dir: str | None = None
    model: str = "mlp"  # "mlp" (sizes from ``layers``) or a CNN of models.CNNS ("cnn", "lenet")
    # "auto" ends follow the dataset (its features; its classes, or 1): mnist 784-512-256-10
    layers: list = field(default_factory=lambda: list(DEFAULT_LAYERS))
    activation: str = "relu"
    init: str = "default"
    norm: str = "none"
    dropout: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_steps: int = 0
    epochs: int = 8
    batch_size: int = 128
    val_fraction: float | None = None
    n_samples: int | None = None
    label_smoothing: float = 0.0
    clip_grad_norm: float = 0.0
    early_stopping: int = 0
    seed: int = 0
    dtype: str = "float32"
    engine: str = "numpy"
    device: str = "cpu"
    nproc: int = 1
    diagnostics: bool = False
    diagnostics_every: int = 50
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(cond: bool, key: str, expected: str) -> None:
            if not cond:
                raise ConfigError(f"config key {key!r}: expected {expected}, got {getattr(self, key)!r}")

        need(isinstance(self.dataset, str) and self.dataset != "", "dataset", "a dataset name")
        need(self.data_dir is None or isinstance(self.data_dir, str), "data_dir", "a folder path")
        need(
            isinstance(self.layers, list)
            and len(self.layers) >= 2
            and all(
                (isinstance(n, int) and not isinstance(n, bool) and n > 0) or (n == "auto" and i in (0, len(self.layers) - 1))
                for i, n in enumerate(self.layers)
            ),
            "layers",
            "at least two positive integers, e.g. [784, 512, 256, 10] (the first and last may be \"auto\")",
        )
        need(_choice(self.model, MODELS), "model", f"one of {list(MODELS)}")
        image_set = str(self.dataset).strip().lower().replace("_", "-") in IMAGE_SHAPES
        if self.model != "mlp" and (not image_set or self.norm not in CNN_NORMS):
            raise ConfigError(
                f"config key 'model': a CNN ({self.model!r}) needs an image dataset "
                f"({', '.join(IMAGE_SHAPES)}) and norm 'none' or 'batch', got dataset "
                f"{self.dataset!r} and norm {self.norm!r}"
            )
        need(_choice(self.activation, ACTIVATIONS), "activation", f"one of {sorted(ACTIVATIONS)}")
        need(_choice(self.init, INITS), "init", f"one of {list(INITS)}")
        need(_choice(self.norm, NORMS), "norm", f"one of {list(NORMS)}")
        need(_number(self.dropout) and 0 <= self.dropout < 1, "dropout", "a number in [0, 1)")
        need(_choice(self.optimizer, OPTIMIZERS), "optimizer", f"one of {list(OPTIMIZERS)}")
        # a run's policy on top of the optimiser's rule (lr >= 0): lr 0 would train nothing
        need(not _number(self.lr) or self.lr > 0, "lr", "a number > 0")
        self._check_optimizer_keys()
        need(_choice(self.schedule, SCHEDULES), "schedule", f"one of {list(SCHEDULES)}")
        need(_integer(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps", "an integer >= 0")
        need(_integer(self.epochs) and self.epochs >= 1, "epochs", "an integer >= 1")
        need(_integer(self.batch_size) and self.batch_size >= 1, "batch_size", "an integer >= 1")
        need(
            self.val_fraction is None or (_number(self.val_fraction) and 0 <= self.val_fraction < 1),
            "val_fraction",
            "a number in [0, 1) (default: the dataset's own)",
        )
        need(
            self.n_samples is None or (_integer(self.n_samples) and self.n_samples >= 1),
            "n_samples",
            "a positive integer (train on a subset; default: all)",
        )
        need(_number(self.label_smoothing) and 0 <= self.label_smoothing < 1, "label_smoothing", "a number in [0, 1)")
        need(_number(self.clip_grad_norm) and self.clip_grad_norm >= 0, "clip_grad_norm", "a number >= 0 (0: off)")
        need(_integer(self.early_stopping) and self.early_stopping >= 0, "early_stopping", "a patience in epochs >= 0 (0: off)")
        need(_integer(self.seed) and self.seed >= 0, "seed", "an integer >= 0")
        need(_choice(self.dtype, DTYPES), "dtype", f"one of {list(DTYPES)}")
        need(_choice(self.engine, ENGINES), "engine", f"one of {list(ENGINES)}")
        need(
            isinstance(self.device, str)
            and (self.device in ("cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())),
            "device",
            "'cpu', 'cuda' or 'cuda:N'",
        )
        if self.device != "cpu" and self.engine != "torch":
            raise ConfigError("config key 'device': only engine = 'torch' runs on a GPU; the numpy engine uses 'cpu'")
        need(_integer(self.nproc) and self.nproc >= 1, "nproc", "an integer >= 1")
        need(isinstance(self.diagnostics, bool), "diagnostics", "true or false")
        need(_integer(self.diagnostics_every) and self.diagnostics_every >= 1, "diagnostics_every", "an integer >= 1")
        need(_integer(self.checkpoint_every) and self.checkpoint_every >= 0, "checkpoint_every", "an integer >= 0 (0: only at epoch ends)")
        if self.nproc > 1 and self.engine != "torch":
            raise ConfigError("config key 'nproc': more than one process needs engine = 'torch'")

    def _check_optimizer_keys(self) -> None:
        """lr, momentum, weight_decay: finite numbers that pass the rule of the optimiser's
        table ("lr must be >= 0"); momentum, which only the SGD names use, SGD's rule."""
        table = optim.registry.hypers(self.optimizer)
        sgd = optim.registry.hypers("sgd")
        for key in OPTIMIZER_KEYS:
            value = getattr(self, key)
            if not _number(value):
                raise ConfigError(f"config key {key!r}: expected a finite number, got {value!r}")
            try:
                table.get(key, sgd[key]).check(value)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"config key {key!r}: {err}") from None

    # -- reading and writing ------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict, source: str = "config", dataset_defaults: bool = False) -> TrainConfig:
        """A validated config from ``values``; with ``dataset_defaults`` the keys left out
        take the dataset's and the model's defaults (``DATASET_DEFAULTS``,
        ``MODEL_DEFAULTS``) before the built-in ones (what
        ``twinnet train`` does; a saved config.toml is read without them)."""
        if not isinstance(values, dict):
            kind = type(values).__name__
            raise ConfigError(f"{source}: expected a table of config keys, got {kind}")
        unknown = sorted(set(values) - set(cls.keys()), key=str)
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), cls.keys(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{source}: unknown config key {unknown[0]!r}; {hint}valid keys are {', '.join(cls.keys())}"
            )
        dataset, model = values.get("dataset", cls.dataset), values.get("model", cls.model)
        layers = values.get("layers")
        if model in MODELS and model != "mlp" and layers is not None and layers not in _filled_layers(dataset):
            raise ConfigError(
                f"{source}: config key 'layers' sets the sizes of an MLP, and a CNN ({model!r}) takes "
                f"its sizes from the images, so {layers!r} would be ignored: drop 'layers' "
                "(--layers, --hidden) or use model \"mlp\""
            )
        defaults = {}
        if dataset_defaults:
            defaults.update(DATASET_DEFAULTS.get(dataset, {}) if isinstance(dataset, str) else {})
            defaults.update(MODEL_DEFAULTS.get(model, {}) if isinstance(model, str) else {})
        return cls(**{**defaults, **values})

    @classmethod
    def for_dataset(cls, dataset: str, **values) -> TrainConfig:
        """The config of ``dataset`` with its defaults (``DATASET_DEFAULTS``) for every
        key not given."""
        return cls.from_dict({"dataset": dataset, **values}, dataset_defaults=True)

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(cls.read_toml(path), source=str(path))

    @staticmethod
    def read_toml(path: str | Path) -> dict:
        """The keys of a config file (a [train] table or top-level keys), not validated."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                values = tomllib.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not valid TOML (not UTF-8 text)") from None
        return values.get("train", values)

    def replace(self, **overrides) -> TrainConfig:
        """A copy with some keys changed (validated)."""
        return self.from_dict({**self.to_dict(), **overrides})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        values = {k: v for k, v in self.to_dict().items() if v is not None}
        if self.model != "mlp":
            del values["layers"]  # a CNN's sizes come from the images, not from this key
        return "# twinnet training configuration (resolved); rerun with: twinnet train --config config.toml\n" + tomli_w.dumps(
            {"train": values}
        )


def _filled_layers(dataset) -> list[list]:
    """The layer lists twinnet fills in by itself: the built-in default and the dataset's
    (a CNN run's config.toml from before CNNs dropped the key holds one of them)."""
    builtin = list(DEFAULT_LAYERS)
    known = DATASET_DEFAULTS.get(dataset, {}) if isinstance(dataset, str) else {}
    return [builtin, known.get("layers", builtin)]


def _number(v) -> bool:
    """A finite real number (not a bool, nan, inf, or an integer too large for a float)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # e.g. lr = 10**400 from a TOML file
        return False


def _choice(v, options) -> bool:
    """``v`` is one of the string ``options`` (a list or dict in a TOML file is not)."""
    return isinstance(v, str) and v in options


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
