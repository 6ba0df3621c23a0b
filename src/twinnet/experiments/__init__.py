"""Experiments: the classic results of neural-network lore, reproduced with real numbers.

Each experiment is a module with ``NAME``, ``CLAIM`` (one line) and
``run(out_dir, quick=False, data_dir=None) -> dict``, which prints a table, saves
PNG plots and ``results.json`` (the claim, the numbers, ``"claim_holds"``) in
``out_dir``. ``--quick`` runs in seconds (the tests use it); the full version takes
up to a few minutes.

    twinnet experiment --list
    twinnet experiment xor --quick --out /tmp/xor

From Python::

    from twinnet.experiments import EXPERIMENTS
    run, claim = EXPERIMENTS["xor"]
    results = run(Path("runs/experiments/xor"), quick=True)

``twinnet trace`` (the backprop worked example) lives in ``experiments.trace``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from twinnet.experiments import (
    ablation,
    activation_table,
    batch_size,
    click,
    click_book,
    dead_relu,
    depth_vs_width,
    double_descent,
    exploding_gradients,
    init_variance,
    linear_collapse,
    lr_sweep,
    optimizers,
    overfitting,
    perceptron,
    symmetry,
    universal_approximation,
    vanishing_gradients,
    xor,
)

_MODULES = (
    xor,
    perceptron,
    init_variance,
    vanishing_gradients,
    dead_relu,
    lr_sweep,
    optimizers,
    click,
    universal_approximation,
    depth_vs_width,
    double_descent,
    ablation,
    linear_collapse,
    symmetry,
    exploding_gradients,
    activation_table,
    click_book,
    batch_size,
    overfitting,
)

# name -> (run function, one-line claim), in the order they are listed
EXPERIMENTS: dict[str, tuple[Callable[..., dict], str]] = {
    m.NAME: (m.run, m.CLAIM) for m in _MODULES
}

DEFAULT_ROOT = Path("runs") / "experiments"

__all__ = [
    "DEFAULT_ROOT",
    "EXPERIMENTS",
    "MODES",
    "list_experiments",
    "run_experiment",
    "run_experiment_command",
]


# name -> {mode: claim}: the experiments that can also be run another way (--mode)
MODES: dict[str, dict[str, str]] = {
    m.NAME: m.MODES for m in _MODULES if getattr(m, "MODES", None)
}


def list_experiments() -> str:
    """One line per experiment: its name and its claim (and one per extra mode)."""
    width = max(len(n) for n in EXPERIMENTS)
    lines = []
    for name, (_, claim) in EXPERIMENTS.items():
        lines.append(f"{name:<{width}}  {claim}")
        for mode, mode_claim in MODES.get(name, {}).items():
            lines.append(f"{'':<{width}}  --mode {mode}: {mode_claim}")
    return "\n".join(lines)


def _resolve(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key not in EXPERIMENTS:
        raise ValueError(
            f"unknown experiment {name!r}; expected one of {', '.join(EXPERIMENTS)} "
            "(twinnet experiment --list shows their claims)"
        )
    return key


def _check_mode(key: str, mode: str | None) -> None:
    if mode is not None and mode not in MODES.get(key, {}):
        have = ", ".join(MODES.get(key, {})) or "none"
        raise ValueError(f"experiment {key} has no mode {mode!r}; its modes: {have}")


def run_experiment(
    name: str, out_dir=None, quick: bool = False, data_dir=None, mode: str | None = None
) -> dict:
    """Run experiment ``name`` (in ``mode``, if it has modes) into ``out_dir`` (default
    runs/experiments/<name>) and return its results dict (also in ``out_dir/results.json``)."""
    key = _resolve(name)
    _check_mode(key, mode)
    out = Path(out_dir) if out_dir is not None else DEFAULT_ROOT / key
    out.mkdir(parents=True, exist_ok=True)
    run, _ = EXPERIMENTS[key]
    if mode is not None:
        return run(out, quick=quick, data_dir=data_dir, mode=mode)
    return run(out, quick=quick, data_dir=data_dir)


def run_experiment_command(args) -> int:
    """``twinnet experiment``: ``--list``, or run ``args.name`` (with ``--quick``,
    ``--out``, ``--data-dir``). Returns 0 when the run completes, whether or not the
    claim held (the last lines say which)."""
    if getattr(args, "list", False):
        print(list_experiments())
        return 0
    if not args.name:
        raise ValueError(f"give an experiment name or --list; names: {', '.join(EXPERIMENTS)}")
    key = _resolve(args.name)
    mode = getattr(args, "mode", None)
    _check_mode(key, mode)
    out = Path(args.out) if args.out else DEFAULT_ROOT / key
    claim = MODES[key][mode] if mode else EXPERIMENTS[key][1]
    label = f"{key} --mode {mode}" if mode else key
    print(f"experiment {label}{' (quick)' if args.quick else ''}: {claim}")
    print()
    started = time.perf_counter()
    results = run_experiment(
        key, out, quick=bool(args.quick), data_dir=getattr(args, "data_dir", None), mode=mode
    )
    seconds = time.perf_counter() - started
    print()
    verdict = "HELD" if results["claim_holds"] else "DID NOT HOLD"
    print(f"claim {verdict}: {claim}")
    print(f"{seconds:.1f} s; results and plots in {out}")
    return 0
