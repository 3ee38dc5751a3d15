"""combined_margin: InsightFace combined margin (metric.md §7c).

``features`` x [N, D], ``weight`` w [C, D] (both differentiable), ``labels`` y [N] in [0, C).
With xh = x/|x|, wh = w/|w|, cos_ij = xh_i . wh_j:

    c     = clamp(cos_iy, -1 + eps, 1 - eps),   theta = acos(c)
    T     = cos(m1 theta + m2) - m3                     (no threshold fallback)
    z_ij  = s cos_ij (j != y_i),  z_iy = s T,   l_i = logsumexp(z_i) - z_iy          (shape (N,))

Gradients (r: reduction factor, g = softmax(z) - e_y):

    dR/dcos_ij = r s g_ij,   dR/dcos_iy = r s g_iy T' mask,
    T' = m1 sin(m1 theta + m2) / sqrt(1 - c^2),   mask = 1 where -1 + eps <= cos_iy <= 1 - eps;
    dR/dxh = (dR/dcos) wh, dR/dwh = (dR/dcos)^T xh, then (I - xh xh^T)/|x| for x and w.

(1, m, 0) is arcface without the fallback; (1, 0, m) is cosface up to the clamp. Rows with
L2 norm <= 1e-12 are rejected. Computed by the shared pipeline of ``_margin``.
"""

from __future__ import annotations

import numpy as np

from lossd.losses import _margin
from lossd.spec import Call, LossOutput, LossSpec, ParamSpec


def compute(call: Call) -> LossOutput:
    p = call.params
    return _margin.compute(call, _margin.COMBINED, (p["m1"], p["m2"], p["m3"], p["eps"]), p["s"],
                           norm_x=True, norm_w=True)


def examples(dtype: np.dtype) -> list:
    return _margin.examples(dtype, [{}])


SPEC = LossSpec(
    id="combined_margin",
    summary="InsightFace combined margin: target logit s*(cos(m1*theta + m2) - m3).",
    inputs=_margin.INPUTS,
    params=(
        ParamSpec("s", float, 64.0, "logit scale", minimum=0.0, exclusive_minimum=True),
        ParamSpec("m1", float, 1.0, "multiplicative angular margin (SphereFace-like; need not be "
                  "an integer)", minimum=0.0, exclusive_minimum=True),
        ParamSpec("m2", float, 0.3, "additive angular margin in radians (ArcFace)", minimum=0.0),
        ParamSpec("m3", float, 0.2, "additive cosine margin (CosFace)", minimum=0.0),
        ParamSpec("eps", float, 1e-7, "clamp of the target cosine to [-1 + eps, 1 - eps]",
                  minimum=0.0, maximum=0.5),
    ),
    loss_shape=_margin.LOSS_SHAPE,
    compute=compute,
    validate=_margin.validate,
    examples=examples,
)
