"""``data.load(name)``: load a dataset from the table in ``sources.py``, split and scale it.

Every dataset becomes a ``DatasetSplits`` with train, val and test ``Dataset``s:

    name           task        features  train/val/test                       default scale
    mnist          multiclass  784       60000 (val 10% of it) / 10000 test   standard, global
    fashion-mnist  multiclass  784       60000 (val 10% of it) / 10000 test   standard, global
    digits         multiclass  64        60/20/20 of 1797                     standard, global
    xor            binary      2         the classic 4 points (no val, test: the same 4);
                                         with n_samples: noisy copies, 70/15/15     none
    click          binary      20        70/15/15 of 20000                    standard, per feature
    click-book     binary      20        70/15/15 of 10000 (the chapter's)    none
    spirals        multiclass  2         70/15/15 of 1500, 3 arms             none
    two-spirals    multiclass  2         70/15/15 of 1000, 2 arms             none
    sine           regression  1         70/15/15 of 1000                     none

Scaling is fitted on the training split only and applied to all three; the fitted
statistics go into ``splits.scaler_info`` so that new inputs can be scaled the same
way (``apply_scaler`` / ``splits.transform``). "standard" is (x - mean) / std;
"minmax" is (x - min) / (max - min); a zero std or range is replaced by 1. Images use
one global mean and std over all pixels (per-pixel statistics would blow up the
nearly-constant border pixels); tabular data is scaled per feature.

Why "standard" for MNIST: the global standardisation (x/255 - 0.1307) / 0.3081
centres the inputs, which gives a ReLU MLP trained with Adam a slightly faster start
than x/255 ("minmax") (validation loss after one epoch 0.12 against 0.14 for the
784-512-256-10 MLP, Adam 1e-3, batch 128); after a few epochs both reach about the
same accuracy. Choose with ``scale=``.

Randomness: data generation and splitting use generators seeded from ``seed`` alone,
so the same arguments always give the same splits.

Images for a CNN: ``load(name, shape="image")`` gives x as (N, C, H, W) batches of
images (``IMAGE_SHAPES``: mnist and fashion-mnist (N, 1, 28, 28), digits (N, 1, 8, 8)),
the same numbers as the default ``shape="flat"`` rows (N, C*H*W), reshaped (a view).
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinnet.data.idx import DataError
from twinnet.data.scaling import SCALES, apply_scaler, fit_scaler
from twinnet.data.sources import IMAGE_SHAPES, REGISTRY, check_data_dir

TASKS = ("multiclass", "binary", "regression")
SHAPES = ("flat", "image")


class Dataset:
    """Features and targets of one split.

    ``x``: (N, n_features) floating, C-contiguous, or (N, C, H, W) for image-shaped data
    (then ``n_features`` is C * H * W, the values of one example). ``y``: (N,) int64 class
    indices for classification; (N, k) floating targets for regression.
    ``len(ds)`` is N; ``ds[i:j]`` (or an index array) is a Dataset; ``ds[i]`` is the
    tuple ``(x[i], y[i])``.
    """

    __slots__ = ("x", "y")

    def __init__(self, x: np.ndarray, y: np.ndarray):
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index):
        if isinstance(index, int | np.integer):
            return self.x[index], self.y[index]
        return Dataset(self.x[index], self.y[index])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x.shape[1:]))

    def __repr__(self) -> str:
        x, y = self.x, self.y
        return f"Dataset(n={len(self)}, x={x.shape} {x.dtype}, y={y.shape} {y.dtype})"


@dataclass
class DatasetSplits:
    """A dataset split into train/val/test, with what a model and ``predict`` need to know.

    ``task``: "multiclass", "binary" or "regression". ``n_classes``: None for
    regression (2 for binary). ``classes``: label names or None. ``scaler_info``: the
    scaling applied and its statistics (JSON-able, see ``apply_scaler``). ``source``:
    the folder or file read, "synthetic" or "scikit-learn".
    """

    name: str
    task: str
    train: Dataset
    val: Dataset
    test: Dataset
    n_features: int
    n_classes: int | None
    classes: list[str] | None
    scaler_info: dict
    source: str

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale raw inputs (N, n_features) as the training data was scaled."""
        return apply_scaler(x, self.scaler_info, dtype=self.train.x.dtype)

    def summary(self) -> str:
        """One line: name, task, sizes, features, classes, scaling."""
        classes = f", {self.n_classes} classes" if self.n_classes is not None else ""
        return (
            f"{self.name} ({self.task}{classes}, {self.n_features} features): "
            f"train {len(self.train)}, val {len(self.val)}, test {len(self.test)}; "
            f"scale {self.scaler_info['method']}; from {self.source}"
        )


