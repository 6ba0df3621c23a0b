"""The torch training engine (`--engine torch`, `--nproc N`) against the NumPy engine and itself.

- one MNIST epoch with the same seed and data order: both engines within 0.3 points;
- 2 processes (DDP, gloo over loopback) reach the weights of 1 process with the same
  global batch (float64, uneven shares of every batch);
- the run folder has the NumPy engine's files, metrics keys, tensor names and metadata;
- an interrupted run resumes bit-identical to an uninterrupted one;
- `--device cuda` without a GPU, and a failing process, end in one clear error line.
"""

import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")

from twinnet.checkpoint import load_tensors, load_weights, read_metadata  # noqa: E402
from twinnet.cli.main import main  # noqa: E402
from twinnet.config import TrainConfig  # noqa: E402
from twinnet.train.engines import torch_env as engine  # noqa: E402
from twinnet.train.engines.torch import TorchStepper  # noqa: E402
from twinnet.train.run import run_training  # noqa: E402
from twinnet.train.setup import make_model  # noqa: E402

pytestmark = pytest.mark.torch

MNIST = Path(os.environ.get("TWINNET_DATA", "/nonexistent")) / "mnist"
DIGITS = dict(dataset="digits", layers=[64, 32, 10], batch_size=32, lr=0.01, epochs=2, seed=3)


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    return load_tensors(run_dir / "model.safetensors")[0]


@pytest.fixture
def one_thread(monkeypatch):
    """One torch thread: on a busy 2-core machine (CI running tests in parallel) spinning
    OpenMP threads make torch many times slower; small models gain nothing from two."""
    monkeypatch.setenv("TWINNET_NUM_THREADS", "1")


# -- (1) the two engines agree on MNIST -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    not (MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="real MNIST not found: set TWINNET_DATA to a folder holding mnist/",
)
def test_one_mnist_epoch_numpy_and_torch_agree_within_0_3_points(tmp_path, one_thread):
    config = TrainConfig(layers=[784, 512, 256, 10], epochs=1, seed=0)  # batch 128, Adam, cosine
    ours = run_training(config, out=tmp_path / "numpy", progress=False)
    theirs = run_training(config.replace(engine="torch"), out=tmp_path / "torch", progress=False)
    assert ours.status == theirs.status == "completed"
    a, b = ours.metrics["test_accuracy"], theirs.metrics["test_accuracy"]
    print(f"MNIST 1 epoch test accuracy: numpy {a:.4f}, torch {b:.4f}, diff {abs(a - b) * 100:.2f} points")
    assert a > 0.95 and b > 0.95
    assert abs(a - b) <= 0.003
    assert theirs.metrics["steps"] == ours.metrics["steps"] == 422  # 54000 / 128, same batches


# -- (2) N processes take the steps of one ---------------------------------------------------


def test_two_processes_reach_the_weights_of_one_process(tmp_path, one_thread):
    # batch 33 over 2 processes: shares of 16 and 17 rows, the last batch (1079 % 33 = 23)
    # 11 and 12; weight decay, clipping and the cosine schedule act on the averaged gradient
    config = TrainConfig(**{**DIGITS, "batch_size": 33}, dtype="float64", engine="torch",
                         weight_decay=1e-3, clip_grad_norm=1.0)  # fmt: skip
    one = run_training(config, out=tmp_path / "one", progress=False)
    two = run_training(config.replace(nproc=2), out=tmp_path / "two", progress=False)
    assert one.status == two.status == "completed", two.message
    assert two.metrics["nproc"] == 2 and two.metrics["steps"] == one.metrics["steps"] == 2 * 33
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert w1.keys() == w2.keys()
    for name in w1:
        np.testing.assert_allclose(w2[name], w1[name], rtol=1e-9, atol=1e-12, err_msg=name)
    # the optimiser moved the weights far more than the difference (the check can fail)
    start = make_model(config).state_dict()
    assert min(np.abs(w1[k] - start[k]).max() for k in w1) > 1e-3
    h1 = (tmp_path / "one" / "history.csv").read_text().splitlines()
    h2 = (tmp_path / "two" / "history.csv").read_text().splitlines()
    assert h1[0] == h2[0] and len(h1) == len(h2) == 3
    for r1, r2 in zip(h1[1:], h2[1:], strict=True):
        np.testing.assert_allclose([float(v) for v in r2.split(",")], [float(v) for v in r1.split(",")], rtol=1e-9)


