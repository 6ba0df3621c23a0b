"""``write_report(run_dir)``: one self-contained HTML page about a training run.

The page holds the run's configuration (``config.toml``), final metrics
(``metrics.json``), the plots (PNG embedded as base64 ``data:`` URIs), a per-layer
table of the last recorded statistics and the plain-language findings. It has inline
CSS, no script and no external URL, so it can be mailed or archived as one file. It
works on any run folder: whatever is missing is named, and without ``diagnostics.csv``
the page says so and suggests ``twinnet train --diagnostics``. All text is escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import tomllib
from datetime import datetime
from pathlib import Path

from twinnet.utils import atomic_write

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #1d2329; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #d8dde3;
       padding-bottom: 0.2em; margin-top: 1.8em; }
.sub { color: #5b6670; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #d8dde3; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f1f4f7; }
td.bad { background: #fde2e1; }
.finding { border-left: 4px solid #e0a100; background: #fff8e5; padding: 0.5em 0.8em;
           margin: 0.5em 0; }
.finding.error { border-color: #c62828; background: #fdecea; }
.ok { border-left: 4px solid #2e7d32; background: #edf7ee; padding: 0.5em 0.8em; }
.note { border-left: 4px solid #5b6670; background: #f1f4f7; padding: 0.5em 0.8em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #e3e7eb; }
figcaption { color: #5b6670; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
code { background: #f1f4f7; padding: 0 0.2em; }
"""