def names() -> list[str]:
    """Names accepted by ``load``."""
    return list(REGISTRY)


def available() -> dict[str, str]:
    """Dataset name -> one-line description."""
    return {name: e.description for name, e in REGISTRY.items()}


# -- load ------------------------------------------------------------------------------


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    val_fraction: float | None = None,
    scale: str | None = None,
    dtype=np.float32,
    download: bool = True,
    n_samples: int | None = None,
    shape: str = "flat",
) -> DatasetSplits:
    """Load dataset ``name`` (see ``names()``) split into train/val/test, scaled and cast.

    Args:
        name: a registered name, or the path of a ``.npz`` file with arrays ``x``, ``y``
            (and optionally ``x_test``, ``y_test``), loaded with ``from_arrays``.
        data_dir: folder with the dataset's files (MNIST-format sets: in it or in
            data_dir/<name>/), searched before $TWINNET_DATA/<name>/ and the user
            cache. Given, it must exist and hold the files (DataError otherwise).
        seed: seeds the generation of synthetic data and the splits.
        val_fraction: fraction held out for validation; None: the dataset's default
            (0.1 of the 60000 MNIST training images; 0.2 for digits; 0.15 for the
            synthetic sets). For sets with an official test split it is a fraction of
            the training pool, otherwise of all samples.
        scale: "standard", "minmax", "none"; None: the dataset's default.
        dtype: float32 (default) or float64, for x (and y of regression).
        download: fetch MNIST-format sets into the user cache when not found locally.
        n_samples: synthetic sets: how many to generate; others: a random subset of
            this size of the training pool (the test split stays whole).
        shape: "flat" (default): x is (N, n_features); "image": x is (N, C, H, W) for
            the image datasets of ``IMAGE_SHAPES`` (what a CNN reads).

    Raises ValueError for bad arguments or an unknown name (listing the names),
    DataError for missing or corrupt files and non-finite features.
    """
    dtype = _check_dtype(dtype)
    _check_seed(seed)
    if isinstance(name, str | os.PathLike) and str(name).endswith(".npz"):
        if shape != "flat":
            raise ValueError(f"shape must be 'flat' for a .npz file, got {shape!r}")
        return _load_npz(Path(name), seed=seed, val_fraction=val_fraction, scale=scale, dtype=dtype)
    key = str(name).strip().lower().replace("_", "-")
    if key not in REGISTRY:
        raise ValueError(
            f"unknown dataset {name!r}; available: {', '.join(REGISTRY)} (or a .npz file)"
        )
    entry = REGISTRY[key]
    if shape not in SHAPES or (shape == "image" and key not in IMAGE_SHAPES):
        raise ValueError(
            f"shape must be 'flat' or, for the image datasets {', '.join(IMAGE_SHAPES)}, 'image'; "
            f"got {shape!r} for {key}"
        )
    val_fraction = entry.val_fraction if val_fraction is None else val_fraction
    _check_fraction("val_fraction", val_fraction)
    scale = entry.scale if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)} or None, got {scale!r}")
    if n_samples is not None and (
        isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 1
    ):
        raise ValueError(f"n_samples must be a positive integer or None, got {n_samples!r}")

    if data_dir is not None:
        check_data_dir(key, data_dir)
    gen_rng = np.random.default_rng([seed, 0xDA7A, 0])  # generation
    split_rng = np.random.default_rng([seed, 0xDA7A, 1])  # subsets and splits
    made = entry.make(gen_rng, n_samples, data_dir, download)
    if "x" in made:  # one pool, split into train/val/test
        pool, test, test_fraction = (made["x"], made["y"]), None, entry.test_fraction
    else:  # an official test split; the rest is split into train/val
        pool, test, test_fraction = made["train"], made["test"], 0.0
    n_pool = len(pool[0])
    if n_samples is not None and n_samples > n_pool:
        raise ValueError(
            f"n_samples for {key} must be <= {n_pool} (the samples available), got {n_samples}"
        )
    if n_samples is not None and n_samples < n_pool:  # a random subset (synthetic: n_pool == n)
        keep = split_rng.choice(n_pool, n_samples, replace=False)
        pool = (pool[0][keep], pool[1][keep])
    if made.get("no_val"):
        val_fraction = 0.0
    n_classes = None if entry.classes is None else len(entry.classes)
    splits = _assemble(
        key, entry.task, entry.classes, made["source"], pool, test,
        val_fraction=val_fraction, test_fraction=test_fraction, scale=scale,
        per_feature=entry.per_feature, dtype=dtype, rng=split_rng, n_classes=n_classes,
    )  # fmt: skip
    if shape == "image":  # (N, C*H*W) rows -> (N, C, H, W) images, views of the same numbers
        for part in (splits.train, splits.val, splits.test):
            part.x = part.x.reshape(len(part.x), *IMAGE_SHAPES[key])
    return splits


