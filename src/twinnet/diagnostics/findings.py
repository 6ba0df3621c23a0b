"""Plain-language findings: where a recorded statistic crosses a known danger line.

Each rule reads the rows of ``diagnostics.csv`` (every recorded step) and speaks up
when a statistic crosses its line (the numbers are in :data:`THRESHOLDS`):

- **dead units**: a ReLU-family layer with ``dead_fraction >= 0.25`` (a quarter of its
  units output 0 for every probe example, so their weights no longer learn).
- **saturation**: a Sigmoid/Tanh layer with ``saturated_fraction > 0.5``.
- **vanishing / exploding gradients**: the weight-gradient norm of the first Linear
  layer divided by that of the last is below 1e-3 (vanishing) or above 1e3 (exploding).
- **learning rate**: the median (over the records after step 1) of a Linear layer's
  ``weight_update_ratio`` = ||Δw|| / ||w|| is above 1e-2 (too high) or below 1e-5 but
  not 0 (too low; 0 means no gradient reached the weight at all). Around 1e-3 is the
  usual healthy value. Step 1 is left out: Adam's first step moves every weight by
  about lr whatever the gradient. The median, not the last record: at the end of a
  cosine or one-cycle schedule lr goes to 0 and the ratio with it (2.6e-7 on the last
  step of a cosine run), which says nothing about the learning rate chosen.

The per-layer table of the report shows and colours what these rules judge
(:func:`judged_values`): the last dead and saturated fractions against the same lines,
and for the update ratio the same median.
- **activation scale across depth**: the ``act_std`` of the last activation layer
  divided by that of the first is below 1e-2 (signals collapse with depth) or above 1e2
  (they explode).
- **non-finite values**: any NaN or infinity in an activation or gradient statistic.

A rule that fires at the last record reports the value there; one that fired only
earlier reports its worst value and says it is back within the line by the last record.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from twinnet.diagnostics.stats import ACTIVATIONS, MODEL, RELU_FAMILY, SATURATING, layer_labels

THRESHOLDS = {
    "dead_fraction": 0.25,  # >= : dead ReLU units
    "saturated_fraction": 0.5,  # > : saturated sigmoid/tanh units
    "vanishing_ratio": 1e-3,  # first/last Linear weight-gradient norm <
    "exploding_ratio": 1e3,  # first/last Linear weight-gradient norm >
    "update_ratio_high": 1e-2,  # median ||Δw||/||w|| >
    "update_ratio_low": 1e-5,  # median ||Δw||/||w|| <
    "std_collapse": 1e-2,  # last/first activation std <
    "std_explode": 1e2,  # last/first activation std >
}


@dataclass(frozen=True)
class Finding:
    """One plain-language finding. ``rule``: which rule fired (e.g. ``"vanishing_gradients"``);
    ``severity``: ``"warning"`` or ``"error"``; ``layers``: the layer names concerned;
    ``step``: the step the message quotes."""

    rule: str
    severity: str
    message: str
    layers: tuple[str, ...] = ()
    step: int | None = None

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


class _Table:
    """The rows as series: (layer, statistic) -> [(step, value)], layers in module order."""

    def __init__(self, rows: list[dict]):
        self.series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        self.types: dict[str, str] = {}
        for r in rows:
            self.types.setdefault(r["layer"], r["layer_type"])
            self.series[(r["layer"], r["statistic"])].append((int(r["step"]), float(r["value"])))
        self.layers = [name for name in self.types if name != MODEL]
        self.labels = layer_labels(list(self.types.items()))
        self.steps = sorted({int(r["step"]) for r in rows})

    def get(self, layer: str, statistic: str) -> list[tuple[int, float]]:
        return self.series.get((layer, statistic), [])

    def with_stat(self, statistic: str, types=None) -> list[str]:
        return [
            n
            for n in self.layers
            if (n, statistic) in self.series and (types is None or self.types[n] in types)
        ]


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _crossing(series, crossed, worst) -> tuple[int, float, int, bool] | None:
    """(step, value, first step, still crossed at the last record) for a series that
    crossed its line, quoting the last record if crossed there, else the worst value."""
    hits = [(s, v) for s, v in series if math.isfinite(v) and crossed(v)]
    if not hits:
        return None
    last_step, last_value = series[-1]
    if hits[-1][0] == last_step:
        return last_step, last_value, hits[0][0], True
    s, v = worst(hits, key=lambda sv: sv[1])
    return s, v, hits[0][0], False


def _when(step: int, first: int, now: bool, last_step: int) -> str:
    text = f"at step {step}"
    if first != step:
        text += f" (first seen at step {first})"
    if not now:
        text += f"; back within the line by the last record (step {last_step})"
    return text


def _dead(t: _Table) -> list[Finding]:
    out, line = [], THRESHOLDS["dead_fraction"]
    for name in t.with_stat("dead_fraction", RELU_FAMILY):
        hit = _crossing(t.get(name, "dead_fraction"), lambda v: v >= line, max)
        if hit:
            step, value, first, now = hit
            msg = (
                f"{t.labels[name]}: {_pct(value)} of units dead "
                f"{_when(step, first, now, t.steps[-1])}. A dead unit outputs 0 for every "
                "input, so its weights stop learning; a lower learning rate, He initialisation "
                "or LeakyReLU/GELU usually help."
            )
            out.append(Finding("dead_units", "warning", msg, (name,), step))
    return out


def _saturated(t: _Table) -> list[Finding]:
    out, line = [], THRESHOLDS["saturated_fraction"]
    for name in t.with_stat("saturated_fraction", SATURATING):
        hit = _crossing(t.get(name, "saturated_fraction"), lambda v: v > line, max)
        if hit:
            step, value, first, now = hit
            msg = (
                f"{t.labels[name]}: {_pct(value)} of units saturated "
                f"{_when(step, first, now, t.steps[-1])}: their local gradient is below 0.01 "
                "on 99% of examples, so little gradient passes through them. Smaller initial "
                "weights (Xavier), normalisation, or ReLU-family activations help."
            )
            out.append(Finding("saturation", "warning", msg, (name,), step))
    return out


def _ratio_series(t: _Table, first: str, last: str, statistic: str) -> list[tuple[int, float]]:
    a, b = dict(t.get(first, statistic)), dict(t.get(last, statistic))
    out = []
    for s in sorted(set(a) & set(b)):
        if b[s] > 0 and math.isfinite(a[s]) and math.isfinite(b[s]):
            out.append((s, a[s] / b[s]))
    return out


def _gradients(t: _Table) -> list[Finding]:
    linears = t.with_stat("weight_grad_norm", {"Linear"}) or t.with_stat("weight_grad_norm")
    if len(linears) < 2:
        return []
    first, last = linears[0], linears[-1]
    series = _ratio_series(t, first, last, "weight_grad_norm")
    out = []
    low, high = THRESHOLDS["vanishing_ratio"], THRESHOLDS["exploding_ratio"]
    for rule, crossed, worst, verdict, advice in (
        (
            "vanishing_gradients",
            lambda v: v < low,
            min,
            "vanishing gradients",
            "the first layers barely learn; ReLU-family activations with He initialisation, "
            "normalisation layers or residual connections help",
        ),
        (
            "exploding_gradients",
            lambda v: v > high,
            max,
            "exploding gradients",
            "gradient clipping, a smaller initialisation or a lower learning rate help",
        ),
    ):
        hit = _crossing(series, crossed, worst)
        if hit:
            step, value, first_step, now = hit
            msg = (
                f"gradient norm of {t.labels[first]} is {value:.1e} times that of {t.labels[last]} "
                f"{_when(step, first_step, now, t.steps[-1])}: {verdict} ({advice})."
            )
            out.append(Finding(rule, "warning", msg, (first, last), step))
    return out


def _update_ratio_layers(t: _Table) -> list[str]:
    return t.with_stat("weight_update_ratio", {"Linear"}) or t.with_stat("weight_update_ratio")


def _update_ratio_median(t: _Table, name: str) -> tuple[float, int] | None:
    """(median, number of records) of a layer's update ratio over the records after step 1."""
    series = [(s, v) for s, v in t.get(name, "weight_update_ratio") if math.isfinite(v)]
    later = [v for s, v in series if s > 1] or [v for _, v in series]
    return (statistics.median(later), len(later)) if later else None