# per-layer table: (statistic, header, format); the cells the findings judge
# (twinnet.diagnostics.findings.judged_values) show the judged value and are red when a
# rule fires on it, so the table and the findings never disagree
LAYER_COLUMNS = (
    ("act_mean", "act mean", "num"),
    ("act_std", "act std", "num"),
    ("dead_fraction", "dead", "pct"),
    ("saturated_fraction", "saturated", "pct"),
    ("grad_input_norm", "||dL/dx||", "num"),
    ("weight_norm", "||W||", "num"),
    ("weight_grad_norm", "||dL/dW||", "num"),
    ("weight_update_ratio", "||ΔW||/||W|| median", "num"),
    ("weight_update_ratio:last", "||ΔW||/||W|| last", "num"),
)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value, kind: str = "num") -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if kind == "pct":
            return f"{100 * value:.1f}%"
        return f"{value:.4g}"
    return str(value)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """rows hold ready HTML cells (``<td>...</td>``)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'


# -- sections -----------------------------------------------------------------------------
def _config_section(run_dir: Path) -> str:
    path = run_dir / "config.toml"
    if not path.is_file():
        return '<p class="note">No <code>config.toml</code> in this folder.</p>'
    text = path.read_text(errors="replace")
    try:
        values = tomllib.loads(text)
        values = values.get("train", values)
        rows = [
            [f"<td>{_e(k)}</td>", f"<td>{_e(json.dumps(v) if not isinstance(v, str) else v)}</td>"]
            for k, v in values.items()
        ]
        table = _table(["key", "value"], rows)
    except tomllib.TOMLDecodeError as err:
        table = f'<p class="note">config.toml is not valid TOML: {_e(err)}</p>'
    return (
        table + f"<details><summary>config.toml as written</summary><pre>{_e(text)}</pre></details>"
    )


def _metrics_section(run_dir: Path) -> tuple[str, dict]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return (
            '<p class="note">No <code>metrics.json</code>: the run did not finish (interrupted '
            "or still running), so there are no final metrics.</p>"
        ), {}
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError("expected a JSON object")
    except ValueError as err:
        return f'<p class="note">metrics.json could not be read: {_e(err)}</p>', {}
    rows = [
        [f"<td>{_e(k)}</td>", f'<td class="num">{_e(_fmt(v))}</td>'] for k, v in metrics.items()
    ]
    return _table(["metric", "value"], rows), metrics


def _findings_section(run_dir: Path, rows: list[dict]) -> str:
    from twinnet.diagnostics.findings import THRESHOLDS, findings

    found = findings(rows)
    if not found:
        return (
            '<p class="ok">No recorded statistic crossed a danger line (dead units, '
            "saturation, vanishing or exploding gradients, update ratio, activation scale, "
            "non-finite values).</p>"
        )
    items = "".join(
        f'<div class="finding {_e(f.severity)}"><strong>{_e(f.severity)}</strong>: '
        f"{_e(f.message)}</div>"
        for f in found
    )
    lines = ", ".join(f"{k} {v:g}" for k, v in THRESHOLDS.items())
    return items + f'<p class="sub">Danger lines: {_e(lines)}.</p>'


def _layer_section(rows: list[dict]) -> str:
    from twinnet.diagnostics.findings import judged_values
    from twinnet.diagnostics.stats import MODEL, layer_labels

    last: dict[tuple[str, str], tuple[int, float]] = {}
    types: dict[str, str] = {}
    for r in rows:
        types.setdefault(r["layer"], r["layer_type"])
        last[(r["layer"], r["statistic"])] = (r["step"], r["value"])
    judged = judged_values(rows)
    labels = layer_labels(list(types.items()))
    present = {s for _, s in last}
    columns = [c for c in LAYER_COLUMNS if c[0].split(":")[0] in present]
    body = []
    for name in types:
        if name == MODEL:
            continue
        cells = [f"<td>{_e(labels[name])}</td>"]
        for column, _, kind in columns:
            statistic, _, which = column.partition(":")
            if which != "last" and (name, statistic) in judged:
                value, bad, how = judged[(name, statistic)]
                title = f' title="{_e(how)}"'
            elif (name, statistic) in last and (which == "last" or statistic != "weight_update_ratio"):
                value, title = last[(name, statistic)][1], ""
                # NaN in an update ratio only means a weight that was exactly 0 before the step
                bad = not math.isfinite(value) and statistic != "weight_update_ratio"
            else:
                cells.append("<td></td>")
                continue
            cls = "num bad" if bad else "num"
            cells.append(f'<td class="{cls}"{title}>{_e(_fmt(value, kind))}</td>')
        body.append(cells)
    step = max(r["step"] for r in rows)
    model_bits = [f"{s} {_fmt(v)}" for (n, s), (_, v) in last.items() if n == MODEL]
    return (
        _table(["layer"] + [c[1] for c in columns], body)
        + f'<p class="sub">Last recorded value of each statistic (last record: step {step}), '
        "except the update ratio's median over the records after step 1, which is what the "
        "learning-rate finding judges (the last one is shown beside it: at the end of a "
        "schedule it falls with the learning rate and is not judged). Red: a finding fires "
        f"on that value. Whole model: {_e(', '.join(model_bits))}.</p>"
    )


def _plots_section(run_dir: Path) -> str:
    try:
        from twinnet.diagnostics.plots import make_plots

        plots = make_plots(run_dir)
    except ImportError as err:
        return f'<p class="note">Plots need matplotlib ({_e(err)}).</p>'
    except (OSError, ValueError, KeyError) as err:
        return f'<p class="note">The plots could not be drawn: {_e(err)}</p>'
    conv_note = ""
    try:  # a CNN run: its first layer's filters, one example's feature maps, its channels
        from twinnet.diagnostics.conv_plots import make_conv_plots

        plots = plots + make_conv_plots(run_dir)
    except (OSError, ValueError, KeyError) as err:
        conv_note = f'<p class="note">The convolution figures could not be drawn: {_e(err)}</p>'
    if not plots:
        return (
            '<p class="note">Nothing to plot: no <code>history.csv</code> or diagnostics '
            "in this folder.</p>"
        )
    return conv_note + "".join(
        f"<figure><h3>{_e(p.title)}</h3>{_image(p.path)}<figcaption>{_e(p.caption)}</figcaption></figure>"
        for p in plots
    )


def render_report(run_dir: str | Path) -> str:
    """The report page of ``run_dir`` as an HTML string (also draws ``run_dir/plots/``)."""
    from twinnet.diagnostics.callback import read_diagnostics

    run_dir = Path(run_dir)
    rows: list[dict] = []
    diag_note = ""
    if (run_dir / "diagnostics.csv").is_file():
        try:
            rows = read_diagnostics(run_dir)
        except (OSError, ValueError) as err:
            diag_note = f'<p class="note">diagnostics.csv could not be read: {_e(err)}</p>'
    if not rows and not diag_note:
        diag_note = (
            '<p class="note">Diagnostics were not recorded for this run, so there are no per-layer '
            "statistics or findings. Rerun with <code>twinnet train --diagnostics</code> (or add "
            "<code>twinnet.diagnostics.Diagnostics</code> to the Trainer's callbacks) to record "
            "them.</p>"
        )
    metrics_html, metrics = _metrics_section(run_dir)
    summary = []
    for key in ("dataset", "test_accuracy", "test_loss", "epochs", "train_seconds", "stop_reason"):
        if key in metrics:
            summary.append(f"{key} {_fmt(metrics[key])}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>twinnet report: {_e(run_dir.resolve().name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>twinnet run report: {_e(run_dir.resolve().name)}</h1>",
        f'<p class="sub">{_e(str(run_dir.resolve()))} · generated '
        f"{_e(datetime.now().strftime('%Y-%m-%d %H:%M'))}"
        + (f" · {_e(' · '.join(summary))}" if summary else "")
        + "</p>",
        "<h2>Findings</h2>",
        _overfitting_section(run_dir),
        diag_note or _findings_section(run_dir, rows),
        "<h2>Final metrics</h2>",
        metrics_html,
        "<h2>Plots</h2>",
        _plots_section(run_dir),
    ]
    if rows:
        parts += ["<h2>Per-layer statistics</h2>", _layer_section(rows)]
    parts += ["<h2>Configuration</h2>", _config_section(run_dir)]
    files = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in run_dir.iterdir()
        if not p.name.startswith(".")
    )
    parts += ["<h2>Files</h2>", f"<p>{_e(', '.join(files))}</p>", "</body></html>\n"]
    return "\n".join(parts)


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    page = render_report(run_dir)
    path = run_dir / "report.html"
    atomic_write(path, page.encode("utf-8"))
    return path


def _overfitting_section(run_dir: Path) -> str:
    """The overfitting finding, read from history.csv (it needs no diagnostics.csv)."""
    from twinnet.diagnostics.findings import overfitting

    try:
        found = overfitting(run_dir)
    except (OSError, ValueError):
        return ""  # an unreadable history.csv is reported by the plots section
    return "".join(
        f'<div class="finding {_e(f.severity)}"><strong>{_e(f.severity)}</strong>: {_e(f.message)}</div>'
        for f in found
    )
