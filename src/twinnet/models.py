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


def _checked_common(activation: str, dropout: float, init: str, rng):
    """Check what build_mlp and build_cnn take alike; return (init with "auto" resolved, a Generator)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return (_AUTO_INIT[activation] if init == "auto" else init), rng


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
    init, rng = _checked_common(activation, dropout, init, rng)
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {list(NORMS)}")
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



# -- convolutional networks ------------------------------------------------------------
#
# A CNN reads images (N, C, H, W): ``data.load(name, shape="image")``. Each entry of
# CNNS gives the convolutional feature extractor and the hidden sizes of the classifier
# head; ``build_cnn`` measures the flattened feature size with one zero image, so a
# network works on any image size its convolutions fit (28x28 MNIST, 8x8 digits).


def _cnn(c: int, conv) -> tuple[list[nn.Module], list[int]]:
    """The default CNN: two strided convolutions, each normalised, then a hidden layer of 128.

    conv 32@5x5 stride 2 -> BatchNorm2d -> conv 64@3x3 stride 2 -> BatchNorm2d -> 128 ->
    classes (28x28 -> 14x14 -> 7x7). A stride-2 convolution downsamples as a 2x2 pool
    after a full-resolution convolution would, at a quarter of that convolution's cost
    (twinnet's MaxPool2d costs more than the convolution before it); BatchNorm2d is
    always on, whatever ``norm`` says: it is what gets the network to 99.2% in 8 epochs.
    """
    return [*conv(c, 32, 5, stride=2, padding=2, norm=True), *conv(32, 64, 3, stride=2, padding=1, norm=True)], [128]


def _lenet(c: int, conv) -> tuple[list[nn.Module], list[int]]:
    """LeNet-5 (LeCun et al. 1998) as courses teach it today (ReLU, max pooling):
    conv 6@5x5 padding 2 -> pool 2 -> conv 16@5x5 -> pool 2 -> 120 -> 84 -> classes;
    ``norm="batch"`` adds a BatchNorm2d after each convolution."""
    return [*conv(c, 6, 5, padding=2), nn.MaxPool2d(2), *conv(6, 16, 5), nn.MaxPool2d(2)], [120, 84]


CNNS = {"cnn": _cnn, "lenet": _lenet}
MODELS = ("mlp", *CNNS)  # the values of the ``model`` config key
CNN_NORMS = ("none", "batch")  # a CNN's norm: BatchNorm2d after each convolution


def build_cnn(
    name: str = "cnn",
    in_shape: tuple[int, int, int] = (1, 28, 28),
    n_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.0,
    norm: str = "none",
    init: str = "default",
    dtype=np.float32,
    rng: np.random.Generator | int | None = None,
) -> nn.Sequential:
    """The convolutional network ``name`` (see ``CNNS``) for images ``in_shape`` = (C, H, W).

    Each convolution is followed by [BatchNorm2d, with ``norm="batch"`` or where the
    network always has one; the convolution then has no bias] and ``activation``; then Flatten, [Dropout(``dropout``)], the
    hidden Linear layers with ``activation``, and a Linear to ``n_classes`` logits.
    ``init`` and ``rng`` as in ``build_mlp``. The first convolution skips the gradient
    of its input, the data (``input_grad = False``).
    """
    if name not in CNNS:
        raise ValueError(f"unknown CNN {name!r}; expected one of {sorted(CNNS)}")
    if len(in_shape) != 3 or not all(isinstance(n, int | np.integer) and n > 0 for n in in_shape):
        raise ValueError(f"in_shape must be (channels, height, width), got {in_shape!r}")
    if not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    init, rng = _checked_common(activation, dropout, init, rng)
    if norm not in CNN_NORMS:
        raise ValueError(f"a CNN's norm must be one of {list(CNN_NORMS)}, got {norm!r}")
    batch_norm = norm == "batch"

    def conv(c_in: int, c_out: int, kernel_size: int, norm: bool = False, **kw) -> list[nn.Module]:
        """Conv2d -> [BatchNorm2d, if ``norm`` or the network's norm is "batch"] -> activation."""
        bn = norm or batch_norm
        layers = [nn.Conv2d(c_in, c_out, kernel_size, bias=not bn, init=init, dtype=dtype, rng=rng, **kw)]
        if bn:
            layers.append(nn.BatchNorm2d(c_out, dtype=dtype))
        return [*layers, ACTIVATIONS[activation]()]

    features, hidden = CNNS[name](int(in_shape[0]), conv)
    features.append(nn.Flatten())
    try:  # the flattened feature size, from one zero image
        n_in = nn.Sequential(*features).eval()(np.zeros((1, *in_shape), dtype)).shape[1]
    except ValueError as e:
        raise ValueError(f"model {name!r} does not fit images of shape {tuple(in_shape)}: {e}") from None
    layers = features
    if dropout > 0:
        layers.append(nn.Dropout(dropout, rng=np.random.default_rng(rng.integers(2**63))))
    for n_out in hidden:
        layers += [nn.Linear(n_in, n_out, init=init, dtype=dtype, rng=rng), ACTIVATIONS[activation]()]
        n_in = n_out
    layers.append(nn.Linear(n_in, int(n_classes), init=init, dtype=dtype, rng=rng))
    layers[0].input_grad = False
    return nn.Sequential(*layers)