def _update_ratio_crossed(m: float) -> bool:
    return m > THRESHOLDS["update_ratio_high"] or 0 < m < THRESHOLDS["update_ratio_low"]


def judged_values(rows: list[dict]) -> dict[tuple[str, str], tuple[float, bool, str]]:
    """What the rules judge, per (layer, statistic): (value, beyond the line, how taken).

    ``dead_fraction`` (ReLU family) and ``saturated_fraction`` (Sigmoid/Tanh): the last
    record, against the rule's line; ``weight_update_ratio`` (the layers the
    learning-rate rule reads): the median after step 1 that the rule judges. The
    report's per-layer table colours exactly these.
    """
    if not rows:
        return {}
    t = _Table(rows)
    out: dict[tuple[str, str], tuple[float, bool, str]] = {}
    for statistic, types, crossed in (
        ("dead_fraction", RELU_FAMILY, lambda v: v >= THRESHOLDS["dead_fraction"]),
        ("saturated_fraction", SATURATING, lambda v: v > THRESHOLDS["saturated_fraction"]),
    ):
        for name in t.with_stat(statistic, types):
            step, value = t.get(name, statistic)[-1]
            out[(name, statistic)] = (value, math.isfinite(value) and crossed(value), f"step {step}")
    for name in _update_ratio_layers(t):
        median = _update_ratio_median(t, name)
        if median is not None:
            out[(name, "weight_update_ratio")] = (median[0], _update_ratio_crossed(median[0]), f"median of {median[1]}")
    return out


