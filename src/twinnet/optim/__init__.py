"""Optimisers, learning-rate schedules, gradient clipping and weight penalties.

Every optimiser has ``torch.optim`` semantics and defaults, so the PyTorch twin can
check them step by step::

    opt = optim.Adam(model.parameters(), lr=1e-3)   # or optim.create("adam", ..., lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10_000)
    ...
    model.backward(loss_fn.backward())
    optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step(); opt.zero_grad(); sched.step()
"""

from twinnet.optim import lr_scheduler
from twinnet.optim.adagrad import Adagrad
from twinnet.optim.adam import Adam, AdamW
from twinnet.optim.clip import clip_grad_norm_, clip_grad_value_
from twinnet.optim.optimizer import Optimizer
from twinnet.optim.registry import OPTIMIZERS, create
from twinnet.optim.regularization import L1Penalty, L2Penalty, param_groups
from twinnet.optim.rmsprop import RMSprop
from twinnet.optim.sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adagrad",
    "Adam",
    "AdamW",
    "OPTIMIZERS",
    "create",
    "lr_scheduler",
    "clip_grad_norm_",
    "clip_grad_value_",
    "L1Penalty",
    "L2Penalty",
    "param_groups",
]
