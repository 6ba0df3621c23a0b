"""twinnet.sklearn.MLPClassifier against scikit-learn's MLPClassifier on digits.

    python benchmarks/sklearn_digits.py                  # 3 repeats, 1 BLAS thread
    python benchmarks/sklearn_digits.py --quick          # 1 repeat, smaller grid
    python benchmarks/sklearn_digits.py --threads 2 --n-jobs 2

Both libraries run the same job: GridSearchCV (3-fold) over ``alpha`` x
``learning_rate_init`` of Pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=
(100,), solver="adam", max_iter=100, batch_size=200)) on a fixed 75/25 split of
scikit-learn's digits, then the test accuracy of the refitted best pipeline. Timings
alternate between the libraries and the median of the repeats is reported, as wall
and CPU seconds (CPU time is less disturbed by other processes on a busy machine; it
counts this process only, so with --n-jobs > 1 it leaves out the workers).
twinnet computes in float32 (its default), scikit-learn in float64 (the data's dtype).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from twinnet.sklearn import MLPClassifier

BUDGET = dict(hidden_layer_sizes=(100,), solver="adam", max_iter=100, batch_size=200)
GRID = {"mlp__alpha": [1e-4, 1e-2], "mlp__learning_rate_init": [1e-3, 3e-3]}
QUICK_GRID = {"mlp__alpha": [1e-4], "mlp__learning_rate_init": [1e-3, 3e-3]}
CONTENDERS = {"twinnet": MLPClassifier, "scikit-learn": SkMLPClassifier}


def run_search(cls, grid, data, seed: int, n_jobs: int) -> dict:
    """One timed GridSearchCV; returns seconds (wall, cpu), test accuracy, best params."""
    X_train, X_test, y_train, y_test = data
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", cls(random_state=seed, **BUDGET))])
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs)
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall": wall,
        "cpu": cpu,
        "accuracy": search.score(X_test, y_test),
        "best": {k.removeprefix("mlp__"): v for k, v in search.best_params_.items()},
        "fits": len(search.cv_results_["params"]) * 3 + 1,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat and a 2-point grid")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per library (seeds 0..)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--n-jobs", type=int, default=1, help="GridSearchCV n_jobs (default 1)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    grid = QUICK_GRID if args.quick else GRID

    X, y = load_digits(return_X_y=True)
    data = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    print(
        f"digits {X.shape}, grid {len(list(grid.values())[0]) * len(list(grid.values())[1])} "
        f"settings x 3 folds + refit, {BUDGET}, repeats {repeats}, BLAS threads {args.threads}, "
        f"n_jobs {args.n_jobs}; numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )
    results = {name: [] for name in CONTENDERS}
    with threadpool_limits(args.threads):
        if args.n_jobs != 1:  # start the worker processes (and their imports) untimed
            for cls in CONTENDERS.values():
                run_search(cls, QUICK_GRID, data, 0, args.n_jobs)
        for seed in range(repeats):
            for name, cls in CONTENDERS.items():
                results[name].append(run_search(cls, grid, data, seed, args.n_jobs))

    print(f"\n{'library':<13} {'wall s':>8} {'cpu s':>8} {'test acc':>9}  best params (seed 0)")
    for name, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        acc = statistics.mean(r["accuracy"] for r in runs)
        print(f"{name:<13} {wall:>8.2f} {cpu:>8.2f} {acc:>9.4f}  {runs[0]['best']}")
    ours, theirs = results["twinnet"], results["scikit-learn"]
    speedup = statistics.median(r["wall"] for r in theirs) / statistics.median(
        r["wall"] for r in ours
    )
    gap = statistics.mean(r["accuracy"] for r in ours) - statistics.mean(
        r["accuracy"] for r in theirs
    )
    print(
        f"\ntwinnet is {speedup:.2f}x scikit-learn's speed (median wall time); "
        f"accuracy difference {100 * gap:+.2f} percentage points (mean over {repeats} seed(s))"
    )


if __name__ == "__main__":
    main()
