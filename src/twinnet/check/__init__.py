"""Gradient checking: hand-written backward passes against finite differences."""

from twinnet.check.gradcheck import GradcheckReport, TensorCheck, gradcheck, relative_error

__all__ = ["GradcheckReport", "TensorCheck", "gradcheck", "relative_error"]
