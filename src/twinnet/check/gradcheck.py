"""Compare every analytic gradient of a model with centred finite differences.

For each parameter element w (and each input element), the numerical derivative is

    dL/dw ~ (L(w + eps) - L(w - eps)) / (2 eps)

whose error is O(eps^2). Each tensor is then compared as a whole with the norm ratio

    rel = ||analytic - numeric|| / max(||analytic|| + ||numeric||, tiny)

(per-element ratios blow up on tiny entries). In float64 with eps = 1e-6 a correct
backward gives rel around 1e-10; anything above 1e-7 means the backward is wrong.

One exception: a gradient that is truly zero (e.g. a bias followed by BatchNorm) is
compared with pure rounding noise, about 1e-16 / eps = 1e-10 per entry, and the ratio
is meaningless there. Such a tensor also passes when every |analytic - numeric| is
below ``atol`` (1e-9 by default), which is below anything a real bug produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twinnet.nn.module import Module

TINY = 1e-300


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / max(||a|| + ||n||, tiny): 0 when both are zero."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), TINY))


@dataclass
class TensorCheck:
    """The comparison for one tensor (a parameter, or ``input``)."""

    name: str
    shape: tuple[int, ...]
    rel_error: float
    max_abs_error: float
    analytic: np.ndarray = field(repr=False)
    numeric: np.ndarray = field(repr=False)


@dataclass
class GradcheckReport:
    """Per-tensor relative errors; ``passed`` when every one is below ``tol``."""

    checks: list[TensorCheck]
    tol: float
    eps: float
    atol: float = 1e-9

    def ok(self, c: TensorCheck) -> bool:
        return c.rel_error < self.tol or c.max_abs_error < self.atol

    @property
    def passed(self) -> bool:
        """True when every tensor's relative error is below ``tol`` (or all its absolute
        errors are below ``atol``)."""
        return all(self.ok(c) for c in self.checks)

    @property
    def max_rel_error(self) -> float:
        return max((c.rel_error for c in self.checks), default=0.0)

    def __getitem__(self, name: str) -> TensorCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no tensor named {name!r} in this report; have {[c.name for c in self.checks]}")

    def __str__(self) -> str:
        width = max([len("tensor")] + [len(c.name) for c in self.checks])
        lines = [f"{'tensor':<{width}}  {'shape':<14}  {'rel error':>10}  {'max abs':>10}  ok"]
        for c in self.checks:
            ok = "yes" if self.ok(c) else "NO"
            lines.append(
                f"{c.name:<{width}}  {str(c.shape):<14}  {c.rel_error:>10.2e}  {c.max_abs_error:>10.2e}  {ok}"
            )
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"gradcheck {verdict}: max relative error {self.max_rel_error:.2e} (tolerance {self.tol:.0e}, eps {self.eps:.0e})")
        return "\n".join(lines)


def _rngs_of(model: Module) -> list[np.random.Generator]:
    return [m.rng for m in model.modules() if isinstance(getattr(m, "rng", None), np.random.Generator)]


def gradcheck(
    model: Module,
    loss_fn,
    x: np.ndarray,
    y,
    eps: float = 1e-6,
    tol: float = 1e-7,
    atol: float = 1e-9,
    check_input: bool = True,
) -> GradcheckReport:
    """Check ``model.backward`` (and ``loss_fn.backward``) against finite differences.

    Works on any Module, including user-written ones: it only calls ``forward``,
    ``backward`` and ``named_parameters``. Run it in float64 (parameters and ``x``).
    Random layers stay deterministic: the state of every module's ``rng`` generator
    (e.g. Dropout's) is restored before each forward, so each pass draws the same mask.
    Buffers (e.g. BatchNorm running statistics) and gradients are restored afterwards,
    so the model is left as it was.
    """
    params = list(model.named_parameters())
    bad = [n for n, p in params if p.data.dtype != np.float64]
    if bad or not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(
            "gradcheck needs float64 parameters and input (float32 rounding swamps the "
            f"finite differences); got non-float64 tensors {bad or ['input']}. Build the model "
            "with dtype=np.float64 and pass x.astype(np.float64)"
        )
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")

    rngs = _rngs_of(model)
    rng_states = [r.bit_generator.state for r in rngs]
    saved_buffers = {k: np.array(v, copy=True) for k, v in model.named_buffers()}
    saved_grads = [p.grad.copy() for _, p in params]

    def loss_at(inp: np.ndarray) -> float:
        for r, s in zip(rngs, rng_states, strict=True):
            r.bit_generator.state = s
        return loss_fn(model(inp), y)

    # analytic gradients
    model.zero_grad()
    loss_at(x)
    grad_x = model.backward(loss_fn.backward())
    analytic = {name: p.grad.copy() for name, p in params}

    checks = []
    targets = [(name, p.data) for name, p in params]
    x_work = x.copy()
    if check_input:
        targets.append(("input", x_work))
        analytic["input"] = np.asarray(grad_x, dtype=np.float64)
    for name, arr in targets:
        numeric = np.zeros_like(arr)
        flat, flat_num = arr.reshape(-1), numeric.reshape(-1)  # views into the live arrays
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = loss_at(x_work)
            flat[i] = original - eps
            minus = loss_at(x_work)
            flat[i] = original
            flat_num[i] = (plus - minus) / (2 * eps)
        a = analytic[name]
        checks.append(
            TensorCheck(
                name=name,
                shape=tuple(arr.shape),
                rel_error=relative_error(a, numeric),
                max_abs_error=float(np.max(np.abs(a - numeric))) if a.size else 0.0,
                analytic=a,
                numeric=numeric,
            )
        )

    # leave the model as we found it
    for (_, p), g in zip(params, saved_grads, strict=True):
        p.grad[...] = g
    if saved_buffers:
        model.load_state_dict({**model.state_dict(), **saved_buffers})
    for r, s in zip(rngs, rng_states, strict=True):
        r.bit_generator.state = s
    return GradcheckReport(checks=checks, tol=tol, eps=eps, atol=atol)
