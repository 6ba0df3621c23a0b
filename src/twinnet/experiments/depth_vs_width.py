"""Depth versus width on a compositional target: the sawtooth made by repeated folding.

The tent map t(x) = 1 - |2x - 1| folds [0, 1] onto itself; composing it K times
gives a sawtooth f_K = t o t o ... o t with 2^(K-1) teeth, i.e. 2^K linear pieces.

- **Deep and narrow**: on [0, 1], t(x) = 2 relu(x) - 4 relu(x - 1/2), two ReLU units.
  Stacking K such layers computes f_K exactly: 2 units x K layers, 6K + 1
  parameters, 2^K pieces. Depth multiplies the number of pieces (Telgarsky, 2016).
- **Shallow and wide**: one hidden layer of H ReLU units is piecewise linear with at
  most H + 1 pieces, so it needs about 2^K units (3 * 2^K parameters) to follow f_K.

We build the deep net with twinnet's layers and the folding weights, check it
reproduces f_K, and fit shallow nets of the same parameter count (H = 2K) and wider
ones in two ways: by training (Adam, best of a few restarts), and with evenly spaced
kinks and a least-squares output layer (exact once H = 2^K, when the kinks land on
the sawtooth's corners). We also train the deep 2-unit net from random weights, to
show what gradient descent finds for it: usually not the folding solution, a known
gap between what a deep net can represent and what training finds.

Inputs are fed as u = 2x - 1 in [-1, 1] (centred) to every network.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twinnet import losses, nn, optim
from twinnet.experiments.common import SEED, print_table, pyplot, save_plot, save_results
from twinnet.experiments.universal_approximation import spline_net

NAME = "depth-vs-width"
CLAIM = (
    "a deep-narrow ReLU net (2 units x K layers) fits the K-fold sawtooth exactly, while "
    "shallow-wide nets with the same parameter count cannot get close"
)

K = 5  # folds: 2^5 = 32 linear pieces, 16 teeth
DEEP_BUILT = f"deep 1-2x{K}-1, folding weights"
DEEP_TRAINED = f"deep 1-2x{K}-1, trained"


def tent(x: np.ndarray) -> np.ndarray:
    """t(x) = 1 - |2x - 1| on [0, 1]."""
    return 1.0 - np.abs(2.0 * x - 1.0)


def sawtooth(x: np.ndarray, k: int) -> np.ndarray:
    """f_k = t applied k times: 2^k linear pieces on [0, 1]."""
    for _ in range(k):
        x = tent(x)
    return x


def mlp(sizes: list[int], rng: np.random.Generator) -> nn.Sequential:
    """ReLU MLP in float64 with PyTorch's default init."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, dtype=np.float64, rng=rng))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def folding_net(k: int) -> nn.Sequential:
    """The deep-narrow net that computes f_k(x) from u = 2x - 1 exactly (1-2xk-1).

    Each hidden layer holds h1 = relu(t), h2 = relu(t - 1/2) of the current value t
    and passes on 2 h1 - 4 h2 = tent(t); the first layer reads t = x = (u + 1) / 2.
    """
    net = mlp([1] + [2] * k + [1], np.random.default_rng(0))
    linears = [m for m in net if isinstance(m, nn.Linear)]
    # layer 1: relu(x) = relu(u/2 + 1/2), relu(x - 1/2) = relu(u/2)
    linears[0].weight.data[:] = [[0.5], [0.5]]
    linears[0].bias.data[:] = [0.5, 0.0]
    # layers 2..k: t = 2 h1 - 4 h2, then relu(t) and relu(t - 1/2)
    for lin in linears[1:-1]:
        lin.weight.data[:] = [[2.0, -4.0], [2.0, -4.0]]
        lin.bias.data[:] = [0.0, -0.5]
    # output: tent(t) = 2 h1 - 4 h2
    linears[-1].weight.data[:] = [[2.0, -4.0]]
    linears[-1].bias.data[:] = [0.0]
    return net


def fit(sizes: list[int], u: np.ndarray, y: np.ndarray, steps: int, restarts: int):
    """Train ``restarts`` nets of shape ``sizes`` with Adam (cosine lr from 0.01) on the
    full batch; return the one with the lowest final MSE."""
    best, best_mse = None, np.inf
    for r in range(restarts):
        net = mlp(sizes, np.random.default_rng([SEED, r]))
        opt = optim.Adam(net.parameters(), lr=0.01)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        loss_fn = losses.MSELoss()
        for _ in range(steps):
            loss_fn(net(u), y)
            opt.zero_grad()
            net.backward(loss_fn.backward())
            opt.step()
            sched.step()
        mse = loss_fn(net(u), y)
        if mse < best_mse:
            best, best_mse = net, mse
    return best


