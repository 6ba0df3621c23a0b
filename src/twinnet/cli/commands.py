"""The implementation of each ``twinnet`` subcommand (parsing lives in main.py)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import numpy as np

from twinnet.config import TrainConfig


def _train_overrides(args) -> dict:
    keys = TrainConfig.keys()
    given = {k: v for k, v in vars(args).items() if k in keys and v is not None}
    hidden = getattr(args, "hidden", None)
    if hidden is not None:
        if "layers" in given:
            raise ValueError("give --layers or --hidden, not both")
        given["layers"] = ["auto", *hidden, "auto"]
    return given


def cmd_train(args) -> int:
    from twinnet.train.run import run_training

    if args.resume:
        given = _train_overrides(args)
        if given or args.config or args.out:
            raise ValueError(
                f"--resume continues a run with its saved config.toml; drop {', '.join('--' + k.replace('_', '-') for k in given) or '--config/--out'}"
            )
        result = run_training(resume=args.resume, progress=not args.quiet)
    else:
        # built-in defaults < the dataset's defaults < --config FILE.toml < flags
        values = TrainConfig.read_toml(args.config) if args.config else {}
        source = args.config or "command line"
        config = TrainConfig.from_dict({**values, **_train_overrides(args)}, source=source, dataset_defaults=True)
        result = run_training(config, out=args.out, progress=not args.quiet)
    if result.status == "interrupted":
        print(result.message, file=sys.stderr)
        return 143 if result.signal == signal.SIGTERM else 130  # 128 + the signal, as a shell says
    if result.status == "finished":
        print(f"twinnet: {result.message}", file=sys.stderr)
        return 0
    m = result.metrics
    summary = [f"run folder: {result.directory}"]
    if "test_accuracy" in m:
        summary.append(f"test accuracy {100 * m['test_accuracy']:.2f}%")
    if "test_loss" in m:
        summary.append(f"test loss {m['test_loss']:.4f}")
    if m.get("test_mse") is not None:
        summary.append(f"test mse {m['test_mse']:.4g}")
    summary.append(f"{m['epochs']} {'epoch' if m['epochs'] == 1 else 'epochs'} in {m['train_seconds']:.1f} s ({m['samples_per_second']:.0f} samples/s)")
    print("  ".join(summary))
    if result.status == "stopped":
        print(f"twinnet: training stopped: {result.message}", file=sys.stderr)
        return 1
    return 0


def _load_run(directory: str, best: bool = False):
    """(config, model, task, metadata) of a finished run folder."""
    from twinnet.checkpoint import load_weights, read_metadata
    from twinnet.train.run import require_run_dir
    from twinnet.train.setup import make_model

    run_dir = require_run_dir(directory)
    config = TrainConfig.from_toml(run_dir / "config.toml")
    weights = run_dir / ("best.safetensors" if best else "model.safetensors")
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found (has the run finished? resume it with --resume {run_dir})")
    meta = read_metadata(weights)
    model = make_model(config)
    load_weights(weights, model)
    model.eval()
    return config, model, meta.get("task", "multiclass"), meta


def cmd_eval(args) -> int:
    from twinnet.train import metrics as M
    from twinnet.train.run import load_splits
    from twinnet.train.setup import make_loss
    from twinnet.train.trainer import Trainer

    config, model, task, _ = _load_run(args.dir, args.best)
    splits = load_splits(config)
    trainer = Trainer(model, make_loss(config, task), optimizer=None, task=task)
    result = trainer.evaluate(splits.test)
    print(f"{config.dataset} test set ({len(splits.test)} examples), {'best' if args.best else 'final'} weights of {args.dir}")
    for k, v in result.items():
        print(f"  {k:<10} {v:.6g}")
    if task != "regression":
        scores = trainer.predict(splits.test.x)
        n_classes = splits.n_classes or 2
        cm = M.confusion_matrix(splits.test.y, M.predict_labels(scores, task), n_classes)
        names = [str(c) for c in (splits.classes if splits.classes is not None else range(n_classes))]
        width = max(5, max(len(n) for n in names) + 1, len(str(cm.max())) + 1)
        print("confusion matrix (rows: true class, columns: predicted)")
        print(" " * width + "".join(f"{n[:width - 1]:>{width}}" for n in names))
        for name, row in zip(names, cm, strict=True):
            print(f"{name[:width - 1]:>{width}}" + "".join(f"{v:>{width}}" for v in row))
    return 0


def _read_inputs(path: Path, n_features: int, is_mnist: bool) -> np.ndarray:
    """Raw inputs (N, n_features) as float64 from .npy/.csv/.png."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    if suffix == ".npy":
        x = np.load(path, allow_pickle=False)
    elif suffix == ".csv":
        try:
            x = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as e:
            raise ValueError(f"{path}: not a numeric CSV ({e})") from None
    elif suffix == ".png":
        if not is_mnist:
            raise ValueError(f"{path}: PNG input is supported for MNIST-style (28x28) models only")
        x = _digit_png(path)
    else:
        raise ValueError(f"{path}: unsupported input format {suffix!r}; expected .npy, .csv or .png")
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim > 2:
        x = x.reshape(len(x), -1)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{path}: expected numeric inputs, got dtype {x.dtype}")
    if x.shape[1] != n_features:
        raise ValueError(f"{path}: each example must have {n_features} features, got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: inputs contain NaN or inf")
    return x.astype(np.float64)


