"""`twinnet twin`: the comparison report from the command line, and its exit code."""

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch not installed: pip install 'twinnet[torch]'")

from twinnet import nn  # noqa: E402
from twinnet.cli.main import main  # noqa: E402


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_twin_command_agrees(capsys, dtype):
    code = main(
        ["twin", "--optimizer", "nesterov", "--steps", "3", "--dtype", dtype, "--norm", "batch"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASSED" in out and "grad 0.weight" in out and "after step" in out


def test_twin_command_fails_on_a_wrong_gradient(capsys, monkeypatch):
    original = nn.ReLU.backward
    monkeypatch.setattr(nn.ReLU, "backward", lambda self, g: original(self, g) * np.float32(1.001))
    code = main(["twin", "--layers", "8,16,4"])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED" in out


def test_twin_command_bad_flag(capsys):
    assert main(["twin", "--optimizer", "lbfgs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lbfgs" in err[0]


def test_float32_adam_100_steps_exits_0_and_says_what_was_compared(capsys):
    """Issue 15: this command exited 1 (float32 trajectories compared against 1e-5)."""
    code = main(["twin", "--dtype", "float32", "--optimizer", "adam", "--steps", "100"])
    out = capsys.readouterr().out
    assert code == 0, out
    first = out.splitlines()[0]
    assert "model built in float32, compared as float64 copies" in first
    assert "--precision model" in first
    assert "float64 copies of a float32 model" in out and "PASSED" in out


def test_precision_model_compares_in_the_model_dtype(capsys):
    code = main(["twin", "--dtype", "float32", "--optimizer", "sgd", "--steps", "3", "--precision", "model"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "compared in float32" in out.splitlines()[0]
    assert "torch32-64" in out  # torch's own float32 error, next to each difference
    assert main(["twin", "--precision", "half"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision" in err[0] and "half" in err[0]