def run(out_dir: Path, quick: bool = False, data_dir=None) -> dict:
    """Deep (constructed and trained) vs shallow (trained) on f_K; plot the fits."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    x = np.linspace(0.0, 1.0, 1025)[:, None]  # (N, 1) grid that contains every kink of f_K
    u = 2.0 * x - 1.0
    y = sawtooth(x, K)
    steps, restarts = (600, 1) if quick else (4000, 3)
    shallow_widths = [2 * K, 2**K] if quick else [2 * K, 4 * K, 2**K, 8 * K, 16 * K, 32 * K]

    def errors(net):
        pred = net(u)
        return float(np.mean((pred - y) ** 2)), float(np.max(np.abs(pred - y)))

    deep_sizes = [1] + [2] * K + [1]
    deep = folding_net(K)
    n_params = deep.num_parameters()  # 6K + 1
    results = {DEEP_BUILT: (deep, n_params, *errors(deep))}
    trained_deep = fit(deep_sizes, u, y, steps, restarts)
    results[DEEP_TRAINED] = (trained_deep, n_params, *errors(trained_deep))
    shallow, spline = {}, {}
    for h in shallow_widths:
        shallow[h] = fit([1, h, 1], u, y, steps, restarts)
        results[f"shallow 1-{h}-1, trained"] = (
            shallow[h],
            shallow[h].num_parameters(),
            *errors(shallow[h]),
        )
    for h in shallow_widths:
        spline[h] = spline_net(h, u, y)
        results[f"shallow 1-{h}-1, even kinks + least sq."] = (
            spline[h],
            spline[h].num_parameters(),
            *errors(spline[h]),
        )

    variance = float(y.var())
    rows = [[name, p, mse, mse / variance, mx] for name, (_, p, mse, mx) in results.items()]
    print_table(
        ["network", "params", "MSE", "MSE / Var(f)", "max error"],
        rows,
        title=f"sawtooth f_{K} ({2**K} pieces, Var(f) = {variance:.4f}); "
        f"trained: Adam, {steps} steps, best of {restarts}",
    )

    deep_mse, deep_max = results[DEEP_BUILT][2:]
    same_mse = results[f"shallow 1-{2 * K}-1, trained"][2]
    same_ls_mse = results[f"shallow 1-{2 * K}-1, even kinks + least sq."][2]
    holds = deep_max < 1e-9 and min(same_mse, same_ls_mse) > 0.1 * variance
    plot = _plot(out_dir, x, y, deep, trained_deep, shallow, spline, u)
    return save_results(
        out_dir,
        NAME,
        CLAIM,
        holds,
        quick,
        started,
        [plot],
        folds=K,
        pieces=2**K,
        target_variance=variance,
        steps=steps,
        restarts=restarts,
        deep_params=n_params,
        deep_constructed_mse=deep_mse,
        deep_constructed_max_error=deep_max,
        deep_trained_mse=results[DEEP_TRAINED][2],
        shallow_same_params_width=2 * K,
        shallow_same_params_mse=same_mse,
        shallow_same_params_least_squares_mse=same_ls_mse,
        table={
            name: {"params": p, "mse": mse, "max_error": mx}
            for name, (_, p, mse, mx) in results.items()
        },
    )


def _plot(out_dir, x, y, deep, trained_deep, shallow, spline, u) -> str:
    plt = pyplot()
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 4))
    h0 = min(shallow)
    a0.plot(x, y, "k-", lw=2.5, alpha=0.35, label=f"target f_{K}")
    a0.plot(
        x,
        deep(u),
        "C0-",
        lw=1,
        label=f"deep 1-2x{K}-1, folding weights ({deep.num_parameters()} params)",
    )
    a0.plot(x, trained_deep(u), "C2-", lw=1, label=DEEP_TRAINED)
    a0.plot(
        x,
        shallow[h0](u),
        "C3-",
        lw=1,
        label=f"shallow 1-{h0}-1, trained ({shallow[h0].num_parameters()} params)",
    )
    a0.set_xlabel("x")
    a0.set_title("same parameter count", fontsize=10)
    a0.legend(fontsize=7, loc="lower right")
    params = [net.num_parameters() for net in shallow.values()]
    mses = [float(np.mean((net(u) - y) ** 2)) for net in shallow.values()]
    a1.semilogx(params, mses, "s-C3", label="shallow, trained")
    ls_mses = [float(np.mean((net(u) - y) ** 2)) for net in spline.values()]
    a1.semilogx(params, ls_mses, "^-C1", label="shallow, even kinks + least squares")
    a1.axhline(float(y.var()), color="grey", ls=":", label="Var(f): predicting the mean")
    a1.semilogx(
        [deep.num_parameters()],
        [float(np.mean((trained_deep(u) - y) ** 2))],
        "oC2",
        label="deep 2-unit, trained",
    )
    a1.semilogx(
        [deep.num_parameters()], [0.0], "*C0", ms=12, label="deep 2-unit, folding weights (0)"
    )
    a1.axvline(3 * 2**K + 1, color="C3", ls="--", lw=1, label=f"shallow with {2**K} units")
    ticks = sorted({deep.num_parameters(), *params})
    a1.set_xticks(ticks, [str(t) for t in ticks])
    a1.minorticks_off()
    a1.set_xlabel("parameters")
    a1.set_ylabel("MSE")
    a1.set_title("error vs parameter count", fontsize=10)
    a1.grid(alpha=0.3, which="both")
    a1.legend(fontsize=7)
    return save_plot(fig, out_dir, "depth_vs_width.png")