def _digit_png(path: Path) -> np.ndarray:
    """A PNG of a digit -> 784 pixel values in 0..255, white digit on black like MNIST."""
    import matplotlib.image as mpimg

    try:
        img = mpimg.imread(path)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a bad file
        raise ValueError(f"{path}: cannot read PNG ({e})") from None
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    if img.dtype.kind == "f":
        img = img * 255.0
    img = img.astype(np.float64)
    if img.shape != (28, 28):
        # nearest-neighbour resample to 28x28
        rows = (np.arange(28) * img.shape[0] / 28).astype(int)
        cols = (np.arange(28) * img.shape[1] / 28).astype(int)
        img = img[rows][:, cols]
    if img.mean() > 127:  # dark digit on light paper: invert to MNIST's convention
        img = 255.0 - img
    return img.reshape(1, 784)


# the value of a white pixel in each image dataset's training data (what its scaler saw)
PIXEL_MAX = {"mnist": 255.0, "fashion-mnist": 255.0, "digits": 16.0}
PIXEL_CHOICES = ("auto", "1", "255", "16")


def _to_training_pixels(x: np.ndarray, dataset: str, pixel_max: str, path: Path) -> np.ndarray:
    """Pixels given in [0, 1] or in the training range (0-255; digits 0-16) -> the training range.

    ``pixel_max`` says which value is white in the file; "auto": 1 when no value
    exceeds 1 (a real image in 0-255 has brighter pixels than 1/255), otherwise the
    training range. Values outside [0, white] are refused: they are no pixels of
    that convention (inputs already standardised need --raw).
    """
    train_max = PIXEL_MAX[dataset]
    if pixel_max not in PIXEL_CHOICES:
        raise ValueError(f"--pixel-max must be one of {', '.join(PIXEL_CHOICES)}, got {pixel_max!r}")
    lo, hi = float(x.min()), float(x.max())
    white = (1.0 if hi <= 1.0 else train_max) if pixel_max == "auto" else float(pixel_max)
    if lo < 0 or hi > white:
        raise ValueError(
            f"{path}: values from {lo:g} to {hi:g} are not {dataset} pixels in [0, {white:g}]"
            f" (expected [0, 1] or [0, {train_max:g}]; already standardised inputs need --raw)"
        )
    if white != train_max:
        print(f"twinnet: {path.name}: pixels read as [0, {white:g}], scaled to the training range"
              f" [0, {train_max:g}]", file=sys.stderr)  # fmt: skip
    return x * (train_max / white)


