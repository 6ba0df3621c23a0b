"""Turn a TrainConfig into the objects a run needs: model, loss, optimiser, schedule."""

from __future__ import annotations

import numpy as np

from twinnet import losses, optim
from twinnet.config import ConfigError, TrainConfig
from twinnet.data.datasets import IMAGE_SHAPES, REGISTRY
from twinnet.models import build_cnn, build_mlp


def resolve_layers(config: TrainConfig, n_features: int, task: str, n_classes: int | None) -> TrainConfig:
    """``config`` with an ``"auto"`` first size set to the data's features and an
    ``"auto"`` last size to the task's outputs; then checked against the data. A CNN
    does not use ``layers``: its config is returned as it is."""
    if config.model != "mlp":
        return config
    layers = list(config.layers)
    if layers[0] == "auto":
        layers[0] = int(n_features)
    if layers[-1] == "auto":
        layers[-1] = int(n_classes) if task == "multiclass" else 1
    if layers != config.layers:
        config = config.replace(layers=layers)
    check_layers_fit(config, n_features, task, n_classes)
    return config


def check_layers_fit(config: TrainConfig, n_features: int, task: str, n_classes: int | None) -> None:
    """The first layer must match the data's features, the last the task's outputs.
    (A CNN takes both from the dataset and does not use ``layers``.)"""
    if config.model != "mlp":
        return
    first, last = config.layers[0], config.layers[-1]
    if first != n_features:
        raise ConfigError(
            f"config key 'layers': the first size must equal the {n_features} features of "
            f"dataset {config.dataset!r}, got {first} (layers {config.layers})"
        )
    want = n_classes if task == "multiclass" else 1
    if last != want:
        what = f"{n_classes} classes" if task == "multiclass" else f"one output for a {task} task"
        raise ConfigError(
            f"config key 'layers': the last size must be {want} ({what} of dataset "
            f"{config.dataset!r}), got {last} (layers {config.layers})"
        )


def data_shape(config: TrainConfig) -> str:
    """How the model reads the data (``data.load``'s ``shape``): a CNN images, an MLP rows."""
    return "flat" if config.model == "mlp" else "image"


def image_shape(config: TrainConfig) -> tuple[int, int, int]:
    """(C, H, W) of the images of the configured dataset (a CNN's input)."""
    return IMAGE_SHAPES[config.dataset.strip().lower().replace("_", "-")]


def make_model(config: TrainConfig):
    if config.model != "mlp":
        n_classes = len(REGISTRY[config.dataset.strip().lower().replace("_", "-")].classes)
        return build_cnn(
            config.model, image_shape(config), n_classes, activation=config.activation, dropout=config.dropout,
            norm=config.norm, init=config.init, dtype=np.dtype(config.dtype), rng=np.random.default_rng(config.seed),
        )  # fmt: skip
    if "auto" in config.layers:
        raise ConfigError(
            f"config key 'layers': {config.layers} has 'auto' sizes; resolve them against the data "
            "first (train.setup.resolve_layers)"
        )
    return build_mlp(
        config.layers,
        activation=config.activation,
        dropout=config.dropout,
        norm=config.norm,
        init=config.init,
        dtype=np.dtype(config.dtype),
        rng=np.random.default_rng(config.seed),
    )


def make_loss(config: TrainConfig, task: str):
    if task == "multiclass":
        return losses.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    if task == "binary":
        return losses.BCEWithLogitsLoss()
    return losses.MSELoss()


def make_optimizer(config: TrainConfig, model):
    """The configured optimiser (``optim.create``), with config.lr and, for the optimisers
    whose name implies a momentum ("momentum", "nesterov"), config.momentum. Biases and
    normalisation parameters are never weight-decayed."""
    groups = optim.param_groups(model, config.weight_decay)
    groups = [g for g in groups if g["params"]]
    hyper = {"lr": config.lr}
    if "momentum" in optim.registry.settings(config.optimizer):
        hyper["momentum"] = config.momentum
    return optim.create(config.optimizer, groups, **hyper)


def make_scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    """(scheduler, interval) for the configured schedule, or (None, None)."""
    return optim.lr_scheduler.recipes.build(
        config.schedule, optimizer, config.epochs, steps_per_epoch, config.warmup_steps
    )
