"""One process of a data-parallel run: ``python -m twinnet.train.worker`` (started by
:func:`twinnet.train.engines.ddp.launch` through ``torch.distributed.run``).

It joins the process group, loads the data and trains with the one Trainer
(:func:`twinnet.train.run.train_in_process`, a ``TorchStepper`` over ``DistComm``).
Rank 0 writes the run folder and ``result.json`` into the launcher's status folder; a
failing process writes ``rank<N>.error.json`` there, which the launcher turns into one
clear error line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

from twinnet.config import TrainConfig
from twinnet.train.engines.ddp import RESULT_FILE, TIMEOUT, DistComm
from twinnet.train.engines.torch_env import torch_settings
from twinnet.train.run import load_splits, train_in_process


def worker_device(device: str, local_rank: int) -> torch.device:
    """This process's device: the CPU, or GPU ``local_rank``."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA device available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Entry point of one process, started by torch.distributed.run (reads RANK,
    WORLD_SIZE, LOCAL_RANK and the rendezvous from the environment)."""
    parser = argparse.ArgumentParser(prog="python -m twinnet.train.worker", description=main.__doc__)
    parser.add_argument("--config", required=True, help="the run's config.toml")
    parser.add_argument("--run-dir", required=True, help="the run folder (rank 0 writes it)")
    parser.add_argument("--status-dir", required=True, help="where result.json and error reports go")
    parser.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    parser.add_argument("--progress", action="store_true", help="rank 0 shows progress on stdout")
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    status_dir = Path(args.status_dir)
    reported = False
    try:
        import torch.distributed as dist


        config = TrainConfig.from_toml(args.config)
        device = worker_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        with torch_settings(device, config.nproc):
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT,
                                    device_id=device if device.type == "cuda" else None)  # fmt: skip
            try:
                splits = load_splits(config)
                result = train_in_process(
                    config, splits, Path(args.run_dir), resume=args.resume, progress=args.progress,
                    device=device, comm=DistComm(device), progress_file=sys.stdout,
                )  # fmt: skip
            except BaseException as e:
                _report(status_dir, rank, e)  # before the group goes: the others fail after us
                reported = True
                raise
            finally:
                dist.destroy_process_group()
        if result is not None:
            doc = {"status": result.status, "metrics": result.metrics, "message": result.message,
                   "signal": result.signal}  # fmt: skip
            _write_json(status_dir / RESULT_FILE, doc)
        return 0
    except BaseException as e:
        if not reported:
            _report(status_dir, rank, e)
        traceback.print_exc()  # to the launcher's log (shown with TWINNET_DEBUG=1)
        return 1


def _report(status_dir: Path, rank: int, e: BaseException) -> None:
    message = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, KeyboardInterrupt):
        message = "interrupted"
    elif not isinstance(e, ValueError | TypeError | OSError | KeyError):
        message = f"{type(e).__name__}: {message}"
    doc = {"time": time.time(), "rank": rank, "error": message}
    try:
        _write_json(status_dir / f"rank{rank}.error.json", doc)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
