"""center: center loss (Wen et al., ECCV 2016), optionally joined with softmax cross entropy.

``features`` x (N, D) float; ``labels`` y (N,) int in [0, C); ``centers`` c (C, D) float;
``logits`` z (N, C) float, optional. All float inputs are differentiable.

    l_i = [CE(z_i, y_i)] + lambda_c / 2 ||x_i - c_{y_i}||^2                    (shape (N,))

(the bracketed term only when ``logits`` is given; CE via log-sum-exp). Gradients
(r = 1 for none/sum, 1/N for mean/batchmean):

    dR/dx_i = r lambda_c (x_i - c_{y_i})
    dR/dc_j = -r lambda_c S_j,   S_j = sum_{i: y_i = j} (x_i - c_j)     (0 for absent classes)
    dR/dz_i = r (softmax(z_i) - e_{y_i})

With ``update = true`` two extra outputs (independent of reduction and lambda_c; returned
whatever ``grads`` asks), n_j = #{i : y_i = j}:

    center_delta_j    = -S_j / (1 + n_j)                 (Caffe's center diff; 0 when n_j = 0)
    centers_updated_j = c_j - alpha center_delta_j

S_j is a sum over the samples of class j: the rows are grouped by class (a stable argsort,
O(N log N) preparation) and a parallel loop over classes gathers its own rows, so no two
threads write the same center. Differences x - c are used directly, in float64.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses._rowblocks import row_blocks, rows_per_block
from lossd.losses.common import buffer, finish, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, OutputSpec, ParamSpec


@block
def _center_rows(i0, i1, x, y, c, z, has_logits, lam, r, out, gx, gz, want_x,
                 want_z):  # pragma: no cover - compiled
    """Rows [i0, i1) of :func:`_center`: their losses, dR/dx and dR/dz."""
    dim = x.shape[1]
    n_cls = c.shape[0]
    keep = out.size > 0
    total = 0.0
    for i in range(i0, i1):
        label = y[i]
        d2 = 0.0
        for k in range(dim):
            u = np.float64(x[i, k]) - np.float64(c[label, k])
            d2 += u * u
            if want_x:
                gx[i, k] = r * lam * u
        value = 0.5 * lam * d2
        if has_logits:
            m = -np.inf
            for k in range(n_cls):
                m = max(m, np.float64(z[i, k]))
            se = 0.0
            for k in range(n_cls):
                se += math.exp(np.float64(z[i, k]) - m)
            lse = m + math.log(se)
            value += lse - np.float64(z[i, label])
            if want_z:
                for k in range(n_cls):
                    g = math.exp(np.float64(z[i, k]) - lse)
                    if k == label:
                        g -= 1.0
                    gz[i, k] = r * g
        total += value
        if keep:
            out[i] = value
    return total


@block
def _center_class(j, x, c, order, start, lam, alpha, r, gc, delta, cnew, want_c,
                  update):  # pragma: no cover - compiled
    """Row j of dR/dc and of the center update: a sum over the rows labelled j (read through
    ``order``/``start``), so no two classes write the same row."""
    dim = x.shape[1]
    count = start[j + 1] - start[j]
    acc = np.zeros(dim)
    for m in range(start[j], start[j + 1]):
        row = order[m]
        for k in range(dim):
            acc[k] += np.float64(x[row, k]) - np.float64(c[j, k])
    for k in range(dim):
        s = acc[k]
        if want_c:
            gc[j, k] = -r * lam * s
        if update:
            dlt = -s / (1.0 + count)
            delta[j, k] = dlt
            cnew[j, k] = np.float64(c[j, k]) - alpha * dlt


@dual(for_floats(lambda f: f64(ro(f, 2), ro(i64), ro(f, 2), ro(f, 2), boolean, ro(i64), ro(i64), f64, f64,
                               f64, rw(f), rw(f, 2), rw(f, 2), rw(f, 2), rw(f, 2), rw(f, 2), boolean,
                               boolean, boolean, boolean)))
def _center(x, y, c, z, has_logits, order, start, lam, alpha, r, out, gx, gc, gz, delta, cnew,
            want_x, want_c, want_z, update):  # pragma: no cover - compiled
    """Row chunks, then classes: each prange iteration writes only its own rows."""
    n, dim = x.shape
    per = rows_per_block(dim + (z.shape[1] if has_logits else 0))
    total = 0.0
    for b in prange(row_blocks(n, per)):
        i0 = b * per
        total += _center_rows(i0, min(n, i0 + per), x, y, c, z, has_logits, lam, r, out, gx, gz,
                              want_x, want_z)
    if want_c or update:
        for j in prange(c.shape[0]):
            _center_class(j, x, c, order, start, lam, alpha, r, gc, delta, cnew, want_c, update)
    return total


def compute(call: Call) -> LossOutput:
    x, y, c = call.inputs["features"], call.inputs["labels"], call.inputs["centers"]
    z = call.get("logits")
    has_logits = z is not None
    if not has_logits:
        z = np.empty((0, 0), call.dtype)
    n = x.shape[0]
    n_cls = c.shape[0]
    prm = call.params
    update = prm["update"]
    want_c = call.wants("centers")
    if want_c or update:
        order = np.argsort(y, kind="stable")
        start = np.zeros(n_cls + 1, np.int64)
        np.cumsum(np.bincount(y, minlength=n_cls), out=start[1:])
    else:
        order = start = np.zeros(1, np.int64)
    r = scale(call.reduction, n, n)
    out = loss_buffer(call, n)
    gx = buffer(call, x.shape, call.wants("features"))
    gc = buffer(call, c.shape, want_c)
    gz = buffer(call, (n, n_cls), call.wants("logits"))
    delta = buffer(call, c.shape, update)
    cnew = buffer(call, c.shape, update)
    total = _center.call(x.size, x, y, c, z, has_logits, order, start, prm["lambda_c"], prm["alpha"], r,
                         out, gx, gc, gz, delta, cnew, call.wants("features"), want_c,
                         call.wants("logits"), update)
    grads = {name: g for name, g in (("features", gx), ("centers", gc), ("logits", gz)) if call.wants(name)}
    outputs = {"center_delta": delta, "centers_updated": cnew} if update else {}
    return LossOutput(finish(call, total, r, out, (n,)), grads, outputs)


def validate(call: Call) -> None:
    checks.rank(call, "features", 2, "(N, D)")
    n, dim = call.inputs["features"].shape
    checks.rank(call, "centers", 2, "(C, D)")
    n_cls = call.inputs["centers"].shape[0]
    checks.shape_is(call, "centers", (n_cls, dim), "(C, D) with the D of features")
    checks.shape_is(call, "labels", (n,), "(N,)")
    checks.shape_is(call, "logits", (n, n_cls), "(N, C) with the C of centers")
    checks.labels_in_range(call, "labels", n_cls)


def examples(dtype: np.dtype) -> list:
    x = np.array([[0.5, -1.0], [0.0, 0.3], [1.0, 1.0]], dtype)
    c = np.array([[0.0, 0.0], [1.0, -1.0]], dtype)
    z = np.array([[0.5, -1.0], [0.0, 0.3], [2.0, 1.0]], dtype)
    y = np.array([1, 0, 1])
    return [({"features": x, "labels": y, "centers": c}, {}),
            ({"features": x, "labels": y, "centers": c, "logits": z}, {"update": True})]


SPEC = LossSpec(
    id="center",
    summary="Center loss lambda_c/2 ||x - c_y||^2, optionally plus softmax cross entropy; optional "
            "center update outputs.",
    inputs=(
        InputSpec("features", Kind.FLOAT, "(N, D)", "deep features", differentiable=True),
        InputSpec("labels", Kind.INDEX, "(N,)", "class indices in [0, C)"),
        InputSpec("centers", Kind.FLOAT, "(C, D)", "class centers", differentiable=True),
        InputSpec("logits", Kind.FLOAT, "(N, C)", "classifier logits; adds softmax cross entropy",
                  differentiable=True, required=False),
    ),
    params=(
        ParamSpec("lambda_c", float, 1.0, "weight of the center term", minimum=0.0),
        ParamSpec("alpha", float, 0.5, "center learning rate (only affects centers_updated)",
                  minimum=0.0, maximum=1.0),
        ParamSpec("update", bool, False, "also return center_delta and centers_updated"),
    ),
    outputs=(
        OutputSpec("center_delta", "(C, D)", "sum_{i: y_i = j} (c_j - x_i) / (1 + n_j), 0 for absent "
                   "classes (returned when update = true)"),
        OutputSpec("centers_updated", "(C, D)", "c_j - alpha * center_delta_j (returned when "
                   "update = true)"),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
