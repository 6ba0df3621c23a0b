"""``twinnet trace``: the 2-2-1 backprop worked example, printed and checked by hand."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from twinnet.cli.main import main
from twinnet.experiments.trace import trace


def printed(out: str, lhs: str):
    """The value printed on the line that starts with ``lhs`` (a number or a JSON list)."""
    for line in out.splitlines():
        if line.strip().startswith(lhs):
            return json.loads(line.rsplit("= ", 1)[1])
    raise AssertionError(f"no line starting with {lhs!r} in:\n{out}")


def hand_computed(x, y, W1, b1, W2, b2, lr):
    """The worked example with sigmoid units, straight from the formulas (float64)."""
    s = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    z1 = W1 @ x + b1
    a1 = s(z1)
    z2 = W2 @ a1 + b2
    y_hat = s(z2)
    loss = 0.5 * (y_hat - y) ** 2
    delta2 = (y_hat - y) * y_hat * (1 - y_hat)
    delta1 = W2 * delta2 * a1 * (1 - a1)
    return {
        "z1": z1,
        "a1": a1,
        "y_hat": y_hat,
        "loss": loss,
        "delta2": delta2,
        "dW2": delta2 * a1,
        "delta1": delta1,
        "dW1": np.outer(delta1, x),
        "W1_new": W1 - lr * np.outer(delta1, x),
        "W2_new": W2 - lr * delta2 * a1,
    }


DEFAULT = dict(
    x=np.array([0.5, 0.1]),
    y=1.0,
    W1=np.array([[0.1, 0.2], [0.3, 0.4]]),
    b1=np.zeros(2),
    W2=np.array([0.5, 0.6]),
    b2=0.0,
    lr=0.1,
)


def test_cli_prints_the_worked_example(capsys):
    assert main(["trace"]) == 0
    out = capsys.readouterr().out
    # the numbers of the classic worked example (rounded as it quotes them)
    assert printed(out, "z1 = W1 x + b1") == [0.07, 0.19]
    assert printed(out, "y_hat = sigmoid(z2)") == pytest.approx(0.6427, abs=5e-5)
    assert printed(out, "L = 1/2 (y_hat - y)^2") == pytest.approx(0.0638, abs=5e-5)
    assert printed(out, "delta2 = dL/dz2") == pytest.approx(-0.0821, rel=1e-2)
    assert printed(out, "dL/dW2 = delta2 a1") == pytest.approx([-0.0425, -0.0449], abs=5e-5)
    dw1 = printed(out, "dL/dW1 = delta1 x^T")
    # the example's rounded values; exactly, dL/dW1[0] = [-0.005122, -0.001024]
    assert np.allclose(dw1, [[-0.00514, -0.00103], [-0.00610, -0.00122]], rtol=1e-2)
    for formula in (
        "W1 x + b1",
        "sigmoid(z1)",
        "W2 a1 + b2",
        "y_hat (1 - y_hat)",
        "W2^T delta2",
        "delta1 x^T",
        "W1 <- W1 - lr dL/dW1",
    ):
        assert formula in out
    assert "Check: the engine's gradients equal the formulas" in out


def test_printed_numbers_match_the_formulas_to_4_digits(capsys):
    ref = hand_computed(**DEFAULT)
    main(["trace"])
    out = capsys.readouterr().out
    for lhs, key in (
        ("y_hat = sigmoid(z2)", "y_hat"),
        ("delta2 = dL/dz2", "delta2"),
        ("dL/dW2 = delta2 a1", "dW2"),
        ("dL/dW1 = delta1 x^T", "dW1"),
        ("W1 <- W1", "W1_new"),
        ("W2 <- W2", "W2_new"),
    ):
        np.testing.assert_allclose(printed(out, lhs), ref[key], rtol=6e-4, err_msg=lhs)


def test_engine_values_equal_hand_formulas():
    _, v = trace()
    ref = hand_computed(**DEFAULT)
    for key, ref_key in (
        ("z1", "z1"),
        ("a1", "a1"),
        ("y_hat", "y_hat"),
        ("loss", "loss"),
        ("delta2", "delta2"),
        ("dL/dW2", "dW2"),
        ("delta1", "delta1"),
        ("dL/dW1", "dW1"),
        ("W1_new", "W1_new"),
        ("W2_new", "W2_new"),
    ):
        np.testing.assert_allclose(v[key], ref[ref_key], rtol=1e-12, atol=1e-15, err_msg=key)
    assert v["dL/db1"] == pytest.approx(v["delta1"]) and v["dL/db2"] == pytest.approx(v["delta2"])
    assert v["engine_vs_formula"] < 1e-15
    assert v["loss_after"] < v["loss"]  # one gradient step helps


def test_relu_exercise(capsys):
    # 2-2-1 ReLU network, input (1, 0), target 1
    assert main(["trace", "--activation", "relu", "--x", "1,0", "--y", "1"]) == 0
    out = capsys.readouterr().out
    assert printed(out, "z1 = W1 x + b1") == [0.1, 0.3]
    assert printed(out, "y_hat = relu(z2)") == pytest.approx(0.23)
    assert printed(out, "L = 1/2 (y_hat - y)^2") == pytest.approx(0.5 * 0.77**2, rel=1e-3)
    # delta2 = -0.77; dL/dW1 = (W2 delta2) x^T, and x2 = 0 zeroes the second column
    assert printed(out, "dL/dW1 = delta1 x^T") == [[-0.385, 0], [-0.462, 0]]
    assert printed(out, "relu'(z1) = [z1 > 0]") == [1, 1]


def test_dead_relu_output_passes_no_gradient(capsys):
    assert main(["trace", "--activation", "relu", "--w2=-0.5,-0.6"]) == 0
    out = capsys.readouterr().out
    assert "no gradient reaches any weight" in out
    assert printed(out, "dL/dW1 = delta1 x^T") == [[0, 0], [0, 0]]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_gradients_match_pytorch(activation):
    torch = pytest.importorskip(
        "torch", reason="PyTorch not installed (pip install twinnet[torch])"
    )
    rng = np.random.default_rng(3)
    x, W1, b1, W2 = (
        rng.normal(size=2),
        rng.normal(size=(2, 2)),
        rng.normal(size=2),
        rng.normal(size=2),
    )
    b2, y = 0.3, 0.7
    _, v = trace(
        x=list(x), y=y, w1=list(W1.ravel()), b1=list(b1), w2=list(W2), b2=b2, activation=activation
    )
    f = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    tW1 = torch.tensor(W1, requires_grad=True)
    tW2 = torch.tensor(W2, requires_grad=True)
    y_hat = f(tW2 @ f(tW1 @ torch.tensor(x) + torch.tensor(b1)) + b2)
    loss = 0.5 * (y_hat - y) ** 2
    loss.backward()
    assert v["loss"] == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(v["dL/dW1"], tW1.grad.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(v["dL/dW2"], tW2.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--w1", "0.1,0.2,0.3"], "--w1 needs 4 numbers"),
        (["--w2", "0.5"], "--w2 needs 2 numbers"),
        (["--b1", "0,0,0"], "--b1 needs 2 numbers"),
        (["--x", "1,2,3"], "--x needs 2 numbers"),
        (["--w1", "a,b,c,d"], "--w1 must be comma-separated numbers"),
        (["--w1", "0.1,0.2,0.3,inf"], "--w1 must be finite"),
        (["--lr=-0.1"], "--lr must be >= 0, got -0.1"),
        (["--activation", "gelu"], "--activation must be one of sigmoid, tanh, relu, got 'gelu'"),
    ],
)
def test_bad_flags_give_one_clear_line(argv, message, capsys):
    assert main(["trace", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err


def test_bad_values_raise_value_error():
    with pytest.raises(ValueError, match=re.escape("--w1 needs 4 numbers (W1 is 2x2")):
        trace(w1=[0.1, 0.2])
    with pytest.raises(ValueError, match="--x needs 2 numbers"):
        trace(x="1")
