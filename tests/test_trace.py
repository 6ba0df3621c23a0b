"""``twinnet trace``: the 2-2-1 backprop worked example, printed and checked by hand."""

from __future__ import annotations

import json
import re
import sys

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


# -- trace_network: the same walk for any small MLP (the studio's Backprop page) ----------

from twinnet import nn  # noqa: E402
from twinnet.experiments.trace_net import TraceError, torch_check, trace_network  # noqa: E402
from twinnet.models import build_mlp  # noqa: E402


def worked_model():
    model = nn.Sequential(
        nn.Linear(2, 2, dtype=np.float64), nn.Sigmoid(), nn.Linear(2, 1, dtype=np.float64), nn.Sigmoid()
    )
    model[0].weight.data[...] = [[0.1, 0.2], [0.3, 0.4]]
    model[0].bias.data[...] = 0.0
    model[2].weight.data[...] = [[0.5, 0.6]]
    model[2].bias.data[...] = 0.0
    return model


def step_value(t: dict, phase: str, symbol: str):
    hits = [s["value"] for s in t["steps"] if s["phase"] == phase and s["symbol"] == symbol]
    assert len(hits) == 1, (phase, symbol, [s["symbol"] for s in t["steps"]])
    return np.asarray(hits[0])


def test_trace_network_gives_the_worked_example():
    t = trace_network(worked_model(), [0.5, 0.1], [1.0], loss="half_squared", lr=0.1)
    ref = hand_computed(**DEFAULT)
    _, v = trace()
    np.testing.assert_allclose(step_value(t, "forward", "z1"), ref["z1"], rtol=1e-12)
    np.testing.assert_allclose(step_value(t, "forward", "a1"), ref["a1"], rtol=1e-12)
    np.testing.assert_allclose(step_value(t, "forward", "y_hat"), [ref["y_hat"]], rtol=1e-12)
    assert t["loss_value"] == pytest.approx(ref["loss"], rel=1e-12)
    np.testing.assert_allclose(step_value(t, "backward", "delta2"), [ref["delta2"]], rtol=1e-12)
    np.testing.assert_allclose(step_value(t, "backward", "delta1"), ref["delta1"], rtol=1e-12)
    np.testing.assert_allclose(t["grads"]["W2"], [ref["dW2"]], rtol=1e-12)
    np.testing.assert_allclose(t["grads"]["W1"], ref["dW1"], rtol=1e-12)
    np.testing.assert_allclose(t["updated"]["W1"], ref["W1_new"], rtol=1e-12)
    np.testing.assert_allclose(t["updated"]["W2"], [ref["W2_new"]], rtol=1e-12)
    # the hand-checked figures of tests/test_worked_example.py, to 4 significant digits
    assert float(f"{t['loss_value']:.4g}") == 0.06383
    assert [[float(f"{g:.4g}") for g in row] for row in t["grads"]["W1"]] == [
        [-0.005122, -0.001024], [-0.006098, -0.001220]]  # fmt: skip
    # and exactly what `twinnet trace` computes
    assert t["loss_after"] == pytest.approx(v["loss_after"], rel=1e-14)
    np.testing.assert_allclose(t["grads"]["W1"], v["dL/dW1"], rtol=1e-14)
    assert t["engine_vs_formula"] < 1e-15
    formulas = {s["symbol"]: s["formula"] for s in t["steps"]}
    assert formulas["z2"] == "W2 a1 + b2" and formulas["delta1"] == "dL/dz1 = dL/da1 * sigmoid'(z1)"
    assert formulas["dL/dW1"] == "delta1 x^T" and formulas["sigmoid'(z1)"] == "a1 (1 - a1)"


def numeric_grads(model, x, y, loss, eps=1e-6):
    """Central differences of the loss, float64, for every weight and bias."""
    out = {}
    k = 0
    for m in model:
        if not isinstance(m, nn.Linear):
            continue
        k += 1
        for name, p in (("W", m.weight), ("b", m.bias)):
            g = np.zeros_like(p.data)
            for i in np.ndindex(p.data.shape):
                old = p.data[i]
                p.data[i] = old + eps
                up = trace_network(model, x, y, loss=loss, lr=0.0)["loss_value"]
                p.data[i] = old - eps
                down = trace_network(model, x, y, loss=loss, lr=0.0)["loss_value"]
                p.data[i] = old
                g[i] = (up - down) / (2 * eps)
            out[f"{name}{k}"] = g
    return out


