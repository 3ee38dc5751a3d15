"""cosface: large margin cosine loss (CosFace, Wang et al. CVPR 2018; metric.md §7b).

``features`` x [N, D], ``weight`` w [C, D] (both differentiable), ``labels`` y [N] in [0, C).
With xh = x/|x|, wh = w/|w|, cos_ij = xh_i . wh_j:

    z_ij = s cos_ij (j != y_i),   z_iy = s (cos_iy - m),   l_i = logsumexp(z_i) - z_iy   (shape (N,))

Gradients (r: reduction factor, g = softmax(z) - e_y; T' = 1, no clamp):

    dR/dcos_ij = r s g_ij,   dR/dxh = (dR/dcos) wh,   dR/dwh = (dR/dcos)^T xh,
    then (I - xh xh^T)/|x| for x and (I - wh wh^T)/|w| for w.

Rows with L2 norm <= 1e-12 are rejected. Computed by the shared pipeline of ``_margin``.
"""

from __future__ import annotations

import numpy as np

from lossd.losses import _margin
from lossd.spec import Call, LossOutput, LossSpec, ParamSpec


def compute(call: Call) -> LossOutput:
    return _margin.compute(call, _margin.COS, (call.params["m"],), call.params["s"], norm_x=True,
                           norm_w=True)


def examples(dtype: np.dtype) -> list:
    return _margin.examples(dtype, [{}])


SPEC = LossSpec(
    id="cosface",
    summary="CosFace: softmax over s*cos with the additive cosine margin cos - m on the target.",
    inputs=_margin.INPUTS,
    params=(
        ParamSpec("s", float, 64.0, "logit scale", minimum=0.0, exclusive_minimum=True),
        ParamSpec("m", float, 0.35, "additive cosine margin", minimum=0.0),
    ),
    loss_shape=_margin.LOSS_SHAPE,
    compute=compute,
    validate=_margin.validate,
    examples=examples,
)
