"""Training throughput of twinnet's NumPy engine against PyTorch, scikit-learn and the
matrix-multiply floor, all in this process on the same data.

    python benchmarks/throughput.py            # full run (15-20 minutes), writes results
    python benchmarks/throughput.py --quick    # a smoke run

For each model (the seed 784-512-256-10 MLP, a wide 784-4096-10 and a deep 10-layer
784-256x9-10) and batch size (32, 128, 1024), every contender trains with Adam on
MNIST-shaped float32 data for the same number of steps, in rounds that run every
contender once in a random order. Samples/s are medians over the rounds; twinnet's ratio
to each contender is the median of the ratios within each round (with their
interquartile range). The floor is the nine matrix products of one training step
(3 forward, 3 weight gradients, 3 input gradients) and nothing else.

Also measured, for twinnet, PyTorch and scikit-learn: peak RSS while training the
default MNIST run (subprocesses) and the seconds of training until it first reaches 98%
test accuracy; and the time to gradient-check a 20-64-32-1 network in float64. Results
go to benchmarks/results.json and benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = {
    "seed 784-512-256-10": [784, 512, 256, 10],
    "wide 784-4096-10": [784, 4096, 10],
    "deep 784-256x9-10": [784] + [256] * 9 + [10],
}
BATCHES = (32, 128, 1024)


def mnist_like(n: int, seed: int = 0):
    """Real MNIST when available (TWINNET_DATA or the cache), else random data of its shape."""
    try:
        from twinnet import data

        s = data.load("mnist", download=False)
        return s.train.x[:n], s.train.y[:n], "MNIST"
    except Exception:  # noqa: BLE001 - the benchmark still measures speed on random data
        rng = np.random.default_rng(seed)
        return rng.normal(size=(n, 784)).astype(np.float32), rng.integers(0, 10, n), "random MNIST-shaped"


# -- contenders: each returns a function that runs `steps` training steps ----------------


def twinnet_setup(layers, x, y, batch):
    """The model, loss, optimiser and loader of twinnet's contender (and of step_breakdown.py)."""
    from twinnet import losses, optim
    from twinnet.data import BatchLoader
    from twinnet.models import build_mlp

    model = build_mlp(layers, rng=0)
    model[0].input_grad = False  # as Trainer.fit does: nobody needs dL/d(data)
    loss_fn = losses.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loader = BatchLoader(x, y, batch, seed=0, drop_last=True)
    return model, loss_fn, opt, loader


def twinnet_runner(layers, x, y, batch, fused_adam=True):
    """twinnet's training step as Trainer.fit runs it; ``fused_adam=False``: NumPy only
    (Adam's update as NumPy passes, as without numba)."""
    from twinnet.optim import fused

    model, loss_fn, opt, loader = twinnet_setup(layers, x, y, batch)

    def run(steps):
        kernel = fused._adam_kernel
        if not fused_adam:
            fused._adam_kernel = False  # what fused.py does when numba is missing
        done, epoch = 0, 0
        while done < steps:
            for xb, yb in loader.epoch(epoch):
                logits = model(xb)
                loss_fn(logits, yb)
                opt.zero_grad()
                model.backward(loss_fn.backward())
                opt.step()
                done += 1
                if done == steps:
                    break
            epoch += 1
        fused._adam_kernel = kernel

    return run


def twinnet_numpy_runner(layers, x, y, batch):
    return twinnet_runner(layers, x, y, batch, fused_adam=False)