def from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    name: str = "arrays",
    task: str | None = None,
    classes: list[str] | None = None,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    scale: str = "none",
    per_feature: bool = True,
    dtype=np.float32,
    source: str = "arrays",
) -> DatasetSplits:
    """Build ``DatasetSplits`` from your own arrays, validated like the built-in sets.

    x: (N, d) numbers, all finite. y: (N,) labels or (N,)/(N, k) regression targets.
    ``task`` None infers it: floating y -> "regression"; otherwise labels, "binary"
    when there are two distinct values, else "multiclass". Labels that are not
    already 0..K-1 are mapped to indices of their sorted distinct values, which
    become ``classes``. With ``x_test``/``y_test`` the test split is given and
    ``test_fraction`` is unused. Scaling (default "none") is fitted on the train split.
    """
    dtype = _check_dtype(dtype)
    _check_seed(seed)
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    x, y = _check_xy(x, y, name, "x", "y")
    if (x_test is None) != (y_test is None):
        raise ValueError("give both x_test and y_test, or neither")
    test = None if x_test is None else _check_xy(x_test, y_test, name, "x_test", "y_test")
    if test is not None and test[0].shape[1] != x.shape[1]:
        raise ValueError(f"x_test must have {x.shape[1]} features like x, got {test[0].shape[1]}")
    if test is not None and (y.dtype.kind in "US") != (test[1].dtype.kind in "US"):
        raise ValueError(f"y and y_test must both hold numbers or both strings, got {y.dtype} and {test[1].dtype}")
    if task is None:
        task = "regression" if np.issubdtype(y.dtype, np.floating) else None
    if task not in (*TASKS, None):
        raise ValueError(f"task must be one of {', '.join(TASKS)} or None, got {task!r}")
    if task == "regression" and y.dtype.kind not in "biuf":
        raise ValueError(f"dataset {name!r}: regression targets y must be numbers, got dtype {y.dtype}")
    n_classes = None
    if task != "regression":
        y_all = y if test is None else np.concatenate([y, test[1]])
        values = np.unique(y_all)
        if y.ndim != 1:
            raise ValueError(f"class labels y must be 1-D, got shape {y.shape}")
        if np.issubdtype(values.dtype, np.floating) and not np.all(values == np.round(values)):
            raise ValueError(
                f"class labels must be whole numbers or strings for task {task!r}, got floats"
            )
        n_classes = len(values)
        task = task or ("binary" if n_classes == 2 else "multiclass")
        is_index = np.issubdtype(values.dtype, np.number) and np.array_equal(
            values, np.arange(n_classes)
        )
        if not is_index:
            y = np.searchsorted(values, y)
            test = None if test is None else (test[0], np.searchsorted(values, test[1]))
            classes = classes or [str(v) for v in values]
        if classes is not None and len(classes) != n_classes:
            raise ValueError(f"classes must name the {n_classes} classes, got {len(classes)} names")
        if task == "binary" and n_classes > 2:
            raise ValueError(f"task 'binary' needs at most 2 classes, y has {n_classes}")
    rng = np.random.default_rng([seed, 0xDA7A, 1])
    return _assemble(
        name, task, classes, source, (x, y), test,
        val_fraction=val_fraction, test_fraction=0.0 if test is not None else test_fraction,
        scale=scale, per_feature=per_feature, dtype=dtype, rng=rng,
        n_classes=n_classes if task != "binary" else 2,
    )  # fmt: skip


