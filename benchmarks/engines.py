"""Both training engines side by side on MNIST: the same config, seed and data order.

    python benchmarks/engines.py                    # 784-512-256-10, 2 epochs: numpy, torch, torch --nproc 2
    python benchmarks/engines.py --epochs 8 --nproc 1 2 4
    python benchmarks/engines.py --quick            # 1 epoch on 10000 examples

Every run goes through ``run_training`` (what ``twinnet train`` does) into a temporary
run folder; the table shows test accuracy, training time (``train_seconds`` from
metrics.json, i.e. without start-up) and samples per second, plus the wall time of the
whole call (data loading, launching processes, writing the folder). Not a test: the
numbers depend on the machine and on what else runs on it. Needs MNIST
(``TWINNET_DATA`` or the cache) and PyTorch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="torch process counts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 10000 training examples")
    args = parser.parse_args()

    from twinnet.config import TrainConfig
    from twinnet.train.run import run_training

    base = TrainConfig(epochs=1 if args.quick else args.epochs, n_samples=10000 if args.quick else None)
    runs = [("numpy", base)] + [
        (f"torch {args.device} x{n}", base.replace(engine="torch", device=args.device, nproc=n)) for n in args.nproc
    ]
    print(f"MNIST {base.layers}, {base.epochs} epoch(s), batch {base.batch_size}, {base.optimizer} lr {base.lr}, seed {base.seed}")
    print(f"{'engine':<18} {'test acc':>9} {'train s':>8} {'samples/s':>10} {'wall s':>7}")
    with tempfile.TemporaryDirectory(prefix="twinnet-engines-") as tmp:
        for i, (label, config) in enumerate(runs):
            t0 = time.perf_counter()
            result = run_training(config, out=Path(tmp) / f"run{i}", progress=False)
            wall = time.perf_counter() - t0
            m = result.metrics
            print(f"{label:<18} {100 * m['test_accuracy']:>8.2f}% {m['train_seconds']:>8.1f} "
                  f"{m['samples_per_second']:>10.0f} {wall:>7.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
