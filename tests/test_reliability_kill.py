"""Interruptions of `twinnet train`: SIGINT/SIGTERM, SIGKILL at 20 moments, death mid-write.

The victim is always the same small run (spirals, 2-32-32-3 MLP with dropout, 264 steps,
a checkpoint every 5 steps). After every interruption the checkpoint on disk must load
(never corrupt), and continuing with ``--resume`` must end bit-identical (every weight
and history.csv byte for byte) to a run that was never interrupted.

Bit-identity across processes needs the same floating-point path: every process here
runs BLAS with one thread (env vars for the victims, threadpoolctl for in-process runs),
and the final plot is skipped in-process (it is written after the weights and costs a
second per run; it plays no part in resuming).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from twinnet.checkpoint import load_tensors
from twinnet.cli.main import main
from twinnet.train.state import load_state

ARGS = [
    "--dataset", "spirals", "--layers", "2,32,32,3", "--n-samples", "2000", "--epochs", "3",
    "--batch-size", "16", "--checkpoint-every", "5", "--dropout", "0.1", "--quiet",
]  # fmt: skip
STEPS = 3 * -(-1400 // 16)  # 3 epochs of 88 batches (70% of 2000 samples train)
ENV = {
    **os.environ,
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
STATE = Path("state") / "checkpoint.safetensors"


def victim(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "twinnet.cli.main", "train", *ARGS, "--out", str(out), *extra]
    return subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def in_process(args: list[str]) -> int:
    """`twinnet ARGS` in this process: one BLAS thread, no plot."""
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(1):
        mp.setattr("twinnet.train.plots.plot_curves", lambda *a, **k: None)
        return main([str(a) for a in args])


def weights_sha256(path: Path) -> str:
    """Checksum of a weights file's tensors (names, dtypes, shapes, bytes), not of its metadata."""
    tensors, _ = load_tensors(path)
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{t.dtype.str}|{t.shape}|".encode())
        h.update(t.tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The uninterrupted run: its checksum, history bytes and training time."""
    out = tmp_path_factory.mktemp("reference") / "run"
    t0 = time.perf_counter()
    assert in_process(["train", *ARGS, "--out", out]) == 0
    return {
        "dir": out,
        "sha256": weights_sha256(out / "model.safetensors"),
        "history": (out / "history.csv").read_bytes(),
        "seconds": time.perf_counter() - t0,
    }


def assert_matches_reference(out: Path, reference: dict) -> None:
    assert weights_sha256(out / "model.safetensors") == reference["sha256"]
    assert (out / "history.csv").read_bytes() == reference["history"]


def check_on_disk_after_kill(out: Path, reference: dict) -> dict:
    """What a killed run left behind must be usable: returns facts about it."""
    facts = {"state": None, "temp_files": []}
    if (out / "state").is_dir():
        facts["temp_files"] = sorted(
            p.name for p in (out / "state").iterdir() if p.name.endswith(".tmp")
        )
    if (out / STATE).exists():
        state = load_state(out / STATE)  # never corrupt: the full validation passes
        assert 0 < state["global_step"] <= STEPS
        facts["state"] = state["global_step"]
    if (out / "history.csv").exists():  # written at epoch ends: a prefix of the reference
        got = (out / "history.csv").read_bytes()
        assert reference["history"].startswith(got) and got.count(b"\n") >= 2
    if (out / "model.safetensors").exists():  # killed after the end of training
        assert weights_sha256(out / "model.safetensors") == reference["sha256"]
    return facts


def continue_run(out: Path, capsys) -> str:
    """Resume if there is anything to resume, else start again: returns what was done."""
    if (out / "config.toml").exists() and not (out / STATE).exists():
        # killed before the first checkpoint: --resume starts it again from step 0, with a note
        assert in_process(["train", "--resume", out, "--quiet"]) == 0
        assert "before its first checkpoint" in capsys.readouterr().out
        return "restarted by --resume"
    if (out / STATE).exists():
        assert in_process(["train", "--resume", out, "--quiet"]) == 0
        return "resumed"
    assert in_process(["train", *ARGS, "--out", out]) == 0
    return "restarted"


# -- SIGINT / SIGTERM: clean stop, checkpoint, exit 130 (Ctrl-C) or 143 (SIGTERM) ---------------------


# the victim signals itself right after its 7th optimiser step (between the checkpoints of
# steps 5 and 10): a real signal at a known moment, however fast the run (a signal sent
# from here after polling for a checkpoint can arrive after a fast run has finished)
_SIGNALS_AFTER_STEP_7 = """
import os, signal, sys, time
from twinnet.optim.optimizer import Optimizer
real_step = Optimizer.step
steps = []
def step(self, closure=None):
    loss = real_step(self, closure)
    steps.append(1)
    if len(steps) == 7:
        for name in os.environ["SIGNALS"].split(","):
            os.kill(os.getpid(), getattr(signal, name))
            time.sleep(0.01)
    return loss
Optimizer.step = step
from twinnet.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signals", [["SIGINT"], ["SIGTERM"], ["SIGINT", "SIGINT"]])
def test_signal_saves_checkpoint_exits_130_or_143_and_resume_is_bit_identical(
    tmp_path, reference, signals, capsys
):
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", _SIGNALS_AFTER_STEP_7, "train", *ARGS, "--out", str(out)]
    proc = subprocess.run(cmd, env={**ENV, "SIGNALS": ",".join(signals)}, capture_output=True, text=True, timeout=120)
    err = proc.stderr
    state = load_state(out / STATE)
    if len(signals) == 1:
        assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[signals[0]], err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith("interrupted at epoch ") and lines[0].endswith(
            f"twinnet train --resume {out}"
        )
        step = int(lines[0].split("step ")[1].split(";")[0])
        assert state["global_step"] == step == 7  # saved where it stopped, not at step 5
    else:
        # the second Ctrl-C lands after the trainer gave SIGINT back to Python: exit 130 from
        # main, or death by SIGINT (-2; a shell shows 130 too). Either way the checkpoint is whole.
        assert proc.returncode in (130, -signal.SIGINT), err
    assert not (out / "model.safetensors").exists()

    assert in_process(["train", "--resume", out, "--quiet"]) == 0
    assert_matches_reference(out, reference)


# -- SIGKILL at 20 moments ---------------------------------------------------------------------


def kill_plan(seed: int = 20240611, n: int = 20) -> list[tuple[str, float]]:
    """(mode, delay): 2 kills during start-up (delay from launch, before any checkpoint),
    14 at a delay after training started (config.toml written), spread over the whole run,
    4 at the first sight of a checkpoint temp file after a delay (inside a checkpoint write)."""
    rng = np.random.default_rng(seed)
    plan = [("startup", d) for d in rng.uniform(0.05, 0.3, 2)]
    plan += [("training", f) for f in rng.uniform(0.0, 1.1, 14)]  # fraction of the training time
    plan += [("in-write", f) for f in rng.uniform(0.0, 0.9, 4)]
    order = rng.permutation(n)
    return [plan[i] for i in order]


def test_sigkill_at_20_moments_then_resume_is_bit_identical(tmp_path, reference, capsys):
    train_seconds = reference["seconds"]
    plan = kill_plan()
    pending = list(enumerate(plan))
    running: dict[int, dict] = {}
    done: dict[int, dict] = {}
    while pending or running:
        while len(running) < 2 and pending:  # two victims at a time (two cores)
            i, (mode, x) = pending.pop(0)
            out = tmp_path / f"victim{i:02d}"
            running[i] = {
                "mode": mode,
                "x": x,
                "out": out,
                "proc": victim(out),
                "t0": time.perf_counter(),
                "t_train": None,
            }
        for i, v in list(running.items()):
            now, proc, out = time.perf_counter(), v["proc"], v["out"]
            if v["t_train"] is None and (out / "config.toml").exists():
                v["t_train"] = now
            if v["mode"] == "startup":
                fire = now - v["t0"] >= v["x"]
            elif v["t_train"] is None:
                fire = False
            elif v["mode"] == "training":
                fire = now - v["t_train"] >= v["x"] * train_seconds
            else:  # in-write: wait for the delay, then for a temp file of the checkpoint
                fire = now - v["t_train"] >= v["x"] * train_seconds and any(
                    p.name.startswith(".checkpoint.safetensors.")
                    for p in (out / "state").glob("*.tmp")
                )
            if fire and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            if proc.poll() is not None:
                proc.communicate()
                v["returncode"] = proc.returncode
                v["seconds"] = now - v["t0"]
                done[i] = running.pop(i)
        time.sleep(0.0005)

    outcomes = []
    for i in sorted(done):
        v = done[i]
        assert v["returncode"] in (0, -signal.SIGKILL), (i, v["returncode"])
        facts = check_on_disk_after_kill(v["out"], reference)
        action = continue_run(v["out"], capsys)
        assert_matches_reference(v["out"], reference)
        # the next write of each file removed its leftovers (curves.png excepted: the
        # in-process resume skips the plot, so a victim killed while plotting keeps one)
        leftovers = sorted(
            str(p.relative_to(v["out"])) for p in v["out"].rglob("*.tmp") if not p.name.startswith(".curves.png.")
        )
        assert leftovers == [], leftovers
        outcomes.append(
            (i, v["mode"], v["returncode"], facts["state"], facts["temp_files"], action)
        )

    report = "\n".join(
        f"victim {i:2d} {mode:<8} exit {rc:>3}  checkpoint at step {step}  temp files {tmps}  -> {action}"
        for i, mode, rc, step, tmps, action in outcomes
    )
    print(report)  # visible with -s: the table in docs/reliability.md comes from it
    killed_mid_run = [o for o in outcomes if o[2] == -signal.SIGKILL and o[3] is not None]
    assert len(outcomes) == 20
    assert len(killed_mid_run) >= 10, report  # most kills land between checkpoints, as planned


# -- death in the middle of a checkpoint write (deterministic) ----------------------------------------

_DIE_ON_THIRD_RENAME = """
import os, sys
real_replace = os.replace
renames = []
def replace(src, dst):
    if str(dst).endswith("checkpoint.safetensors"):
        renames.append(dst)
        if len(renames) == 3:  # the temp file is complete and fsync'ed, the rename not done
            os._exit(137)
    real_replace(src, dst)
os.replace = replace
from twinnet.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_death_between_write_and_rename_keeps_the_previous_checkpoint(tmp_path, reference, capsys):
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", _DIE_ON_THIRD_RENAME, "train", *ARGS, "--out", str(out)]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr
    temps = list((out / "state").glob(".checkpoint.safetensors.*.tmp"))
    assert len(temps) == 1  # the complete new checkpoint, never renamed
    assert (
        load_state(out / STATE)["global_step"] == 10
    )  # the second save (steps 5, 10, dying at 15)
    assert in_process(["train", "--resume", out, "--quiet"]) == 0
    assert_matches_reference(out, reference)
    assert not temps[0].exists()  # removed by the next save


# -- same seed, same config: same weights ------------------------------------------------------------


def test_same_seed_same_config_gives_identical_weights_across_processes(tmp_path, reference):
    procs = {name: victim(tmp_path / name) for name in ("a", "b")}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err)
    a, b = (weights_sha256(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    assert a == b == reference["sha256"]  # two processes and this one agree bit for bit
    assert in_process(["train", *ARGS, "--seed", "1", "--out", tmp_path / "seed1"]) == 0
    assert weights_sha256(tmp_path / "seed1" / "model.safetensors") != a  # the checksum can fail


def test_torch_engine_same_seed_gives_identical_weights(tmp_path):
    """--engine torch seeds torch (weights, dropout) and the data order from the one --seed."""
    pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
    args = ["--dataset", "spirals", "--layers", "2,16,3", "--n-samples", "600", "--epochs", "2",
            "--batch-size", "32", "--dropout", "0.1", "--engine", "torch", "--quiet"]  # fmt: skip
    for name, seed in (("a", "0"), ("b", "0"), ("seed1", "1")):
        assert in_process(["train", *args, "--seed", seed, "--out", tmp_path / name]) == 0
    a, b, c = (weights_sha256(tmp_path / n / "model.safetensors") for n in ("a", "b", "seed1"))
    assert a == b != c
    assert (tmp_path / "a" / "history.csv").read_bytes() == (
        tmp_path / "b" / "history.csv"
    ).read_bytes()


# -- the torch engine: SIGKILL at several moments, then --resume, bit-identical ----------------------

# `twinnet train` that SIGKILLs itself right after its Nth checkpoint is on disk (a known moment)
_SIGKILL_AFTER_NTH_CHECKPOINT = """
import os, signal, sys
real_replace = os.replace
saves = []
def replace(src, dst):
    real_replace(src, dst)
    if str(dst).endswith("checkpoint.safetensors"):
        saves.append(dst)
        if len(saves) == int(os.environ["KILL_AFTER_CHECKPOINTS"]):
            os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from twinnet.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def torch_reference(tmp_path_factory) -> dict:
    pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
    out = tmp_path_factory.mktemp("torch-reference") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TWINNET_NUM_THREADS", "1")
        assert in_process(["train", *ARGS, "--engine", "torch", "--out", out]) == 0
    return {"sha256": weights_sha256(out / "model.safetensors"), "history": (out / "history.csv").read_bytes()}


# checkpoints every 5 steps and at each epoch end (88 steps an epoch): the 1st is at step 5
# (epoch 1), the 18th at the end of epoch 1 (step 88), the 30th at step 145 (mid epoch 2)
@pytest.mark.parametrize("kill_after", [1, 18, 30])
def test_torch_engine_sigkill_then_resume_is_bit_identical(tmp_path, torch_reference, capsys, kill_after):
    out = tmp_path / "run"
    env = {**ENV, "TWINNET_NUM_THREADS": "1", "KILL_AFTER_CHECKPOINTS": str(kill_after)}
    cmd = [sys.executable, "-c", _SIGKILL_AFTER_NTH_CHECKPOINT, "train", *ARGS, "--engine", "torch", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    state = load_state(out / STATE)
    assert state["engine"] == "torch" and not (out / "model.safetensors").exists()
    assert state["global_step"] == {1: 5, 18: 88, 30: 145}[kill_after]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TWINNET_NUM_THREADS", "1")
        assert in_process(["train", "--resume", out, "--quiet"]) == 0
    assert weights_sha256(out / "model.safetensors") == torch_reference["sha256"]
    assert (out / "history.csv").read_bytes() == torch_reference["history"]