def _learning_rate(t: _Table) -> list[Finding]:
    medians = {}
    for name in _update_ratio_layers(t):
        median = _update_ratio_median(t, name)
        if median is not None:
            medians[name] = median
    out = []
    for rule, crossed, line, verdict in (
        (
            "learning_rate_high",
            lambda m: m > THRESHOLDS["update_ratio_high"],
            THRESHOLDS["update_ratio_high"],
            "learning rate may be too high",
        ),
        (
            "learning_rate_low",
            # 0 means a weight that did not move at all (no gradient reached it): the dead,
            # saturated and vanishing-gradient rules speak about that, not the learning rate
            lambda m: 0 < m < THRESHOLDS["update_ratio_low"],
            THRESHOLDS["update_ratio_low"],
            "learning rate may be too low",
        ),
    ):
        bad = [(n, m, k) for n, (m, k) in medians.items() if crossed(m)]
        if bad:
            where = "above" if rule.endswith("high") else "below"
            detail = "; ".join(f"{t.labels[n]} {m:.1e} (median of {k} records)" for n, m, k in bad)
            msg = (
                f"update ratio ||Δw||/||w|| {where} {line:.0e}: {verdict}. {detail}. "
                "A healthy ratio is around 1e-3."
            )
            out.append(Finding(rule, "warning", msg, tuple(n for n, _, _ in bad), t.steps[-1]))
    return out


def _activation_scale(t: _Table) -> list[Finding]:
    acts = t.with_stat("act_std", ACTIVATIONS)
    if len(acts) < 2:
        return []
    first, last = acts[0], acts[-1]
    series = _ratio_series(t, last, first, "act_std")  # std_last / std_first
    out = []
    for rule, crossed, worst, verdict in (
        (
            "activations_collapse",
            lambda v: v < THRESHOLDS["std_collapse"],
            min,
            "activations collapse with depth (the initialisation may be too small)",
        ),
        (
            "activations_explode",
            lambda v: v > THRESHOLDS["std_explode"],
            max,
            "activations explode with depth (the initialisation may be too large)",
        ),
    ):
        hit = _crossing(series, crossed, worst)
        if hit:
            step, value, first_step, now = hit
            msg = (
                f"activation std of {t.labels[last]} is {value:.1e} times that of "
                f"{t.labels[first]} {_when(step, first_step, now, t.steps[-1])}: {verdict}."
            )
            out.append(Finding(rule, "warning", msg, (first, last), step))
    return out


