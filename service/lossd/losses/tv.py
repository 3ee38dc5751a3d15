"""tv: total variation of NCHW images.

``input`` x: (N, C, H, W). Per plane (n, c): vertical differences a_ij = x_{i+1,j} - x_ij,
horizontal b_ij = x_{i,j+1} - x_ij. Per sample (summed over channels), shape (N,):

    l1         sum |a| + sum |b|                 a over (H-1) x W, b over H x (W-1)
    squared    sum a^2 + sum b^2                 same ranges
    isotropic  sum (a^2 + b^2)^(beta/2)          a and b both over (H-1) x (W-1)

Gradient (scatter into a zero array shaped like x, times s), per difference pair:
l1: +sign(a) to x_{i+1,j}, -sign(a) to x_ij (b likewise to x_{i,j+1} / x_ij; sign(0) = 0);
squared: the same with 2a, 2b; isotropic: with r = a^2 + b^2 and
kappa = beta r^(beta/2 - 1) (kappa a = kappa b = 0 when r = 0): +kappa a to x_{i+1,j},
+kappa b to x_{i,j+1}, -kappa (a + b) to x_ij. ``mean`` = ``batchmean`` = sum / N (no
normalisation by pixel count). H = 1 or W = 1: missing differences contribute nothing.
Planes run in parallel. Each plane is one pass over its rows in gather form: per row i the
vertical terms v_ij (of pair (i, j)-(i+1, j), 0 on the last row) and horizontal terms t_ij
(of pair (i, j)-(i, j+1)) go into two float64 row buffers, and

    dR/dx_ij = s (v_{i-1,j} - v_ij + t_{i,j-1} - t_ij)          (out-of-range terms are 0)

is written straight into the gradient (no scatter, no scratch plane, contiguous loops).
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.losses.common import buffer, finish
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

VARIANTS = ("l1", "squared", "isotropic")


@block
def _terms(xp, i, variant, beta, vert, horiz):  # pragma: no cover - compiled
    """Row i of plane xp: vert[j] = v_ij, horiz[j + 1] = t_ij (derivative terms); returns the
    row's share of the plane's total variation."""
    h, w = xp.shape
    v = 0.0
    last = i + 1 == h
    if variant == 2:
        if last:
            for j in range(w):
                vert[j] = 0.0
                horiz[j + 1] = 0.0
            return 0.0
        for j in range(w - 1):
            x0 = np.float64(xp[i, j])
            a = np.float64(xp[i + 1, j]) - x0
            b = np.float64(xp[i, j + 1]) - x0
            r = math.hypot(a, b)
            k = 0.0
            if r > 0.0:
                v += r ** beta
                k = beta * r ** (beta - 2.0)
            vert[j] = k * a
            horiz[j + 1] = k * b
        vert[w - 1] = 0.0
        horiz[w] = 0.0
        return v
    if last:
        for j in range(w):
            vert[j] = 0.0
    elif variant == 0:
        for j in range(w):
            a = np.float64(xp[i + 1, j]) - np.float64(xp[i, j])
            v += abs(a)
            vert[j] = (1.0 if a > 0.0 else 0.0) - (1.0 if a < 0.0 else 0.0)
    else:
        for j in range(w):
            a = np.float64(xp[i + 1, j]) - np.float64(xp[i, j])
            v += a * a
            vert[j] = 2.0 * a
    if variant == 0:
        for j in range(w - 1):
            b = np.float64(xp[i, j + 1]) - np.float64(xp[i, j])
            v += abs(b)
            horiz[j + 1] = (1.0 if b > 0.0 else 0.0) - (1.0 if b < 0.0 else 0.0)
    else:
        for j in range(w - 1):
            b = np.float64(xp[i, j + 1]) - np.float64(xp[i, j])
            v += b * b
            horiz[j + 1] = 2.0 * b
    horiz[w] = 0.0
    return v


@block
def _plane(xp, variant, beta, s, gp, want):  # pragma: no cover - compiled
    """Total variation of one (H, W) plane; its gradient times s into gp when wanted."""
    h, w = xp.shape
    above = np.zeros(w)
    vert = np.empty(w)
    horiz = np.zeros(w + 1)
    v = 0.0
    for i in range(h):
        v += _terms(xp, i, variant, beta, vert, horiz)
        if want:
            for j in range(w):
                gp[i, j] = s * ((above[j] - vert[j]) + (horiz[j] - horiz[j + 1]))
        above, vert = vert, above
    return v


@dual(for_floats(lambda f: f64(ro(f, 4), i64, f64, f64, rw(f), rw(f, 4), boolean)))
def _tv(x, variant, beta, s, out, gx, want):  # pragma: no cover - compiled
    n_img, n_ch, h, w = x.shape
    planes = np.zeros(n_img * n_ch)
    unused = np.empty((0, 0), gx.dtype)
    for plane in prange(n_img * n_ch):
        n = plane // n_ch
        c = plane % n_ch
        planes[plane] = _plane(x[n, c], variant, beta, s, gx[n, c] if want else unused, want)
    keep = out.size > 0
    total = 0.0
    for n in range(n_img):
        v = 0.0
        for c in range(n_ch):
            v += planes[n * n_ch + c]
        total += v
        if keep:
            out[n] = v
    return total


def compute(call: Call) -> LossOutput:
    x = call.inputs["input"]
    n = x.shape[0]
    s = scale(call.reduction, n, n)
    want = call.wants("input")
    out = buffer(call, n, call.reduction is Reduction.NONE)
    gx = buffer(call, x.shape, want)
    total = _tv.call(x.size, x, VARIANTS.index(call.params["variant"]), call.params["beta"], s,
                     out, gx, want)
    return LossOutput(finish(call, total, s, out, (n,)), {"input": gx} if want else {})


def validate(call: Call) -> None:
    checks.rank(call, "input", 4, "(N, C, H, W)")


def examples(dtype: np.dtype) -> list:
    x = np.arange(12, dtype=dtype).reshape(1, 1, 3, 4) ** 2 / 10
    return [({"input": x}, {"variant": v}) for v in VARIANTS]


SPEC = LossSpec(
    id="tv",
    summary="Total variation of NCHW images per sample (anisotropic l1/squared, isotropic V^beta).",
    inputs=(
        InputSpec("input", Kind.FLOAT, "(N, C, H, W)", "images", differentiable=True),
    ),
    params=(
        ParamSpec("variant", str, "l1", "l1 (anisotropic), squared (anisotropic) or isotropic "
                  "(Mahendran & Vedaldi's V^beta)", choices=VARIANTS),
        ParamSpec("beta", float, 1.0, "exponent of the isotropic variant (accepted and unused by "
                  "the others)", minimum=0.0, exclusive_minimum=True),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
