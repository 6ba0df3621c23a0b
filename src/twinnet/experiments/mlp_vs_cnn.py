"""MLP against CNN: how many parameters each needs for the same test accuracy.

An MLP's first layer gives every hidden unit its own weight for every pixel; a
convolution shares one small kernel across all positions (weight sharing) and looks
only at neighbouring pixels (locality). On images that prior is right, so a CNN should
reach a given accuracy with far fewer parameters.

We train two families on the same data, the same way (Adam, the same epochs, batch
and seed): MLPs d-h-10 of growing width h, and small CNNs of growing channel count c
(Conv 3x3 c - ReLU - MaxPool 2 - Conv 3x3 2c - ReLU - MaxPool 2 - Flatten - Linear).
For the best accuracy both families reach, A = min(best MLP, best CNN), we compare the
parameters of the smallest model of each family that reaches A.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import losses, nn, optim
from twinnet.experiments.common import (
    SEED,
    load_image_data,
    print_table,
    pyplot,
    save_plot,
    save_results,
)
from twinnet.train import metrics as M

NAME = "mlp-vs-cnn"
CLAIM = (
    "a small CNN reaches the test accuracy of an MLP with at least 3 times fewer parameters "
    "(weight sharing and locality)"
)

RATIO_NEEDED = 3.0
# quick: scikit-learn's 8x8 digits; full: MNIST (a subset, so that it runs in minutes)
SETTINGS = {
    True: dict(
        side=8, n_train=None, epochs=20, batch=64, widths=(8, 16, 32, 64), channels=(2, 4, 8)
    ),
    False: dict(
        side=28,
        n_train=12000,
        epochs=6,
        batch=128,
        widths=(8, 16, 32, 64, 128, 256),
        channels=(2, 4, 8),
    ),
}


def mlp(d: int, hidden: int, rng) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, hidden, rng=rng), nn.ReLU(), nn.Linear(hidden, 10, rng=rng))


def cnn(side: int, c: int, rng) -> nn.Sequential:
    """Two conv blocks (padding keeps the size, each pool halves it), then a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * c * (side // 4) ** 2, 10, rng=rng),
    )


def train(model, x, y, x_test, y_test, epochs: int, batch: int, seed: int = SEED) -> float:
    """Adam (lr 3e-3) on shuffled mini-batches; returns the test accuracy."""
    rng = np.random.default_rng(seed)
    loss_fn, opt = losses.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
    model.eval()
    scores = np.concatenate([model(x_test[i : i + 500]) for i in range(0, len(x_test), 500)])
    return M.accuracy(scores, y_test)


def smallest_reaching(rows: list[dict], family: str, accuracy: float) -> dict:
    """The model of ``family`` with the fewest parameters whose accuracy is >= ``accuracy``."""
    return min(
        (r for r in rows if r["family"] == family and r["accuracy"] >= accuracy),
        key=lambda r: r["params"],
    )


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    s = SETTINGS[quick]
    splits = load_image_data(quick, data_dir, n_train=s["n_train"])
    side = s["side"]
    x, y = splits.train.x, splits.train.y
    x_test, y_test = splits.test.x, splits.test.y
    images, images_test = x.reshape(-1, 1, side, side), x_test.reshape(-1, 1, side, side)
    rows = []
    for h in s["widths"]:
        model = mlp(side * side, h, np.random.default_rng(SEED))
        acc = train(model, x, y, x_test, y_test, s["epochs"], s["batch"])
        rows.append(
            {
                "family": "MLP",
                "model": f"{side * side}-{h}-10",
                "params": model.num_parameters(),
                "accuracy": acc,
            }
        )
    for c in s["channels"]:
        model = cnn(side, c, np.random.default_rng(SEED))
        acc = train(model, images, y, images_test, y_test, s["epochs"], s["batch"])
        rows.append(
            {
                "family": "CNN",
                "model": f"conv {c}-{2 * c}",
                "params": model.num_parameters(),
                "accuracy": acc,
            }
        )
    print_table(
        ["family", "model", "parameters", "test accuracy"],
        [[r["family"], r["model"], r["params"], r["accuracy"]] for r in rows],
        title=f"{len(x)} training images {side}x{side}, Adam lr 3e-3, {s['epochs']} epochs, batch {s['batch']}",
    )
    target = min(max(r["accuracy"] for r in rows if r["family"] == f) for f in ("MLP", "CNN"))
    need_mlp, need_cnn = (
        smallest_reaching(rows, "MLP", target),
        smallest_reaching(rows, "CNN", target),
    )
    ratio = need_mlp["params"] / need_cnn["params"]
    print(
        f"\naccuracy both reach: {target:.4f}; smallest MLP {need_mlp['model']} ({need_mlp['params']} parameters), "
        f"smallest CNN {need_cnn['model']} ({need_cnn['params']}): {ratio:.1f}x fewer parameters"
    )
    plot = _plot(out_dir, rows, target)
    return save_results(
        out_dir, NAME, CLAIM, ratio >= RATIO_NEEDED, quick, started, [plot], rows=rows,
        accuracy_both_reach=target, smallest_mlp=need_mlp, smallest_cnn=need_cnn, parameter_ratio=ratio,
        epochs=s["epochs"], n_train=len(x),
    )  # fmt: skip


def _plot(out_dir: Path, rows: list[dict], target: float) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for family, marker in (("MLP", "o-"), ("CNN", "s-")):
        fam = sorted((r for r in rows if r["family"] == family), key=lambda r: r["params"])
        ax.plot([r["params"] for r in fam], [r["accuracy"] for r in fam], marker, label=family)
    ax.axhline(target, color="gray", lw=0.8, ls="--", label=f"accuracy both reach ({target:.3f})")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy against parameters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_plot(fig, out_dir, "mlp_vs_cnn.png")