@pytest.mark.parametrize(
    "activation, loss, sizes, y",
    [
        ("tanh", "half_squared", [3, 4, 2], [0.2, -0.4]),
        ("relu", "mse", [2, 5, 3, 1], [0.7]),
        ("gelu", "bce_logits", [2, 3, 3, 1], 1.0),
        ("silu", "cross_entropy", [2, 4, 3], 2),
        ("leaky_relu", "bce_logits", [1, 2, 1], 0.0),
        ("gelu_tanh", "mse", [2, 8, 8, 1], [0.1]),
        ("identity", "half_squared", [2, 3, 1], [1.5]),
    ],
)
def test_trace_network_gradients_equal_finite_differences(activation, loss, sizes, y):
    model = build_mlp(sizes, activation=activation, dtype=np.float64, rng=7)
    x = np.random.default_rng(1).normal(size=sizes[0])
    t = trace_network(model, x, y, loss=loss)
    assert t["engine_vs_formula"] < 1e-14
    num = numeric_grads(model, x, y, loss)
    for name, g in num.items():
        a = np.asarray(t["grads"][name])
        assert np.linalg.norm(a - g) / (np.linalg.norm(a) + np.linalg.norm(g) + 1e-30) < 1e-7, name
    # the phases come in order and every layer has its delta
    phases = [s["phase"] for s in t["steps"]]
    assert phases == sorted(phases, key=["forward", "loss", "backward", "update"].index)
    assert {f"delta{k}" for k in range(1, len(sizes))} <= {s["symbol"] for s in t["steps"]}


@pytest.mark.parametrize("loss, y", [("half_squared", [0.3]), ("bce_logits", 1.0), ("mse", [0.3])])
def test_torch_check_agrees_for_this_example(loss, y):
    pytest.importorskip("torch", reason="PyTorch not installed (pip install twinnet[torch])")
    model = build_mlp([2, 3, 3, 1], activation="tanh", dtype=np.float64, rng=2)
    c = torch_check(model, [0.4, -1.2], y, loss=loss)
    assert c["available"] and c["max_abs_diff"] < 1e-12
    assert set(c["diffs"]) == {"output", "loss", "W1", "b1", "W2", "b2", "W3", "b3"}


def test_trace_network_refuses_what_it_cannot_show():
    with pytest.raises(TraceError, match="up to 8 units a layer, got layers \\[2, 9, 1\\]"):
        trace_network(build_mlp([2, 9, 1], dtype=np.float64), [0, 0], [1.0])
    with pytest.raises(TraceError, match="got BatchNorm1d at position 1"):
        trace_network(build_mlp([2, 3, 1], norm="batch", dtype=np.float64), [0, 0], [1.0])
    with pytest.raises(TraceError, match="x must be 2 finite numbers"):
        trace_network(worked_model(), [0.5], [1.0])
    with pytest.raises(TraceError, match="y must be a class index 0..2"):
        trace_network(build_mlp([2, 3, 3], dtype=np.float64), [0, 0], 3, loss="cross_entropy")
    with pytest.raises(TraceError, match="loss bce_logits takes logits"):
        trace_network(worked_model(), [0.5, 0.1], 1.0, loss="bce_logits")
    with pytest.raises(TraceError, match="float64"):
        trace_network(build_mlp([2, 3, 1]), [0, 0], [1.0])


def test_cli_traces_a_deeper_network(capsys):
    # 2-3-2-1 sigmoid, pattern weights: W1 = [[.1,.2],[.3,.4],[.5,.6]], W2 = [[.1,.2,.3],[.4,.5,.6]], W3 = [[.1,.2]]
    assert main(["trace", "--sizes", "2-3-2-1"]) == 0
    out = capsys.readouterr().out
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    x = np.array([0.5, 0.1])
    W1, W2, W3 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]), np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]), np.array([[0.1, 0.2]])
    a1 = s(W1 @ x)
    a2 = s(W2 @ a1)
    y_hat = s(W3 @ a2)[0]
    d3 = (y_hat - 1) * y_hat * (1 - y_hat)
    d2 = (W3[0] * d3) * a2 * (1 - a2)
    d1 = (W2.T @ d2) * a1 * (1 - a1)
    assert printed(out, "z1 = W1 x + b1") == [0.07, 0.19, 0.31]
    assert printed(out, "y_hat = sigmoid(z3)") == pytest.approx(y_hat, rel=6e-4)
    np.testing.assert_allclose(printed(out, "dL/dW3 = delta3 a2^T"), [d3 * a2], rtol=6e-4)
    np.testing.assert_allclose(printed(out, "dL/dW2 = delta2 a1^T"), np.outer(d2, a1), rtol=6e-4)
    np.testing.assert_allclose(printed(out, "dL/dW1 = delta1 x^T"), np.outer(d1, x), rtol=6e-4)
    assert "Check: the engine's gradients equal the formulas" in out
    assert main(["trace", "--sizes", "2-3-3-1", "--w1", "1,2"]) == 2
    assert "--w1 is for inputs-hidden-1 networks" in capsys.readouterr().err
    assert main(["trace", "--sizes", "2-9-1"]) == 2
    assert "1..8 units" in capsys.readouterr().err


def test_torch_check_says_why_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.delitem(sys.modules, "twinnet.twin", raising=False)
    c = torch_check(worked_model(), [0.5, 0.1], [1.0])
    assert c == {"available": False, "reason": "PyTorch is not installed (pip install 'twinnet[torch]')"}
