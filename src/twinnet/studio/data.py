"""The playground's data: a twinnet dataset (or drawn points, or a dropped file) split into
train/validation, with the chosen input features and label noise applied.

Everything goes through ``twinnet.data.load`` / ``from_arrays``, so a dropped file is
checked like any dataset (finite numbers, labels 0..K-1 or names, ...).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from twinnet import data
from twinnet.config import ConfigError
from twinnet.studio.settings import DATASETS, FEATURES, IMAGE_SETS, IMAGE_SUBSET, Settings

MAX_UPLOAD_BYTES = 8 * 2**20
MAX_UPLOAD_ROWS = 20000
DRAW_EXTENT = [-1.0, 1.0, -1.0, 1.0]  # the plane of drawn points


@dataclass
class PlaygroundData:
    """Train/val arrays the network sees (``x_*``: (N, n_features) float32) and the raw
    2-D points the page draws (``raw_*``: (N, 2), or (N, 1) for 1-D regression)."""

    name: str
    task: str  # multiclass, binary or regression (as the split was built)
    classes: list[str] | None
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    raw_train: np.ndarray
    raw_val: np.ndarray
    features: list[str]  # names of the network's inputs
    n_raw: int  # raw input dimensions: 1, 2, or the pixels of an image set
    image_side: int | None = None
    grid_cache: dict = field(default_factory=dict, repr=False)  # n -> inputs at the plane's cells

    @property
    def n_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    @property
    def extent(self) -> list[float]:
        """[x1_min, x1_max, x2_min, x2_max] of the plane drawn (the points plus a margin)."""
        if self.name == "drawn":
            return list(DRAW_EXTENT)
        pts = np.concatenate([self.raw_train, self.raw_val])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.1 * np.maximum(hi - lo, 1e-3)
        lo, hi = lo - pad, hi + pad
        if self.n_raw == 1:
            return [float(lo[0]), float(hi[0]), 0.0, 0.0]
        return [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Raw 2-D inputs (N, 2) -> the network's features (N, F); other sets unchanged."""
        if self.n_raw != 2:
            return raw.astype(np.float32)
        a, b = raw[:, 0], raw[:, 1]
        return np.stack([FEATURES[f](a, b) for f in self.features], axis=1).astype(np.float32)


def parse_upload(name: str, payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a dropped .csv (numbers, the last column is the label or target; a header
    row is skipped) or .npz (arrays ``x`` and ``y``; never unpickled)."""
    if len(payload) > MAX_UPLOAD_BYTES:
        raise ConfigError(f"file {name!r}: expected at most {MAX_UPLOAD_BYTES // 2**20} MB, got {len(payload) / 2**20:.1f} MB")
    if name.lower().endswith(".npz"):
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                if "x" not in z or "y" not in z:
                    raise ConfigError(f"file {name!r}: expected arrays 'x' and 'y' in the .npz, found {sorted(z.files)}")
                x, y = z["x"], z["y"]
        except (ValueError, OSError) as e:
            raise ConfigError(f"file {name!r}: not a readable .npz without pickles ({e})") from None
    elif name.lower().endswith(".csv"):
        try:
            rows = list(csv.reader(io.StringIO(payload.decode("utf-8"))))
        except UnicodeDecodeError:
            raise ConfigError(f"file {name!r}: expected UTF-8 text") from None
        rows = [r for r in rows if r and any(c.strip() for c in r)]
        try:
            float(rows[0][0])
        except (ValueError, IndexError):
            rows = rows[1:]  # a header
        try:
            table = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
        except ValueError as e:
            raise ConfigError(f"file {name!r}: expected numbers in every column ({e})") from None
        if table.ndim != 2 or table.shape[1] < 2:
            raise ConfigError(f"file {name!r}: expected rows of at least 2 columns (features, then the label), got shape {table.shape}")
        x, y = table[:, :-1], table[:, -1]
        if np.all(y == np.round(y)) and len(np.unique(y)) <= 10:
            y = y.astype(np.int64)  # whole numbers, few values: class labels
    else:
        raise ConfigError(f"file {name!r}: expected a .csv or .npz file")
    if x.ndim != 2 or len(x) < 4 or len(x) > MAX_UPLOAD_ROWS:
        raise ConfigError(f"file {name!r}: expected 4..{MAX_UPLOAD_ROWS} rows of features, got shape {x.shape}")
    if x.shape[1] > 2:
        raise ConfigError(f"file {name!r}: the playground draws 1 or 2 input columns, got {x.shape[1]}")
    return x.astype(np.float64), y


def _sklearn_set(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_blobs, make_circles

    if name == "circles":
        x, y = make_circles(n_samples=800, noise=0.08, factor=0.5, random_state=seed)
    else:
        x, y = make_blobs(n_samples=800, centers=3, cluster_std=1.2, random_state=seed)
        x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, y.astype(np.int64)


def make_data(s: Settings, upload: tuple[np.ndarray, np.ndarray] | None = None) -> PlaygroundData:
    """Load, split and transform the data the settings ask for."""
    kind, seed, val = DATASETS[s.dataset], s.seed, s.val_fraction
    if kind == "registry":
        n = IMAGE_SUBSET if s.dataset in ("mnist", "fashion-mnist") else (400 if s.dataset == "xor" else None)
        splits = data.load(s.dataset, seed=seed, val_fraction=val, n_samples=n, download=False)
    else:
        if kind == "sklearn":
            x, y = _sklearn_set(s.dataset, seed)
        elif kind == "points":
            pts = np.asarray(s.points, dtype=np.float64)
            x, y = pts[:, :2], pts[:, 2].astype(np.int64)
        else:
            if upload is None:
                raise ConfigError("config key 'dataset': 'upload' needs a file: drop a .csv or .npz on the page")
            x, y = upload
        splits = data.from_arrays(x, y, name=s.dataset, seed=seed, val_fraction=val, test_fraction=0.0)
    n_raw = splits.n_features
    side = IMAGE_SETS.get(s.dataset)
    if n_raw > 2 and side is None:
        raise ConfigError(f"config key 'dataset': the playground draws 1-D or 2-D inputs or images, {s.dataset!r} has {n_raw} features")
    y_train = _flip_labels(splits.train.y, s.label_noise, splits.n_classes, seed) if splits.task != "regression" else splits.train.y
    features = s.features if n_raw == 2 else [f"x{i + 1}" for i in range(n_raw)] if n_raw <= 2 else ["pixels"]
    pd = PlaygroundData(
        name=s.dataset, task=splits.task,
        classes=None if splits.task == "regression" else (splits.classes or [str(i) for i in range(splits.n_classes)]),
        x_train=splits.train.x, y_train=y_train, x_val=splits.val.x, y_val=splits.val.y,
        raw_train=splits.train.x, raw_val=splits.val.x, features=features, n_raw=n_raw, image_side=side,
    )  # fmt: skip
    if len(pd.x_val) == 0:
        raise ConfigError(f"config key 'val_fraction': expected a share that leaves validation examples, got {val!r}")
    pd.x_train, pd.x_val = pd.transform(pd.raw_train), pd.transform(pd.raw_val)
    return pd


def _flip_labels(y: np.ndarray, share: float, n_classes: int, seed: int) -> np.ndarray:
    """A copy of ``y`` where ``share`` of the labels are moved to another class at random."""
    if share <= 0:
        return y
    rng = np.random.default_rng([seed, 0x1AB])
    y = y.copy()
    flip = rng.random(len(y)) < share
    y[flip] = (y[flip] + rng.integers(1, n_classes, flip.sum())) % n_classes
    return y
