"""Compare every analytic gradient of a model with centred finite differences.

For each parameter element w (and each input element), the numerical derivative is

    dL/dw ~ (L(w + eps) - L(w - eps)) / (2 eps)

whose error is O(eps^2). Each tensor is then compared as a whole with the norm ratio

    rel = ||analytic - numeric|| / max(||analytic|| + ||numeric||, tiny)

(per-element ratios blow up on tiny entries). In float64 with eps = 1e-6 a correct
backward gives rel around 1e-10; anything above 1e-7 means the backward is wrong.

Beside this strict verdict the report shows the chapter's bands (:data:`BANDS`: below
1e-5 "correct", 1e-5 to 1e-3 "inspect", above 1e-3 "bug") and explains two traps
when they happen (``report.traps``):

- **float32 with a small eps**: L is rounded to about 6e-8 |L| in float32, so the
  difference quotient carries an error of about 6e-8 |L| / eps; with eps = 1e-5 that
  is ~6e-3 |L| per entry, and a correct gradient lands in the "bug" band. Only
  float64 (rounding 1.1e-16) leaves room for eps around 1e-5..1e-7. float32 runs need
  ``allow_float32=True``.
- **a ReLU kink within eps**: when a ReLU/LeakyReLU input z has |z| < eps, the two
  evaluations L(w + eps) and L(w - eps) fall on different sides of the kink, so the
  numerical derivative averages two slopes while the analytic one (correctly) takes
  one: a correct backward looks wrong.

One exception: a gradient that is truly zero (e.g. a bias followed by BatchNorm) is
compared with pure rounding noise, about 1e-16 / eps = 1e-10 per entry, and the ratio
is meaningless there. Such a tensor also passes when every |analytic - numeric| is
below ``atol`` (1e-9 by default), which is below anything a real bug produces.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from twinnet.nn.module import Module

TINY = 1e-300

# the chapter's reading of a relative error: (upper bound, verdict), checked in order
BANDS = ((1e-5, "correct"), (1e-3, "inspect"), (float("inf"), "bug"))
# layer types whose derivative jumps at z = 0
KINKED = ("ReLU", "LeakyReLU")


def band(rel_error: float) -> str:
    """The chapter's verdict for a relative error: correct, inspect or bug."""
    for upper, verdict in BANDS:
        if rel_error < upper:
            return verdict
    return "bug"  # NaN


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
    dtype: str = "float64"
    # the closest |z| to a ReLU kink among the checked pre-activations (None: no kinks)
    closest_kink: float | None = None
    near_kink: int = 0  # how many pre-activations lie within eps of a kink

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
        head = f"{'tensor':<{width}}  {'shape':<14}  {'rel error':>10}  {'max abs':>10}  ok   chapter"
        lines = [head]
        for c in self.checks:
            ok = "yes" if self.ok(c) else "NO "
            lines.append(
                f"{c.name:<{width}}  {str(c.shape):<14}  {c.rel_error:>10.2e}  "
                f"{c.max_abs_error:>10.2e}  {ok}  {band(c.rel_error)}"
            )
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"gradcheck {verdict}: max relative error {self.max_rel_error:.2e} "
            f"(tolerance {self.tol:.0e}, eps {self.eps:.0e}, {self.dtype})"
        )
        lines.append(
            "chapter's bands: rel < 1e-5 correct, 1e-5..1e-3 inspect, > 1e-3 bug; "
            f"'ok' is the stricter {self.dtype} test (rel < {self.tol:.0e} or max abs < {self.atol:.0e})"
        )
        lines += [f"trap: {t}" for t in self.traps]
        return "\n".join(lines)

    @property
    def traps(self) -> list[str]:
        """Plain-language explanations of the traps that apply to this check."""
        out = []
        if self.dtype == "float32":
            rounding = float(np.finfo(np.float32).eps) / 2
            out.append(
                f"float32 cannot use eps = {self.eps:.0e}: the loss is rounded to about "
                f"{rounding:.0e} |L|, so each finite difference is off by about "
                f"{rounding / self.eps:.0e} |L|, which swamps a correct gradient. Check in "
                "float64 (rounding 1e-16), where eps = 1e-5..1e-7 works."
            )
        if self.near_kink:
            out.append(
                f"{self.near_kink} ReLU pre-activation(s) lie closer to the kink at 0 than "
                f"eps = {self.eps:.0e} (closest |z| = {self.closest_kink:.1e}): L(w + eps) and "
                "L(w - eps) fall on different sides of the kink, so the numerical derivative "
                "mixes two slopes and a correct gradient can look wrong. Use other inputs "
                "or a smaller eps."
            )
        return out


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
    allow_float32: bool = False,
) -> GradcheckReport:
    """Check ``model.backward`` (and ``loss_fn.backward``) against finite differences.

    Works on any Module, including user-written ones: it only calls ``forward``,
    ``backward`` and ``named_parameters``. Run it in float64 (parameters and ``x``).
    Random layers stay deterministic: the state of every module's ``rng`` generator
    (e.g. Dropout's) is restored before each forward, so each pass draws the same mask.
    Buffers (e.g. BatchNorm running statistics) and gradients are restored afterwards,
    so the model is left as it was. ``allow_float32=True`` runs a float32 check anyway
    (to see the float32 trap; the report explains it).
    """
    params = list(model.named_parameters())
    allowed = (np.float64, np.float32) if allow_float32 else (np.float64,)
    bad = [n for n, p in params if p.data.dtype not in allowed]
    x_ok = isinstance(x, np.ndarray) and x.dtype in allowed
    if bad or not x_ok:
        raise TypeError(
            "gradcheck needs float64 parameters and input (float32 rounding swamps the "
            f"finite differences); got non-float64 tensors {bad or ['input']}. Build the model "
            "with dtype=np.float64 and pass x.astype(np.float64)"
        )
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if getattr(loss_fn, "reduction", "mean") == "none":
        raise ValueError(
            f"gradcheck needs a scalar loss; {type(loss_fn).__name__} has reduction='none' "
            "(use 'mean' or 'sum')"
        )

    rngs = _rngs_of(model)
    rng_states = [r.bit_generator.state for r in rngs]
    saved_buffers = {k: np.array(v, copy=True) for k, v in model.named_buffers()}
    saved_grads = [p.grad.copy() for _, p in params]

    def loss_at(inp: np.ndarray) -> float:
        for r, s in zip(rngs, rng_states, strict=True):
            r.bit_generator.state = s
        return loss_fn(model(inp), y)

    # analytic gradients, recording the inputs of every kinked activation
    model.zero_grad()
    with _record_kink_inputs(model) as kink_inputs:
        loss_at(x)
    grad_x = model.backward(loss_fn.backward())
    dists = [np.abs(z).ravel() for z in kink_inputs]
    closest = float(min(d.min() for d in dists if d.size)) if any(d.size for d in dists) else None
    near = int(sum(int(np.sum(d < eps)) for d in dists))
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
    dtype = "float32" if any(p.data.dtype == np.float32 for _, p in params) or x.dtype == np.float32 else "float64"
    return GradcheckReport(
        checks=checks, tol=tol, eps=eps, atol=atol, dtype=dtype, closest_kink=closest, near_kink=near
    )


