"""Vanishing gradients: a deep sigmoid net barely trains its first layers; ReLU does.

Backpropagation multiplies the error signal by W^T and by the activation's
derivative at every layer: delta_{l-1} = W_l^T delta_l * f'(z_{l-1}). The sigmoid's
derivative is at most 1/4 (at z = 0), so even with Xavier weights, which keep
W^T's gain near 1, the signal shrinks by about 4x or more per layer. The ReLU's
derivative is 1 on the active half, and He weights make up for the inactive half.

Network: 20-64x9-1 (ten Linear layers, nine hidden layers of 64 units) on a batch of
the click data, BCE-with-logits loss. For each activation we compute one backward
pass at initialisation and report ||dL/dW_l|| for every layer l, and the ratio
layer 1 / layer 10, averaged (geometrically) over several random networks. Sigmoid
and tanh use Xavier init (their best case), ReLU uses He; the same nets with
PyTorch's default init are reported too.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.models import build_mlp

NAME = "vanishing-gradients"
CLAIM = (
    "in a 10-layer sigmoid MLP the layer-1 / layer-10 gradient-norm ratio is over 1000x "
    "smaller than in the same ReLU MLP, where it stays above 1/100"
)

LAYERS = [20] + [64] * 9 + [1]

# label -> (activation, init)
CONFIGS = {
    "sigmoid (Xavier)": ("sigmoid", "xavier_uniform"),
    "tanh (Xavier)": ("tanh", "xavier_uniform"),
    "ReLU (He)": ("relu", "kaiming_uniform"),
    "sigmoid (PyTorch default)": ("sigmoid", "default"),
    "ReLU (PyTorch default)": ("relu", "default"),
}


def gradient_norms(model: nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """||dL/dW|| of every Linear layer, input side first, after one backward pass."""
    loss_fn = losses.BCEWithLogitsLoss()
    model.zero_grad()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    return np.array(
        [np.linalg.norm(m.weight.grad) for m in model.modules() if isinstance(m, nn.Linear)]
    )


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Per-layer gradient norms at initialisation for each activation; plot on a log scale."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    splits = data.load("click", seed=SEED, dtype=np.float64)
    batch = 256 if quick else 2048
    n_nets = 3 if quick else 20
    x, y = splits.train.x[:batch], splits.train.y[:batch]

    norms, ratios = {}, {}
    for label, (act, init) in CONFIGS.items():
        per_net = []
        for seed in range(n_nets):
            model = build_mlp(LAYERS, activation=act, init=init, dtype=np.float64, rng=seed)
            per_net.append(gradient_norms(model, x, y))
        per_net = np.stack(per_net)  # (nets, 10)
        # geometric means: the norms span many orders of magnitude
        norms[label] = np.exp(np.log(per_net).mean(axis=0))
        ratios[label] = float(np.exp(np.log(per_net[:, 0] / per_net[:, -1]).mean()))

    rows = [[label, n[0], n[4], n[-1], ratios[label]] for label, n in norms.items()]
    print_table(
        ["activation (init)", "||dL/dW1||", "||dL/dW5||", "||dL/dW10||", "layer 1 / layer 10"],
        rows,
        title=f"gradient norms at initialisation, MLP {'-'.join(map(str, LAYERS[:2]))}x9-1, "
        f"batch {batch} of click data, geometric mean of {n_nets} networks",
    )
    sig, relu = ratios["sigmoid (Xavier)"], ratios["ReLU (He)"]
    print(
        f"sigmoid ratio {sig:.3g} vs ReLU ratio {relu:.3g}: "
        f"the sigmoid's first layer gets {relu / sig:.3g}x less gradient, relative to its last"
    )
    holds = sig < 1e-3 * relu and relu >= 1e-2
    plot = _plot(out_dir, norms)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        layers=LAYERS,
        batch=batch,
        networks=n_nets,
        grad_norm_per_layer=norms,
        layer1_over_last=ratios,
        sigmoid_ratio=sig,
        relu_ratio=relu,
    )


def _plot(out_dir, norms) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    depth = np.arange(1, len(LAYERS))
    for (label, n), style in zip(norms.items(), ["o-", "^-", "s-", "o:", "s:"], strict=True):
        ax.semilogy(depth, n, style, label=label)
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel("||dL/dW|| at initialisation")
    ax.set_xticks(depth)
    ax.set_title("gradient norm per layer, 20-64x9-1 MLP", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_plot(fig, out_dir, "vanishing_gradients.png")
