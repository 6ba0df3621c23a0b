"""`twinnet train / eval / predict / gradcheck` end to end, and every bad input a user can cause."""

import gzip
import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from twinnet.checkpoint import load_tensors
from twinnet.cli.main import main

MNIST = Path(os.environ.get("TWINNET_DATA", "/nonexistent")) / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="real MNIST not found: set TWINNET_DATA to a folder holding mnist/",
)
DIGITS = ["--dataset", "digits", "--layers", "64,32,10", "--batch-size", "32", "--lr", "0.01", "--quiet"]


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", *DIGITS, "--epochs", "3", "--out", out], capsys)
    assert code == 0, err
    assert "test accuracy" in stdout
    for name in ("config.toml", "history.csv", "metrics.json", "model.safetensors", "best.safetensors", "curves.png"):
        assert (out / name).is_file(), name
    assert (out / "state" / "checkpoint.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_seconds", "epochs", "samples_per_second", "best_epoch"):
        assert key in metrics, key
    assert metrics["epochs"] == 3 and metrics["test_accuracy"] > 0.85
    config = tomllib.loads((out / "config.toml").read_text())["train"]
    assert config["dataset"] == "digits" and config["layers"] == [64, 32, 10] and config["epochs"] == 3
    tensors, meta = load_tensors(out / "model.safetensors")
    assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert tensors["0.weight"].shape == (32, 64) and tensors["0.weight"].dtype == np.float32
    assert meta["format"] == "twinnet-weights"
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["epoch", "step", "lr", "train_loss"] and "val_accuracy" in header


def test_same_seed_gives_identical_history_and_weights(tmp_path, capsys):
    for name in ("a", "b"):
        assert run_cli(["train", *DIGITS, "--epochs", "2", "--dropout", "0.2", "--out", tmp_path / name], capsys)[0] == 0
    assert (tmp_path / "a" / "history.csv").read_bytes() == (tmp_path / "b" / "history.csv").read_bytes()
    a, _ = load_tensors(tmp_path / "a" / "model.safetensors")
    b, _ = load_tensors(tmp_path / "b" / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    run_cli(["train", *DIGITS, "--epochs", "2", "--dropout", "0.2", "--seed", "1", "--out", tmp_path / "c"], capsys)
    c, _ = load_tensors(tmp_path / "c" / "model.safetensors")
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_flags_override_the_config_file(tmp_path, capsys):
    cfg = tmp_path / "my.toml"
    cfg.write_text('[train]\ndataset = "digits"\nlayers = [64, 16, 10]\nlr = 0.01\nepochs = 1\noptimizer = "sgd"\n')
    code, _, err = run_cli(["train", "--config", cfg, "--epochs", "2", "--quiet", "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    saved = tomllib.loads((tmp_path / "r" / "config.toml").read_text())["train"]
    assert saved["lr"] == 0.01 and saved["epochs"] == 2 and saved["optimizer"] == "sgd" and saved["layers"] == [64, 16, 10]


def test_eval_prints_metrics_and_confusion_matrix(tmp_path, capsys):
    out = tmp_path / "run"
    run_cli(["train", *DIGITS, "--epochs", "2", "--out", out], capsys)
    code, stdout, err = run_cli(["eval", out], capsys)
    assert code == 0, err
    assert "accuracy" in stdout and "confusion matrix" in stdout
    rows = [line.split() for line in stdout.splitlines() if line.strip()[:1].isdigit()]
    matrix = np.array([[int(v) for v in row[1:]] for row in rows[-10:]])
    n_test = int(stdout.split("test set (")[1].split()[0])
    assert 300 < n_test < 400  # digits: about 20% of 1797 held out for test
    assert matrix.shape == (10, 10) and matrix.sum() == n_test


def test_predict_npy_and_csv(tmp_path, capsys):
    from sklearn.datasets import load_digits

    out = tmp_path / "run"
    run_cli(["train", *DIGITS, "--epochs", "5", "--out", out], capsys)
    x, y = load_digits(return_X_y=True)
    np.save(tmp_path / "x.npy", x[:50])
    np.savetxt(tmp_path / "x.csv", x[:50], delimiter=",")
    for f in ("x.npy", "x.csv"):
        code, stdout, err = run_cli(["predict", out, tmp_path / f], capsys)
        assert code == 0, err
        labels = np.array([int(line.split("\t")[1]) for line in stdout.strip().splitlines()])
        assert len(labels) == 50 and np.mean(labels == y[:50]) > 0.85


# -- bad input: one line on stderr, exit code 2, no traceback, nothing half-written -----


def assert_clean_error(code, out, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("twinnet: error:") and "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--layers", "783,10", "--dataset", "digits"], ["'layers'", "64 features", "783"]),
        (["--layers", "64,32,7", "--dataset", "digits"], ["'layers'", "10 classes", "got 7"]),
        (["--activation", "swish", "--dataset", "digits", "--layers", "64,10"], ["'activation'", "swish"]),
        (["--lr", "-1"], ["'lr'", "-1"]),
        (["--dataset", "cifar"], ["unknown dataset", "cifar"]),
        (["--config", "missing.toml"], ["missing.toml"]),
    ],
)
def test_bad_training_input(tmp_path, capsys, args, fragments):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", *args, "--quiet", "--out", out], capsys)
    assert_clean_error(code, stdout, err, *fragments)
    assert not out.exists()


