"""One browser tab's training: a Trainer running in its own worker thread, steered by
Start / Pause / Step / Reset, publishing what the panels show several times a second.

The loop is ``Trainer.fit``, the same as ``twinnet train``; this module only adds a
callback (:class:`StudioCallback`) that, after each optimiser step, publishes a
snapshot when one is due and waits while the session is paused. Step lets exactly one
batch through: the step budget is ``None`` (run), 0 (paused) or the number of steps
still allowed. Everything that touches the model runs in the worker thread; the event
loop only receives finished JSON strings through ``publish``.
"""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np

from twinnet import losses
from twinnet.diagnostics import snapshot_parameters
from twinnet.studio import views
from twinnet.studio.backprop import playground_limit
from twinnet.studio.data import PlaygroundData, make_data
from twinnet.studio.settings import Settings, export_python, export_toml, resolve_loss
from twinnet.train import Callback, LRSchedulerCallback, Trainer
from twinnet.train.setup import make_model, make_optimizer, make_scheduler

PUBLISH_EVERY = 0.17  # seconds between snapshots while training (about 5.5-6 a second)
MAX_SNAPSHOT_SHARE = 0.5  # a slow snapshot (big network, busy machine) spaces the next ones out
PROBE_SIZE = 256  # training examples in the diagnostics probe batch
MAX_DIAG_RECORDS = 120  # diagnostics records kept for the findings (older ones thinned)
FINDINGS_EVERY = 3  # the findings are re-read every 3rd snapshot (about twice a second) and when paused
LOSSES = {"cross-entropy": losses.CrossEntropyLoss, "bce": losses.BCEWithLogitsLoss, "mse": losses.MSELoss}


class Stopped(Exception):
    """Raised inside the worker thread to leave ``fit`` when the session closes."""


class StudioCallback(Callback):
    """Publishes snapshots and holds the loop while paused (see the module docstring)."""

    def __init__(self, session: PlaygroundSession):
        self.session = session

    def on_before_step(self, trainer, logs):
        s = self.session
        if s.snapshot_soon():  # the weights before this step: the update-to-weight ratio
            s.before = snapshot_parameters(trainer.model)

    def on_batch_end(self, trainer, logs):
        self.session.after_step()

    def on_epoch_end(self, trainer, row):
        self.session.epoch_rows.append({k: _clean(v) for k, v in row.items()})


