"""Build the multilayer perceptrons that the CLI, the experiments and the estimators use."""

from __future__ import annotations

import numpy as np

from twinnet import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}

NORMS = ("none", "batch", "layer")

# the init that keeps activation variance steady for each nonlinearity
_AUTO_INIT = {
    "relu": "kaiming_uniform",
    "leaky_relu": "kaiming_uniform",
    "gelu": "kaiming_uniform",
    "gelu_tanh": "kaiming_uniform",
    "silu": "kaiming_uniform",
    "tanh": "xavier_uniform",
    "sigmoid": "xavier_uniform",
    "identity": "default",
}


def build_mlp(
    layers: list[int],
    activation: str = "relu",
    dropout: float = 0.0,
    norm: str = "none",
    init: str = "default",
    dtype=np.float32,
    rng: np.random.Generator | int | None = None,
) -> nn.Sequential:
    """An MLP with sizes ``layers`` (e.g. [784, 512, 256, 10]).

    Each hidden block is Linear -> [BatchNorm1d | LayerNorm] -> activation -> [Dropout]
    (a Linear followed by BatchNorm has no bias: the normalisation removes it anyway);
    the last Linear has no activation: it outputs logits (the loss applies softmax or
    sigmoid) or, for regression, the prediction. ``init="auto"`` picks He for the
    ReLU family and Xavier for tanh/sigmoid; ``"default"`` is PyTorch's Linear init.
    ``rng`` (a Generator or a seed) draws the weights and the dropout masks.
    """
    if len(layers) < 2 or not all(isinstance(n, int | np.integer) and n > 0 for n in layers):
        raise ValueError(f"layers must be at least two positive sizes, got {layers!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {list(NORMS)}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if init == "auto":
        init = _AUTO_INIT[activation]
    blocks: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        last = i == len(layers) - 2
        # BatchNorm subtracts the batch mean, so a bias before it would only learn rounding noise
        bias = last or norm != "batch"
        blocks.append(nn.Linear(int(n_in), int(n_out), bias=bias, init=init, dtype=dtype, rng=rng))
        if last:
            break
        if norm == "batch":
            blocks.append(nn.BatchNorm1d(int(n_out), dtype=dtype))
        elif norm == "layer":
            blocks.append(nn.LayerNorm(int(n_out), dtype=dtype))
        blocks.append(ACTIVATIONS[activation]())
        if dropout > 0:
            # each Dropout gets its own stream derived from the model's generator
            blocks.append(nn.Dropout(dropout, rng=np.random.default_rng(rng.integers(2**63))))
    return nn.Sequential(*blocks)
