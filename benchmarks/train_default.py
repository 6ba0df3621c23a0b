"""Seconds per epoch and samples/s of the default `twinnet train` run (MNIST MLP).

    python benchmarks/train_default.py [--epochs N] [--engine numpy|torch]

Not a test: it prints the numbers (and the run's test accuracy) so they can be compared
across machines and commits. Needs MNIST (TWINNET_DATA, the cache, or a download).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from twinnet.config import TrainConfig
from twinnet.train.run import run_training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's")
    ap.add_argument("--engine", default="numpy")
    args = ap.parse_args()
    config = TrainConfig(engine=args.engine)
    if args.epochs:
        config = config.replace(epochs=args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = run_training(config, out=Path(tmp) / "run", progress=False, log=lambda *a: None)
        wall = time.perf_counter() - t
    m = result.metrics
    per_epoch = m["train_seconds"] / m["epochs"]
    print(f"engine {args.engine}: {m['epochs']} epochs, {m['train_seconds']:.2f} s of training "
          f"({per_epoch:.2f} s/epoch, {m['samples_per_second']:.0f} samples/s), "
          f"{wall:.1f} s wall clock including data loading and evaluation; "
          f"test accuracy {100 * m['test_accuracy']:.2f}%")


if __name__ == "__main__":
    main()