@contextmanager
def _record_kink_inputs(model: Module):
    """Within the block, the input of every ReLU-family layer's forward is appended to the
    yielded list (the instance's ``forward`` is wrapped, then restored)."""
    seen: list[np.ndarray] = []
    wrapped = [m for m in model.modules() if type(m).__name__ in KINKED]

    def recorder(original):
        def forward(z):
            seen.append(np.array(z, copy=True))
            return original(z)

        return forward

    own = {id(m): m.__dict__["forward"] for m in wrapped if "forward" in m.__dict__}
    for m in wrapped:
        m.forward = recorder(m.forward)
    try:
        yield seen
    finally:
        for m in wrapped:
            if id(m) in own:
                m.forward = own[id(m)]
            else:
                del m.forward  # back to the class's method


def place_near_kink(model: Module, x: np.ndarray, eps: float) -> float:
    """Shift the bias of the first Linear layer's unit 0 so that its pre-activation for
    example 0 is eps / 10: inside the kink trap of a following ReLU. Returns the new z.
    For teaching (``twinnet gradcheck --kink``); needs a ReLU-family activation."""
    from twinnet.nn.linear import Linear

    modules = list(model.modules())
    if not any(type(m).__name__ in KINKED for m in modules):
        raise ValueError("--kink needs a ReLU or LeakyReLU activation (e.g. --activation relu)")
    first = next((m for m in modules if isinstance(m, Linear)), None)
    if first is None or first.bias is None:
        raise ValueError("--kink needs a first Linear layer with a bias (use --norm none)")
    z = float(x[0] @ first.weight.data[0] + first.bias.data[0])
    first.bias.data[0] += eps / 10 - z
    return float(x[0] @ first.weight.data[0] + first.bias.data[0])
