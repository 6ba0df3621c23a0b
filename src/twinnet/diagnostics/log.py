"""The diagnostics files of a run folder: writing them atomically and reading them back.

Files (both rewritten atomically at every record, so they are never half-written):

``diagnostics.csv``
    tidy, one row per step x layer x statistic::

        step,epoch,layer,layer_type,statistic,value
        1,1,0,Linear,act_mean,0.0123...
        1,1,1,ReLU,dead_fraction,0.0

    ``step``: optimiser steps taken when the statistics were measured; ``epoch``: the
    (1-based) epoch that step belongs to; ``layer``: the module's dotted name from
    ``named_modules`` (``(model)`` for whole-model rows); ``value``: a float written
    with full precision (``nan`` where undefined). The statistics are listed in
    :mod:`twinnet.diagnostics.stats`.

``histograms.json``
    the pre-activation histogram (input of each activation layer) of every record:
    ``{"format": "twinnet-histograms", "version": 1, "bins": 30, "records": [{"step",
    "epoch", "layer", "layer_type", "counts", "edges", "nonfinite"}, ...]}``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from twinnet.diagnostics.measures import ProbeStats
from twinnet.utils import atomic_write

CSV_NAME = "diagnostics.csv"
HISTOGRAMS_NAME = "histograms.json"
COLUMNS = ("step", "epoch", "layer", "layer_type", "statistic", "value")


class DiagnosticsLog:
    """The records of a run (CSV rows and histograms), kept in memory and written atomically."""

    def __init__(self, run_dir: str | Path, histogram_bins: int = 30):
        self.run_dir = Path(run_dir)
        self.histogram_bins = int(histogram_bins)
        self.rows: list[dict] = []  # step, epoch, layer, layer_type, statistic, value
        self.histograms: list[dict] = []
        self._lines: list[str] = []  # the CSV text of each row, formatted once

    @property
    def csv_path(self) -> Path:
        return self.run_dir / CSV_NAME

    @property
    def histograms_path(self) -> Path:
        return self.run_dir / HISTOGRAMS_NAME

    @property
    def last_step(self) -> int | None:
        return self.rows[-1]["step"] if self.rows else None

    def add(self, step: int, epoch: int, stats: ProbeStats) -> None:
        """Append one record (replacing an earlier record of the same step)."""
        if self.last_step is not None and step <= self.last_step:
            self.truncate(step - 1)
        rows = [{"step": int(step), "epoch": int(epoch), **r} for r in stats.rows]
        self.rows += rows
        self._lines += _csv_lines(rows)
        self.histograms += [{"step": int(step), "epoch": int(epoch), **h} for h in stats.histograms]

    def truncate(self, max_step: int) -> None:
        """Forget every record after ``max_step`` (a resumed or rolled-back run)."""
        keep = [i for i, r in enumerate(self.rows) if r["step"] <= max_step]
        self.rows = [self.rows[i] for i in keep]
        self._lines = [self._lines[i] for i in keep]
        self.histograms = [h for h in self.histograms if h["step"] <= max_step]

    def resume_at(self, step: int) -> None:
        """Continue a resumed run: read what was recorded, drop records after ``step``
        and rewrite the files to match (when there is anything to write)."""
        if not self.rows:
            self.load()
        self.truncate(step)
        if self.run_dir.is_dir() and (self.rows or self.csv_path.exists()):
            self.save()

    def save(self) -> None:
        """Rewrite both files atomically (the folder must exist)."""
        atomic_write(self.csv_path, (",".join(COLUMNS) + "\n" + "".join(self._lines)).encode())
        doc = {
            "format": "twinnet-histograms",
            "version": 1,
            "bins": self.histogram_bins,
            "of": "pre-activation (the input of each activation layer)",
            "records": self.histograms,
        }
        atomic_write(self.histograms_path, json.dumps(doc, allow_nan=True).encode())

    def load(self) -> None:
        """Read the files of ``run_dir`` (missing files: nothing recorded yet)."""
        self.rows, self._lines, self.histograms = [], [], []
        if self.csv_path.is_file():
            self.rows = read_diagnostics(self.run_dir)
            self._lines = _csv_lines(self.rows)
        if self.histograms_path.is_file():
            self.histograms = read_histograms(self.run_dir)


def _csv_lines(rows: list[dict]) -> list[str]:
    """The CSV text of each row (the value with full precision: ``repr`` of the float)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([*(row[k] for k in COLUMNS[:-1]), repr(float(row["value"]))])
    return buf.getvalue().splitlines(keepends=True)


def read_diagnostics(run_dir: str | Path) -> list[dict]:
    """The rows of ``run_dir/diagnostics.csv`` with typed values (step, epoch: int;
    value: float). ValueError names the file and line when the file is malformed."""
    path = Path(run_dir) / CSV_NAME
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(
                f"{path}: expected columns {','.join(COLUMNS)}, got {reader.fieldnames}"
            )
        for raw in reader:
            try:
                rows.append(
                    {
                        "step": int(raw["step"]),
                        "epoch": int(raw["epoch"]),
                        "layer": raw["layer"],
                        "layer_type": raw["layer_type"],
                        "statistic": raw["statistic"],
                        "value": float(raw["value"]),
                    }
                )
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}, line {reader.line_num}: {e}") from None
    return rows


def read_histograms(run_dir: str | Path) -> list[dict]:
    """The records of ``run_dir/histograms.json`` (empty list when the file is missing)."""
    path = Path(run_dir) / HISTOGRAMS_NAME
    if not path.is_file():
        return []
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or doc.get("format") != "twinnet-histograms":
        raise ValueError(f"{path}: not a twinnet histograms file")
    return list(doc.get("records", []))


def _probe_arrays(probe, probe_size: int):
    """(x, y) of the probe: a fixed, seeded subset of at most ``probe_size`` examples."""
    if probe is None:
        return None
    if isinstance(probe, tuple | list) and len(probe) == 2:
        x, y = probe
    elif hasattr(probe, "x") and hasattr(probe, "y"):
        x, y = probe.x, probe.y
    else:
        raise TypeError(
            f"probe must be a dataset with .x and .y or an (x, y) tuple, got {type(probe).__name__}"
        )
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            "probe needs as many targets as inputs and at least one example, "
            f"got {len(x)} and {len(y)}"
        )
    if len(x) > probe_size:
        # its own generator: choosing the probe never touches a training random stream
        idx = np.sort(np.random.default_rng(0).choice(len(x), size=probe_size, replace=False))
        x, y = x[idx], y[idx]
    return np.ascontiguousarray(x), np.ascontiguousarray(y)
