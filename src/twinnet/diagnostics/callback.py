"""The Diagnostics callback: per-layer statistics during training, saved in the run folder.

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

from twinnet.diagnostics.stats import ProbeStats, collect_stats, snapshot_parameters
from twinnet.train.callbacks import Callback
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
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for r in stats.rows:
            row = {"step": int(step), "epoch": int(epoch), **r}
            self.rows.append(row)
            writer.writerow(
                [
                    row["step"],
                    row["epoch"],
                    row["layer"],
                    row["layer_type"],
                    row["statistic"],
                    repr(float(row["value"])),
                ]
            )
        self._lines += buf.getvalue().splitlines(keepends=True)
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
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            for row in self.rows:
                writer.writerow(
                    [
                        row["step"],
                        row["epoch"],
                        row["layer"],
                        row["layer_type"],
                        row["statistic"],
                        repr(row["value"]),
                    ]
                )
            self._lines = buf.getvalue().splitlines(keepends=True)
        if self.histograms_path.is_file():
            self.histograms = read_histograms(self.run_dir)


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


class Diagnostics(Callback):
    """Record per-layer statistics every ``every`` steps (and at step 1 and the last step).

    Args:
        run_dir: folder for ``diagnostics.csv`` and ``histograms.json`` (created).
        every: record after every ``every``-th optimiser step.
        probe: the batch the statistics are measured on: a dataset with ``.x``/``.y`` or
            an ``(x, y)`` tuple; a fixed, seeded subset of ``probe_size`` examples is kept.
            None: the last training batch (the numbers then vary with the batch).
        probe_size: at most this many probe examples (one forward/backward per record).
        histogram_bins: bins of each pre-activation histogram.

    What is measured: see :mod:`twinnet.diagnostics.stats`. The update ratio
    ``||w_after - w_before|| / ||w_before||`` of a recorded step is the actual change made
    by that step's optimiser update (the parameters are copied in ``on_before_step``
    of each step that will be recorded, then compared in ``on_batch_end``). The final
    record made at the end of training (when the last step is not a multiple of
    ``every``) has no update ratio, because nobody knows in advance which step is last.

    Recording never changes training: a run with Diagnostics ends with bit-identical
    weights (see :func:`twinnet.diagnostics.stats.preserved`). Resumable: its state is
    the last step seen; on load the files are read back and records after that step
    (made after the checkpoint) are dropped.
    """

    order = 10  # after schedulers and guards of the same step, before Checkpoint (100)

    def __init__(
        self, run_dir, every: int = 50, probe=None, probe_size: int = 512, histogram_bins: int = 30
    ):
        for label, value in (
            ("every", every),
            ("probe_size", probe_size),
            ("histogram_bins", histogram_bins),
        ):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Diagnostics {label} must be a positive integer, got {value!r}")
        self.every = int(every)
        self.probe_size = int(probe_size)
        self.histogram_bins = int(histogram_bins)
        self.probe = _probe_arrays(probe, self.probe_size)
        self.log = DiagnosticsLog(run_dir, self.histogram_bins)
        self._before: dict[str, np.ndarray] | None = None
        self._before_step = -1
        self._seen_step = 0
        self._loaded = False

    @property
    def run_dir(self) -> Path:
        return self.log.run_dir

    @property
    def rows(self) -> list[dict]:
        """Every row recorded so far (as in ``diagnostics.csv``)."""
        return self.log.rows

    def due(self, step: int) -> bool:
        """True when statistics are recorded after optimiser step ``step`` (1-based)."""
        return step == 1 or step % self.every == 0

    # -- hooks ---------------------------------------------------------------------------
    def on_fit_begin(self, trainer):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._loaded:
            return
        if trainer.global_step == 0:
            self.log = DiagnosticsLog(self.run_dir, self.histogram_bins)  # a fresh run
        elif not self.log.rows:
            # a trainer that already took steps, without our state: keep what the files
            # hold up to its step
            self.log.load()
            self.log.truncate(trainer.global_step)
        self._loaded = True

    def on_before_step(self, trainer, logs):
        step = trainer.global_step + 1
        if self.due(step):
            self._before, self._before_step = snapshot_parameters(trainer.model), step

    def on_batch_end(self, trainer, logs):
        self._seen_step = trainer.global_step
        if self.due(trainer.global_step):
            self.record(trainer, epoch=trainer.epoch + 1)

    def on_fit_end(self, trainer):
        step = trainer.global_step
        if trainer.interrupted or step == 0 or self.log.last_step == step:
            return  # an interrupted run records at its real end, after --resume
        epoch = trainer.epoch + (1 if trainer.batch_in_epoch else 0)
        self.record(trainer, epoch=max(epoch, 1))

    def record(self, trainer, epoch: int) -> ProbeStats:
        """Measure now (after ``trainer.global_step`` steps), append and save."""
        step = trainer.global_step
        x, y = self.probe if self.probe is not None else trainer.last_batch
        before = self._before if self._before_step == step else None
        stats = collect_stats(
            trainer.model, trainer.loss_fn, x, y, self.histogram_bins, before=before
        )
        self._before, self._before_step = None, -1
        self.log.add(step, epoch, stats)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log.save()
        return stats

    # -- resuming ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"step": int(self._seen_step)}

    def load_state_dict(self, state: dict) -> None:
        step = int(state["step"])
        self.log.resume_at(step)
        self._seen_step, self._before, self._before_step = step, None, -1
        self._loaded = True
