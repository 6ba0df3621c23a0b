"""BatchLoader: mini-batches with one contiguous shuffle per epoch.

Gathering ``x[idx]`` for every batch copies scattered rows batch after batch. Instead,
at the start of each epoch the loader gathers ``x[perm]`` and ``y[perm]`` once, into
buffers allocated on the first epoch and reused after, and then yields contiguous
slices (views) of those buffers: each batch is a cheap, cache-friendly view.

The permutation of epoch ``e`` comes from ``np.random.default_rng([seed, e])``, a pure
function of (seed, epoch): a run resumed at (epoch e, batch k) calls
``epoch(e, start_batch=k)`` and gets exactly the batches it would have seen, without
saving any RNG state.

Batches are views: valid until the next epoch starts (the buffers are then
overwritten). Copy a batch (``xb.copy()``) to keep it longer. Iterate one epoch at a
time; two epochs' generators interleaved would share the buffers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class BatchLoader:
    """Mini-batches of (x, y), reshuffled every epoch.

    Args:
        x: (N, ...) features; y: (N, ...) targets, same N.
        batch_size: samples per batch (the last batch may be smaller unless ``drop_last``).
        shuffle: a new permutation every epoch; False yields views of ``x`` and ``y`` in order.
        seed: with the epoch number, seeds each epoch's permutation.
        drop_last: skip the final batch when it has fewer than ``batch_size`` samples.

        loader = BatchLoader(x, y, batch_size=128, seed=0)
        for epoch in range(10):
            for xb, yb in loader.epoch(epoch):   # xb (B, d), yb (B,)
                ...
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int | np.integer)
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(
                f"x and y must have the same number of samples, got shapes {x.shape} and {y.shape}"
            )
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self._x_buf: np.ndarray | None = None  # allocated on the first shuffled epoch
        self._y_buf: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        """Batches per epoch."""
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def permutation(self, epoch: int) -> np.ndarray:
        """The sample order of ``epoch`` (N,) int64; identity when not shuffling."""
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.x))

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (xb, yb) for batches ``start_batch``, ..., ``len(self) - 1`` of ``epoch``.

        The gather into the buffers happens when iteration begins. The batches are
        views, valid until the next epoch starts.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        if (
            isinstance(start_batch, bool)
            or not isinstance(start_batch, int | np.integer)
            or not (0 <= start_batch <= len(self))
        ):
            raise ValueError(
                f"start_batch must be an integer in [0, {len(self)}], got {start_batch!r}"
            )
        return self._batches(int(epoch), int(start_batch))

    def _batches(self, epoch: int, start_batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if start_batch >= len(self):
            return
        if self.shuffle:
            if self._x_buf is None:
                self._x_buf = np.empty(self.x.shape, dtype=self.x.dtype)  # (N, ...) C-contiguous
                self._y_buf = np.empty(self.y.shape, dtype=self.y.dtype)
            perm = self.permutation(epoch)
            # mode="clip": indices are valid; "raise" would make np.take buffer out= internally
            np.take(self.x, perm, axis=0, out=self._x_buf, mode="clip")
            np.take(self.y, perm, axis=0, out=self._y_buf, mode="clip")
            xs, ys = self._x_buf, self._y_buf
        else:
            xs, ys = self.x, self.y
        b = self.batch_size
        for i in range(start_batch, len(self)):
            yield xs[i * b : (i + 1) * b], ys[i * b : (i + 1) * b]

    def __repr__(self) -> str:
        return (
            f"BatchLoader(n={len(self.x)}, batch_size={self.batch_size}, batches={len(self)}, "
            f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})"
        )
