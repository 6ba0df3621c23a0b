"""Datasets: MNIST-format IDX files, scikit-learn's digits, synthetic sets, mini-batches.

    from twinnet import data
    splits = data.load("mnist")            # train / val / test, scaled, float32
    splits.train.x.shape, splits.train.y   # (54000, 784), int64 labels
    for xb, yb in data.BatchLoader(splits.train.x, splits.train.y, 128).epoch(0):
        ...

``data.names()`` lists the datasets; ``data.fetch(name)`` downloads and verifies the
MNIST-format ones into the user cache; ``data.read_idx(path)`` reads one IDX file.
Every problem with a file or its contents raises ``data.DataError`` (a ValueError).
"""

from twinnet.data import synthetic
from twinnet.data.datasets import (
    Dataset,
    DatasetSplits,
    apply_scaler,
    available,
    fit_scaler,
    from_arrays,
    load,
    names,
)
from twinnet.data.download import default_cache_dir, fetch
from twinnet.data.idx import DataError, read_idx
from twinnet.data.loader import BatchLoader

__all__ = [
    "BatchLoader",
    "DataError",
    "Dataset",
    "DatasetSplits",
    "apply_scaler",
    "available",
    "default_cache_dir",
    "fetch",
    "fit_scaler",
    "from_arrays",
    "load",
    "names",
    "read_idx",
    "synthetic",
]
