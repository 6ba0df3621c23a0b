"""See inside the network: per-layer statistics during training, plots and a report.

    from twinnet.diagnostics import Diagnostics, collect_stats, write_report

    trainer = Trainer(model, loss_fn, opt, callbacks=[Diagnostics("runs/a", every=50, probe=val)])
    trainer.fit(train, val)                       # writes runs/a/diagnostics.csv, histograms.json
    stats = collect_stats(model, loss_fn, x, y)   # one probe pass, no side effects
    write_report("runs/a")                        # runs/a/report.html, one self-contained file
    for f in findings("runs/a"): print(f)         # plain-language warnings

For PyTorch modules: ``diagnose_torch(module, x, y, loss_fn)`` (one probe pass with
hooks) and ``TorchDiagnostics`` (the same records from a torch training loop). torch
and matplotlib are imported only when those functions run.
"""

from twinnet.diagnostics.callback import (
    Diagnostics,
    DiagnosticsLog,
    read_diagnostics,
    read_histograms,
)
from twinnet.diagnostics.findings import THRESHOLDS, Finding, findings
from twinnet.diagnostics.report import write_report
from twinnet.diagnostics.stats import ProbeStats, collect_stats, layer_labels, snapshot_parameters
from twinnet.diagnostics.torch_hooks import TorchDiagnostics, diagnose_torch

__all__ = [
    "THRESHOLDS",
    "Diagnostics",
    "DiagnosticsLog",
    "Finding",
    "ProbeStats",
    "TorchDiagnostics",
    "collect_stats",
    "diagnose_torch",
    "findings",
    "layer_labels",
    "read_diagnostics",
    "read_histograms",
    "snapshot_parameters",
    "write_report",
]