def _non_finite(t: _Table) -> list[Finding]:
    bad = []
    for (layer, statistic), series in t.series.items():
        if statistic.endswith("_update_ratio"):
            continue  # NaN there only means the parameter was exactly zero before the step
        for s, v in series:
            if not math.isfinite(v):
                bad.append((s, layer, statistic, v))
                break
    if not bad:
        return []
    bad.sort(key=lambda b: (b[0], list(t.types).index(b[1])))
    step = bad[0][0]
    examples = ", ".join(
        f"{t.labels[layer]} {statistic} is {v}" for _, layer, statistic, v in bad[:3]
    )
    msg = (
        f"non-finite statistics from step {step}: {examples}: training diverged; lower the "
        "learning rate or clip gradients (twinnet train --clip-grad-norm)."
    )
    return [Finding("non_finite", "error", msg, tuple(sorted({b[1] for b in bad})), step)]


RULES = (_non_finite, _gradients, _learning_rate, _dead, _saturated, _activation_scale)


def findings(source) -> list[Finding]:
    """The findings for a run folder (its ``diagnostics.csv``) or for a list of rows
    (dicts with step, layer, layer_type, statistic, value). No rows: no findings."""
    if isinstance(source, str | Path):
        from twinnet.diagnostics.callback import read_diagnostics

        path = Path(source)
        rows = read_diagnostics(path) if (path / "diagnostics.csv").is_file() else []
    else:
        rows = list(source)
    if not rows:
        return []
    table = _Table(rows)
    out: list[Finding] = []
    for rule in RULES:
        out += rule(table)
    return out


# -- overfitting, from the per-epoch history (train_loss and val_loss) -------------------

OVERFITTING = {
    "rise": 0.10,  # the last val_loss is at least 10% above its best
    "min_epochs_after_best": 3,  # ... and the best is at least 3 epochs back
}


def overfitting(history) -> list[Finding]:
    """An "overfitting" warning when the validation loss has risen while the training loss
    kept falling: the last ``val_loss`` is >= 10% above its minimum, reached at least 3
    epochs earlier, and the last ``train_loss`` is below the training loss at that best
    epoch. ``history``: a ``History``, a dict of columns, a list of per-epoch row dicts
    or a run folder (its ``history.csv``). No val_loss column: no finding."""
    if isinstance(history, str | Path):
        from twinnet.train.history import History

        path = Path(history) / "history.csv"
        history = History.from_csv(path).history if path.is_file() else {}
    elif hasattr(history, "history") and not isinstance(history, dict | list):
        history = history.history
    if isinstance(history, list):
        history = {k: [r.get(k) for r in history] for k in (history[0] if history else {})}
    train, val = history.get("train_loss") or [], history.get("val_loss") or []
    pairs = [(i, t, v) for i, (t, v) in enumerate(zip(train, val, strict=False))
             if t is not None and v is not None and math.isfinite(t) and math.isfinite(v)]  # fmt: skip
    if len(pairs) < OVERFITTING["min_epochs_after_best"] + 1:
        return []
    best_i, best_train, best_val = min(pairs, key=lambda p: p[2])
    last_i, last_train, last_val = pairs[-1]
    epochs = history.get("epoch") or list(range(1, len(train) + 1))
    rise = (last_val - best_val) / max(abs(best_val), 1e-12)
    if (
        last_i - best_i < OVERFITTING["min_epochs_after_best"]
        or rise < OVERFITTING["rise"]
        or not last_train < best_train
    ):
        return []
    msg = (
        f"overfitting: the validation loss rose from {best_val:.4g} at epoch {epochs[best_i]} "
        f"to {last_val:.4g} at epoch {epochs[last_i]} (+{_pct(rise)}) while the training loss "
        f"fell from {best_train:.4g} to {last_train:.4g}: the model is memorising its training "
        "set. Stop at the best epoch (EarlyStopping restores it), add a weight penalty "
        "(L2 / weight decay) or dropout, or train on more data."
    )
    return [Finding("overfitting", "warning", msg, (), int(epochs[last_i]))]
