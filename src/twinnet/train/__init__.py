"""Training: the Trainer loop, callbacks, metrics, history and run folders."""

from twinnet.train.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    LRSchedulerCallback,
    NaNGuard,
    ProgressBar,
)
from twinnet.train.history import History
from twinnet.train.trainer import Trainer

__all__ = [
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "LRSchedulerCallback",
    "NaNGuard",
    "ProgressBar",
    "Trainer",
]
