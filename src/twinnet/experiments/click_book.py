"""The chapter's own click project, as written, next to the best any model could do.

Data: the chapter's ``generate_click_data()`` (seed 42, 10,000 rows, 20 features, the
first 70% / next 15% / last 15% as train / val / test), reproduced exactly by
``data.synthetic.generate_click_data``. Because the generator's true click
probability p(x) is known, the **Bayes-optimal** scores are known too: ranking by
p gives the best possible AUC, predicting 1 when p > 0.5 the best possible accuracy
(its expectation is mean(max(p, 1 - p))). No model can beat them except by luck.

Models, as in the chapter's project section:

- the 20-128-64-32-1 ReLU MLP in NumPy (twinnet's layers), its init as the chapter's
  ``NumpyMLP`` (He normal from ``default_rng(42)``, zero biases), sigmoid output with
  binary cross-entropy (here fused: one logit and ``BCEWithLogitsLoss``), plain SGD
  lr 0.005, batch 64, 200 epochs, reshuffled with ``default_rng(43)`` each epoch;
- the same model in PyTorch, obtained through the twin (``twin.to_torch``: identical
  weights), trained by ``torch.optim.SGD`` on the same batches (skipped with a reason
  when torch is not installed);
- scikit-learn's ``LogisticRegression(max_iter=1000, random_state=42)``;
- and the chapter's first run: 20-64-32-1, lr 0.01, 100 epochs (the one that prints
  "Val Acc: 0.7007", which is above this generator's Bayes-optimal accuracy).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from twinnet import losses, nn, optim
from twinnet.data import synthetic
from twinnet.experiments.common import print_table, pyplot, save_plot, save_results
from twinnet.train import metrics as M

NAME = "click-book"
CLAIM = (
    "on the chapter's click data the 20-128-64-32-1 MLP (NumPy and its PyTorch twin) and "
    "logistic regression all stay at or below the Bayes-optimal AUC and accuracy"
)

PROJECT = {"layers": [20, 128, 64, 32, 1], "lr": 0.005, "epochs": 200, "batch": 64}
FIRST_RUN = {"layers": [20, 64, 32, 1], "lr": 0.01, "epochs": 100, "batch": 64}
BOOK_SEED = 42


def book_mlp(layers: list[int], seed: int = BOOK_SEED) -> nn.Sequential:
    """The chapter's NumpyMLP as twinnet layers: W_l ~ N(0, 2/n_in) drawn in order from
    ``default_rng(seed)``, b_l = 0, ReLU between, one logit out (float64)."""
    rng = np.random.default_rng(seed)
    mods: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(layers, layers[1:], strict=False)):
        lin = nn.Linear(n_in, n_out, dtype=np.float64)
        lin.weight.data[...] = rng.normal(0, np.sqrt(2.0 / n_in), size=(n_out, n_in))
        lin.bias.data[...] = 0.0
        mods.append(lin)
        if i < len(layers) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def batches(n: int, batch: int, epochs: int, seed: int = BOOK_SEED + 1):
    """The chapter's batch order: a fresh permutation from one rng each epoch."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = rng.permutation(n)
        yield [perm[s : s + batch] for s in range(0, n, batch)]


def train_numpy(d: dict, spec: dict) -> tuple[nn.Sequential, list[float]]:
    """Mini-batch SGD on BCE with logits, as the chapter's ``NumpyMLP.train``."""
    model = book_mlp(spec["layers"])
    opt = optim.SGD(model.parameters(), lr=spec["lr"])
    loss_fn = losses.BCEWithLogitsLoss()
    x, y = d["X_train"], d["y_train"].astype(np.float64).reshape(-1, 1)
    val_acc = []
    for epoch in batches(len(x), spec["batch"], spec["epochs"]):
        for idx in epoch:
            loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
        val_acc.append(M.accuracy(model(d["X_val"]), d["y_val"], "binary"))
    return model, val_acc