def test_unknown_and_malformed_config(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\nlearning_rate = 0.1\n')
    assert_clean_error(*run_cli(["train", "--config", cfg, "--out", tmp_path / "r"], capsys), "unknown config key 'learning_rate'", "c.toml")
    cfg.write_text("[train\nlr = \n")
    assert_clean_error(*run_cli(["train", "--config", cfg, "--out", tmp_path / "r"], capsys), "not valid TOML")
    cfg.write_text('[train]\nepochs = "ten"\n')
    assert_clean_error(*run_cli(["train", "--config", cfg, "--out", tmp_path / "r"], capsys), "'epochs'", "ten")
    assert not (tmp_path / "r").exists()


def _mnist_copy(tmp_path) -> Path:
    """A writable copy of MNIST (decompressed) to damage."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for gz in MNIST.glob("*.gz"):
        (folder / gz.name[:-3]).write_bytes(gzip.decompress(gz.read_bytes()))
    return folder


@needs_mnist
@pytest.mark.parametrize(
    "damage, fragments",
    [
        ("missing", ["train-labels-idx1-ubyte", "not found"]),
        ("truncated", ["train-images-idx3-ubyte"]),
        ("magic", ["train-images-idx3-ubyte", "magic"]),
        ("count", ["t10k-labels-idx1-ubyte"]),
    ],
)
def test_damaged_idx_files(tmp_path, capsys, monkeypatch, damage, fragments):
    monkeypatch.delenv("TWINNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TWINNET_MIRRORS", "http://127.0.0.1:9/")  # nothing listens: no download
    folder = _mnist_copy(tmp_path)
    images, labels = folder / "train-images-idx3-ubyte", folder / "t10k-labels-idx1-ubyte"
    if damage == "missing":
        (folder / "train-labels-idx1-ubyte").unlink()
    elif damage == "truncated":
        images.write_bytes(images.read_bytes()[:-1000])
    elif damage == "magic":
        raw = bytearray(images.read_bytes())
        raw[3] = 0x01
        images.write_bytes(bytes(raw))
    elif damage == "count":
        raw = labels.read_bytes()
        labels.write_bytes(raw[:4] + (9999).to_bytes(4, "big") + raw[8 : 8 + 9999])
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--data-dir", folder, "--epochs", "1", "--quiet", "--out", out], capsys)
    assert_clean_error(code, stdout, err, *fragments)
    assert not out.exists()


def test_nan_features_and_bad_labels_in_a_user_dataset(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4))
    x[17, 2] = np.nan
    np.savez(tmp_path / "bad.npz", x=x, y=rng.integers(0, 2, 100))
    code, stdout, err = run_cli(["train", "--dataset", tmp_path / "bad.npz", "--layers", "4,8,2", "--out", tmp_path / "r"], capsys)
    assert_clean_error(code, stdout, err, "NaN")
    assert not (tmp_path / "r").exists()


def test_predict_and_eval_errors(tmp_path, capsys):
    out = tmp_path / "run"
    run_cli(["train", *DIGITS, "--epochs", "1", "--out", out], capsys)
    np.save(tmp_path / "wide.npy", np.zeros((3, 65)))
    assert_clean_error(*run_cli(["predict", out, tmp_path / "wide.npy"], capsys), "64 features", "65")
    x = np.zeros((2, 64))
    x[1, 5] = np.inf
    np.savetxt(tmp_path / "inf.csv", x, delimiter=",")
    assert_clean_error(*run_cli(["predict", out, tmp_path / "inf.csv"], capsys), "NaN or inf")
    assert_clean_error(*run_cli(["predict", out, tmp_path / "nope.npy"], capsys), "nope.npy")
    assert_clean_error(*run_cli(["eval", tmp_path / "nowhere"], capsys), "run folder not found")
    (out / "model.safetensors").write_bytes(b"\x80\x04\x95 pickle payload, not safetensors")
    assert_clean_error(*run_cli(["eval", out], capsys), "not a safetensors file")


def test_resume_refusals(tmp_path, capsys):
    assert_clean_error(*run_cli(["train", "--resume", tmp_path], capsys), "no config.toml")
    out = tmp_path / "run"
    run_cli(["train", *DIGITS, "--epochs", "1", "--out", out], capsys)
    assert_clean_error(*run_cli(["train", *DIGITS, "--out", out], capsys), "already holds a run", "--resume")
    assert_clean_error(*run_cli(["train", "--resume", out, "--lr", "0.1"], capsys), "--lr")


def test_gradcheck_command(capsys):
    code, stdout, _ = run_cli(["gradcheck", "--layers", "6,5,3", "--activation", "gelu"], capsys)
    assert code == 0 and "gradcheck PASSED" in stdout and "0.weight" in stdout


# -- kill and resume ----------------------------------------------------------------------


def _train_cmd(out, *extra):
    return [
        sys.executable, "-m", "twinnet.cli.main", "train", "--dataset", "spirals", "--layers", "2,64,64,3",
        "--epochs", "3", "--batch-size", "16", "--dropout", "0.1", "--checkpoint-every", "7",
        "--n-samples", "3000", "--quiet", "--out", str(out), *extra,
    ]


# `twinnet train` that sends itself a signal right after its Nth checkpoint is on disk: a
# real signal at a known moment, however fast the machine trains (a kill after a sleep
# landed after the end of training once the engine got fast enough)
_SIGNAL_AFTER_NTH_CHECKPOINT = """
import os, signal, sys
real_replace = os.replace
saves = []
def replace(src, dst):
    real_replace(src, dst)
    if str(dst).endswith("checkpoint.safetensors"):
        saves.append(dst)
        if len(saves) == int(os.environ["KILL_AFTER_CHECKPOINTS"]):
            os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
os.replace = replace
from twinnet.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(_train_cmd(tmp_path / "ref"), check=True, env=env, capture_output=True)
    ref, _ = load_tensors(tmp_path / "ref" / "model.safetensors")

    out = tmp_path / "killed"
    # 3 epochs of 132 steps, a checkpoint every 7: the 25th is at step 175, mid epoch 2
    cmd = [sys.executable, "-c", _SIGNAL_AFTER_NTH_CHECKPOINT, *_train_cmd(out)[3:]]
    killed = subprocess.run(cmd, env={**env, "SIGNAL": "SIGKILL", "KILL_AFTER_CHECKPOINTS": "25"}, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "model.safetensors").exists()
    assert (out / "history.csv").read_text().count("\n") == 2  # header and epoch 1: killed mid epoch 2

    resumed = subprocess.run([sys.executable, "-m", "twinnet.cli.main", "train", "--resume", str(out), "--quiet"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    got, _ = load_tensors(out / "model.safetensors")
    for k in ref:
        assert np.array_equal(ref[k], got[k]), k
    assert (tmp_path / "ref" / "history.csv").read_bytes() == (out / "history.csv").read_bytes()


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    # 128 + SIGTERM (15), as a shell reports it; Ctrl-C (SIGINT) stays 130
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", _SIGNAL_AFTER_NTH_CHECKPOINT, *_train_cmd(out)[3:]]
    env = {**os.environ, "SIGNAL": "SIGTERM", "KILL_AFTER_CHECKPOINTS": "2"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert "--resume" in proc.stderr and (out / "state" / "checkpoint.safetensors").is_file()
    assert not (out / "model.safetensors").exists()


# -- the main job ---------------------------------------------------------------------------


@needs_mnist
@pytest.mark.slow
def test_default_training_reaches_98_percent_on_mnist(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--quiet", "--out", out], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.98, metrics
    assert metrics["train_seconds"] > 0 and metrics["samples_per_second"] > 0  # the time is reported (benchmarks judge it)


def test_train_help_lists_every_dataset_and_the_fan_out_inits(capsys, monkeypatch):
    from twinnet.data.datasets import names

    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps lines, even inside "two-spirals"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in names():
        assert f" {name}," in text or f" {name} " in text, name
    assert "two-spirals" in text and "_fan_out" in text
