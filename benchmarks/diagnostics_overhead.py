"""What recording diagnostics costs: training throughput with and without ``Diagnostics``.

    python benchmarks/diagnostics_overhead.py                 # 400 steps, 3 repeats
    python benchmarks/diagnostics_overhead.py --steps 200 --repeats 1

Trains the 784-512-256-10 ReLU MLP with Adam (batch 128) on MNIST, or on random data of
MNIST's shape when MNIST is not available, for ``--steps`` steps through the Trainer,
once plain and once with ``Diagnostics(every=50)`` (a 512-example validation probe:
one probe forward/backward every 50 steps, plus the CSV/JSON rewrite). The runs are
interleaved and the best of ``--repeats`` is kept, so background load hurts both sides
alike. Prints samples/s of each and the drop in percent (the target is <= 10%), by
wall-clock time and by this process's CPU time (steadier on a busy machine; with
several BLAS threads it counts every thread).
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def load(n: int):
    """MNIST train/val arrays when available, else random data of the same shape."""
    try:
        from twinnet import data

        s = data.load("mnist", download=False)
        return s.train.x[:n], s.train.y[:n], s.val.x, s.val.y, "MNIST"
    except Exception:  # noqa: BLE001 - still a fair speed comparison on random data
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n + 1000, 784)).astype(np.float32)
        y = rng.integers(0, 10, n + 1000)
        return x[:n], y[:n], x[n:], y[n:], "random MNIST-shaped"


def run(x, y, probe, steps: int, batch: int, every: int | None) -> float:
    """(seconds, records, steps) for about ``steps`` training steps (whole epochs of at
    most ``steps`` batches), with Diagnostics every ``every`` steps or none."""
    from twinnet import losses, nn, optim
    from twinnet.diagnostics import Diagnostics
    from twinnet.train import Trainer

    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(784, 512, rng=rng),
        nn.ReLU(),
        nn.Linear(512, 256, rng=rng),
        nn.ReLU(),
        nn.Linear(256, 10, rng=rng),
    )
    with tempfile.TemporaryDirectory() as tmp:
        callbacks = [] if every is None else [Diagnostics(tmp, every=every, probe=probe)]
        trainer = Trainer(
            model,
            losses.CrossEntropyLoss(),
            optim.Adam(model.parameters(), lr=1e-3),
            callbacks=callbacks,
        )
        per_epoch = min(steps, len(x) // batch)  # whole batches only
        epochs = -(-steps // per_epoch)
        n = per_epoch * batch
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.fit((x[:n], y[:n]), epochs=epochs, batch_size=batch)
        seconds = (time.perf_counter() - t0, time.process_time() - c0)
        records = len({r["step"] for r in callbacks[0].rows}) if callbacks else 0
    return seconds, records, trainer.global_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps per run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--every", type=int, default=50, help="Diagnostics(every=...)")
    parser.add_argument("--probe-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; best kept")
    args = parser.parse_args()

    x, y, xv, yv, source = load(args.steps * args.batch_size)
    probe = (xv[: args.probe_size], yv[: args.probe_size])
    run(x, y, probe, 5, args.batch_size, None)  # warm-up: imports, BLAS threads, page faults
    plain, watched, records, steps = [], [], 0, 0
    for _ in range(args.repeats):
        plain.append(run(x, y, probe, args.steps, args.batch_size, None)[0])
        seconds, records, steps = run(x, y, probe, args.steps, args.batch_size, args.every)
        watched.append(seconds)
    n = steps * args.batch_size
    print(
        f"data: {source}; 784-512-256-10 ReLU MLP, Adam, batch {args.batch_size}, "
        f"{steps} steps, best of {args.repeats}; Diagnostics(every={args.every}, "
        f"probe {len(probe[0])}): {records} records"
    )
    for k, clock in enumerate(("wall-clock", "CPU")):
        fast = n / min(p[k] for p in plain)
        slow = n / min(w[k] for w in watched)
        drop = 100 * (1 - slow / fast)
        print(
            f"{clock:>10}: {fast:8.0f} samples/s without, {slow:8.0f} with diagnostics: "
            f"drop {drop:.1f}% (target <= 10%)"
        )


if __name__ == "__main__":
    main()