class PlaygroundSession:
    """Training for one WebSocket. ``publish(text)`` is called from the worker thread
    with each message (a JSON string); it must be thread-safe and may block only briefly."""

    def __init__(self, settings: Settings, publish, upload=None, publish_every: float = PUBLISH_EVERY):
        self.settings, self.publish, self.publish_every = settings, publish, publish_every
        self.pd: PlaygroundData = make_data(settings, upload)
        pd = self.pd
        self.loss_name, self.task = resolve_loss(settings.loss, pd.task, pd.n_classes)
        n_out = pd.n_classes if self.task == "multiclass" else 1
        self.layers = [pd.x_train.shape[1], *settings.hidden, n_out]
        self.config = settings.config.replace(layers=self.layers)
        self.model = make_model(self.config)
        self.loss_fn = LOSSES[self.loss_name]()
        self.optimizer = make_optimizer(self.config, self.model)
        steps_per_epoch = math.ceil(len(pd.x_train) / self.config.batch_size)
        scheduler, interval = make_scheduler(self.config, self.optimizer, steps_per_epoch)
        callbacks = [StudioCallback(self)]
        if scheduler is not None:
            callbacks.insert(0, LRSchedulerCallback(scheduler, interval))
        self.trainer = Trainer(self.model, self.loss_fn, self.optimizer, callbacks=callbacks,
                               task=self.task, seed=self.config.seed,
                               clip_grad_norm=self.config.clip_grad_norm)  # fmt: skip
        y_train = pd.y_train.astype(np.float32).reshape(-1, 1) if self.task == "binary" else pd.y_train
        self.y_train = y_train
        self.y_val = pd.y_val.astype(np.float32).reshape(-1, 1) if self.task == "binary" else pd.y_val
        n_probe = min(PROBE_SIZE, len(pd.x_train))
        self.probe_xy = (pd.x_train[:n_probe], y_train[:n_probe])
        self.before = None
        self.diag_records: dict[int, list[dict]] = {}  # step -> the probe's rows at that step
        self.epoch_rows: list[dict] = []  # the Trainer's per-epoch rows (for the overfitting finding)
        self.state = "ready"  # ready, running, paused, finished, stopped
        self.message = ""
        self._budget: int | None = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._last_publish = 0.0
        self._gap = publish_every  # seconds from one snapshot's start to the next one's
        self._snapshot_wall = 0.0  # recent average wall time of a snapshot
        self.updates = 0  # snapshots published
        self.snapshot_cpu = 0.0  # CPU seconds the snapshots took (benchmarks/studio.py)
        self.worker_cpu = 0.0  # CPU seconds of the worker thread, set when it ends
        self._findings: list[dict] = []

    # -- controls (called from the event loop; cheap, never touch the model) --------------
    def start(self) -> None:
        self._control(None)

    def pause(self) -> None:
        with self._cond:
            if self.state == "running":
                self._budget = 0
                self._cond.notify_all()

    def step(self) -> None:
        with self._cond:
            if self.state in ("finished", "stopped"):
                return
            if self.state == "running":  # Step while running pauses after this one step
                self._budget = 1
            else:
                self._budget = (self._budget or 0) + 1
        self._control(self._budget)

    def _control(self, budget) -> None:
        with self._cond:
            if self.state in ("finished", "stopped") or self._closed:
                return
            self._budget = budget
            self.state = "running"
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="twinnet-studio-session", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop training (after the current batch) and join the worker thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the worker thread ---------------------------------------------------------------
    def _run(self) -> None:
        cpu = time.thread_time()
        try:
            self.trainer.fit((self.pd.x_train, self.y_train), (self.pd.x_val, self.y_val),
                             epochs=self.config.epochs, batch_size=self.config.batch_size)  # fmt: skip
            if self._closed:
                self.state = "stopped"
            elif self.state != "stopped":  # stopped: the loss blew up and after_step said so
                self.state, self.message = "finished", "training finished"
        except Stopped:
            self.state = "stopped"
        except Exception as e:  # a numeric blow-up or a bug: the page shows it, the server lives
            self.state = "stopped"
            self.message = f"training stopped: {type(e).__name__}: {' '.join(str(e).split())}"
        self.worker_cpu = time.thread_time() - cpu
        if not self._closed:
            self.publish_snapshot()

    def snapshot_soon(self) -> bool:
        """Might the step about to be taken be followed by a snapshot? (Stepping, pausing,
        or a snapshot due within 50 ms.)"""
        return self._budget is not None or time.monotonic() - self._last_publish >= self._gap - 0.05

    def after_step(self) -> None:
        """After each optimiser step: publish when due, then wait while paused."""
        if self._closed:
            raise Stopped
        if not math.isfinite(self.trainer.last_loss):
            self.message = f"the loss became {self.trainer.last_loss} at step {self.trainer.global_step}: lower the learning rate"
            self.trainer.stop_training = True
        with self._cond:
            if self._budget:  # a Step budget; 0 means Pause was pressed
                self._budget -= 1
        if self.trainer.stop_training:
            self.state = "stopped"
            self.publish_snapshot()
            return
        shown = False  # has the page seen this paused step?
        while True:
            with self._cond:
                if self._closed:
                    raise Stopped
                holding = self._budget == 0
                if holding and shown and self.state == "paused":
                    self._cond.wait()  # Start, Step or close wakes us
                    continue
                if holding:
                    self.state = "paused"
            if not holding:  # (just resumed from a pause: the next step publishes)
                if not shown and time.monotonic() - self._last_publish >= self._gap:
                    self.publish_snapshot()
                return
            self.publish_snapshot()
            shown = True

    def publish_snapshot(self) -> None:
        self._last_publish = time.monotonic()
        cpu = time.thread_time()
        try:
            snap = self.snapshot()
            try:
                text = json.dumps(snap, allow_nan=False)
            except ValueError:  # weights or outputs blew up: NaN and inf travel as null
                text = json.dumps(_json_safe(snap), allow_nan=False)
        except Exception as e:  # never let a drawing problem kill training
            text = json.dumps({"type": "error", "message": f"could not draw this step: {type(e).__name__}: {e}"})
        self.updates += 1
        self.snapshot_cpu += time.thread_time() - cpu
        # snapshots take at most MAX_SNAPSHOT_SHARE of the time (judged on their recent
        # average, so one slow snapshot on a busy machine does not stall the page) and
        # come at least twice a second
        took = time.monotonic() - self._last_publish
        self._snapshot_wall = took if self.updates == 1 else 0.7 * self._snapshot_wall + 0.3 * took
        self._gap = min(max(self.publish_every, self._snapshot_wall / MAX_SNAPSHOT_SHARE), 0.5)
        self.publish(text)

    # -- what the page shows -------------------------------------------------------------
    def dataset_message(self) -> dict:
        pd = self.pd
        return {
            "type": "dataset",
            "name": pd.name,
            "task": self.task,
            "classes": pd.classes,
            "features": pd.features,
            "layers": self.layers,
            "extent": pd.extent,
            "n_raw": pd.n_raw,
            "train": _points(pd.raw_train, pd.y_train) if pd.n_raw <= 2 else None,
            "val": _points(pd.raw_val, pd.y_val) if pd.n_raw <= 2 else None,
            "n_train": len(pd.x_train),
            "n_val": len(pd.x_val),
            "images": views.image_examples(pd),
            "feature_maps": views.feature_maps(pd),
            "backprop": playground_limit(self.settings.dataset, self.settings.hidden, self.layers),  # None: traceable
            "export": {"toml": export_toml(self.settings, pd.n_raw, pd.n_classes if pd.task == "multiclass" else 1),
                       "python": export_python(self.settings, self.layers, self.loss_name)},  # fmt: skip
        }

    def snapshot(self) -> dict:
        t, pd = self.trainer, self.pd
        step = t.global_step
        train = views.metrics_on(t, pd.x_train, self.y_train)
        val = views.metrics_on(t, pd.x_val, self.y_val)
        output, units = views.plane_views(self.model, pd, self.task) if pd.n_raw <= 2 else (None, [])
        stats = views.probe(self.model, self.loss_fn, *self.probe_xy, self.before if step else None)
        self._add_diag_rows(step, stats)
        if self.updates % FINDINGS_EVERY == 0 or self.state != "running":
            self._findings = views.plain_findings(self.diag_rows, self.epoch_rows)
        return {
            "type": "update",
            "state": self.state,
            "message": self.message,
            "step": step,
            "epoch": t.epoch + t.batch_in_epoch / max(1, math.ceil(len(pd.x_train) / self.config.batch_size)),
            "lr": _clean(t.optimizer.param_groups[0]["lr"]),
            "train": {k: _clean(v) for k, v in train.items()},
            "val": {k: _clean(v) for k, v in val.items()},
            "point": {  # one point of each curve; the page keeps the curves
                "step": step,
                "train_loss": _clean(train["loss"]),
                "val_loss": _clean(val["loss"]),
                "train_accuracy": _clean(train.get("accuracy")),
                "val_accuracy": _clean(val.get("accuracy")),
            },
            "output": output,
            "units": units,
            "network": views.network(self.model),
            "layers": views.layer_panel(stats),
            "findings": self._findings,
            "confusion": views.confusion(t, pd, self.task) if pd.n_classes and pd.n_classes > 2 or pd.image_side else None,
            "predictions": views.image_predictions(t, pd, self.task),
            "updates": self.updates,
        }

    def _add_diag_rows(self, step: int, stats) -> None:
        records = self.diag_records
        records[step] = [{"step": step, **r} for r in stats.rows]
        if len(records) > MAX_DIAG_RECORDS:  # keep every other one of the older half
            steps = sorted(records)
            for s in steps[: len(steps) // 2 : 2]:
                del records[s]

    @property
    def diag_rows(self) -> list[dict]:
        """Every recorded row, in step order (what ``twinnet.diagnostics.findings`` reads)."""
        return [r for step in sorted(self.diag_records) for r in self.diag_records[step]]

def _points(raw: np.ndarray, y: np.ndarray) -> list:
    """[[x1, x2, label], ...] (1-D data: [[x, target], ...]) rounded for the page."""
    y = np.asarray(y).reshape(len(raw), -1)[:, 0]
    return np.concatenate([raw.astype(np.float64), y[:, None].astype(np.float64)], axis=1).round(4).tolist()


def _json_safe(value):
    """``value`` with every NaN or infinite float replaced by None (nested lists and dicts)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _clean(v):
    """A JSON-safe number: NaN and infinities become None."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None