def cmd_predict(args) -> int:
    from twinnet.data import apply_scaler
    from twinnet.train import metrics as M
    from twinnet.train.setup import image_shape, make_loss
    from twinnet.train.trainer import Trainer

    config, model, task, meta = _load_run(args.dir)
    scaler = json.loads(meta.get("scaler", "null"))
    classes = json.loads(meta.get("classes", "null"))
    shape = None if config.model == "mlp" else image_shape(config)  # a CNN reads (N, C, H, W)
    n_in = config.layers[0] if shape is None else int(np.prod(shape))
    x = _read_inputs(Path(args.file), n_in, config.dataset in ("mnist", "fashion-mnist"))
    if not args.raw and config.dataset in PIXEL_MAX and Path(args.file).suffix.lower() != ".png":
        x = _to_training_pixels(x, config.dataset, getattr(args, "pixel_max", "auto"), Path(args.file))
    if not args.raw and scaler:
        x = apply_scaler(x, scaler)
    x = x.astype(np.dtype(config.dtype))
    x = x if shape is None else x.reshape(len(x), *shape)
    scores = Trainer(model, make_loss(config, task), optimizer=None, task=task).predict(x)
    if task == "regression":
        for row in scores:
            print(" ".join(f"{v:.6g}" for v in np.atleast_1d(row)))
        return 0
    probs = M.probabilities(scores, task)
    labels = M.predict_labels(scores, task)
    for i, label in enumerate(labels):
        p = probs[i] if task == "binary" else probs[i, label]
        p = p if task != "binary" or label == 1 else 1 - p
        name = classes[label] if classes else str(label)
        print(f"{i}\t{name}\t{p:.4f}")
    return 0


def cmd_gradcheck(args) -> int:
    from twinnet import check, losses
    from twinnet.models import build_mlp

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not args.eps > 0:
        raise ValueError(f"--eps must be > 0, got {args.eps}")
    dtypes = {"float64": np.float64, "float32": np.float32}
    dtype_name = getattr(args, "dtype", "float64")
    if dtype_name not in dtypes:
        raise ValueError(f"--dtype must be float64 or float32, got {dtype_name!r}")
    dtype = dtypes[dtype_name]
    rng = np.random.default_rng(args.seed)
    model = build_mlp(args.layers, args.activation, dropout=args.dropout, norm=args.norm, dtype=dtype, rng=rng)
    n_out = args.layers[-1]
    kind = args.loss or ("bce-logits" if n_out == 1 else "cross-entropy")
    x = rng.normal(size=(args.batch_size, args.layers[0])).astype(dtype)
    if getattr(args, "kink", False):
        check.place_near_kink(model, x, args.eps)
    if kind == "cross-entropy":
        loss_fn, y = losses.CrossEntropyLoss(), rng.integers(0, n_out, args.batch_size)
    elif kind == "bce-logits":
        loss_fn, y = losses.BCEWithLogitsLoss(), rng.integers(0, 2, (args.batch_size, n_out)).astype(np.float64)
    elif kind == "mse":
        loss_fn, y = losses.MSELoss(), rng.normal(size=(args.batch_size, n_out))
    else:
        raise ValueError(f"--loss must be mse, bce-logits or cross-entropy, got {kind!r}")
    if dtype is np.float32 and kind != "cross-entropy":
        y = y.astype(np.float32)
    report = check.gradcheck(model, loss_fn, x, y, eps=args.eps, allow_float32=dtype is np.float32)
    print(f"gradcheck of {args.layers} {args.activation} MLP with {type(loss_fn).__name__}, {dtype_name}, batch {args.batch_size}")
    print(report)
    return 0 if report.passed else 1


def cmd_twin(args) -> int:
    from twinnet.twin.cli import run_twin_command

    return run_twin_command(args)


def cmd_trace(args) -> int:
    from twinnet.experiments.trace import run_trace

    return run_trace(args)


def cmd_report(args) -> int:
    from twinnet.diagnostics.report import write_report
    from twinnet.train.run import require_run_dir

    path = write_report(require_run_dir(args.dir))
    print(f"wrote {path}")
    return 0


def cmd_experiment(args) -> int:
    from twinnet.experiments import run_experiment_command

    return run_experiment_command(args)


def cmd_studio(args) -> int:
    from twinnet.studio.cli import run_studio_command

    return run_studio_command(args)


def cmd_data(args) -> int:
    from twinnet import data

    folder = data.fetch(args.name, cache_dir=args.cache_dir)
    print(f"{args.name}: verified files in {folder}")
    return 0
