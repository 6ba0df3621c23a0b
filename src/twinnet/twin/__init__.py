"""The PyTorch twin: every twinnet model, loss and optimiser mirrored in torch.

The NumPy engine computes every gradient by hand; this package rebuilds the same
network in PyTorch with bit-identical weights and lets autograd recompute everything,
so the two can be compared number by number::

    from twinnet import twin

    report = twin.compare(model, loss_fn, x, y, optimizer=opt, steps=10)
    print(report)                 # aligned table + verdict
    assert report.passed()        # rel <= 1e-10: compared on float64 copies

    torch_model = twin.to_torch(model)          # identical weights, same mode
    model_again = twin.from_torch(torch_model)  # and back
    torch_opt = twin.to_torch_optimizer(opt, torch_model, model=model)
    torch_sched = twin.to_torch_scheduler(sched, torch_opt)

This package is the mirror only (convert, compare, the optimiser mirror, the ``twinnet
twin`` command); training with PyTorch is :mod:`twinnet.train.engines.torch`, which
builds its model with this package's conversion tables. ``import twinnet`` never
imports torch. The conventions that
connect a twinnet layer to its torch layer live in one table,
:data:`twinnet.twin.convert.LAYER_TABLE` (losses: ``LOSS_TABLE``; optimisers and
schedules: :data:`twinnet.twin.optim.OPTIMIZER_TABLE`).
"""

try:
    import torch  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("twinnet.twin needs PyTorch: pip install 'twinnet[torch]'") from err

from twinnet.twin.compare import CompareReport, Row, compare, compare_lr_schedule
from twinnet.twin.convert import (
    LAYER_TABLE,
    LOSS_TABLE,
    TorchSwiGLU,
    from_torch,
    loss_to_torch,
    target_to_torch,
    to_torch,
)
from twinnet.twin.convert_conv import TorchResidual
from twinnet.twin.optim import OPTIMIZER_TABLE, to_torch_optimizer, to_torch_scheduler

__all__ = [
    "CompareReport",
    "LAYER_TABLE",
    "LOSS_TABLE",
    "OPTIMIZER_TABLE",
    "Row",
    "TorchResidual",
    "TorchSwiGLU",
    "compare",
    "compare_lr_schedule",
    "from_torch",
    "loss_to_torch",
    "target_to_torch",
    "to_torch",
    "to_torch_optimizer",
    "to_torch_scheduler",
]
