"""arcface: additive angular margin softmax (ArcFace, Deng et al. CVPR 2019; metric.md §7a).

``features`` x [N, D], ``weight`` w [C, D] (both differentiable), ``labels`` y [N] in [0, C).
With xh = x/|x|, wh = w/|w|, cos_ij = xh_i . wh_j:

    c     = clamp(cos_iy, -1 + eps, 1 - eps),   phi = c cos m - sqrt(1 - c^2) sin m
    T     = phi if c > cos(pi - m) else c - m sin m          (easy_margin = false)
    T     = phi if c > 0           else c                    (easy_margin = true)
    z_ij  = s cos_ij (j != y_i),  z_iy = s T,   l_i = logsumexp(z_i) - z_iy        (shape (N,))

Gradients (r: reduction factor, g = softmax(z) - e_y):

    dR/dcos_ij = r s g_ij,   dR/dcos_iy = r s g_iy T' [mask],
    T' = cos m + sin m c / sqrt(1 - c^2) on the phi branch, 1 otherwise;
    mask = 1 where -1 + eps <= cos_iy <= 1 - eps, else 0.
    grad_mode = straight_through: same forward, T' := 1 and no mask (InsightFace arcface_torch).
    dR/dxh = (dR/dcos) wh, dR/dwh = (dR/dcos)^T xh, then (I - xh xh^T)/|x| for x and w.

The fallback (easy_margin = false) is discontinuous at c = cos(pi - m). Rows with L2 norm
<= 1e-12 are rejected. Computed by the shared GEMM + fused-row pipeline of ``_margin``.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.losses import _margin
from lossd.spec import Call, LossOutput, LossSpec, ParamSpec


def compute(call: Call) -> LossOutput:
    p = call.params
    prm = (p["m"], float(p["easy_margin"]), p["eps"], float(p["grad_mode"] == "straight_through"))
    return _margin.compute(call, _margin.ARC, prm, p["s"], norm_x=True, norm_w=True)


def examples(dtype: np.dtype) -> list:
    return _margin.examples(dtype, [{}, {"easy_margin": True, "grad_mode": "straight_through"}])


SPEC = LossSpec(
    id="arcface",
    summary="ArcFace: softmax over s*cos with the additive angular margin cos(theta + m) on the "
            "target class.",
    aliases=("additive_angular_margin",),
    inputs=_margin.INPUTS,
    params=(
        ParamSpec("s", float, 64.0, "logit scale", minimum=0.0, exclusive_minimum=True),
        ParamSpec("m", float, 0.5, "additive angular margin in radians", minimum=0.0,
                  maximum=math.pi, exclusive_maximum=True),
        ParamSpec("easy_margin", bool, False, "apply the margin only where cos > 0 (theta < pi/2); "
                  "false: InsightFace th/mm fallback c - m sin m where c <= cos(pi - m)"),
        ParamSpec("eps", float, 1e-7, "clamp of the target cosine to [-1 + eps, 1 - eps]",
                  minimum=0.0, maximum=0.5),
        ParamSpec("grad_mode", str, "exact", "exact: true gradient; straight_through: "
                  "dT/dcos := 1 (InsightFace arcface_torch no_grad margin)",
                  choices=("exact", "straight_through")),
    ),
    loss_shape=_margin.LOSS_SHAPE,
    compute=compute,
    validate=_margin.validate,
    examples=examples,
)
