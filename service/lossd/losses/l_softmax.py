"""l_softmax: large-margin softmax (L-Softmax, Liu et al. ICML 2016; metric.md §3a).

``features`` x [N, D], ``weight`` w [C, D] (both differentiable, no bias), ``labels`` y [N].
With d_ij = x_i . w_j, c_i = d_iy / (|x_i| |w_y|), theta = acos(clamp(c, -1, 1)):

    k     = min(floor(m theta / pi), m - 1)                 (piecewise constant, no gradient)
    psi   = (-1)^k T_m(c) - 2k,     psi' = (-1)^k m U_{m-1}(c)   (Chebyshev recurrences)
    f_iy  = (lambda d_iy + |x||w_y| psi) / (1 + lambda),  f_ij = d_ij (j != y)
    l_i   = logsumexp(f_i) - f_iy                                                   (shape (N,))

lambda = ``lambda_`` (unset: 0), or, with ``iteration`` given,
lambda = max(lambda_base (1 + lambda_gamma iteration)^(-lambda_power), lambda_min).

Gradients (r: reduction factor, g = softmax(f) - e_y, F = (lambda c + psi)/(1 + lambda)):

    dR/dx_i = r [ sum_{j != y} g_ij w_j + g_iy (F'(c) w_y + |w_y| (F - c F') xh_i) ]
    dR/dw_j = r sum_i [ j != y_i: g_ij x_i ;  j = y_i: g_iy (F'(c) x_i + |x_i| (F - c F') wh_j) ]

which are metric.md's dG/dx, dG/dw_y with G = |x||w_y| psi. Rows of features or weight with L2
norm <= 1e-12 are rejected. Computed by the shared GEMM + fused-row pipeline of ``_margin``.
"""

from __future__ import annotations

import numpy as np

from lossd.losses import _margin
from lossd.spec import Call, LossOutput, LossSpec, ParamSpec
from lossd_client.errors import FieldViolation, InvalidArgument


def blend(params: dict) -> float:
    """lambda: ``lambda_`` (unset: 0), or the annealing schedule at ``iteration``."""
    if params["iteration"] is None:
        return 0.0 if params["lambda_"] is None else params["lambda_"]
    decay = (1.0 + params["lambda_gamma"] * params["iteration"]) ** (-params["lambda_power"])
    return max(params["lambda_base"] * decay, params["lambda_min"])


def compute_large_margin(call: Call, normalise_weight: bool) -> LossOutput:
    """l_softmax (raw weight rows) or sphereface (normalised weight rows)."""
    prm = (float(call.params["margin"]), blend(call.params))
    return _margin.compute(call, _margin.CHEBYSHEV, prm, 1.0, norm_x=False, norm_w=normalise_weight)


def validate(call: Call) -> None:
    _margin.validate(call)
    if call.params["lambda_"] is not None and call.params["iteration"] is not None:
        text = "give either lambda_ or iteration (the annealing schedule), not both"
        raise InvalidArgument(f"params.lambda_, params.iteration: {text}",
                              [FieldViolation("params.lambda_", text),
                               FieldViolation("params.iteration", text)])


def params(base: float, gamma: float, power: float, minimum: float) -> tuple[ParamSpec, ...]:
    """The parameters of l_softmax and sphereface, with the schedule defaults given."""
    return (
        ParamSpec("margin", int, 4, "integer multiplicative angular margin m", minimum=1, maximum=16),
        ParamSpec("lambda_", float, None, "blending weight lambda with the plain logit (unset: 0, "
                  "pure large margin); not together with iteration", minimum=0.0,
                  range="real >= 0, or unset (0); rejected together with iteration"),
        ParamSpec("iteration", int, None, "training iteration: lambda comes from the annealing "
                  "schedule max(lambda_base (1 + lambda_gamma it)^-lambda_power, lambda_min)",
                  minimum=0, range="integer >= 0, or unset; rejected together with lambda_"),
        ParamSpec("lambda_base", float, base, "annealing schedule base", minimum=0.0),
        ParamSpec("lambda_gamma", float, gamma, "annealing schedule gamma", minimum=0.0),
        ParamSpec("lambda_power", float, power, "annealing schedule power", minimum=0.0),
        ParamSpec("lambda_min", float, minimum, "annealing schedule floor", minimum=0.0),
    )


def examples(dtype: np.dtype) -> list:
    return _margin.examples(dtype, [{}, {"margin": 1, "iteration": 3}])


SPEC = LossSpec(
    id="l_softmax",
    summary="L-Softmax: softmax over x.w with the target logit |x||w| psi(theta), "
            "psi = (-1)^k cos(m theta) - 2k.",
    aliases=("large_margin_softmax",),
    inputs=_margin.INPUTS,
    params=params(1000.0, 2.5e-5, 35.0, 0.0),
    loss_shape=_margin.LOSS_SHAPE,
    compute=lambda call: compute_large_margin(call, normalise_weight=False),
    validate=validate,
    examples=examples,
)

__all__ = ["SPEC", "blend", "compute_large_margin", "params", "validate"]
