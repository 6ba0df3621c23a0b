"""Shared fixtures and helpers for the test suite (keep this file small)."""

from __future__ import annotations

import numpy as np
import pytest

NO_TORCH = "PyTorch not installed (pip install twinnet[torch])"


@pytest.fixture
def torch_or_skip():
    """The ``torch`` module, or skip the requesting test when PyTorch is not installed."""
    return pytest.importorskip("torch", reason=NO_TORCH)


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded generator, so every test draws the same numbers on every run."""
    return np.random.default_rng(0)


def pytest_configure(config):
    """Under pytest-xdist each worker gets one BLAS thread: two workers on two cores with
    two threads each would oversubscribe the CPU and make every matmul crawl."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
