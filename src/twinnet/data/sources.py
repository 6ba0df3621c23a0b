"""The table of datasets ``data.load`` knows: what each is, its task, default scaling and
split, and the function that makes or reads its arrays (see ``datasets._assemble`` for
the dict each maker returns).

MNIST-format sets are read from IDX files: an explicit ``data_dir`` (which must hold
them), then $TWINNET_DATA/<name>/, then the user cache, then a download.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinnet.data import download, synthetic
from twinnet.data.idx import DataError

IMAGE_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "digits": (1, 8, 8)}  # (C, H, W)

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


@dataclass(frozen=True)
class _Entry:
    description: str
    task: str
    scale: str  # default scaling
    per_feature: bool  # scaling statistics per feature (tabular) or global (images)
    val_fraction: float  # default
    test_fraction: float | None  # None: the maker returns its own test split
    classes: tuple[str, ...] | None
    make: Callable[..., dict]  # (rng, n_samples, data_dir, download) -> dict, see _assemble


def check_data_dir(name: str, data_dir) -> None:
    """An explicit ``data_dir`` must exist and, for the IDX sets, hold the files itself or
    in ``data_dir/NAME/``: a wrong path is an error, never a silent fall-back to
    $TWINNET_DATA or the cache."""
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise DataError(f"data_dir {str(d)!r} does not exist or is not a folder")
    if name not in download.REMOTE:
        return  # generated or shipped with a library: no files to read
    spec = download.REMOTE[name]
    if not download.missing_files(d, spec) or ((d / name).is_dir() and not download.missing_files(d / name, spec)):
        return
    missing = download.missing_files(d, spec)
    raise DataError(
        f"dataset {name!r} not found in data_dir {str(d)!r}: missing {', '.join(missing)} "
        f"(looked in {d} and {d / name}; .gz or raw IDX files)"
    )


def _make_idx(name: str) -> Callable[..., dict]:
    def make(rng, n_samples, data_dir, download_ok):
        folder, searched = download.locate(name, data_dir)
        if folder is None:
            where = "\n  ".join(searched)
            if not download_ok:
                raise DataError(
                    f"dataset {name!r} not found; searched:\n  {where}\n"
                    f"download it with `twinnet data fetch {name}` or load with download=True"
                )
            try:
                folder = download.fetch(name)
            except DataError as e:
                raise DataError(
                    f"dataset {name!r} not found; searched:\n  {where}\nand {e}"
                ) from None
        arrays = download.read_folder(folder, download.REMOTE[name])
        (xtr, ytr), (xte, yte) = arrays["train"], arrays["test"]
        return {
            "train": (xtr.reshape(len(xtr), -1), ytr),  # (60000, 784) uint8
            "test": (xte.reshape(len(xte), -1), yte),
            "source": str(folder),
        }

    return make


def _make_digits(rng, n_samples, data_dir, download_ok):
    from sklearn.datasets import load_digits  # lazy: scikit-learn is only needed here

    d = load_digits()
    x, y = d.data, d.target.astype(np.int64)  # (1797, 64) in 0..16, (1797,)
    return {"x": x, "y": y, "source": "scikit-learn"}


def _make_xor(rng, n_samples, data_dir, download_ok):
    if n_samples is not None and n_samples < 4:
        raise ValueError(
            f"n_samples for xor must be >= 4 (or None for the classic 4 points), got {n_samples}"
        )
    x, y = synthetic.xor(rng, n_samples)
    if n_samples is None:
        # classic: nothing to hold out (no val); the test set is the same 4 points
        test = (x.copy(), y.copy())
        return {"train": (x, y), "test": test, "no_val": True, "source": "synthetic"}
    return {"x": x, "y": y, "source": "synthetic"}


def _synthetic(fn, default_n: int, **kwargs) -> Callable[..., dict]:
    def make(rng, n_samples, data_dir, download_ok):
        x, y = fn(rng, default_n if n_samples is None else n_samples, **kwargs)
        return {"x": x, "y": y, "source": "synthetic"}

    return make


REGISTRY: dict[str, _Entry] = {
    "mnist": _Entry(
        "handwritten digits, 28x28 grey images",
        "multiclass", "standard", per_feature=False, val_fraction=0.1, test_fraction=None,
        classes=DIGIT_CLASSES, make=_make_idx("mnist"),
    ),
    "fashion-mnist": _Entry(
        "Zalando clothing, 28x28 grey images",
        "multiclass", "standard", per_feature=False, val_fraction=0.1, test_fraction=None,
        classes=FASHION_CLASSES, make=_make_idx("fashion-mnist"),
    ),
    "digits": _Entry(
        "scikit-learn's 8x8 handwritten digits (1797)",
        "multiclass", "standard", per_feature=False, val_fraction=0.2, test_fraction=0.2,
        classes=DIGIT_CLASSES, make=_make_digits,
    ),
    "xor": _Entry(
        "XOR of two inputs: the classic 4 points, or noisy copies with n_samples",
        "binary", "none", per_feature=True, val_fraction=0.15, test_fraction=0.15,
        classes=("0", "1"), make=_make_xor,
    ),
    "click": _Entry(
        "synthetic click prediction, 20 features, nonlinear logit, ~24% positive",
        "binary", "standard", per_feature=True, val_fraction=0.15, test_fraction=0.15,
        classes=("no click", "click"), make=_synthetic(synthetic.click, 20000),
    ),
    "click-book": _Entry(  # the chapter's generate_click_data (exact arrays: synthetic.generate_click_data)
        "the chapter's click data: its logit, 10,000 rows, 70/15/15, ~42% positive",
        "binary", "none", per_feature=True, val_fraction=0.15, test_fraction=0.15,
        classes=("no click", "click"), make=_synthetic(synthetic.click_book, synthetic.CLICK_BOOK_ROWS),
    ),
    "spirals": _Entry(
        "three interleaved spirals in the plane",
        "multiclass", "none", per_feature=True, val_fraction=0.15, test_fraction=0.15,
        classes=("arm 0", "arm 1", "arm 2"), make=_synthetic(synthetic.spirals, 1500, n_arms=3),
    ),
    "two-spirals": _Entry(
        "two interleaved spirals in the plane",
        "multiclass", "none", per_feature=True, val_fraction=0.15, test_fraction=0.15,
        classes=("arm 0", "arm 1"), make=_synthetic(synthetic.spirals, 1000, n_arms=2),
    ),
    "sine": _Entry(
        "regression y = sin(pi x) + noise on [-1, 1]",
        "regression", "none", per_feature=True, val_fraction=0.15, test_fraction=0.15,
        classes=None, make=_synthetic(synthetic.sine, 1000),
    ),
}  # fmt: skip
