"""What a new user hits in the first hour (issue 15, items 4 and 7): layer sizes that
follow the dataset, per-dataset defaults that work, and resume/exit messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from twinnet.checkpoint import load_tensors
from twinnet.cli.main import main
from twinnet.config import ConfigError, TrainConfig


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# -- item 4: input and output sizes follow the dataset --------------------------------------------


def test_digits_trains_without_layers_given(tmp_path, capsys):
    code, out, err = run_cli(["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    config = TrainConfig.from_toml(tmp_path / "r" / "config.toml")
    assert config.layers == [64, 256, 10]  # saved resolved: 64 features, 10 classes
    assert "1 epoch in" in out and "1 epochs" not in out


def test_hidden_and_auto_layers(tmp_path, capsys):
    code, _, err = run_cli(["train", "--dataset", "spirals", "--hidden", "8,4", "--epochs", "1", "--quiet",
                            "--out", tmp_path / "h"], capsys)  # fmt: skip
    assert code == 0, err
    assert TrainConfig.from_toml(tmp_path / "h" / "config.toml").layers == [2, 8, 4, 3]
    code, _, err = run_cli(["train", "--dataset", "sine", "--layers", "auto,16,auto", "--epochs", "1", "--quiet",
                            "--out", tmp_path / "a"], capsys)  # fmt: skip
    assert code == 0, err
    assert TrainConfig.from_toml(tmp_path / "a" / "config.toml").layers == [1, 16, 1]
    with pytest.raises(SystemExit) as exit_info:  # argparse: one line, exit 2
        main(["train", "--dataset", "sine", "--layers", "4,auto,1", "--quiet"])
    assert exit_info.value.code == 2 and "auto" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="may be"):
        TrainConfig(layers=[4, "auto", 1])


def test_the_default_config_still_means_the_784_512_256_10_mnist_mlp():
    from twinnet.train.setup import resolve_layers

    assert resolve_layers(TrainConfig(), 784, "multiclass", 10).layers == [784, 512, 256, 10]
    assert TrainConfig.for_dataset("mnist") == TrainConfig()


@pytest.mark.slow
@pytest.mark.parametrize("dataset, floor", [("xor", 1.0), ("spirals", 0.95), ("digits", 0.96)])
def test_each_dataset_default_reaches_its_accuracy(tmp_path, capsys, dataset, floor):
    code, _, err = run_cli(["train", "--dataset", dataset, "--quiet", "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    accuracy = json.loads((tmp_path / "r" / "metrics.json").read_text())["test_accuracy"]
    assert accuracy >= floor, accuracy


@pytest.mark.parametrize("dataset", ["click", "two-spirals", "sine"])
def test_every_other_listed_dataset_trains_with_its_defaults(tmp_path, capsys, dataset):
    code, _, err = run_cli(["train", "--dataset", dataset, "--epochs", "1", "--quiet", "--out", tmp_path / "r"], capsys)
    assert code == 0, err


# -- item 7: config keys, resume, exit codes --------------------------------------------------------


def test_an_unknown_config_key_suggests_the_closest(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"unknown config key 'batchsize'; did you mean 'batch_size'\?"):
        TrainConfig.from_dict({"batchsize": 32})
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nepoch = 3\n")
    code, _, err = run_cli(["train", "--config", cfg], capsys)
    assert code == 2 and "did you mean 'epochs'?" in err and len(err.strip().splitlines()) == 1


def _train_args(out):
    return ["train", "--dataset", "spirals", "--hidden", "16", "--epochs", "2", "--batch-size", "64",
            "--n-samples", "600", "--quiet", "--out", str(out)]  # fmt: skip


# SIGKILL right after config.toml is on disk: the run dies before its first checkpoint
_KILL_AFTER_CONFIG = """
import os, signal, sys
real_replace = os.replace
def replace(src, dst):
    real_replace(src, dst)
    if str(dst).endswith("config.toml"):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from twinnet.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_again(tmp_path, capsys):
    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_CONFIG, *_train_args(killed)],
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}, capture_output=True, timeout=120)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
    assert (killed / "config.toml").is_file() and not (killed / "state").exists()

    code, out, err = run_cli(["train", "--resume", killed, "--quiet"], capsys)
    assert code == 0, err
    assert "before its first checkpoint" in out and "from step 0" in out
    code, _, err = run_cli(_train_args(tmp_path / "ref"), capsys)
    assert code == 0, err
    a, b = load_tensors(killed / "model.safetensors")[0], load_tensors(tmp_path / "ref" / "model.safetensors")[0]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert (killed / "history.csv").read_bytes() == (tmp_path / "ref" / "history.csv").read_bytes()


def test_resume_of_a_finished_run_says_it_is_finished(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli(_train_args(out), capsys)[0] == 0
    before = (out / "model.safetensors").read_bytes(), (out / "history.csv").read_bytes()
    code, stdout, err = run_cli(["train", "--resume", out, "--quiet"], capsys)
    assert code == 0
    assert "is finished (2 epochs)" in err and "resuming" not in stdout + err
    assert ((out / "model.safetensors").read_bytes(), (out / "history.csv").read_bytes()) == before


def test_a_saved_config_reads_back_exactly_without_dataset_defaults(tmp_path):
    # config.toml leaves out None values; reading it back must not fill them from the
    # dataset's defaults (a resumed run or a data-parallel worker would train another run)
    config = TrainConfig(dataset="digits", layers=[64, 32, 10], batch_size=33)
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert config.val_fraction is None and TrainConfig.from_toml(path) == config
