"""Adam's update as one compiled loop (optional: used when numba is installed).

``adam_update`` in ``adam.py`` is the reference: about a dozen NumPy passes per
parameter, each reading and writing a whole array. On the seed MLP (535k weights) those
passes take about 1.1 ms per step, a third of the training step, most of it memory
traffic. Here the same arithmetic runs coordinate by coordinate in one loop, so each of
w, g, m and v is read and written once: about 0.3 ms.

Same operations, same order, same precision: every intermediate is rounded to the
array's dtype exactly as the NumPy passes round it (no fused multiply-add, no
reassociation), so the result is bit-identical to the reference, which the tests check.
The scalars are cast to the array's dtype before the call, as NumPy casts a Python
float operand of a float32 array.

numba is imported (0.25 s) and the loop loaded from its disk cache (0.3 s; compiled
the first time, about a second) only when a parameter of at least ``MIN_SIZE`` values
is stepped: for a small model the NumPy passes cost less than that. Once loaded, the
loop serves every parameter. Never at ``import twinnet``. Set ``TWINNET_FUSED=0`` to
use the NumPy passes everywhere.
"""

from __future__ import annotations

import os

import numpy as np

MIN_SIZE = 65536  # values in a parameter (a 256 x 256 weight) before loading numba is worth it
_adam_kernel = None  # compiled on first use; False when numba is missing or disabled


def _adam_loop(w, g, m, v, lerp_from_end, lerp_weight, lerp_weight_minus_one, beta2,
               one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps,
               coupled, weight_decay, decoupled, decay):
    """Adam(W) over 1-D arrays, one coordinate at a time (plain Python: numba compiles it)."""
    for i in range(w.size):
        wi = w[i]
        if decoupled:
            # AdamW: w = w * (1 - lr * wd)
            wi = wi * decay
        gi = g[i]
        if coupled:
            # Adam: g = wd * w + grad
            gi = wi * weight_decay + gi
        # m = lerp(m, g, 1 - beta1), in torch's two-branch form (see optimizer.lerp_)
        diff = gi - m[i]
        if lerp_from_end:
            mi = gi + diff * lerp_weight_minus_one
        else:
            mi = m[i] + diff * lerp_weight
        # v = beta2 * v + (1 - beta2) * g * g
        vi = v[i] * beta2 + gi * one_minus_beta2 * gi
        # w = w + (-step_size * m) / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        w[i] = wi + (mi * neg_step_size) / (np.sqrt(vi) / bias_correction2_sqrt + eps)
        m[i] = mi
        v[i] = vi


def _compile():
    """The numba-compiled ``_adam_loop``, or False when fused updates are unavailable."""
    if os.environ.get("TWINNET_FUSED", "1") == "0":
        return False
    try:
        import numba
    except ImportError:
        return False
    # error_model="numpy": a division by zero gives inf/nan as in NumPy, with no check
    # per coordinate (the check would stop the loop from being vectorised)
    try:
        return numba.njit(_adam_loop, nogil=True, cache=True, error_model="numpy")
    except RuntimeError:  # nowhere writable for numba's disk cache (a read-only install)
        return numba.njit(_adam_loop, nogil=True, error_model="numpy")


def adam_step(w, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
              decoupled_weight_decay, step) -> bool:
    """Apply one Adam(W) step (no amsgrad) in place with the compiled loop.

    Returns False, and changes nothing, when the loop is not used: not loaded yet and
    fewer than ``MIN_SIZE`` values, numba missing or disabled, or arrays that are not
    all contiguous and of one dtype.
    """
    global _adam_kernel
    if _adam_kernel is None:
        if w.size < MIN_SIZE:
            return False
        _adam_kernel = _compile()
    arrays = (w, grad, exp_avg, exp_avg_sq)
    if not _adam_kernel or any(
        a.dtype != w.dtype or not a.flags.c_contiguous or a.shape != w.shape for a in arrays
    ):
        return False
    scalar = w.dtype.type  # NumPy rounds a Python float operand to the array's dtype: so do we
    lerp_weight = 1.0 - beta1
    _adam_kernel(
        w.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1),
        abs(lerp_weight) >= 0.5,
        scalar(lerp_weight),
        scalar(lerp_weight - 1.0),
        scalar(beta2),
        scalar(1.0 - beta2),
        scalar(-(lr / (1 - beta1**step))),
        scalar((1 - beta2**step) ** 0.5),
        scalar(eps),
        weight_decay != 0 and not decoupled_weight_decay,
        scalar(weight_decay),
        weight_decay != 0 and decoupled_weight_decay,
        scalar(1.0 - lr * weight_decay),
    )
    return True
