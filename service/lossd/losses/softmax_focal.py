"""softmax_focal: multi-class focal loss over softmax logits (kornia ``focal_loss``).

``logits`` z: (N, C) float; ``labels`` y: (N,) int in [0, C); ``class_alpha``: optional
(C,) float >= 0 (not differentiated; replaces the scalar ``alpha``).

    lp = log_softmax(z_i)[y_i] = z_iy - logsumexp(z_i),   p_y = exp(lp),
    u  = 1 - p_y = -expm1(lp),   a_i = class_alpha[y_i] or alpha
    l_i = -a_i u^gamma lp                                                     (shape (N,))

Gradient (r = 1 for none/sum, 1/N for mean/batchmean; mean is not a weighted mean):

    dR/dz_ik = r a_i (delta_ky - p_k) B_i,   B_i = gamma p_y (lp / u) u^gamma - u^gamma

(the first term of B is gamma p_y u^(gamma-1) lp, taken as its limit 0 when u = 0;
delta_yy - p_y is evaluated as u). With gamma = 0 this is a_i (p - e_y).
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses.common import buffer, finish, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

#: rows per chunk target about this many elements (one float64 scratch row per chunk).
_CHUNK_ELEMENTS = 4096


@dual(for_floats(lambda f: f64(ro(f, 2), ro(i64), ro(f), boolean, f64, f64, f64, rw(f), rw(f, 2),
                               boolean)))
def _softmax_focal(z, y, class_alpha, per_class, alpha, gamma, r, out, gz,
                   want):  # pragma: no cover - compiled
    n, c = z.shape
    keep = out.size > 0
    per = max(1, _CHUNK_ELEMENTS // c)
    n_chunks = (n + per - 1) // per
    total = 0.0
    for chunk in prange(n_chunks):
        # exp(z_k - m) once per element into a float64 scratch row, reused by the gradient.
        e = np.empty(c if want else 0)
        acc = 0.0
        for i in range(chunk * per, min(n, (chunk + 1) * per)):
            m = -np.inf
            for k in range(c):
                m = max(m, np.float64(z[i, k]))
            se = 0.0
            if want:
                for k in range(c):
                    ek = math.exp(np.float64(z[i, k]) - m)
                    e[k] = ek
                    se += ek
            else:
                for k in range(c):
                    se += math.exp(np.float64(z[i, k]) - m)
            lse = m + math.log(se)
            label = y[i]
            lp = np.float64(z[i, label]) - lse
            py = math.exp(lp)
            u = -math.expm1(lp)
            a = np.float64(class_alpha[label]) if per_class else alpha
            ug = u ** gamma
            value = -a * ug * lp
            acc += value
            if keep:
                out[i] = value
            if want:
                bracket = -ug
                if u > 0.0 and gamma != 0.0:
                    bracket += gamma * py * (lp / u) * ug
                coef = r * a * bracket
                f = -coef / se
                for k in range(c):
                    gz[i, k] = f * e[k]
                gz[i, label] = coef * u
        total += acc
    return total


def compute(call: Call) -> LossOutput:
    z, y = call.inputs["logits"], call.inputs["labels"]
    n = z.shape[0]
    class_alpha = call.get("class_alpha")
    per_class = class_alpha is not None
    if not per_class:
        class_alpha = np.empty(0, call.dtype)
    r = scale(call.reduction, n, n)
    out = loss_buffer(call, n)
    gz = buffer(call, z.shape, call.wants("logits"))
    total = _softmax_focal.call(z.size, z, y, class_alpha, per_class, call.params["alpha"],
                                call.params["gamma"], r, out, gz, call.wants("logits"))
    return LossOutput(finish(call, total, r, out, (n,)), grads_of(call, logits=gz))


def validate(call: Call) -> None:
    checks.rank(call, "logits", 2, "(N, C)")
    classes = call.inputs["logits"].shape[1]
    checks.shape_is(call, "labels", (call.n,), "(N,)")
    checks.labels_in_range(call, "labels", classes)
    checks.shape_is(call, "class_alpha", (classes,), "(C,)")
    checks.nonnegative(call, "class_alpha")


def examples(dtype: np.dtype) -> list:
    z = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], dtype)
    y = np.array([2, 0])
    return [({"logits": z, "labels": y}, {}),
            ({"logits": z, "labels": y, "class_alpha": np.array([0.2, 0.3, 0.5], dtype)}, {})]


SPEC = LossSpec(
    id="softmax_focal",
    summary="Softmax focal loss -a (1 - p_y)^gamma log p_y over (N, C) logits.",
    inputs=(
        InputSpec("logits", Kind.FLOAT, "(N, C)", "logits", differentiable=True),
        InputSpec("labels", Kind.INDEX, "(N,)", "class indices in [0, C)"),
        InputSpec("class_alpha", Kind.FLOAT, "(C,)", "per-class weights >= 0 (not differentiated); "
                  "replaces alpha when given", required=False),
    ),
    params=(
        ParamSpec("alpha", float, 1.0, "scalar weight (ignored when class_alpha is given)", minimum=0.0),
        ParamSpec("gamma", float, 2.0, "focusing exponent", minimum=0.0),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
