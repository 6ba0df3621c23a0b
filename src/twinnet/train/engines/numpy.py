"""The NumPy engine's stepper: one training step of a twinnet model, by hand.

One step is: forward, loss, zero the gradients, backward, (penalties, clipping) in
:meth:`NumpyStepper.forward_backward`, then the optimiser step in :meth:`apply`. What a
model must provide: ``forward(x)`` (via ``__call__``), ``backward(grad)``,
``parameters()``, ``train()``/``eval()``, ``state_dict()``/``load_state_dict()``. A
loss: ``loss_fn(pred, target) -> float`` and ``backward()``. An optimiser: ``step()``,
``zero_grad()``, ``param_groups``, ``state_dict()``/``load_state_dict()``.
"""

from __future__ import annotations

import numpy as np

from twinnet.train import metrics as M
from twinnet.train.engines.base import Stepper

ENGINE = "numpy"


class NumpyStepper(Stepper):
    """Steps of ``model`` with ``loss_fn`` and ``optimizer`` (see the module docstring).

    ``task`` ("multiclass", "binary", "regression") says how to count right answers;
    ``regularizers``: objects with ``__call__(params) -> float`` and ``backward(params)``
    (e.g. ``optim.L2Penalty``); ``clip_grad_norm``: clip the global gradient norm (0/None:
    off)."""

    engine = ENGINE

    def __init__(self, model, loss_fn, optimizer, task="multiclass", regularizers=(), clip_grad_norm=None):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.task = task
        self.regularizers = list(regularizers)
        self.clip_grad_norm = clip_grad_norm or None

    # -- one step ------------------------------------------------------------------------
    def forward_backward(self, xb: np.ndarray, yb: np.ndarray, flag: bool = False) -> tuple[float, int, bool]:
        model, loss_fn = self.model, self.loss_fn
        params = model.parameters()
        out = model(xb)
        loss = loss_fn(out, yb)
        self.optimizer.zero_grad()
        model.backward(loss_fn.backward())
        for reg in self.regularizers:
            loss += reg(params)
            reg.backward(params)
        if self.clip_grad_norm:
            from twinnet.optim import clip_grad_norm_

            clip_grad_norm_(params, self.clip_grad_norm)
        correct = 0
        if self.task != "regression":
            correct = int((M.predict_labels(out, self.task) == yb.reshape(-1)).sum())
        return loss, correct, flag

    def begin_fit(self) -> None:
        """Nobody needs dL/d(data): the first Linear skips that matrix product."""
        self._first = _first_linear(self.model)
        if self._first is not None:
            self._first.input_grad = False

    def end_fit(self) -> None:
        if getattr(self, "_first", None) is not None:
            self._first.input_grad = True

    # -- evaluation --------------------------------------------------------------------------
    def predict(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Model outputs for ``x`` in eval mode (logits for classification)."""
        was_training = self.model.training
        self.model.eval()
        try:
            outs = [self.model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        finally:
            self.model.train(was_training)
        return np.concatenate(outs) if outs else np.zeros((0,))

    # -- state ---------------------------------------------------------------------------------
    def weights(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict(weights)

    def state_dict(self) -> dict:
        rngs = {
            name: m.rng.bit_generator.state
            for name, m in self.model.named_modules()
            if isinstance(getattr(m, "rng", None), np.random.Generator)
        }
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "rngs": rngs}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        modules = dict(self.model.named_modules())
        for name, rng_state in state.get("rngs", {}).items():
            modules[name].rng.bit_generator.state = rng_state

    def num_parameters(self) -> int:
        return self.model.num_parameters()

    # -- when the loss goes non-finite ------------------------------------------------------------
    def locate_non_finite(self, xb: np.ndarray) -> str:
        """Replay the batch layer by layer and name the first non-finite tensor."""
        model = self.model
        for name, p in model.named_parameters():
            if not np.isfinite(p.data).all():
                return f"parameter {name} is non-finite (e.g. {_first_bad(p.data)})"
        if not np.isfinite(xb).all():
            return f"the input batch contains {_first_bad(xb)}"
        layers = list(model) if hasattr(model, "__iter__") else [model]
        h = xb
        with np.errstate(all="ignore"):
            for i, layer in enumerate(layers):
                h = layer(h)
                if not np.isfinite(h).all():
                    return f"output of layer {i} ({type(layer).__name__}) went non-finite ({_first_bad(h)})"
        for name, p in model.named_parameters():
            if not np.isfinite(p.grad).all():
                return f"gradient of {name} is non-finite ({_first_bad(p.grad)})"
        return "the loss itself overflowed (outputs were finite)"


def _first_bad(a: np.ndarray) -> str:
    bad = a[~np.isfinite(a)]
    return f"value {bad.flat[0]}" if bad.size else "no bad value"


def _first_linear(model):
    """The Linear layer that receives the data first in a Sequential, if any."""
    from twinnet.nn import Linear, Sequential

    if isinstance(model, Sequential) and len(model) and isinstance(model[0], Linear):
        return model[0]
    return None
