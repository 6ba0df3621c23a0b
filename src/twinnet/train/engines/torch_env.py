"""Where and how the torch engine computes: device, threads, determinism, seeds.

Threads: ``torch.set_num_threads`` gets ``$TWINNET_NUM_THREADS``, else
``$OMP_NUM_THREADS``, else the cores this process may use divided by ``nproc``.
Deterministic algorithms are requested (warn-only); torch settings and the global RNG
are restored when a single-process run returns.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import torch

from twinnet.config import ConfigError


def resolve_device(device: str, nproc: int = 1) -> torch.device:
    """The torch device for config key ``device`` ("cpu", "cuda" or "cuda:N").

    Raises ValueError with one clear line when CUDA is asked for but missing, or when
    ``nproc`` processes need more GPUs than there are (one GPU per process).
    """
    if device == "cpu":
        return torch.device("cpu")
    if device != "cuda" and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"config key 'device': expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device available")
    count = torch.cuda.device_count()
    index = int(device[5:]) if ":" in device else 0
    if nproc > 1 and device != "cuda":
        raise ConfigError(f"--nproc {nproc} uses GPUs 0..{nproc - 1}; give --device cuda, not {device!r}")
    if index + nproc > count:
        need = f"GPU {index}" if nproc == 1 else f"{nproc} GPUs (one per process)"
        raise ValueError(f"--device {device}: needs {need}, found {count} CUDA device(s)")
    return torch.device(device)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def thread_count(nproc: int = 1) -> int:
    """Intra-op threads per process: ``$TWINNET_NUM_THREADS``, else ``$OMP_NUM_THREADS``,
    else the available cores shared evenly among ``nproc`` processes."""
    for var in ("TWINNET_NUM_THREADS", "OMP_NUM_THREADS"):
        text = os.environ.get(var, "").strip()
        if text:
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"${var} must be a positive integer, got {text!r}")
            return int(text)
    return max(1, available_cores() // max(1, nproc))


@contextlib.contextmanager
def torch_settings(device: torch.device, nproc: int = 1) -> Iterator[int]:
    """Threads, deterministic algorithms and a private global RNG for one run.

    Everything is restored on exit (the RNG through ``torch.random.fork_rng``), so a
    library user's torch state is the same after a run as before it. Yields the thread
    count.
    """
    threads = thread_count(nproc)
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cuda = device.type == "cuda"
    if cuda:
        # must be set before cuBLAS starts; makes its matmuls reproducible
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        saved_cuda = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
                      torch.backends.cuda.matmul.allow_tf32)  # fmt: skip
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32, as in NumPy
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[device] if cuda else []):
            yield threads
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        if cuda:
            (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.backends.cuda.matmul.allow_tf32) = saved_cuda  # fmt: skip


def rank_seed(seed: int, rank: int) -> int:
    """The torch seed of process ``rank``: distinct dropout masks per process, all
    determined by the config's seed."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


__all__ = ["available_cores", "rank_seed", "resolve_device", "thread_count", "torch_settings"]
