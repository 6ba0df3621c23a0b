"""What every stepper has in common (see :mod:`twinnet.train.engines` for the interface)."""

from __future__ import annotations

import numpy as np


class Stepper:
    """The base of the NumPy and the torch stepper: the parts that are the same.

    A subclass sets ``model``, ``optimizer`` and ``loss_fn`` and implements
    ``forward_backward``, ``predict``, ``state_dict``/``load_state_dict``,
    ``weights``/``load_weights``, ``num_parameters`` and ``locate_non_finite``.
    """

    engine = ""
    rank, world = 0, 1  # this process of how many (data parallel: see the torch stepper)

    def forward_backward(self, xb: np.ndarray, yb: np.ndarray, flag: bool = False) -> tuple[float, int, bool]:
        """Forward, loss, zero the gradients, backward: (mean loss, right answers, flag of any process)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward_backward")

    def apply(self) -> None:
        """The optimiser step."""
        self.optimizer.step()

    def step(self, xb: np.ndarray, yb: np.ndarray) -> float:
        """One whole training step without callbacks; returns the batch's mean loss."""
        loss, _, _ = self.forward_backward(xb, yb)
        self.apply()
        return loss

    def begin_fit(self) -> None:
        """Called by ``Trainer.fit`` before the first step."""

    def end_fit(self) -> None:
        """Called by ``Trainer.fit`` after the last step, even after an error."""

    def share(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` on every process (one process: the values)."""
        return list(values)

    def wrap_scheduler(self, scheduler):
        """A NumPy engine schedule of the NumPy optimiser, as this engine steps it."""
        return scheduler
