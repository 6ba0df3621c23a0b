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