def train_torch(d: dict, spec: dict):
    """The same model through the twin, trained by torch on the same batches."""
    import torch

    from twinnet import twin

    model = twin.to_torch(book_mlp(spec["layers"]))
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.from_numpy(d["X_train"])
    y = torch.from_numpy(d["y_train"].astype(np.float64)).reshape(-1, 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of 64: one thread is fastest (and fair to NumPy)
    try:
        for epoch in batches(len(x), spec["batch"], spec["epochs"]):
            for idx in epoch:
                t = torch.from_numpy(idx)
                opt.zero_grad()
                loss_fn(model(x[t]), y[t]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return lambda a: model(torch.from_numpy(a)).detach().numpy()


def scores(predict, d: dict, probabilities: bool = False) -> dict:
    """AUC and accuracy (threshold 0.5 on the probability) on val and test."""
    out = {}
    for split in ("val", "test"):
        s = np.asarray(predict(d[f"X_{split}"]), dtype=np.float64).reshape(-1)
        p = s if probabilities else 1 / (1 + np.exp(-s))
        y = d[f"y_{split}"]
        out[split] = {"auc": M.roc_auc(p, y), "accuracy": float(np.mean((p > 0.5) == y))}
    return out


def bayes(d: dict) -> dict:
    """The best possible scores: rank by the true p; predict p > 0.5."""
    out = {}
    for split in ("train", "val", "test"):
        p, y = d[f"p_{split}"], d[f"y_{split}"]
        out[split] = {
            "auc": M.roc_auc(p, y),
            "accuracy": float(np.mean((p > 0.5) == y)),
            "expected_accuracy": float(np.mean(np.maximum(p, 1 - p))),
        }
    return out


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    d = synthetic.generate_click_data()
    project = dict(PROJECT, epochs=3) if quick else PROJECT
    first = dict(FIRST_RUN, epochs=3) if quick else FIRST_RUN
    best = bayes(d)
    results: dict[str, dict] = {}

    np_model, np_val_acc = train_numpy(d, project)
    results["numpy_mlp"] = scores(np_model, d)
    first_model, first_val_acc = train_numpy(d, first)
    results["first_run_mlp"] = scores(first_model, d)
    torch_skipped = None
    if importlib.util.find_spec("torch") is None:
        torch_skipped = "PyTorch is not installed (pip install 'twinnet[torch]')"
    else:
        results["torch_mlp"] = scores(train_torch(d, project), d)

    from sklearn.linear_model import LogisticRegression

    logreg = LogisticRegression(max_iter=1000, random_state=BOOK_SEED).fit(d["X_train"], d["y_train"])
    results["logistic"] = scores(lambda a: logreg.predict_proba(a)[:, 1], d, probabilities=True)

    labels = {
        "numpy_mlp": f"NumPy MLP {'-'.join(map(str, project['layers']))}",
        "torch_mlp": "the same in PyTorch (twin)",
        "logistic": "scikit-learn LogisticRegression",
        "first_run_mlp": f"chapter's first run {'-'.join(map(str, first['layers']))}",
    }
    rows = [[labels[k], r["val"]["auc"], r["val"]["accuracy"], r["test"]["auc"], r["test"]["accuracy"]]
            for k, r in results.items()]  # fmt: skip
    if torch_skipped:
        rows.append([labels["torch_mlp"], f"skipped: {torch_skipped}", "", "", ""])
    rows.append(["Bayes-optimal (true p)", best["val"]["auc"], best["val"]["accuracy"],
                 best["test"]["auc"], best["test"]["accuracy"]])  # fmt: skip
    print_table(["model", "val AUC", "val acc", "test AUC", "test acc"], rows,
                title=f"the chapter's click data (seed 42, 7000/1500/1500), {project['epochs']} epochs")
    print(f"expected Bayes accuracy mean(max(p, 1-p)): val {best['val']['expected_accuracy']:.4f}, "
          f"test {best['test']['expected_accuracy']:.4f}; the chapter prints Val Acc 0.7007")
    plot = _plot(out_dir, d, results, logreg, np_model, best, np_val_acc, first_val_acc)
    slack = 0.005  # a model can tie the Bayes rule on a finite sample; it should not beat it
    holds = all(
        r[s]["auc"] <= best[s]["auc"] + slack and r[s]["accuracy"] <= best[s]["accuracy"] + 0.01
        for r in results.values() for s in ("val", "test")
    )  # fmt: skip
    if "torch_mlp" in results:
        holds = holds and abs(results["torch_mlp"]["test"]["auc"] - results["numpy_mlp"]["test"]["auc"]) < 1e-6
    return save_results(
        out_dir, NAME, CLAIM, holds, quick, started, [plot],
        project=project, first_run=first, bayes=best, torch_skipped=torch_skipped,
        positive_rate=float(np.mean(np.concatenate([d["y_train"], d["y_val"], d["y_test"]]))),
        numpy_val_accuracy_per_epoch=np_val_acc, first_run_val_accuracy_per_epoch=first_val_acc,
        **results,
    )  # fmt: skip


def _plot(out_dir, d, results, logreg, np_model, best, np_val_acc, first_val_acc) -> str:
    from twinnet.experiments.click import roc_curve

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    y = d["y_test"]
    for label, s in (("Bayes-optimal p(x)", d["p_test"]),
                     ("NumPy MLP", np_model(d["X_test"])),
                     ("logistic regression", logreg.predict_proba(d["X_test"])[:, 1])):  # fmt: skip
        fpr, tpr = roc_curve(np.asarray(s).reshape(-1), y)
        ax1.plot(fpr, tpr, label=f"{label}: AUC {M.roc_auc(np.asarray(s).reshape(-1), y):.3f}")
    ax1.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax1.set_xlabel("false positive rate")
    ax1.set_ylabel("true positive rate")
    ax1.set_title("test ROC")
    ax1.legend(fontsize=8)
    ax2.plot(np.arange(1, len(np_val_acc) + 1), np_val_acc, label="project MLP (lr 0.005)")
    ax2.plot(np.arange(1, len(first_val_acc) + 1), first_val_acc, label="first run (lr 0.01)")
    ax2.axhline(best["val"]["accuracy"], color="k", ls="--", lw=1, label="Bayes-optimal (val)")
    ax2.axhline(0.7007, color="C3", ls=":", lw=1, label="the chapter's 'Val Acc 0.7007'")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation accuracy")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return save_plot(fig, out_dir, "click_book.png")
