"""History: one row of metrics per epoch, as returned by ``Trainer.fit``."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from twinnet.utils import atomic_write


class History:
    """Per-epoch records (``rows``: list of dicts) with Keras-style column access.

    ``history["val_loss"]`` is the list of that column over epochs. Written to CSV with
    full float precision (``repr``), so two identical runs give identical files.
    """

    def __init__(self, rows: list[dict] | None = None):
        self.rows: list[dict] = list(rows or [])

    def append(self, row: dict) -> None:
        self.rows.append(dict(row))

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols += [k for k in row if k not in cols]
        return cols

    def __getitem__(self, column: str) -> list:
        if column not in self.columns:
            raise KeyError(f"no column {column!r} in history; have {self.columns}")
        return [row.get(column, math.nan) for row in self.rows]

    @property
    def history(self) -> dict[str, list]:
        return {c: self[c] for c in self.columns}

    def __len__(self) -> int:
        return len(self.rows)

    def to_csv(self, path: str | Path) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        atomic_write(path, buf.getvalue().encode())

    @classmethod
    def from_csv(cls, path: str | Path) -> History:
        with open(path, newline="") as f:
            rows = []
            for raw in csv.DictReader(f):
                rows.append({k: _parse(v) for k, v in raw.items()})
        return cls(rows)

    def __repr__(self) -> str:
        return f"History({len(self.rows)} epochs, columns={self.columns})"


def _parse(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v
