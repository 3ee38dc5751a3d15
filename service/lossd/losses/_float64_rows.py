"""Float64 working copies of (N, D) row inputs and the rounding of row-combined gradients back
to the request dtype, each in one pass (the GEMM-based losses ``npair`` and ``info_nce``
accumulate in float64, README §3).

    widen(x, unit)            -> (X, norms):  norms_i = ||x_i|| (float64 accumulation),
                                 X = float64(x) (no copy for float64 x), or x_i / norms_i (unit)
    combine(g, alpha, x, beta, dtype) -> out:  out_i = alpha_i g_i + beta_i x_i, rounded once

A NumPy chain (``(g + c * x).astype(dtype)``, ``x / norm[:, None]``) allocates and writes one
full temporary per step; these write their result only.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.kernels.jit import boolean, f64, for_floats, kernel, ro, rw, void


@kernel(for_floats(lambda f: void(ro(f, 2), boolean, rw(f64, 2), rw(f64))))
def _widen(x, unit, out, norms):  # pragma: no cover - compiled
    """norms_i = ||x_i||; out_i = x_i or x_i / norms_i in float64 (out empty: not written)."""
    n, d = x.shape
    copy = out.size > 0
    for i in range(n):
        acc = 0.0
        for j in range(d):
            v = np.float64(x[i, j])
            acc += v * v
        norm = math.sqrt(acc)
        norms[i] = norm
        if copy:
            f = 1.0 / norm if unit else 1.0
            for j in range(d):
                out[i, j] = np.float64(x[i, j]) * f


@kernel(for_floats(lambda f: void(ro(f64, 2), ro(f64), ro(f64, 2), ro(f64), rw(f, 2))))
def _combine(g, alpha, x, beta, out):  # pragma: no cover - compiled
    """out_i = alpha_i g_i + beta_i x_i (float64), stored in out's dtype."""
    n, d = g.shape
    for i in range(n):
        a = alpha[i]
        b = beta[i]
        for j in range(d):
            out[i, j] = a * g[i, j] + b * x[i, j]


def widen(x: np.ndarray, unit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(X, norms): the float64 rows of x (x itself when float64 and not unit) or the unit rows,
    and the float64 row norms."""
    norms = np.empty(x.shape[0])
    if x.dtype == np.float64 and not unit:
        _widen(x, False, np.empty((0, 0)), norms)
        return x, norms
    out = np.empty(x.shape)
    _widen(x, unit, out, norms)
    return out, norms


def combine(g: np.ndarray, alpha: np.ndarray | float, x: np.ndarray, beta: np.ndarray | float,
            dtype: np.dtype) -> np.ndarray:
    """alpha_i g_i + beta_i x_i per row (scalars: the same for every row), in ``dtype``."""
    n = g.shape[0]
    out = np.empty(g.shape, dtype)
    _combine(g, np.broadcast_to(np.asarray(alpha, np.float64), (n,)).copy(), x,
             np.broadcast_to(np.asarray(beta, np.float64), (n,)).copy(), out)
    return out
