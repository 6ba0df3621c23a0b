"""Training throughput of twinnet's NumPy engine against PyTorch, scikit-learn and the
matrix-multiply floor, all in this process on the same data.

    python benchmarks/throughput.py            # full run (a few minutes), writes results
    python benchmarks/throughput.py --quick    # a smoke run

For each model (the seed 784-512-256-10 MLP, a wide 784-4096-10 and a deep 10-layer
784-256x9-10) and batch size (32, 128, 1024), every contender trains with Adam on
MNIST-shaped float32 data for the same number of steps; timings are repeated and
interleaved, and the median is reported. The floor is the nine matrix products of one
training step (3 forward, 3 weight gradients, 3 input gradients) and nothing else.

Also measured: peak RSS of `twinnet train` (a subprocess), the time the default run
takes to reach 98% test accuracy, and the time to gradient-check a 20-64-32-1 network
in float64. Results go to benchmarks/results.json and the table in benchmarks/README.md.
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
    runners = {}
    for name in names:
        try:
            runners[name] = CONTENDERS[name](layers, x, y, batch)
        except ImportError:
            print(f"  {name}: not installed, skipped")
    for run in runners.values():
        run(max(3, steps // 10))  # warm up
    times = {name: [] for name in runners}
    for _ in range(repeats):  # interleaved so that load changes hit everyone alike
        for name, run in runners.items():
            # the previous contender's BLAS / OpenMP threads spin for a while after their
            # last call, taking the second core from this one: let them go to sleep first
            time.sleep(0.2)
            run(max(1, steps // 10))  # caches and threads warm again: time the steady state
            t = time.perf_counter()
            run(steps)
            times[name].append(time.perf_counter() - t)
    return {name: steps * batch / statistics.median(ts) for name, ts in times.items()}


def peak_rss_of_train(args: list[str]) -> tuple[float, dict]:
    """Peak RSS (MB) of a `twinnet train` subprocess, sampled every 20 ms, and its metrics.

    (The rusage of children is no use here: a child forked from this process, which
    holds MNIST and torch, inherits its resident pages until it execs.)
    """
    import tempfile

    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "twinnet.cli.main", "train", "--quiet", "--out", str(out), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        child, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                peak = max(peak, child.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)
        if proc.returncode != 0:
            raise RuntimeError(f"twinnet train failed: {proc.stderr.read().decode()}")
        metrics = json.loads((out / "metrics.json").read_text())
    return peak / 2**20, metrics


def time_to_98() -> dict:
    """Seconds of training until the default run first reaches 98% test accuracy."""
    from twinnet.config import TrainConfig
    from twinnet.train.callbacks import Callback, LRSchedulerCallback
    from twinnet.train.run import load_splits
    from twinnet.train.setup import make_loss, make_model, make_optimizer, make_scheduler
    from twinnet.train.trainer import Trainer

    config = TrainConfig()
    splits = load_splits(config)
    model, opt = make_model(config), None
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
            if acc >= 0.98 and result["seconds"] is None:
                result.update(seconds=round(self.elapsed, 2), epoch=row["epoch"], accuracy=acc)
                trainer.stop_training = True

    trainer = Trainer(model, make_loss(config, splits.task), opt, [LRSchedulerCallback(sched, interval), Watch()], seed=0)
    trainer.fit(splits.train, None, epochs=config.epochs, batch_size=config.batch_size)
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
    ap.add_argument("--repeats", type=int, default=11)
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        pass
    x, y, source = mnist_like(20000 if args.quick else 60000)
    results = {"machine": machine(), "data": source, "throughput": []}
    print(results["machine"])
    models = {"seed 784-512-256-10": MODELS["seed 784-512-256-10"]} if args.quick else MODELS
    for model_name, layers in models.items():
        for batch in BATCHES:
            budget = 6e10 if not args.quick else 1e9  # flops per timing: ~0.3-1 s each
            flops_per_step = 6 * batch * sum(a * b for a, b in zip(layers[:-1], layers[1:], strict=True))
            steps = args.steps or int(min(400, max(5, budget / flops_per_step)))
            names = ["twinnet", "twinnet-numpy", "pytorch", "pytorch-fused", "floor"]
            names += ["sklearn"] if model_name.startswith("seed") else []
            rates = measure(x, y, layers, batch, steps, 2 if args.quick else args.repeats, names)
            row = {"model": model_name, "batch": batch, "steps": steps, **{k: round(v) for k, v in rates.items()}}
            if "pytorch" in rates:
                row["twinnet/pytorch"] = round(rates["twinnet"] / rates["pytorch"], 2)
            if "pytorch-fused" in rates:
                row["twinnet/pytorch-fused"] = round(rates["twinnet"] / rates["pytorch-fused"], 2)
            if "sklearn" in rates:
                row["twinnet/sklearn"] = round(rates["twinnet"] / rates["sklearn"], 2)
            row["twinnet/floor"] = round(rates["twinnet"] / rates["floor"], 2)
            results["throughput"].append(row)
            print(json.dumps(row))
    if not args.quick:
        rss, metrics = peak_rss_of_train([])
        results["train_peak_rss_mb"] = round(rss, 1)
        results["default_run"] = {k: metrics.get(k) for k in ("test_accuracy", "train_seconds", "samples_per_second", "epochs")}
        results["time_to_98"] = time_to_98()
    results["gradcheck_20_64_32_1_seconds"] = round(gradcheck_seconds(), 3)
    print(json.dumps({k: v for k, v in results.items() if k != "throughput"}, indent=2))
    if not args.quick:
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        write_readme(results)


def write_readme(results: dict) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Measured by `python benchmarks/throughput.py` (results also in `results.json`): every",
        "contender trains in the same process on the same MNIST batches, timings interleaved",
        "(each after a 0.2 s pause, so that one contender's spinning BLAS threads do not slow",
        "the next, and a few untimed steps, so that each is timed warm), median of 11 rounds.",
        "Samples per second of training (Adam, float32, ReLU MLP; PyTorch with its defaults and",
        "as many threads as NumPy's BLAS; scikit-learn's `MLPClassifier.partial_fit`).",
        "",
        "- **twinnet**: the training step of `Trainer.fit`, with numba installed (`pip install",
        "  twinnet[fast]`): Adam's update runs as one compiled loop (`twinnet.optim.fused`).",
        "- **twinnet (NumPy)**: the same without numba: Adam's update as NumPy passes.",
        "- **PyTorch**: torch's defaults; **PyTorch (fused Adam)**: `Adam(fused=True)`, torch's",
        "  fastest CPU optimiser step, which is not its default.",
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
            f"{r.get('pytorch-fused', '-')} | {r.get('sklearn', '-')} | {r['floor']} | {r.get('twinnet/pytorch', '-')} | "
            f"{r.get('twinnet/pytorch-fused', '-')} | {r.get('twinnet/sklearn', '-')} | {r['twinnet/floor']} |"
        )
    d = results.get("default_run", {})
    t98 = results.get("time_to_98", {})
    lines += [
        "",
        f"- `twinnet train` (defaults, MNIST; a subprocess): test accuracy {d.get('test_accuracy')}, "
        f"{d.get('train_seconds')} s of training, {d.get('samples_per_second')} samples/s, peak RSS "
        f"{results.get('train_peak_rss_mb')} MB.",
        f"- Time to reach 98% test accuracy with the defaults: {t98.get('seconds')} s (epoch {t98.get('epoch')}).",
        f"- Gradient check of the 20-64-32-1 network in float64: {results['gradcheck_20_64_32_1_seconds']} s.",
        "",
        "Other scripts: `benchmarks/step_breakdown.py` (where the time of one step goes, layer by",
        "layer), `benchmarks/diagnostics_overhead.py` (cost of `--diagnostics`),",
        "`benchmarks/sklearn_digits.py` (the estimators against scikit-learn's),",
        "`benchmarks/train_default.py` (seconds per epoch of the default run).",
        "",
    ]
    (HERE / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
