"""poisson_nll: Poisson negative log likelihood (PyTorch ``F.poisson_nll_loss``).

``input`` x (log-rate with ``log_input``, else the rate), ``target`` y >= 0 (counts, need
not be integers; never differentiated), identical shapes of any rank >= 1.

    log_input = true:   l_i = exp(x_i) - y_i x_i,             dR/dx_i = s (exp(x_i) - y_i)
    log_input = false:  l_i = x_i - y_i log(x_i + eps),       dR/dx_i = s (1 - y_i / (x_i + eps))
    full = true adds the Stirling term y log y - y + log(2 pi y) / 2 where y > 1 (0 where y <= 1).

``mean`` divides by M, ``batchmean`` by N. exp(x) overflows to +Inf for large log-rates
(x > ~709.78 in float64; a float32 result beyond the float32 range is +Inf): the loss and
the gradient are then +Inf, returned, not reported as an error (README §6). Rejected:
y < 0; x < 0 with ``log_input = false``.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels import vecmath
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, inline, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, blocks, sink
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@inline
def _terms(xi, yi, eps, s, log_input, full):  # pragma: no cover - compiled
    """(loss, dR/dx) of one element; ``log_input`` and ``full`` are literals at the call
    site (one exp or one log per element, plus one log for the Stirling term)."""
    if log_input:
        e = vecmath.exp(xi)
        v = e - yi * xi
        g = s * (e - yi)
    else:
        v = xi - yi * vecmath.log(xi + eps)
        g = s * (1.0 - yi / (xi + eps))
    if full:
        ly = vecmath.log(yi)
        v += yi * ly - yi + 0.5 * ly + HALF_LOG_2PI if yi > 1.0 else 0.0
    return v, g


@inline
def _run(xb, yb, eps, s, ob, gxb, log_input, full):  # pragma: no cover - compiled
    """One block's element loop (unconditional stores: the outputs are sinks); returns the
    loss sum."""
    total = 0.0
    for k in range(xb.size):
        v, g = _terms(np.float64(xb[k]), np.float64(yb[k]), eps, s, log_input, full)
        total += v
        ob[k] = v
        gxb[k] = g
    return total


@block
def _poisson_block(i0, x, y, log_input, full, eps, s, out, gx, want_x):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_poisson_nll`: one loop per (log_input, full)."""
    stop = min(i0 + BLOCK, x.size)
    xb, yb, ob, gxb = x[i0:stop], y[i0:stop], sink(out, i0, stop), sink(gx, i0, stop)
    if log_input:
        if full:
            return _run(xb, yb, eps, s, ob, gxb, True, True)
        return _run(xb, yb, eps, s, ob, gxb, True, False)
    if full:
        return _run(xb, yb, eps, s, ob, gxb, False, True)
    return _run(xb, yb, eps, s, ob, gxb, False, False)


@dual(for_floats(lambda f: f64(ro(f), ro(f), boolean, boolean, f64, f64, rw(f), rw(f), boolean)))
def _poisson_nll(x, y, log_input, full, eps, s, out, gx, want_x):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _poisson_block(b * BLOCK, x, y, log_input, full, eps, s, out, gx, want_x)
    return total


def compute(call: Call) -> LossOutput:
    p = call.params
    return _elementwise.run(call, _poisson_nll, ("input",), ("target",),
                            (p["log_input"], p["full"], p["eps"]))


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")
    checks.nonnegative(call, "target")
    if not call.params["log_input"]:
        checks.values_in(call, "input", 0.0, float("inf"), words="(rates, with log_input = false)")


def examples(dtype: np.dtype) -> list:
    x = np.linspace(0.1, 2, 6, dtype=dtype).reshape(2, 3)
    y = np.array([[0, 1, 2], [3, 0.5, 7]], dtype)
    return [({"input": x, "target": y}, {}), ({"input": x, "target": y}, {"log_input": False, "full": True})]


SPEC = LossSpec(
    id="poisson_nll",
    summary="Poisson negative log likelihood of counts given a (log-)rate.",
    aliases=("poisson_nll_loss",),
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...)",
                  "log-rate (log_input = true) or rate >= 0 (log_input = false)", differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input", "counts >= 0 (not differentiated)"),
    ),
    params=(
        ParamSpec("log_input", bool, True, "input is the log of the rate"),
        ParamSpec("full", bool, False, "add the Stirling approximation term where target > 1"),
        ParamSpec("eps", float, 1e-8, "added to the rate inside the log when log_input = false",
                  minimum=0.0, exclusive_minimum=True),
    ),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
)