def _assemble(
    name, task, classes, source, pool, test, *,
    val_fraction, test_fraction, scale, per_feature, dtype, rng, n_classes,
) -> DatasetSplits:  # fmt: skip
    """Split ``pool`` into train/val(/test unless ``test`` is given), fit scaling on train, cast."""
    x, y = pool
    _check_finite(x, name, "features")
    n = len(x)
    n_test = 0 if test is not None else int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    if n - n_test - n_val < 1:
        raise ValueError(
            f"dataset {name!r}: {n} samples leave no training data with val_fraction={val_fraction}"
            f" and test_fraction={test_fraction}"
        )
    perm = rng.permutation(n) if n_test or n_val else np.arange(n)  # nothing held out: keep order
    parts = {
        "test": perm[:n_test],
        "val": perm[n_test : n_test + n_val],
        "train": perm[n_test + n_val :],
    }
    raw = {split: (x[idx], y[idx]) for split, idx in parts.items()}
    if test is not None:
        _check_finite(test[0], name, "test features")
        raw["test"] = test
    scaler_info = fit_scaler(raw["train"][0], scale, per_feature)
    out = {}
    for split, (xs, ys) in raw.items():
        xs = apply_scaler(xs, scaler_info, dtype)  # (n, d) dtype, C-contiguous
        _check_finite(xs, name, f"{split} features after scaling")
        if task == "regression":
            ys = np.ascontiguousarray(ys, dtype=dtype)
            _check_finite(ys, name, f"{split} targets")
        else:
            ys = np.ascontiguousarray(ys, dtype=np.int64)
        out[split] = Dataset(xs, ys)
    return DatasetSplits(
        name=name, task=task, train=out["train"], val=out["val"], test=out["test"],
        n_features=x.shape[1], n_classes=n_classes,
        classes=None if classes is None else list(classes),
        scaler_info=scaler_info, source=source,
    )  # fmt: skip


def _load_npz(path: Path, **kwargs) -> DatasetSplits:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    if "x" not in arrays or "y" not in arrays:
        raise DataError(f"{path}: expected arrays 'x' and 'y', found {sorted(arrays)}")
    val_fraction = 0.15 if kwargs["val_fraction"] is None else kwargs["val_fraction"]
    return from_arrays(
        arrays["x"], arrays["y"], x_test=arrays.get("x_test"), y_test=arrays.get("y_test"),
        name=path.stem, source=str(path), seed=kwargs["seed"], val_fraction=val_fraction,
        scale=kwargs["scale"] or "none", dtype=kwargs["dtype"],
    )  # fmt: skip


# -- validation ------------------------------------------------------------------------


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _check_fraction(what: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"{what} must be a number in [0, 1), got {value!r}")


def _check_xy(x, y, name: str, xname: str, yname: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2:
        raise ValueError(
            f"dataset {name!r}: {xname} must be 2-D (samples, features), got shape {x.shape}"
        )
    if not (np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating)):
        raise ValueError(f"dataset {name!r}: {xname} must hold real numbers, got dtype {x.dtype}")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise ValueError(
            f"dataset {name!r}: {yname} must be (N,) or (N, k) with N = {len(x)} like {xname}, "
            f"got shape {y.shape}"
        )
    if len(x) == 0:
        raise ValueError(f"dataset {name!r}: {xname} is empty")
    if y.dtype == object:  # e.g. a pandas column: numbers or strings, but not a mix of both
        kinds = {type(v) for v in y.flat}
        if kinds <= {str}:
            y = y.astype(str)
        elif all(issubclass(k, numbers.Real) for k in kinds):
            y = np.array(y.tolist())  # int64 if all are integers, else float64
        else:
            names = sorted(k.__name__ for k in kinds)
            raise ValueError(f"dataset {name!r}: {yname} must hold numbers or strings, got {names}")
    if y.dtype.kind not in "biufUS":
        raise ValueError(f"dataset {name!r}: {yname} must hold numbers or strings, got dtype {y.dtype}")
    return x, y


def _check_finite(a: np.ndarray, name: str, what: str) -> None:
    if not np.issubdtype(a.dtype, np.floating):
        return  # integers are always finite
    bad = ~np.isfinite(a)
    if bad.any():
        pos = np.argwhere(bad)[0].tolist()
        raise DataError(
            f"dataset {name!r}: {what} contain NaN or inf "
            f"({int(bad.sum())} values, first at index {pos})"
        )
