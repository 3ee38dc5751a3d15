"""sphereface: A-Softmax (SphereFace, Liu et al. CVPR 2017; metric.md §3b).

``features`` x [N, D], ``weight`` w [C, D] (both differentiable), ``labels`` y [N] in [0, C).
Exactly ``l_softmax`` with wh_j = w_j / |w_j| in place of w_j: with c_i = xh_i . wh_y,

    f_ij = |x_i| cos_ij (j != y),   f_iy = |x_i| (lambda c + psi(c)) / (1 + lambda),
    psi = (-1)^k T_m(c) - 2k,  k = min(floor(m theta / pi), m - 1),   l_i = CE(f_i, y_i)

Gradients: dR/dx as in l_softmax with |wh| = 1; dR/dwh from the l_softmax formulas, then through
the normalisation, dR/dw_j = (I - wh_j wh_j^T)/|w_j| dR/dwh_j (not the official Caffe heuristic).
Schedule defaults: lambda_base 1000, lambda_gamma 0.12, lambda_power 1, lambda_min 5.
"""

from __future__ import annotations

import numpy as np

from lossd.losses import _margin
from lossd.losses.l_softmax import compute_large_margin, params, validate
from lossd.spec import LossSpec


def examples(dtype: np.dtype) -> list:
    return _margin.examples(dtype, [{}])


SPEC = LossSpec(
    id="sphereface",
    summary="SphereFace A-Softmax: L-Softmax with normalised weight rows, target logit "
            "|x| psi(theta).",
    aliases=("a_softmax",),
    inputs=_margin.INPUTS,
    params=params(1000.0, 0.12, 1.0, 5.0),
    loss_shape=_margin.LOSS_SHAPE,
    compute=lambda call: compute_large_margin(call, normalise_weight=True),
    validate=validate,
    examples=examples,
)
