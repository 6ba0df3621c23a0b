"""The Diagnostics callback: per-layer statistics during training, saved in the run folder.

The files it writes (``diagnostics.csv``, ``histograms.json``) are described in
:mod:`twinnet.diagnostics.log`. It works with either training engine: it probes
``trainer.model`` (a twinnet model or a torch module) with the engine's mean loss,
``trainer.stepper.loss_fn``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twinnet.diagnostics.log import (  # noqa: F401 - read_* are public here too
    COLUMNS,
    CSV_NAME,
    HISTOGRAMS_NAME,
    DiagnosticsLog,
    _probe_arrays,
    read_diagnostics,
    read_histograms,
)
from twinnet.diagnostics.stats import ProbeStats, collect_stats, snapshot_parameters


class Diagnostics:
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
        loss_fn = trainer.stepper.loss_fn  # the engine's own mean loss
        stats = collect_stats(trainer.model, loss_fn, x, y, self.histogram_bins, before=before)
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