def test_a_failing_process_is_one_clear_error(tmp_path, one_thread):
    from twinnet.train.engines.ddp import DistributedError, launch

    config = TrainConfig(**DIGITS, engine="torch", nproc=2)
    tmp_path.joinpath("run").mkdir()  # no config.toml: every process fails to read it
    with pytest.raises(DistributedError) as info:
        launch(config, tmp_path / "run", progress=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("--nproc 2: process ")
    assert "config file not found" in message
    assert isinstance(info.value, OSError)  # the CLI prints such errors as one line, exit 2


# -- (3) the run folder ---------------------------------------------------------------------


def test_run_folder_matches_the_numpy_engine(tmp_path, capsys):  # default threads: the cores
    # BatchNorm: its buffers (running_mean, running_var, num_batches_tracked) are saved too
    config = TrainConfig(**{**DIGITS, "epochs": 1}, norm="batch")
    ours = run_training(config, out=tmp_path / "numpy", progress=False)
    theirs = run_training(config.replace(engine="torch"), out=tmp_path / "torch", progress=False)
    files = ["config.toml", "history.csv", "metrics.json", "model.safetensors", "best.safetensors",
             "curves.png", "state/checkpoint.safetensors"]  # fmt: skip
    for name in files:
        assert (tmp_path / "torch" / name).is_file(), name
    m_np = json.loads((tmp_path / "numpy" / "metrics.json").read_text())
    m_t = json.loads((tmp_path / "torch" / "metrics.json").read_text())
    assert set(m_t) == set(m_np) | {"device", "nproc"}
    assert m_t == theirs.metrics and m_t["engine"] == "torch" and m_t["device"] == "cpu" and m_t["nproc"] == 1
    assert m_t["parameters"] == m_np["parameters"] == 64 * 32 + 2 * 32 + 32 * 10 + 10  # no bias before BatchNorm
    assert ours.metrics["steps"] == m_t["steps"]
    head = [(tmp_path / d / "history.csv").read_text().splitlines()[0] for d in ("numpy", "torch")]
    assert head[0] == head[1] == "epoch,step,lr,train_loss,train_accuracy,val_loss,val_accuracy"
    assert TrainConfig.from_toml(tmp_path / "torch" / "config.toml") == config.replace(engine="torch")

    # the same tensor names, shapes and dtypes (load_weights checks them) and metadata
    for name in ("model.safetensors", "best.safetensors"):
        meta_t = load_weights(tmp_path / "torch" / name, make_model(config))
        meta_np = read_metadata(tmp_path / "numpy" / name)
        assert meta_t.keys() == meta_np.keys()
        assert {k: meta_t[k] for k in ("format", "task", "scaler", "classes")} == {
            k: meta_np[k] for k in ("format", "task", "scaler", "classes")
        }
    w_t, w_np = weights(tmp_path / "torch"), weights(tmp_path / "numpy")
    assert list(w_t) == list(w_np) and "1.num_batches_tracked" in w_t
    assert all(w_t[k].shape == w_np[k].shape and w_t[k].dtype == w_np[k].dtype for k in w_t)
    assert w_t["1.num_batches_tracked"] == w_np["1.num_batches_tracked"] == ours.metrics["steps"]
    state = read_metadata(tmp_path / "torch" / "state" / "checkpoint.safetensors")
    assert state["format"] == "twinnet-train-state" and json.loads(state["state"])["engine"] == "torch"

    # `twinnet eval` (the NumPy model) reads the torch run and finds its test accuracy
    assert main(["eval", str(tmp_path / "torch")]) == 0
    lines = capsys.readouterr().out.splitlines()
    accuracy = next(float(ln.split()[1]) for ln in lines if ln.split()[:1] == ["accuracy"])
    assert accuracy == pytest.approx(m_t["test_accuracy"], abs=1e-6)


# -- resume ---------------------------------------------------------------------------------


def test_interrupted_run_resumes_bit_identical(tmp_path, one_thread, monkeypatch):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed in the main thread")
    # dropout: the masks after the resume come from the restored torch RNG state
    config = TrainConfig(**DIGITS, dropout=0.2, engine="torch", checkpoint_every=0)
    full = run_training(config, out=tmp_path / "full", progress=False)
    assert full.status == "completed"

    apply = TorchStepper.apply
    steps = []

    def step_then_ctrl_c(self):
        apply(self)
        steps.append(1)
        if len(steps) == 45:  # in epoch 2 (34 batches an epoch)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TorchStepper, "apply", step_then_ctrl_c)
    cut = run_training(config, out=tmp_path / "cut", progress=False)
    assert cut.status == "interrupted" and "--resume" in cut.message
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    monkeypatch.setattr(TorchStepper, "apply", apply)
    done = run_training(resume=tmp_path / "cut", progress=False, log=lambda line: None)
    assert done.status == "completed"
    assert (tmp_path / "cut" / "history.csv").read_bytes() == (tmp_path / "full" / "history.csv").read_bytes()
    w_full, w_cut = weights(tmp_path / "full"), weights(tmp_path / "cut")
    for name in w_full:
        assert np.array_equal(w_full[name], w_cut[name]), name
    assert done.metrics["test_accuracy"] == full.metrics["test_accuracy"]


# -- errors a user can cause ----------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_one_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--layers", "64,32,10", "--engine", "torch",
                 "--device", "cuda", "--out", str(out), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == ["twinnet: error: --device cuda: no CUDA device available"]
    assert not out.exists()  # checked before the run folder is made


def test_thread_count_respects_the_environment(monkeypatch):
    monkeypatch.delenv("TWINNET_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert engine.thread_count() == 3
    monkeypatch.setenv("TWINNET_NUM_THREADS", "5")
    assert engine.thread_count(nproc=2) == 5
    monkeypatch.delenv("TWINNET_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert engine.thread_count(nproc=1) == engine.available_cores()
    monkeypatch.setenv("TWINNET_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="TWINNET_NUM_THREADS"):
        engine.thread_count()
