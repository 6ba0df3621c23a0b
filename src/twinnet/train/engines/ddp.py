"""Data-parallel training for the torch engine: ``twinnet train --engine torch --nproc N``.

Two halves live here:

- :func:`launch` (in the ``twinnet`` process) starts torch's own launcher,
  ``python -m torch.distributed.run``, for N processes on this machine, with a c10d
  rendezvous on ``127.0.0.1`` and a free port chosen by the OS, and waits. The config
  goes to the processes as a TOML path (the run folder's ``config.toml``). SIGINT and
  SIGTERM are passed on once, so the processes stop together and checkpoint. A failed
  process becomes one :class:`DistributedError` naming the process and its error.
- :func:`twinnet.train.worker.main` is what each process runs (``-m twinnet.train.worker``):
  it joins the process group (gloo over the loopback interface on CPU, nccl with
  ``--device cuda``, GPU ``LOCAL_RANK`` for process ``LOCAL_RANK``), loads the data and
  trains with :func:`twinnet.train.run.train_in_process` (the one Trainer, with a
  :class:`twinnet.train.engines.torch.TorchStepper` over :class:`DistComm`).

What "the same global batch" means: batch ``i`` of epoch ``e`` is rows ``i*B ..
(i+1)*B`` of the shared permutation (``BatchLoader``'s); process ``r`` of ``N`` takes the
contiguous slice ``[i*B + n*r//N, i*B + n*(r+1)//N)`` of its ``n`` rows. Each process's
loss is its rows' summed loss times ``N / (rows in the batch)``; DDP averages the
gradients over the N processes, which makes them the gradient of the whole batch's
mean loss, so N processes take the steps one process takes (to float rounding).
BatchNorm is synchronised across processes on CUDA (SyncBatchNorm); on CPU each
process normalises with its own share's statistics (SyncBatchNorm needs a GPU).

Rank 0 writes the run folder and a small ``result.json`` in a private temporary
folder, from which :func:`launch` reports the outcome.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch

from twinnet.config import TrainConfig
from twinnet.train.engines.torch import Comm
from twinnet.train.engines.torch_env import thread_count

RESULT_FILE = "result.json"
TIMEOUT = timedelta(minutes=30)  # a collective that waits longer than this fails the run


class DistributedError(ChildProcessError):
    """A process of a data-parallel run failed (an OSError, so the CLI prints one line)."""


# -- the collective operations of one process --------------------------------------------------


class DistComm(Comm):
    """:class:`twinnet.train.engines.torch.Comm` over torch.distributed (initialised already)."""

    def __init__(self, device: torch.device):
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = device  # nccl needs its tensors on the GPU, gloo on the CPU

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda":
            # batch statistics over the whole global batch; the parameter objects and
            # names stay, so the optimiser built afterwards sees the same tensors
            # (the root is a Sequential: its BatchNorm1d children are swapped in place)
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return DistributedDataParallel(model, device_ids=[device.index])
        return DistributedDataParallel(model)

    def _tensor(self, values) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64, device=self.device)

    def sum(self, values: list[float]) -> list[float]:
        t = self._tensor(values)
        self.dist.all_reduce(t, op=self.dist.ReduceOp.SUM)
        return t.tolist()

    def broadcast(self, values: list[float]) -> list[float]:
        t = self._tensor(values)
        self.dist.broadcast(t, src=0)
        return t.tolist()

    def gather(self, array: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        parts = [torch.empty_like(t) for _ in range(self.world)]
        self.dist.all_gather(parts, t)
        return torch.stack(parts).cpu().numpy()


# -- the launching side ------------------------------------------------------------------------


def loopback_interface() -> str | None:
    """The name of the loopback network interface ("lo" on Linux, "lo0" on macOS)."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except (AttributeError, OSError):
        return None
    return next((n for n in names if n == "lo" or n.startswith("lo0")), None) or next(
        (n for n in names if n.startswith("lo")), None
    )


def launcher_command(nproc: int, worker_args: list[str]) -> list[str]:
    """``python -m torch.distributed.run`` for ``nproc`` local processes, rendezvous on
    127.0.0.1 at a port the OS picks (``:0``), no restarts."""
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "1",
        "--nproc-per-node", str(nproc),
        "--rdzv-backend", "c10d",
        "--rdzv-endpoint", "127.0.0.1:0",
        "--rdzv-id", f"twinnet-{uuid.uuid4().hex[:12]}",
        "--max-restarts", "0",
        "-m", "twinnet.train.worker", *worker_args,
    ]  # fmt: skip


