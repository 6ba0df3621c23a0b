"""``twinnet twin``: build a model from flags and print its comparison with PyTorch."""

from __future__ import annotations

import numpy as np

from twinnet import losses
from twinnet.config import OPTIMIZERS, TrainConfig
from twinnet.models import MODELS, build_cnn, build_mlp
from twinnet.train.setup import make_optimizer
from twinnet.twin.compare import PRECISIONS, compare


def run_twin_command(args) -> int:
    """Exit 0 when every quantity agrees within the dtype's tolerance, 1 otherwise."""
    if args.dtype not in ("float32", "float64"):
        raise ValueError(f"--dtype must be float32 or float64, got {args.dtype!r}")
    precision = getattr(args, "precision", "float64")
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be float64 or model, got {precision!r}")
    if args.optimizer is not None and args.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {args.optimizer!r}"
        )
    if args.steps < 0:
        raise ValueError(f"--steps must be >= 0, got {args.steps}")
    if args.steps and args.optimizer is None:
        args.optimizer = "adam"
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    kind = getattr(args, "model", "mlp")
    if kind not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {kind!r}")
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(args.seed)
    if kind == "mlp":
        model = build_mlp(
            args.layers, args.activation, dropout=args.dropout, norm=args.norm, dtype=dtype, rng=rng
        )
        x = rng.normal(size=(args.batch_size, args.layers[0])).astype(dtype)
        n_out, label = args.layers[-1], f"{args.layers} {args.activation} MLP"
    else:  # a CNN on MNIST-sized images, 10 classes
        norm = "batch" if args.norm == "batch" else "none"
        model = build_cnn(kind, (1, 28, 28), 10, args.activation, args.dropout, norm, dtype=dtype, rng=rng)
        x = rng.normal(size=(args.batch_size, 1, 28, 28)).astype(dtype)
        n_out, label = 10, f"{kind} CNN ({args.activation}) on 1x28x28 images"
    if n_out == 1:
        loss_fn, y = (
            losses.BCEWithLogitsLoss(),
            rng.integers(0, 2, (args.batch_size, 1)).astype(dtype),
        )
    else:
        loss_fn, y = losses.CrossEntropyLoss(), rng.integers(0, n_out, args.batch_size)
    optimizer = None
    if args.optimizer is not None:
        config = TrainConfig(optimizer=args.optimizer, lr=args.lr, layers=list(args.layers))
        optimizer = make_optimizer(config, model)
    report = compare(model, loss_fn, x, y, optimizer=optimizer, steps=args.steps, precision=precision)
    what = f"{args.optimizer} x {args.steps} steps" if args.steps else "one forward/backward"
    if precision == "float64" and dtype != np.float64:
        how = f"model built in {args.dtype}, compared as float64 copies (proves the formulas; --precision model compares {args.dtype} rounding)"
    else:
        how = f"compared in {args.dtype}"
    print(
        f"twin: {label}, {type(loss_fn).__name__}, batch {args.batch_size}, {what}; {how}"
    )
    print(report)
    return 0 if report.passed() else 1
