"""The studio's speed: panel updates per second, and training throughput with the studio
attached against the same training without it.

    python benchmarks/studio.py            # 3 rounds of 8 s each (about 1 minute)
    python benchmarks/studio.py --quick    # 1 round of 3 s

Setup: the playground's default 2-D network (spirals, 2-8-8-3 tanh, Adam, batch 16) with
every panel: the 100x100 decision-boundary map, each hidden unit's 32x32 map, curves on
the full train and validation sets, the diagnostics probe and its findings.

- updates/s: a real studio server (``twinnet studio`` in a subprocess, as a person runs
  it) and a WebSocket client here that reads every message, as a browser would; the
  number of snapshot messages the client received per second of training. Target >= 5.
- throughput: optimiser steps per second of ``Trainer.fit`` alone (no callbacks, in this
  process, one BLAS thread like the studio) and of the same training inside the studio
  with the client attached, in rounds that run both in turn. The ratio (median over
  rounds) has the target >= 80%. On a shared machine the wall-clock ratio swings with
  the other load, so the ratio of steps per CPU-second is printed too: training steps
  per second of CPU used by the whole studio process (worker, event loop) against
  steps per CPU-second of the bare loop.
- snapshot ms: the time to compute one snapshot (every panel) in the worker thread.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import psutil
from threadpoolctl import threadpool_limits
from websockets.sync.client import connect

from twinnet.studio.session import PlaygroundSession
from twinnet.studio.settings import validate

SETTINGS = {"dataset": "spirals", "epochs": 100000}  # otherwise the defaults


def bare_steps_per_second(seconds: float) -> float:
    """(steps per wall second, steps per CPU second) of Trainer.fit on the same model,
    data and optimiser, no studio."""
    session = PlaygroundSession(validate(SETTINGS), lambda text: None)
    trainer, pd = session.trainer, session.pd
    trainer.callbacks = [cb for cb in trainer.callbacks if type(cb).__name__ != "StudioCallback"]

    class Timer:  # stops fit after `seconds` (checked every batch: the only added cost)
        def on_fit_begin(self, t):
            self.start, self.cpu = time.perf_counter(), time.thread_time()

        def on_batch_end(self, t, logs):
            if time.perf_counter() - self.start >= seconds:
                t.stop_training = True

    timer = Timer()
    trainer.callbacks.append(timer)
    trainer.fit((pd.x_train, session.y_train), (pd.x_val, session.y_val), epochs=10**9, batch_size=16)
    wall, cpu = time.perf_counter() - timer.start, time.thread_time() - timer.cpu
    return trainer.global_step / wall, trainer.global_step / cpu


def studio_round(url: str, pid: int, seconds: float) -> tuple[float, float, float]:
    """(steps per wall second, steps per CPU second of the studio process, updates/s) of
    a playground session over a WebSocket with a reading client."""
    server = psutil.Process(pid)
    with connect(url.replace("http", "ws", 1) + "/ws/playground", max_size=None) as ws:
        ws.send(json.dumps({"type": "settings", "settings": SETTINGS}))
        json.loads(ws.recv(timeout=60)), json.loads(ws.recv(timeout=60))  # dataset, ready
        ws.send(json.dumps({"type": "start"}))
        first = json.loads(ws.recv(timeout=60))
        start, step0, updates = time.perf_counter(), first["step"], 0
        cpu0 = sum(server.cpu_times()[:2])
        last = first
        while time.perf_counter() - start < seconds:
            msg = json.loads(ws.recv(timeout=60))
            if msg["type"] == "update":
                updates, last = updates + 1, msg
        elapsed, cpu = time.perf_counter() - start, sum(server.cpu_times()[:2]) - cpu0
        ws.send(json.dumps({"type": "pause"}))
    steps = last["step"] - step0
    return steps / elapsed, steps / cpu, updates / elapsed


def thread_cpu_round(seconds: float) -> tuple[float, float]:
    """(steps per CPU second of the training thread, share of that thread's CPU spent on
    snapshots) of a session in this process, publishing to nowhere. CPU time of one
    thread does not swing with the machine's other load as wall time does."""
    session = PlaygroundSession(validate(SETTINGS), lambda text: None)
    session.start()
    time.sleep(seconds)
    session.close()
    return session.trainer.global_step / session.worker_cpu, session.snapshot_cpu / session.worker_cpu


def snapshot_ms(repeats: int = 20) -> float:
    session = PlaygroundSession(validate(SETTINGS), lambda text: None)
    for _ in range(3):
        session.publish_snapshot()
    t = time.perf_counter()
    for _ in range(repeats):
        session.publish_snapshot()
    return 1000 * (time.perf_counter() - t) / repeats


@contextmanager
def studio_process():
    """``twinnet studio`` in a subprocess; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runs = tempfile.mkdtemp(prefix="studio-bench-")
    cmd = [sys.executable, "-m", "twinnet.cli.main", "studio", runs, "--no-browser", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "twinnet studio: http://127.0.0.1:PORT/ ..." once it listens
        if "http://" not in line:
            raise RuntimeError(f"the studio did not start: {line!r}")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    args = parser.parse_args()
    rounds, seconds = (1, 3.0) if args.quick else (3, 8.0)
    ratios, cpu_ratios, bare_all, studio_all, updates_all = [], [], [], [], []
    threadpool_limits(1)
    with studio_process() as (url, pid):
        for r in range(rounds):
            bare, bare_cpu = bare_steps_per_second(seconds)
            steps, steps_cpu, updates = studio_round(url, pid, seconds)
            ratios.append(steps / bare), cpu_ratios.append(steps_cpu / bare_cpu)
            bare_all.append(bare), studio_all.append(steps), updates_all.append(updates)
            print(f"round {r + 1}: bare {bare:.0f} steps/s ({bare_cpu:.0f} per CPU s), studio {steps:.0f} "
                  f"steps/s ({steps_cpu:.0f} per CPU s): {100 * steps / bare:.0f}% wall, "
                  f"{100 * steps_cpu / bare_cpu:.0f}% CPU; {updates:.1f} updates/s", flush=True)  # fmt: skip
    cpu_bare, cpu_studio, shares = [], [], []
    for _ in range(rounds):
        cpu_bare.append(bare_steps_per_second(seconds)[1])
        steps, share = thread_cpu_round(seconds)
        cpu_studio.append(steps), shares.append(share)
    print(f"\ntraining thread, in CPU time: bare {statistics.median(cpu_bare):.0f} steps per CPU s, with the studio "
          f"{statistics.median(cpu_studio):.0f} ({100 * statistics.median(cpu_studio) / statistics.median(cpu_bare):.0f}%); "
          f"snapshots take {100 * statistics.median(shares):.0f}% of the thread's CPU")  # fmt: skip
    ms = snapshot_ms()
    print(f"snapshot (every panel, 100x100 map): {ms:.1f} ms")
    print(f"updates per second: {statistics.median(updates_all):.1f} (target >= 5)")
    print(f"throughput with the studio: {100 * statistics.median(ratios):.0f}% of bare Trainer.fit "
          f"({statistics.median(studio_all):.0f} vs {statistics.median(bare_all):.0f} steps/s; target >= 80%)")  # fmt: skip
    print(f"steps per CPU second of the studio process: {100 * statistics.median(cpu_ratios):.0f}% of bare Trainer.fit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