def torch_runner(layers, x, y, batch, fused_adam=False):
    """PyTorch with its defaults; ``fused_adam=True``: ``Adam(fused=True)``, its fastest
    CPU optimiser step (not the default)."""
    import torch

    torch.manual_seed(0)
    mods = []
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        mods.append(torch.nn.Linear(a, b))
        if i < len(layers) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused_adam else {}))
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n_batches = len(x) // batch
    gen = torch.Generator().manual_seed(0)

    def run(steps):
        done = 0
        while done < steps:
            perm = torch.randperm(len(xt), generator=gen)
            xs, ys = xt[perm], yt[perm]  # one shuffle per epoch, then contiguous slices
            for i in range(n_batches):
                xb, yb = xs[i * batch : (i + 1) * batch], ys[i * batch : (i + 1) * batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                done += 1
                if done == steps:
                    break

    return run


def torch_fused_runner(layers, x, y, batch):
    return torch_runner(layers, x, y, batch, fused_adam=True)


def sklearn_runner(layers, x, y, batch):
    """scikit-learn's MLPClassifier in its steady state: one estimator, trained on by
    ``partial_fit`` (a pass over ``steps`` batches per call, shuffled, Adam)."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=tuple(layers[1:-1]), batch_size=batch, learning_rate_init=1e-3,
                        alpha=0.0, shuffle=True, random_state=0)
    classes = np.unique(y)
    start = [0]

    def run(steps):
        n = steps * batch
        i = start[0] if start[0] + n <= len(x) else 0
        clf.partial_fit(x[i : i + n], y[i : i + n], classes=classes)
        start[0] = i + n

    return run


def floor_runner(layers, x, y, batch):
    """Only the nine (for 3 layers) matrix products of a training step."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(scale=0.05, size=(b, a)).astype(np.float32) for a, b in zip(layers[:-1], layers[1:], strict=True)]

    def run(steps):
        for s in range(steps):
            i = (s * batch) % (len(x) - batch)
            h = [x[i : i + batch]]
            for w in weights:
                h.append(h[-1] @ w.T)  # forward
            g = h[-1]
            for w, a in zip(reversed(weights), reversed(h[:-1]), strict=True):
                g.T @ a  # weight gradient
                g = g @ w  # input gradient

    return run


CONTENDERS = {
    "twinnet": twinnet_runner,
    "twinnet-numpy": twinnet_numpy_runner,
    "pytorch": torch_runner,
    "pytorch-fused": torch_fused_runner,
    "sklearn": sklearn_runner,
    "floor": floor_runner,
}


def measure(x, y, layers, batch, steps, repeats, names):
    """Samples per second of each contender in each round: {name: [rate, ...]}.

    Every round runs every contender once, in a new random order (so that none always
    follows the same neighbour), each after a pause and a few untimed steps.
    """
    runners = {}
    for name in names:
        try:
            runners[name] = CONTENDERS[name](layers, x, y, batch)
        except ImportError:
            print(f"  {name}: not installed, skipped")
    for run in runners.values():
        run(max(3, steps // 10))  # warm up
    order = np.random.default_rng(0)
    rates = {name: [] for name in runners}
    for _ in range(repeats):
        for name in order.permutation(list(runners)):
            run = runners[name]
            # the previous contender's BLAS / OpenMP threads spin for a while after their
            # last call, taking the second core from this one: let them go to sleep first
            time.sleep(0.2)
            run(max(1, steps // 10))  # caches and threads warm again: time the steady state
            t = time.perf_counter()
            run(steps)
            rates[name].append(steps * batch / (time.perf_counter() - t))
    return rates


def summarise(rates: dict[str, list[float]]) -> dict:
    """Median samples/s of each contender, and twinnet's ratio to each other contender as
    the median of the per-round ratios with their interquartile range.

    The machine's speed drifts between rounds (see the README): a ratio taken within one
    round, where the contenders run seconds apart, cancels most of that drift, which a
    ratio of two medians taken over minutes does not.
    """
    row = {name: round(statistics.median(r)) for name, r in rates.items()}
    for other in rates:
        if other == "twinnet" or "twinnet" not in rates:
            continue
        ratios = [a / b for a, b in zip(rates["twinnet"], rates[other], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        row[f"twinnet/{other}"] = round(statistics.median(ratios), 2)
        row[f"twinnet/{other} IQR"] = [round(q1, 2), round(q3, 2)]
    return row


def peak_rss_mb(cmd: list[str]) -> float:
    """Peak RSS (MB) of a subprocess running ``cmd``, sampled every 20 ms.

    (The rusage of children is no use here: a child forked from this process, which
    holds MNIST and torch, inherits its resident pages until it execs.)
    """
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    child, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, child.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {proc.stderr.read().decode()}")
    return peak / 2**20


def peak_rss_of_train(args: list[str]) -> tuple[float, dict]:
    """Peak RSS (MB) of a `twinnet train ARGS` subprocess, and its metrics.json."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "twinnet.cli.main", "train", "--quiet", "--out", str(out), *args]
        peak = peak_rss_mb(cmd)
        metrics = json.loads((out / "metrics.json").read_text())
    return peak, metrics


# scikit-learn trained on the default run's data for as many epochs as the default run
SKLEARN_FIT = """
from sklearn.neural_network import MLPClassifier
from twinnet.config import TrainConfig
from twinnet.train.run import load_splits
config = TrainConfig()
train = load_splits(config).train
MLPClassifier(hidden_layer_sizes=(512, 256), batch_size=config.batch_size, alpha=0.0,
              learning_rate_init=config.lr, max_iter=config.epochs, tol=0.0,
              n_iter_no_change=config.epochs + 1, random_state=0).fit(train.x, train.y)
"""


def default_runs() -> tuple[dict, dict]:
    """Peak RSS (MB) while training the default MNIST run, and the run's metrics:
    `twinnet train`, the same run on PyTorch (`--engine torch`), and scikit-learn's
    MLPClassifier on the same data (RSS only)."""
    keep = ("test_accuracy", "train_seconds", "samples_per_second", "epochs")
    rss, runs = {}, {}
    engines = {"twinnet": []}
    try:
        import torch  # noqa: F401

        engines["pytorch"] = ["--engine", "torch"]
    except ImportError:
        pass
    for name, args in engines.items():
        peak, metrics = peak_rss_of_train(args)
        rss[name], runs[name] = round(peak, 1), {k: metrics.get(k) for k in keep}
    rss["sklearn"] = round(peak_rss_mb([sys.executable, "-c", SKLEARN_FIT]), 1)
    return rss, runs


MAX_EPOCHS_TO_98 = 16  # the defaults train 8 epochs; scikit-learn (no schedule) gets twice that


def times_to_98() -> dict:
    """Seconds of training until the default run first reaches 98% test accuracy, for
    twinnet, scikit-learn and (when installed) PyTorch, all on the same splits."""
    from twinnet.config import TrainConfig
    from twinnet.train.run import load_splits

    from twinnet.train.setup import resolve_layers

    config = TrainConfig()
    splits = load_splits(config)
    config = resolve_layers(config, splits.n_features, splits.task, splits.n_classes)  # "auto" ends
    result = {"twinnet": time_to_98(config, splits), "sklearn": time_to_98_sklearn(config, splits)}
    try:
        result["pytorch"] = time_to_98_pytorch(config, splits)
    except ImportError:
        pass
    return result


def time_to_98(config, splits) -> dict:
    """Seconds of training until the default run first reaches 98% test accuracy."""
    from twinnet.train.callbacks import Callback, LRSchedulerCallback
    from twinnet.train.setup import make_loss, make_model, make_optimizer, make_scheduler
    from twinnet.train.trainer import Trainer

    model = make_model(config)
    opt = make_optimizer(config, model)
    sched, interval = make_scheduler(config, opt, -(-len(splits.train) // config.batch_size))
    result = {"seconds": None, "epoch": None}

    class Watch(Callback):
        def __init__(self):
            self.elapsed, self.t0 = 0.0, None

        def on_epoch_begin(self, trainer):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, trainer, row):
            self.elapsed += time.perf_counter() - self.t0
            acc = trainer.evaluate(splits.test)["accuracy"]
            result["accuracy"] = acc
            if acc >= 0.98 and result["seconds"] is None:
                result.update(seconds=round(self.elapsed, 2), epoch=row["epoch"])
                trainer.stop_training = True

    trainer = Trainer(model, make_loss(config, splits.task), opt, [LRSchedulerCallback(sched, interval), Watch()], seed=0)
    trainer.fit(splits.train, None, epochs=config.epochs, batch_size=config.batch_size)
    return result


def time_to_98_pytorch(config, splits) -> dict:
    """The same for PyTorch: the default run's model (same initial weights), Adam, cosine
    schedule stepped per batch, batch size and data order, in a plain torch loop."""
    import torch

    from twinnet import twin
    from twinnet.train.setup import make_model

    model = twin.to_torch(make_model(config))
    n, batch = len(splits.train), config.batch_size
    steps_per_epoch = -(-n // batch)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y.astype(np.int64))
    x_test = torch.from_numpy(splits.test.x)
    result, elapsed = {"seconds": None, "epoch": None}, 0.0
    for epoch in range(config.epochs):
        perm = torch.from_numpy(np.random.default_rng([config.seed, epoch]).permutation(n))
        t0 = time.perf_counter()
        model.train()
        xs, ys = x[perm], y[perm]
        for i in range(steps_per_epoch):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xs[i * batch : (i + 1) * batch]), ys[i * batch : (i + 1) * batch]).backward()
            opt.step()
            sched.step()
        elapsed += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            result["accuracy"] = float((model(x_test).argmax(1).numpy() == splits.test.y).mean())
        if result["accuracy"] >= 0.98:
            return {**result, "seconds": round(elapsed, 2), "epoch": epoch + 1}
    return result


def time_to_98_sklearn(config, splits) -> dict:
    """The same for scikit-learn's MLPClassifier (Adam, constant learning rate: it has no
    cosine schedule), one ``partial_fit`` epoch at a time, up to MAX_EPOCHS_TO_98."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(512, 256), batch_size=config.batch_size, alpha=0.0,
                        learning_rate_init=config.lr, random_state=0)
    classes = np.unique(splits.train.y)
    result, elapsed = {"seconds": None, "epoch": None}, 0.0
    for epoch in range(1, MAX_EPOCHS_TO_98 + 1):
        t0 = time.perf_counter()
        clf.partial_fit(splits.train.x, splits.train.y, classes=classes)
        elapsed += time.perf_counter() - t0
        result["accuracy"] = float(clf.score(splits.test.x, splits.test.y))
        if result["accuracy"] >= 0.98:
            return {**result, "seconds": round(elapsed, 2), "epoch": epoch}
    return result


def gradcheck_seconds() -> float:
    from twinnet import check, losses
    from twinnet.models import build_mlp

    rng = np.random.default_rng(0)
    model = build_mlp([20, 64, 32, 1], "tanh", dtype=np.float64, rng=rng)
    x, y = rng.normal(size=(16, 20)), rng.integers(0, 2, (16, 1)).astype(np.float64)
    t = time.perf_counter()
    report = check.gradcheck(model, losses.BCEWithLogitsLoss(), x, y)
    assert report.passed
    return time.perf_counter() - t


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy

    blas = ""
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i["user_api"] == "blas"]
        blas = ", ".join(f"{i['internal_api']} {i.get('version', '')} ({i['num_threads']} threads)" for i in info)
    except ImportError:
        pass
    torch_v = ""
    try:
        import torch

        torch_v = f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {numpy.__version__} [{blas}]{torch_v}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps, no README update")
    ap.add_argument("--steps", type=int, default=None, help="steps per timing (default scales with batch)")
    ap.add_argument("--repeats", type=int, default=11, help="rounds (default 11)")
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        pass
    x, y, source = mnist_like(20000 if args.quick else 60000)
    rounds = 2 if args.quick else args.repeats
    results = {"machine": machine(), "data": source, "rounds": rounds, "throughput": []}
    print(results["machine"])
    models = {"seed 784-512-256-10": MODELS["seed 784-512-256-10"]} if args.quick else MODELS
    for model_name, layers in models.items():
        for batch in BATCHES:
            budget = 6e10 if not args.quick else 1e9  # flops per timing: ~0.3-1 s each
            flops_per_step = 6 * batch * sum(a * b for a, b in zip(layers[:-1], layers[1:], strict=True))
            steps = args.steps or int(min(400, max(5, budget / flops_per_step)))
            names = ["twinnet", "twinnet-numpy", "pytorch", "pytorch-fused", "floor"]
            names += ["sklearn"] if model_name.startswith("seed") else []
            rates = measure(x, y, layers, batch, steps, rounds, names)
            row = {"model": model_name, "batch": batch, "steps": steps, **summarise(rates)}
            results["throughput"].append(row)
            print(json.dumps(row))
    if not args.quick:
        results["train_peak_rss_mb"], results["default_run"] = default_runs()
        results["time_to_98"] = times_to_98()
    results["gradcheck_20_64_32_1_seconds"] = round(gradcheck_seconds(), 3)
    print(json.dumps({k: v for k, v in results.items() if k != "throughput"}, indent=2))
    if not args.quick:
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        write_readme(results)


def _ratio(row: dict, other: str) -> str:
    """'1.39 (1.31-1.45)': the median per-round ratio and its interquartile range."""
    if f"twinnet/{other}" not in row:
        return "-"
    lo, hi = row[f"twinnet/{other} IQR"]
    return f"{row[f'twinnet/{other}']} ({lo}-{hi})"


def _seconds_to_98(t98: dict) -> str:
    if not t98:
        return "-"
    if t98.get("seconds") is None:
        return f"not reached ({t98.get('accuracy')} after the last epoch)"
    return f"{t98['seconds']} s (epoch {t98['epoch']})"


def write_readme(results: dict) -> None:
    head = next((r for r in results["throughput"] if r["model"].startswith("seed") and r["batch"] == 128), None)
    rss = results.get("train_peak_rss_mb", {})
    runs = results.get("default_run", {})
    t98 = results.get("time_to_98", {})
    lines = [
        "# Benchmarks",
        "",
        "Measured by `python benchmarks/throughput.py` (results also in `results.json`).",
        "",
    ]
    if head:
        lines += [
            "## The targets (seed MLP, batch 128, this run)",
            "",
            "| measure | target | measured |",
            "|---|---|---|",
            f"| twinnet / PyTorch | >= 1.3 | {_ratio(head, 'pytorch')} |",
            f"| twinnet / scikit-learn | >= 1.6 | {_ratio(head, 'sklearn')} |",
            f"| twinnet / matmul floor | >= 0.8 | {_ratio(head, 'floor')} |",
            f"| peak RSS of `twinnet train` | <= 600 MB | {rss.get('twinnet', '-')} MB |",
            f"| gradient check of 20-64-32-1 in float64 | < 2 s | {results['gradcheck_20_64_32_1_seconds']} s |",
            "",
            "Ratios are medians of per-round ratios (interquartile range in brackets), below.",
            "",
        ]
    lines += [
        "## Training throughput",
        "",
        "Every contender trains in the same process on the same MNIST batches (Adam, float32,",
        f"ReLU MLP), samples per second of training. {results.get('rounds', 11)} rounds; each round runs every",
        "contender once, in a random order, each after a 0.2 s pause (so that one contender's",
        "spinning BLAS threads do not slow the next) and a few untimed steps (so that each is",
        "timed warm). Samples/s are medians over the rounds; a ratio is the median of the",
        "ratios taken within each round, where the contenders run seconds apart, with the",
        "interquartile range of those ratios in brackets.",
        "",
        "- **twinnet**: the training step of `Trainer.fit`, with numba installed (`pip install",
        "  twinnet[fast]`): Adam's update runs as one compiled loop (`twinnet.optim.fused`).",
        "- **twinnet (NumPy)**: the same without numba: Adam's update as NumPy passes.",
        "- **PyTorch**: torch's defaults, as many threads as NumPy's BLAS; **PyTorch (fused",
        "  Adam)**: `Adam(fused=True)`, torch's fastest CPU optimiser step, not its default.",
        "- **scikit-learn**: `MLPClassifier.partial_fit` (seed model only).",
        "- **matmul floor**: only the matrix products of a training step (3 per layer). twinnet",
        "  skips one of them, the first layer's input gradient (nobody needs dL/d(data)), so",
        "  where the products dominate (large batches, wide layers) it runs *above* the floor.",
        "",
        "This 2-core virtual machine switches, every few seconds to minutes, between a fast",
        "state and a slow one in which its two BLAS threads run hardly faster than one (its",
        "host's other tenants): absolute numbers move by up to 40% between runs, the floor's",
        "too. Compare the ratios, which are measured side by side.",
        "",
        f"Machine: {results['machine']}. Data: {results['data']}.",
        "",
        "| model | batch | twinnet | twinnet (NumPy) | PyTorch | PyTorch (fused Adam) | scikit-learn "
        "| matmul floor | twinnet/PyTorch | twinnet/PyTorch (fused) | twinnet/sklearn | twinnet/floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["throughput"]:
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['twinnet']} | {r.get('twinnet-numpy', '-')} | {r.get('pytorch', '-')} | "
            f"{r.get('pytorch-fused', '-')} | {r.get('sklearn', '-')} | {r['floor']} | {_ratio(r, 'pytorch')} | "
            f"{_ratio(r, 'pytorch-fused')} | {_ratio(r, 'sklearn')} | {_ratio(r, 'floor')} |"
        )
    if runs:
        lines += [
            "",
            "## The default MNIST run",
            "",
            "`twinnet train` with its defaults (784-512-256-10, Adam 1e-3, cosine schedule, batch",
            "128, 8 epochs) as a subprocess, the same run on PyTorch (`twinnet train --engine",
            "torch`), and scikit-learn's `MLPClassifier` on the same data for as many epochs.",
            "Peak RSS is sampled every 20 ms. Time to 98%: seconds of training (evaluation not",
            "counted) until the test accuracy after an epoch first reaches 0.98; PyTorch runs",
            "the same model from the same initial weights, schedule and data order in a plain",
            f"torch loop, scikit-learn (no schedule) gets up to {MAX_EPOCHS_TO_98} epochs.",
            "",
            "| | test accuracy | seconds of training | samples/s | peak RSS | time to 98% |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, label in (("twinnet", "twinnet"), ("pytorch", "PyTorch"), ("sklearn", "scikit-learn")):
            run = runs.get(name, {})
            lines.append(
                f"| {label} | {run.get('test_accuracy', '-')} | {run.get('train_seconds', '-')} | "
                f"{run.get('samples_per_second', '-')} | {rss.get(name, '-')} MB | {_seconds_to_98(t98.get(name))} |"
            )
    lines += [
        "",
        f"Gradient check of the 20-64-32-1 network in float64: {results['gradcheck_20_64_32_1_seconds']} s.",
        "",
        "Other scripts: `benchmarks/step_breakdown.py` (where the time of one step goes, layer by",
        "layer), `benchmarks/diagnostics_overhead.py` (cost of `--diagnostics`),",
        "`benchmarks/sklearn_digits.py` (the estimators against scikit-learn's),",
        "`benchmarks/train_default.py` (seconds per epoch of the default run),",
        "`benchmarks/conv.py` (Conv2d against torch; its own section below),",
        "`benchmarks/user_loop.py` (the loop a user writes, each contender in its own process;",
        "its own sections below), `benchmarks/sklearn_init.py` (the estimators' default init,",
        "into `sklearn_init.md`), `benchmarks/engines.py` (the NumPy and torch engines through",
        "`twinnet train`), `benchmarks/studio.py` (the studio's update rate and overhead).",
        "",
    ]
    readme = HERE / "README.md"
    old = readme.read_text() if readme.exists() else ""
    begin, end = "<!-- benchmarks/conv.py: begin -->", "<!-- benchmarks/conv.py: end -->"
    if begin in old and end in old:  # benchmarks/conv.py's section: kept as that script wrote it
        lines += [old[old.index(begin) : old.index(end) + len(end)], ""]
    readme.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
