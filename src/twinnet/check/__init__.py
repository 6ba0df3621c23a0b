"""Gradient checking: hand-written backward passes against finite differences."""

from twinnet.check.gradcheck import (
    BANDS,
    GradcheckReport,
    TensorCheck,
    band,
    gradcheck,
    place_near_kink,
    relative_error,
)

__all__ = [
    "BANDS",
    "GradcheckReport",
    "TensorCheck",
    "band",
    "gradcheck",
    "place_near_kink",
    "relative_error",
]
