"""The Runs page's routes: the run folders under RUNS_DIR, read from their files.

    GET /api/runs                       every run folder (a folder with config.toml)
    GET /api/runs/{name}?version=V      one run: config, history, metrics, findings,
                                        per-layer diagnostics; {"unchanged": true} while
                                        its files are still those of version V
    GET /runs/{name}/report             the run's report page (twinnet.diagnostics)

A run that ``twinnet train`` is still writing changes its files after every epoch (all
written atomically); the page asks every second with the version it has, so only a
changed run is read and sent again. Only folders directly under RUNS_DIR are served,
and only the files named here: a name is one path component of letters, digits, ``.``,
``_``, ``-`` (never ``..``), and its resolved path (symlinks followed) must still be
inside RUNS_DIR; anything else is 404. Nothing is unpickled or evaluated: TOML, CSV and
JSON only.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import re
import time
import tomllib
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from twinnet.diagnostics.report import LAYER_COLUMNS

# the files a run's answer depends on (their size and mtime make its version)
WATCHED = ("config.toml", "history.csv", "metrics.json", "diagnostics.csv")
# a run without metrics.json whose files changed this recently is still training
LIVE_SECONDS = 60.0
NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")
# diagnostics the page draws over steps: statistic -> (title, layers it applies to)
SERIES = {
    "weight_grad_norm": "gradient norm ||dL/dW|| per Linear layer",
    "weight_update_ratio": "update-to-weight ratio ||ΔW|| / ||W|| per Linear layer",
    "dead_fraction": "share of dead ReLU units",
    "saturated_fraction": "share of saturated sigmoid/tanh units",
    "act_std": "activation std per layer",
    "grad_input_norm": "gradient norm ||dL/dx|| reaching each layer's input",
}


class NotFound(LookupError):
    """No run of that name under RUNS_DIR (or a name that is not allowed)."""


def run_path(runs_dir: Path, name: str) -> Path:
    """``runs_dir/name`` if it is a run folder inside ``runs_dir``; NotFound otherwise."""
    if not NAME.match(name) or name in (".", "..") or name.startswith(".."):
        raise NotFound(f"no run named {name!r}")
    root = runs_dir.resolve()
    path = (root / name).resolve()  # follows symlinks: one that leads out is refused below
    if path.parent != root or not (path / "config.toml").is_file():
        raise NotFound(f"no run named {name!r} in {runs_dir}")
    return path


def inside(path: Path, name: str) -> Path | None:
    """``path/name`` if it is a regular file that stays inside the run folder (a symlink
    that leads out of it is treated as missing), else None."""
    file = (path / name).resolve()
    return file if file.is_file() and file.is_relative_to(path) else None


def leads_out(path: Path) -> bool:
    """Whether anything in the run folder (or its plots/) is a symlink leading out of it."""
    entries = [*path.iterdir(), *((path / "plots").iterdir() if (path / "plots").is_dir() else [])]
    return any(e.is_symlink() and not e.resolve().is_relative_to(path) for e in entries)


def version(path: Path) -> str:
    """Changes whenever a watched file is written (atomic writes replace the file)."""
    parts = []
    for f in WATCHED:
        try:
            st = (path / f).stat()
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


def _newest_mtime(path: Path) -> float:
    times = [f.stat().st_mtime for f in (inside(path, n) for n in WATCHED) if f is not None]
    return max(times, default=0.0)


def status(path: Path) -> str:
    """"finished", "stopped" (NaN guard), "training" or "incomplete" (interrupted)."""
    metrics = _read_json(path, "metrics.json")
    if isinstance(metrics, dict):
        return "stopped" if str(metrics.get("stop_reason", "")).startswith("NaNGuard") else "finished"
    return "training" if time.time() - _newest_mtime(path) < LIVE_SECONDS else "incomplete"


def _read_json(path: Path, name: str):
    file = inside(path, name)
    try:
        return json.loads(file.read_text()) if file else None
    except (OSError, ValueError):
        return None


def _config(path: Path) -> dict:
    file = inside(path, "config.toml")
    if file is None:
        return {"error": "config.toml is not a file inside the run folder"}
    try:
        values = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        return {"error": f"config.toml could not be read: {err}"}
    return values.get("train", values)


def _finite(v):
    """JSON has no NaN or infinity: those become null (the page draws a gap)."""
    return v if not isinstance(v, float) or math.isfinite(v) else None


def list_runs(runs_dir: Path) -> dict:
    runs = []
    root = runs_dir.resolve()
    for child in sorted(root.iterdir() if root.is_dir() else [], key=lambda p: p.name):
        try:
            path = run_path(runs_dir, child.name)
        except NotFound:
            continue
        cfg = _config(path)
        metrics = _read_json(path, "metrics.json") or {}
        epochs = _history(path)["columns"].get("epoch", [])
        runs.append({
            "name": child.name,
            "status": status(path),
            "dataset": cfg.get("dataset"),
            "layers": cfg.get("layers"),
            "activation": cfg.get("activation"),
            "optimizer": cfg.get("optimizer"),
            "epochs_done": len(epochs),
            "epochs": cfg.get("epochs"),
            "test_accuracy": _finite(metrics.get("test_accuracy")),
            "test_loss": _finite(metrics.get("test_loss")),
            "modified": _newest_mtime(path),
        })  # fmt: skip
    return {"runs_dir": str(runs_dir), "runs": runs}


def _history(path: Path) -> dict:
    from twinnet.train.history import History

    file = inside(path, "history.csv")
    if file is None:
        return {"columns": {}, "note": "no history.csv yet (it is written after the first epoch)"}
    try:
        cols = History.from_csv(file).history
    except (OSError, ValueError, csv.Error) as err:
        return {"columns": {}, "note": f"history.csv could not be read: {err}"}
    return {"columns": {k: [_finite(v) if isinstance(v, int | float) else None for v in vs] for k, vs in cols.items()}}


def _diagnostics(path: Path, history: dict) -> dict:
    """Findings (same rules as the report), the per-layer table of the last record (the
    report's columns and danger lines) and a few statistics over steps."""
    from twinnet.diagnostics import findings as find
    from twinnet.diagnostics import layer_labels, read_diagnostics
    from twinnet.diagnostics.findings import THRESHOLDS, overfitting
    from twinnet.diagnostics.stats import MODEL

    out: dict = {"findings": [], "layers": None, "series": {}, "histograms": None, "note": ""}
    hist = history["columns"]
    if hist.get("train_loss") and hist.get("val_loss"):
        out["findings"] += [_finding(f) for f in overfitting(hist)]
    if inside(path, "diagnostics.csv") is None:
        out["note"] = ("Diagnostics were not recorded for this run, so there are no per-layer statistics "
                       "or findings. Rerun with `twinnet train --diagnostics` to record them.")  # fmt: skip
        return out
    try:
        rows = read_diagnostics(path)
    except (OSError, ValueError) as err:
        out["note"] = f"diagnostics.csv could not be read: {err}"
        return out
    if not rows:
        return out
    out["findings"] += [_finding(f) for f in find(rows)]
    out["thresholds"] = THRESHOLDS
    types: dict[str, str] = {}
    last: dict[tuple[str, str], float] = {}
    series: dict[str, dict[str, dict[int, float]]] = {s: {} for s in SERIES}
    for r in rows:
        types.setdefault(r["layer"], r["layer_type"])
        last[(r["layer"], r["statistic"])] = r["value"]
        if r["statistic"] in series and r["layer"] != MODEL:
            series[r["statistic"]].setdefault(r["layer"], {})[r["step"]] = r["value"]
    labels = layer_labels(list(types.items()))
    judged, median = _judged(rows)
    present = {s for _, s in last}
    columns = [c for c in LAYER_COLUMNS if c[0].split(":")[0] in present and (median or c[0] != "weight_update_ratio")]
    table = []
    for name in types:
        if name == MODEL:
            continue
        cells = []
        for column, _, kind in columns:
            statistic, _, which = column.partition(":")
            if (which != "last" or not median) and (name, statistic) in judged:
                # the value a finding rule judges, red when the rule fires on it
                v, bad, how = judged[(name, statistic)]
            elif (name, statistic) in last and (which == "last" or statistic != "weight_update_ratio"):
                v, how = last[(name, statistic)], "last record"
                # nan in an update ratio only means a weight that was exactly 0 before the step
                bad = not math.isfinite(v) and statistic != "weight_update_ratio"
            else:
                v, bad, how = None, False, ""
            cells.append({"value": _finite(v), "kind": kind, "bad": bool(bad), "how": how})
        table.append({"layer": labels[name], "cells": cells})
    out["layers"] = {"headers": [c[1] for c in columns], "rows": table, "step": max(r["step"] for r in rows)}
    out["histograms"] = _histograms(path, labels)
    steps = sorted({r["step"] for r in rows})
    for stat, per_layer in series.items():
        if per_layer:
            out["series"][stat] = {
                "title": SERIES[stat],
                "steps": steps,
                "layers": {labels[n]: [_finite(v.get(s)) for s in steps] for n, v in per_layer.items()},
            }
    return out


def _histograms(path: Path, labels: dict[str, str]) -> dict | None:
    """The pre-activation histograms of the last record (histograms.json), one per layer."""
    from twinnet.diagnostics import read_histograms

    if inside(path, "histograms.json") is None:
        return None
    try:
        records = read_histograms(path)
    except (OSError, ValueError) as err:
        return {"note": f"histograms.json could not be read: {err}", "layers": []}
    if not records:
        return None
    step = max(r.get("step", 0) for r in records)
    last = [r for r in records if r.get("step") == step]
    return {"step": step, "layers": [
        {"layer": labels.get(r["layer"], r["layer"]), "edges": [_finite(float(e)) for e in r["edges"]],
         "counts": [int(c) for c in r["counts"]], "nonfinite": int(r.get("nonfinite", 0))}
        for r in last
    ]}  # fmt: skip


def _judged(rows: list[dict]) -> tuple[dict[tuple[str, str], tuple[float, bool, str]], bool]:
    """({(layer, statistic): (value, beyond the line, how taken)} of what the finding rules
    judge, whether the update ratio judged is a median): from
    twinnet.diagnostics.findings.judged_values where it exists, else the last record
    against the danger lines of THRESHOLDS (dead, saturated, update ratio)."""
    rules = importlib.import_module("twinnet.diagnostics.findings")  # the module, not the function
    if hasattr(rules, "judged_values"):
        return rules.judged_values(rows), True
    from twinnet.diagnostics.stats import RELU_FAMILY, SATURATING

    t = rules.THRESHOLDS
    lines = {
        "dead_fraction": (RELU_FAMILY, lambda v: v >= t["dead_fraction"]),
        "saturated_fraction": (SATURATING, lambda v: v > t["saturated_fraction"]),
        "weight_update_ratio": (None, lambda v: v > t["update_ratio_high"] or 0 < v < t["update_ratio_low"]),
    }
    out = {}
    for r in rows:
        if r["statistic"] in lines:
            kinds, crossed = lines[r["statistic"]]
            if kinds is None or r["layer_type"] in kinds:
                v = r["value"]
                out[(r["layer"], r["statistic"])] = (v, math.isfinite(v) and crossed(v), f"step {r['step']}")
    return out, False


def _finding(f) -> dict:
    return {"rule": f.rule, "severity": f.severity, "message": f.message}


def run_detail(runs_dir: Path, name: str, known: str | None = None) -> dict:
    path = run_path(runs_dir, name)
    v = version(path)
    if known == v:
        return {"unchanged": True, "version": v, "status": status(path)}
    history = _history(path)
    metrics = _read_json(path, "metrics.json")
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir() if not p.name.startswith("."))
    return {
        "name": name,
        "version": v,
        "status": status(path),
        "config": _config(path),
        "history": history,
        "metrics": {k: _finite(x) for k, x in metrics.items()} if isinstance(metrics, dict) else None,
        "diagnostics": _diagnostics(path, history),
        "files": files,
    }


def _not_found(err: NotFound) -> JSONResponse:
    return JSONResponse({"error": str(err)}, status_code=404)


async def api_runs(request: Request) -> JSONResponse:
    return JSONResponse(await run_in_threadpool(list_runs, request.app.state.runs_dir))


async def api_run(request: Request) -> JSONResponse:
    try:
        detail = await run_in_threadpool(
            run_detail, request.app.state.runs_dir, request.path_params["name"], request.query_params.get("version")
        )
    except NotFound as err:
        return _not_found(err)
    return JSONResponse(detail, headers={"Cache-Control": "no-store"})


async def run_report(request: Request):
    """The report of ``twinnet.diagnostics.write_report``, rendered from the files now."""
    from twinnet.diagnostics.report import render_report

    try:
        path = run_path(request.app.state.runs_dir, request.path_params["name"])
    except NotFound as err:
        return _not_found(err)
    if leads_out(path):
        return JSONResponse({"error": f"{path.name}: a file in this run links out of its folder; not served"}, status_code=404)
    return HTMLResponse(await run_in_threadpool(render_report, path))


routes = [
    Route("/api/runs", api_runs),
    Route("/api/runs/{name}", api_run),
    Route("/runs/{name}/report", run_report),
]
