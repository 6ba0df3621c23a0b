"""XOR: the problem that a single linear unit cannot solve and one hidden layer can.

The four points (0,0)->0, (0,1)->1, (1,0)->1, (1,1)->0 are not linearly separable:
a linear rule ``w1 x1 + w2 x2 + b > 0`` would need b < 0 and w1 + w2 + b < 0 (class
0), and w1 + b > 0 and w2 + b > 0 (class 1); adding the class-1 pair gives
w1 + w2 + 2b > 0, adding the class-0 pair gives w1 + w2 + 2b < 0. So at most three
of the four points can be right: 75%.

We train logistic regression (one Linear unit, BCEWithLogitsLoss) and also search
20,000 random linear rules for the best accuracy any of them reaches; then a 2-4-1
tanh MLP, and 2-2-1 sigmoid MLPs from several seeds (the smallest net that can solve
XOR; gradient descent sometimes lands it in a local minimum).

``mode="book"`` (``twinnet experiment xor --mode book``) runs the chapter's XOR recipe
as written instead: a 2-2-1 sigmoid net, W1 and W2 drawn from N(0, 1) by
``default_rng(0)`` (in the chapter's order and layout, x @ W), zero biases, MSE,
full-batch gradient descent with lr 0.5 for 10,000 epochs; the outputs should be close
to [0, 1, 1, 0].
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import data, losses, nn, optim
from twinnet.experiments.common import (
    SEED,
    fit_full_batch,
    print_table,
    pyplot,
    save_plot,
    save_results,
)
from twinnet.train import metrics as M

NAME = "xor"
CLAIM = "logistic regression cannot exceed 75% on XOR; a 2-4-1 MLP reaches 100%"
# other ways to run this experiment: mode -> its claim
MODES = {
    "book": "the chapter's XOR recipe (2-2-1 sigmoid, MSE, gradient descent lr 0.5, 10,000 "
    "epochs) ends with outputs within 0.1 of [0, 1, 1, 0]",
}
BOOK_EPOCHS, BOOK_LR = 10_000, 0.5


def book_recipe(epochs: int = BOOK_EPOCHS, lr: float = BOOK_LR) -> dict:
    """The chapter's recipe with twinnet's layers (float64). Returns the outputs of the
    last forward pass (as the chapter prints them: before the last update), the loss
    curve and the model."""
    x = data.synthetic.XOR_X  # (4, 2)
    y = data.synthetic.XOR_Y.astype(np.float64).reshape(-1, 1)  # (4, 1)
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 1, (2, 2))  # the chapter's layout: Z1 = X @ W1
    w2 = rng.normal(0, 1, (2, 1))
    hidden, out = nn.Linear(2, 2, dtype=np.float64), nn.Linear(2, 1, dtype=np.float64)
    hidden.weight.data[...], out.weight.data[...] = w1.T, w2.T  # ours: z = x @ W.T
    hidden.bias.data[...] = out.bias.data[...] = 0.0
    model = nn.Sequential(hidden, nn.Sigmoid(), out, nn.Sigmoid())
    loss_fn, opt = losses.MSELoss(), optim.SGD(model.parameters(), lr=lr)
    curve = np.zeros(epochs)
    for t in range(epochs):
        pred = model(x)
        curve[t] = loss_fn(pred, y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    return {"predictions": pred.ravel().copy(), "loss_curve": curve, "model": model}


def run_book(out_dir: Path, quick: bool = False) -> dict:
    """``mode="book"``: the recipe as written (quick runs it whole: it takes about a second)."""
    started = time.perf_counter()
    r = book_recipe()
    target = data.synthetic.XOR_Y.astype(np.float64)
    err = float(np.max(np.abs(r["predictions"] - target)))
    print_table(["input", "target", "output"],
                [[str(list(map(int, xi))), int(t), p] for xi, t, p
                 in zip(data.synthetic.XOR_X, target, r["predictions"], strict=True)],  # fmt: skip
                title=f"the chapter's XOR recipe: 2-2-1 sigmoid, MSE, GD lr {BOOK_LR}, {BOOK_EPOCHS} epochs")
    print(f"Predictions: {np.round(r['predictions'], 3)}  (the chapter: approximately [0, 1, 1, 0])")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(r["loss_curve"])
    ax.set_xlabel("epoch (full-batch gradient step)")
    ax.set_ylabel("MSE")
    ax.set_title("the chapter's XOR recipe")
    fig.tight_layout()
    plot = save_plot(fig, out_dir, "xor_book_loss.png")
    return save_results(out_dir, NAME, MODES["book"], err < 0.1, quick, started, [plot],
                        mode="book", predictions=r["predictions"], max_error=err,
                        final_loss=r["loss_curve"][-1], epochs=BOOK_EPOCHS, lr=BOOK_LR,
                        loss_curve=r["loss_curve"][::100])  # fmt: skip


def _accuracy(model, x, y) -> float:
    return M.accuracy(model(x), y, "binary")


def _train(model, x, y, lr: float, steps: int) -> np.ndarray:
    """Full-batch Adam on BCE-with-logits; returns the loss curve."""
    return fit_full_batch(
        model, losses.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=lr), x, y, steps
    )


def best_linear_accuracy(x: np.ndarray, y: np.ndarray, n_rules: int, rng) -> float:
    """Best accuracy over ``n_rules`` random linear rules [w1, w2, b] on the unit sphere."""
    rules = rng.standard_normal((n_rules, 3))  # (R, 3)
    rules /= np.linalg.norm(rules, axis=1, keepdims=True)
    x1 = np.hstack([x, np.ones((len(x), 1))])  # (4, 3)
    pred = (x1 @ rules.T > 0).astype(np.int64)  # (4, R)
    return float((pred == y[:, None]).mean(axis=0).max())


def run(out_dir: Path, quick: bool = False, data_dir=None, mode: str | None = None) -> dict:
    """Train the three models, plot their decision boundaries, write results.json
    (``mode="book"``: the chapter's recipe instead)."""
    if mode == "book":
        return run_book(Path(out_dir), quick)
    started = time.perf_counter()
    out_dir = Path(out_dir)
    splits = data.load("xor", seed=SEED)  # the classic 4 points
    x, y = splits.train.x, splits.train.y  # (4, 2) float32, (4,) int64
    steps = 400 if quick else 3000
    n_seeds = 5 if quick else 20

    logistic = nn.Linear(2, 1, rng=np.random.default_rng(SEED))
    logistic_loss = _train(logistic, x, y, lr=0.1, steps=steps)
    logistic_acc = _accuracy(logistic, x, y)
    best_rule_acc = best_linear_accuracy(x, y, 20_000, np.random.default_rng(SEED))

    mlp = nn.Sequential(
        nn.Linear(2, 4, init="xavier_uniform", rng=np.random.default_rng(SEED)),
        nn.Tanh(),
        nn.Linear(4, 1, init="xavier_uniform", rng=np.random.default_rng(SEED + 1)),
    )
    mlp_loss = _train(mlp, x, y, lr=0.05, steps=steps)
    mlp_acc = _accuracy(mlp, x, y)

    # 2-2-1 sigmoid nets from several seeds: how often does gradient descent solve XOR?
    small_accs, small_solved = [], None
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        net = nn.Sequential(nn.Linear(2, 2, rng=rng), nn.Sigmoid(), nn.Linear(2, 1, rng=rng))
        _train(net, x, y, lr=0.1, steps=steps)
        small_accs.append(_accuracy(net, x, y))
        if small_solved is None and small_accs[-1] == 1.0:
            small_solved = net
    n_small_solved = int(sum(a == 1.0 for a in small_accs))

    rows = [
        ["logistic regression (2-1)", 3, logistic_acc, logistic_loss[-1]],
        ["best of 20,000 random linear rules", 3, best_rule_acc, None],
        ["MLP 2-4-1 tanh", mlp.num_parameters(), mlp_acc, mlp_loss[-1]],
        [f"MLP 2-2-1 sigmoid, {n_small_solved}/{n_seeds} seeds solve it", 9, max(small_accs), None],
    ]
    print_table(["model", "params", "accuracy", "final loss"], rows, title="XOR (4 points)")

    plot = _plot(
        out_dir,
        x,
        y,
        [
            (f"logistic regression: {logistic_acc:.0%}", logistic),
            (f"2-4-1 tanh MLP: {mlp_acc:.0%}", mlp),
            *(
                [(f"2-2-1 sigmoid MLP: 100% ({n_small_solved}/{n_seeds} seeds)", small_solved)]
                if small_solved is not None
                else []
            ),
        ],
    )

    holds = logistic_acc <= 0.75 and best_rule_acc <= 0.75 and mlp_acc == 1.0
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        logistic_accuracy=logistic_acc,
        logistic_final_loss=logistic_loss[-1],
        best_random_linear_accuracy=best_rule_acc,
        mlp_accuracy=mlp_acc,
        mlp_final_loss=mlp_loss[-1],
        mlp_layers=[2, 4, 1],
        small_mlp_accuracies=small_accs,
        small_mlp_seeds_solved=n_small_solved,
        steps=steps,
    )


def _plot(out_dir: Path, x, y, panels) -> str:
    """P(y=1) over the plane for each model, with the 0.5 boundary and the four points."""
    plt = pyplot()
    g = np.linspace(-0.5, 1.5, 201, dtype=np.float32)
    gx, gy = np.meshgrid(g, g)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (201*201, 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (title, model) in zip(axes[0], panels, strict=True):
        p = M.probabilities(model(grid), "binary").reshape(gx.shape)
        cs = ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
        ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.5)
        for label, marker in ((0, "o"), (1, "s")):
            pts = x[y == label]
            ax.scatter(
                pts[:, 0],
                pts[:, 1],
                marker=marker,
                s=90,
                c="white",
                edgecolors="k",
                label=f"class {label}",
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x1")
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("x2")
    axes[0][0].legend(loc="upper center", fontsize=8)
    fig.colorbar(cs, ax=axes[0].tolist(), shrink=0.8, label="P(y = 1)")
    return save_plot(fig, out_dir, "xor_boundaries.png")