def worker_env(config: TrainConfig) -> dict[str, str]:
    """The processes' environment: twinnet importable, threads shared out, loopback only."""
    import twinnet

    env = dict(os.environ)
    src = str(Path(twinnet.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"  # progress lines appear as they are printed
    # torch.distributed.run sets 1 thread per process unless told; give each its share
    env.setdefault("OMP_NUM_THREADS", str(thread_count(config.nproc)))
    lo = loopback_interface()
    if lo is not None:
        env.setdefault("GLOO_SOCKET_IFNAME", lo)
        if config.device.startswith("cuda"):
            env.setdefault("NCCL_SOCKET_IFNAME", lo)
    return env


def launch(
    config: TrainConfig, run_dir: Path, resume: bool = False, progress: bool = True, log=print
) -> dict:
    """Train ``config`` in ``config.nproc`` processes; the run folder and its config.toml
    exist. Returns rank 0's outcome (``status``, ``metrics``, ``message``, ``signal``: the
    fields of a ``RunResult``); raises DistributedError if a process failed."""
    run_dir = Path(run_dir).resolve()
    n = config.nproc
    if config.norm == "batch" and not config.device.startswith("cuda"):
        log(f"note: with --nproc {n} on CPU, BatchNorm uses each process's {config.batch_size // n}-row "
            "share of the batch for its statistics (SyncBatchNorm needs CUDA)")  # fmt: skip
    debug = bool(os.environ.get("TWINNET_DEBUG"))
    with tempfile.TemporaryDirectory(prefix="twinnet-ddp-") as tmp:
        status_dir = Path(tmp)
        args = ["--config", str(run_dir / "config.toml"), "--run-dir", str(run_dir), "--status-dir", tmp]
        args += ["--resume"] * resume + ["--progress"] * progress
        with open(status_dir / "launcher.log", "w+b") as launcher_log:
            out, copy_out = _progress_stream(status_dir)
            sys.stderr.flush()
            proc = subprocess.Popen(
                launcher_command(n, args), env=worker_env(config), stdin=subprocess.DEVNULL,
                stdout=out, stderr=None if debug else launcher_log,
                start_new_session=True,  # signals reach it from us only, once (see _wait)
            )  # fmt: skip
            try:
                signalled = _wait(proc)
            finally:
                if copy_out is not None:
                    copy_out.seek(0)
                    sys.stderr.write(copy_out.read().decode(errors="replace"))
                    copy_out.close()
            launcher_log.seek(0)
            launcher_text = launcher_log.read().decode(errors="replace")
        result_path = status_dir / RESULT_FILE
        if result_path.is_file():
            result = json.loads(result_path.read_text())
            return {"status": result["status"], "metrics": result["metrics"], "message": result["message"],
                    "signal": signalled or int(result.get("signal", 0))}  # fmt: skip
        if signalled:
            saved = (run_dir / "state" / "checkpoint.safetensors").is_file()
            msg = (f"interrupted; checkpoint saved. Continue with: twinnet train --resume {run_dir}"
                   if saved else f"interrupted before the first checkpoint; twinnet train --resume {run_dir} starts it again")  # fmt: skip
            return {"status": "interrupted", "metrics": {}, "message": msg, "signal": signalled}
        raise DistributedError(failure_message(status_dir, launcher_text, proc.returncode, n))


def _progress_stream(status_dir: Path):
    """Where the processes' stdout (rank 0's progress) goes: our stderr, or a file copied
    to sys.stderr afterwards when sys.stderr is not a real file (pytest's capture)."""
    try:
        return sys.stderr.fileno(), None
    except (AttributeError, OSError, ValueError):
        f = open(status_dir / "progress.log", "w+b")  # noqa: SIM115 - closed by launch
        return f, f


def _wait(proc: subprocess.Popen) -> int:
    """Wait for the launcher; pass the first SIGINT/SIGTERM on (the processes then stop
    after their current step and checkpoint). The first signal that arrived, or 0."""
    received: list[int] = []

    def handler(signum, frame):
        if not received:
            proc.send_signal(signum)
        received.append(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        proc.wait()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return int(received[0]) if received else 0


def failure_message(status_dir: Path, launcher_text: str, returncode: int, nproc: int) -> str:
    """One line: the first process to fail and its error, else the launcher's last word."""
    errors = []
    for path in status_dir.glob("rank*.error.json"):
        try:
            errors.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    hint = " (TWINNET_DEBUG=1 shows every process's output)"
    if errors:
        first = min(errors, key=lambda e: e["time"])  # the others usually fail because it did
        return f"--nproc {nproc}: process {first['rank']} failed: {first['error']}{hint}"
    lines = [ln.strip() for ln in launcher_text.splitlines() if ln.strip()]
    telling = [ln for ln in lines if "exitcode" in ln or "Error" in ln]
    detail = (telling or lines or [""])[-1]
    return f"--nproc {nproc}: torch.distributed.run exited with code {returncode}: {detail}{hint}"


__all__ = ["DistComm", "DistributedError", "launch"]
