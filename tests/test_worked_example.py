"""The hand-worked example: one step of backprop through a 2-2-1 sigmoid network.

Network: a1 = sigmoid(W1 x + b1), y_hat = sigmoid(W2 a1 + b2) (both layers sigmoid), with
    W1 = [[0.1, 0.2], [0.3, 0.4]], b1 = 0, W2 = [[0.5, 0.6]], b2 = 0, x = [0.5, 0.1], y = 1
and the loss L = 0.5 (y_hat - y)^2. Weights follow PyTorch's (out, in) layout, so
z1_j = sum_i W1[j, i] x_i.

Worked by hand (values rounded to 5-6 digits):
    z1 = [0.1*0.5 + 0.2*0.1, 0.3*0.5 + 0.4*0.1]   = [0.07, 0.19]
    a1 = [sigmoid(0.07), sigmoid(0.19)]           = [0.517493, 0.547358]
    z2 = 0.5*0.517493 + 0.6*0.547358              = 0.587161
    y_hat = sigmoid(0.587161)                     = 0.642713  -> 0.6427
    L = 0.5 (0.642713 - 1)^2                      = 0.063827  -> 0.0638
    delta2 = dL/dz2 = (y_hat - y) y_hat (1 - y_hat) = -0.357287 * 0.642713 * 0.357287
                                                  = -0.0820447 -> -0.0821
    dL/dW2 = delta2 * a1                          = [-0.042458, -0.044908]
    delta1 = (W2^T delta2) * a1 (1 - a1)          = [-0.041022 * 0.249694, -0.049227 * 0.247757]
                                                  = [-0.010243, -0.012196]
    dL/dW1 = delta1 x^T                           = [[-0.0051215, -0.0010243],
                                                     [-0.0060982, -0.0012196]]

Note on the issue's figures: prediction, loss and dL/dW2 agree with the above; its
delta2 = -0.0821 is -0.0820 to 3 digits (-0.0820447).
The issue lists dL/dW1 = [[-0.00514, -0.00103], [-0.00610, -0.00122]]; its first row does
not follow from its own W1 and x in the (out, in) layout. It is delta1[0] x^T of the
*transposed* layout (z1 = x @ W1: delta1[0] = -0.010298, row [-0.005149, -0.001030]), a
layout that would predict 0.6413, not 0.6427. With the layout that gives 0.6427,
dL/dW1[0] = [-0.005122, -0.001024], which PyTorch's autograd confirms (last test). The
tests assert these consistent values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinnet import losses, nn


def sig4(v: float) -> float:
    """``v`` rounded to 4 significant digits."""
    return float(f"{v:.4g}")


# the figures worked by hand above, to 4 significant digits
PREDICTION = 0.6427
LOSS = 0.06383
DELTA2 = -0.08204
DW2 = [[-0.04246, -0.04491]]
DW1 = [[-0.005122, -0.001024], [-0.006098, -0.001220]]


def build():
    model = nn.Sequential(
        nn.Linear(2, 2, dtype=np.float64),
        nn.Sigmoid(),
        nn.Linear(2, 1, dtype=np.float64),
        nn.Sigmoid(),
    )
    model[0].weight.data[...] = [[0.1, 0.2], [0.3, 0.4]]
    model[0].bias.data[...] = 0.0
    model[2].weight.data[...] = [[0.5, 0.6]]
    model[2].bias.data[...] = 0.0
    return model


X = np.array([[0.5, 0.1]])
Y = np.array([[1.0]])


def test_hand_computation_from_the_formulas():
    """The same numbers again with math only, written out step by step."""

    def sigmoid(z):
        return 1.0 / (1.0 + math.exp(-z))

    x1, x2 = 0.5, 0.1
    z1 = [0.1 * x1 + 0.2 * x2, 0.3 * x1 + 0.4 * x2]  # W1 x
    a1 = [sigmoid(z1[0]), sigmoid(z1[1])]
    z2 = 0.5 * a1[0] + 0.6 * a1[1]  # W2 a1
    y_hat = sigmoid(z2)
    loss = 0.5 * (y_hat - 1.0) ** 2
    delta2 = (y_hat - 1.0) * y_hat * (1.0 - y_hat)  # dL/dy_hat * sigmoid'(z2)
    dw2 = [delta2 * a1[0], delta2 * a1[1]]
    delta1 = [0.5 * delta2 * a1[0] * (1 - a1[0]), 0.6 * delta2 * a1[1] * (1 - a1[1])]
    dw1 = [[delta1[0] * x1, delta1[0] * x2], [delta1[1] * x1, delta1[1] * x2]]

    assert z1 == pytest.approx([0.07, 0.19], abs=1e-15)
    assert [sig4(v) for v in a1] == [0.5175, 0.5474]
    assert sig4(z2) == 0.5872
    assert sig4(y_hat) == PREDICTION
    assert sig4(loss) == LOSS
    assert sig4(delta2) == DELTA2
    assert [[sig4(v) for v in dw2]] == DW2
    assert [[sig4(v) for v in row] for row in dw1] == DW1


def test_network_reproduces_the_worked_example():
    model = build()
    y_hat = model(X)
    assert y_hat.shape == (1, 1)
    assert sig4(y_hat[0, 0]) == PREDICTION

    # MSELoss of one output is (y_hat - y)^2, so L = 0.5 * MSE and dL/dy_hat = 0.5 * dMSE/dy_hat
    mse = losses.MSELoss()
    loss = 0.5 * mse(y_hat, Y)
    assert sig4(loss) == LOSS
    grad_y_hat = 0.5 * mse.backward()
    assert grad_y_hat[0, 0] == pytest.approx(y_hat[0, 0] - 1.0, rel=1e-15)  # dL/dy_hat = y_hat - y

    # backward through the output sigmoid alone gives delta2 = dL/dz2
    delta2 = model[3].backward(grad_y_hat)
    assert sig4(delta2[0, 0]) == DELTA2
    model[0].backward(model[1].backward(model[2].backward(delta2)))

    assert [[sig4(v) for v in model[2].weight.grad[0]]] == DW2
    assert [[sig4(v) for v in row] for row in model[0].weight.grad] == DW1
    assert sig4(model[2].bias.grad[0]) == DELTA2  # dL/db2 = delta2
    # dL/db1 = delta1 = dL/dW1 / x, column by column
    np.testing.assert_allclose(model[0].bias.grad, model[0].weight.grad[:, 0] / 0.5, rtol=1e-12)


def test_issue_figures_that_are_consistent_with_the_network():
    """The issue's own 3-digit figures, where they follow from its network (see module doc)."""
    model = build()
    mse = losses.MSELoss()
    y_hat = model(X)
    loss = 0.5 * mse(y_hat, Y)
    model.backward(0.5 * mse.backward())
    assert y_hat[0, 0] == pytest.approx(0.6427, abs=5e-5)
    assert loss == pytest.approx(0.0638, abs=5e-5)
    # dL/db2 = delta2 = -0.082045: the issue's -0.0821 is one off in its last digit
    assert model[2].bias.grad[0] == pytest.approx(-0.0821, abs=1e-4)
    np.testing.assert_allclose(model[2].weight.grad, [[-0.0425, -0.0449]], atol=5e-5)
    np.testing.assert_allclose(model[0].weight.grad[1], [-0.00610, -0.00122], atol=5e-6)


def test_matches_torch_autograd(torch_or_skip):
    torch = torch_or_skip
    w1 = torch.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor([[0.5, 0.6]], dtype=torch.float64, requires_grad=True)
    y_hat = torch.sigmoid(torch.sigmoid(torch.tensor(X) @ w1.T) @ w2.T)
    (0.5 * (y_hat - 1.0) ** 2).sum().backward()

    model = build()
    mse = losses.MSELoss()
    mse(model(X), Y)
    model.backward(0.5 * mse.backward())
    np.testing.assert_allclose(model[0].weight.grad, w1.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(model[2].weight.grad, w2.grad.numpy(), rtol=1e-14)
