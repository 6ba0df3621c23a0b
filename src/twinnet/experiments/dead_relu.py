"""Dead ReLUs: a too-high learning rate switches units off for good.

A ReLU unit whose pre-activation is negative for every input outputs 0 everywhere
and, since ReLU'(z) = 0 for z < 0, receives no gradient: nothing can bring it back.
One large update (a too-high learning rate) that pushes its bias or weights far
negative is enough. LeakyReLU (slope 0.01 below zero) always passes some gradient, so
its units cannot die. GELU(z) = z Phi(z) has a small negative lobe and a derivative
that only vanishes for z below about -5, so it survives learning rates that kill
ReLUs, though an extreme one can push its units that far too.

A unit counts as dead when its local derivative |f'(z)| is below 1e-6 on every
training example (for ReLU: z <= 0 on every example). We train 64-128-128-10 MLPs
(He init) on scikit-learn's digits with Adam at a sweep of learning rates and count
the dead hidden units after training (and at initialisation, as a baseline).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from scipy import special

from twinnet import data, losses, nn, optim
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.models import build_mlp
from twinnet.train import Trainer

NAME = "dead-relu"
CLAIM = (
    "a too-high learning rate kills ReLU units (zero output and gradient on every input); "
    "at that learning rate LeakyReLU and GELU units do not die"
)

ACTIVATIONS = ("relu", "leaky_relu", "gelu")
HIDDEN = [128, 128]
LOW_LR, HIGH_LR = 1e-3, 3e-2  # the pair the claim compares
DEAD_GRAD = 1e-6


def local_derivative(activation: str, z: np.ndarray) -> np.ndarray:
    """f'(z) for the activation (ReLU: [z > 0]; LeakyReLU: 1 or 0.01; GELU: Phi + z phi)."""
    if activation == "relu":
        return (z > 0).astype(z.dtype)
    if activation == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    # GELU: d/dz z Phi(z) = Phi(z) + z phi(z)
    return 0.5 * (1 + special.erf(z / math.sqrt(2))) + z * np.exp(-0.5 * z * z) / math.sqrt(
        2 * math.pi
    )


def dead_fraction(model: nn.Sequential, x: np.ndarray, activation: str) -> float:
    """Fraction of hidden units with |f'(z)| < 1e-6 on every row of x."""
    dead = total = 0
    h = x
    z = None
    for layer in model:
        if isinstance(layer, nn.Linear):
            z = h = layer(h)  # (N, units) pre-activations
        else:
            alive = np.abs(local_derivative(activation, z)) >= DEAD_GRAD  # (N, units)
            dead += int((~alive.any(axis=0)).sum())
            total += z.shape[1]
            h = layer(h)
    return dead / total


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Train each activation at each learning rate; count dead units; plot dead fraction vs lr."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    splits = data.load("digits", seed=SEED)
    x, y = splits.train.x, splits.train.y
    lrs = [LOW_LR, HIGH_LR, 1e-1] if quick else [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    seeds = [0] if quick else [0, 1, 2]
    epochs = 1 if quick else 5
    sizes = [splits.n_features, *HIDDEN, splits.n_classes]

    dead = {a: np.zeros((len(seeds), len(lrs))) for a in ACTIVATIONS}
    final_loss = {a: np.zeros((len(seeds), len(lrs))) for a in ACTIVATIONS}
    at_init = {a: [] for a in ACTIVATIONS}
    for act in ACTIVATIONS:
        for si, seed in enumerate(seeds):
            at_init[act].append(
                dead_fraction(build_mlp(sizes, act, init="kaiming_uniform", rng=seed), x, act)
            )
            for li, lr in enumerate(lrs):
                model = build_mlp(sizes, act, init="kaiming_uniform", rng=seed)
                trainer = Trainer(
                    model,
                    losses.CrossEntropyLoss(),
                    optim.Adam(model.parameters(), lr=lr),
                    seed=seed,
                )
                history = trainer.fit((x, y), epochs=epochs, batch_size=32)
                final_loss[act][si, li] = history["train_loss"][-1]
                dead[act][si, li] = dead_fraction(model, x, act)

    mean_dead = {a: d.mean(axis=0) for a, d in dead.items()}
    rows = []
    for li, lr in enumerate(lrs):
        row = [lr]
        for a in ACTIVATIONS:
            row += [mean_dead[a][li], final_loss[a][:, li].mean()]
        rows.append(row)
    headers = ["lr"]
    for a in ACTIVATIONS:
        headers += [f"{a} dead", f"{a} loss"]
    print_table(
        headers,
        rows,
        title=f"dead hidden units after {epochs} epoch(s) of Adam on digits, "
        f"MLP {'-'.join(map(str, sizes))}, mean of {len(seeds)} seed(s)",
    )
    print(
        "dead at initialisation: " + ", ".join(f"{a} {np.mean(v):.3f}" for a, v in at_init.items())
    )

    lo, hi = lrs.index(LOW_LR), lrs.index(HIGH_LR)
    relu_lo, relu_hi = mean_dead["relu"][lo], mean_dead["relu"][hi]
    leaky_hi, gelu_hi = mean_dead["leaky_relu"][hi], mean_dead["gelu"][hi]
    holds = relu_hi > relu_lo + 0.1 and leaky_hi <= 0.02 and gelu_hi <= 0.02
    print(
        f"ReLU dead fraction {relu_lo:.3f} at lr {LOW_LR:g} -> {relu_hi:.3f} at lr {HIGH_LR:g}; "
        f"at lr {HIGH_LR:g} LeakyReLU {leaky_hi:.3f}, GELU {gelu_hi:.3f}"
    )
    plot = _plot(out_dir, lrs, dead, final_loss)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        layers=sizes,
        epochs=epochs,
        seeds=seeds,
        learning_rates=lrs,
        optimizer="adam",
        low_lr=LOW_LR,
        high_lr=HIGH_LR,
        dead_fraction=mean_dead,
        dead_fraction_per_seed=dead,
        dead_fraction_at_init={a: float(np.mean(v)) for a, v in at_init.items()},
        final_train_loss={a: v.mean(axis=0) for a, v in final_loss.items()},
        relu_dead_low_lr=relu_lo,
        relu_dead_high_lr=relu_hi,
        leaky_relu_dead_high_lr=leaky_hi,
        gelu_dead_high_lr=gelu_hi,
    )


def _plot(out_dir, lrs, dead, final_loss) -> str:
    plt = pyplot()
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10.5, 4))
    for act, marker in zip(ACTIVATIONS, "osv", strict=True):
        d = dead[act]
        a0.errorbar(
            lrs,
            d.mean(axis=0),
            yerr=[d.mean(axis=0) - d.min(axis=0), d.max(axis=0) - d.mean(axis=0)],
            marker=marker,
            capsize=3,
            label=act,
        )
        a1.plot(lrs, final_loss[act].mean(axis=0), marker=marker, label=act)
    a0.set_xscale("log")
    a0.set_xlabel("learning rate (Adam)")
    a0.set_ylabel("fraction of hidden units dead")
    a0.axvline(HIGH_LR, color="grey", ls=":", lw=1)
    a0.set_title("dead units after training", fontsize=10)
    a0.grid(alpha=0.3)
    a0.legend(fontsize=8)
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("learning rate (Adam)")
    a1.set_ylabel("final training loss")
    a1.set_title("training loss", fontsize=10)
    a1.grid(alpha=0.3, which="both")
    return save_plot(fig, out_dir, "dead_relu.png")
