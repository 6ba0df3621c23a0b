"""Default initialisation of twinnet.sklearn's estimators against scikit-learn's MLPs.

    python benchmarks/sklearn_init.py            # 3 seeds, writes sklearn_init.md
    python benchmarks/sklearn_init.py --seeds 1  # quicker

The score (R^2 for regression, accuracy for classification) on a fixed 75/25 split,
averaged over seeds, of: scikit-learn's MLP; twinnet with init="kaiming_uniform" (He
on every layer, the output included: the old default for ReLU); twinnet with
init="sklearn" (scikit-learn's Glorot-uniform weights and biases: the default now,
init="auto"). Same
hidden_layer_sizes=(100,), max_iter, solver and learning rate on both sides; inputs
standardised (and regression targets too, as one should). Scores, not times, so the
noisy shared machine does not change them; only float32 vs float64 and the
random streams differ between the libraries.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.preprocessing import StandardScaler

from twinnet.sklearn import MLPClassifier, MLPRegressor

REGRESSION = {
    "make_regression": lambda: datasets.make_regression(n_samples=1000, n_features=20, noise=10.0, random_state=0),
    "diabetes": lambda: datasets.load_diabetes(return_X_y=True),
    "friedman1": lambda: datasets.make_friedman1(n_samples=1000, noise=1.0, random_state=0),
}
CLASSIFICATION = {
    "digits": lambda: datasets.load_digits(return_X_y=True),
    "breast_cancer": lambda: datasets.load_breast_cancer(return_X_y=True),
    "iris": lambda: datasets.load_iris(return_X_y=True),
    "make_classification": lambda: datasets.make_classification(n_samples=1000, n_features=20, random_state=0),
}
SOLVERS = [("adam", 1e-3), ("sgd", 1e-2)]
TWINNET_INITS = ["kaiming_uniform", "sklearn"]


def score(kind, make, solver, lr, init, seed, max_iter):
    X, y = make()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    sx = StandardScaler().fit(Xtr)
    Xtr, Xte = sx.transform(Xtr), sx.transform(Xte)
    if kind == "regression":
        sy = StandardScaler().fit(ytr[:, None])
        ytr = sy.transform(ytr[:, None]).ravel()
        yte = sy.transform(yte[:, None]).ravel()
    kw = dict(hidden_layer_sizes=(100,), solver=solver, learning_rate_init=lr,
              max_iter=max_iter, random_state=seed)
    if init == "scikit-learn":
        est = (SkRegressor if kind == "regression" else SkClassifier)(**kw)
    else:
        cls = MLPRegressor if kind == "regression" else MLPClassifier
        est = cls(init=init, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xtr, ytr)
    return est.score(Xte, yte)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--out", default="benchmarks/sklearn_init.md")
    args = parser.parse_args()
    columns = ["scikit-learn", *TWINNET_INITS]
    rows = []
    for kind, table in (("regression", REGRESSION), ("classification", CLASSIFICATION)):
        for name, make in table.items():
            for solver, lr in SOLVERS:
                means = []
                for init in columns:
                    s = [score(kind, make, solver, lr, init, seed, args.max_iter) for seed in range(args.seeds)]
                    means.append(float(np.mean(s)))
                rows.append((kind, name, solver, means))
                print(kind, name, solver, " ".join(f"{m:.4f}" for m in means), flush=True)
    lines = [
        f"# twinnet.sklearn default init vs scikit-learn ({args.seeds} seeds, max_iter={args.max_iter})",
        "",
        "Test R^2 (regression) or accuracy (classification), mean over seeds; written by",
        "`python benchmarks/sklearn_init.py`. `kaiming_uniform`: He on every layer, the output",
        "included (the old default for ReLU); `sklearn`: scikit-learn's Glorot-uniform",
        "weights and biases (the default now, init=\"auto\").",
        "Scores, not times: the busy shared machine does not change them.",
        "",
        "| task | dataset | solver | " + " | ".join(columns) + " |",
        "|" + "---|" * (3 + len(columns)),
    ]
    for kind, name, solver, means in rows:
        lines.append(f"| {kind} | {name} | {solver} | " + " | ".join(f"{m:.4f}" for m in means) + " |")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
