"""softmax_cross_entropy: cross entropy of logits (PyTorch ``F.cross_entropy``).

``input`` z: logits (N, C, d1..dk). ``lq = log_softmax(z, dim=1)``, ``q = exp(lq)``,
``S_w = sum_c w_c`` (``weight`` w: (C,), >= 0, default ones), eps = label_smoothing.

Index targets (int, (N, d1..dk), in [0, C) or ignore_index), per position i, y = y_i:

    l_i = (1 - eps) w_y (-lq_y) + (eps / C) sum_c w_c (-lq_c)      (0 if ignored)
    dR/dz_c = s [ (1 - eps) w_y (q_c - [c = y]) + (eps / C)(S_w q_c - w_c) ]
    mean: s = 1 / W, W = sum over non-ignored positions of w_{y_i};
          W = 0 gives a NaN loss and all-zero gradients.

Probability targets (float, (N, C, d1..dk), in [0, 1]), p' = (1 - eps) p + eps / C:

    l_i = -sum_c w_c p'_c lq_c
    dR/dz_c = s [ q_c sum_j w_j p'_j - w_c p'_c ]
    dR/dp_c = -s (1 - eps) w_c lq_c                                 (mean: s = 1/P)

Evaluated through log-sum-exp (m = max_c z_c), accumulated in float64. Both target kinds run
by columns (chunks of positions, :mod:`lossd.losses._softmax_cols`) when there are few
classes or a spatial axis (K > 1), by rows otherwise; the formulas are the same.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels import vecmath
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.losses import _softmax_cols as cols
from lossd.losses._softmax_rows import exp_row, nll_from_rest, row_max
from lossd.losses.common import buffer, finish
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

#: rows per chunk target about this many elements: one float64 scratch row and a few
#: per-position float64 vectors are allocated per chunk, not per row.
_CHUNK_ELEMENTS = 4096
#: per-position values kept for the vectorised log pass of the index kernel
_EM1, _REST, _MZ, _ZY, _WZ, _WY = range(6)
#: the index kernel runs by columns for K = 1 and at most this many classes, and for every C
#: once K >= _COLS_MIN_POSITIONS (a row is strided by K). Measured, float32, one thread, rows
#: -> columns: (65536, 10) 5.9 -> 3.3 ms, (20480, 32) 2.9 -> 2.4 ms, (10240, 64) 2.1 -> 2.8 ms;
#: (16, 10, 4096) 11.4 -> 3.2 ms, (16, 1000, 16) 1.9 -> 1.3 ms
_COLS_MAX_CLASSES = 40
#: the same for the probability kernel: (65536, 10) 7.7 -> 3.0 ms, (27306, 24) 4.1 -> 3.2 ms,
#: (20480, 32) 4.7 -> 5.1 ms; (16, 10, 4096) 14.8 -> 3.5 ms, (16, 1000, 16) 2.6 -> 2.1 ms
_PROB_COLS_MAX_CLASSES = 24
_COLS_MIN_POSITIONS = 16
#: a block of the column kernel (its scratch allocated once) spans about this many elements
_COLS_BLOCK_ELEMENTS = 16384
#: and, in the column block, the gradient factor and 1 / sum_c e_c
_F, _R = 6, 7
#: (z, p, w, eps, s, out, gz, gp, want_z, want_p) -> loss sum: both layouts of the probability kernel
_PROB_SIGNATURES = for_floats(lambda f: f64(ro(f, 3), ro(f, 3), ro(f), f64, f64, rw(f, 2), rw(f, 3), rw(f, 3),
                                            boolean, boolean))
#: (z, y, w, ignore, eps, s, out, gz, want) -> loss sum: both layouts of the index kernel
_INDEX_SIGNATURES = for_floats(lambda f: f64(ro(f, 3), ro(i64, 2), ro(f), i64, f64, f64, rw(f, 2), rw(f, 3),
                                             boolean))


@block
def _losses(st, count, eps, smooth, sw):  # pragma: no cover - compiled
    """The losses of positions j < count from st's _EM1, _REST, _MZ (m - z_y), _ZY, _WY and _WZ
    (sum_c w_c z_c), stored over _WZ; returns their sum. Vectorised over the positions; one
    float64 build serves both layouts of the index kernel."""
    acc = 0.0
    for j in range(count):
        d = nll_from_rest(st[_EM1, j], st[_REST, j], st[_MZ, j])
        value = (1.0 - eps) * st[_WY, j] * d + smooth * (sw * (st[_ZY, j] + d) - st[_WZ, j])
        st[_WZ, j] = value
        acc += value
    return acc


@block
def _index_rows(lo, hi, z, y, w, ignore, eps, s, sw, out, gz, want):  # pragma: no cover - compiled
    """Rows [lo, hi) of the index kernel: (1) per position max, exp and sums (vectorised over
    classes) and the gradient, which needs no log; (2) lse - z_y and the loss, vectorised over
    the rows' positions; returns their sum. Writes rows lo..hi-1 of out and gz only."""
    n_cls, n_pos = z.shape[1], z.shape[2]
    smooth = eps / n_cls
    b = s * smooth
    e = np.empty(n_cls, z.dtype)  # exp(z_c - m) in z's type (see exp_row)
    st = np.empty((6, (hi - lo) * n_pos))
    for n in range(lo, hi):
        for k in range(n_pos):
            j = (n - lo) * n_pos + k
            label = y[n, k]
            if label == ignore:  # contributes 0 through the neutral values below
                st[_EM1, j], st[_REST, j], st[_MZ, j] = 0.0, 0.0, 0.0
                st[_ZY, j], st[_WZ, j], st[_WY, j] = 0.0, 0.0, 0.0
                if want:
                    for c in range(n_cls):
                        gz[n, c, k] = 0.0
                continue
            m = row_max(z, n, k)
            rest = exp_row(z, n, k, m, e, 0, label)
            ey = e[label]
            zy = np.float64(z[n, label, k])
            wy = np.float64(w[label])
            wz = 0.0
            if eps != 0.0:
                for c in range(n_cls):
                    wz += w[c] * np.float64(z[n, c, k])
            st[_EM1, j], st[_REST, j], st[_MZ, j] = ey - 1.0, rest, m - zy
            st[_ZY, j], st[_WZ, j], st[_WY, j] = zy, wz, wy
            if want:
                a = s * (1.0 - eps) * wy
                r = 1.0 / (ey + rest)
                f = (a + b * sw) * r
                for c in range(n_cls):
                    gz[n, c, k] = f * e[c] - b * w[c]
                # a (q_y - 1) = -a rest / se: no cancellation as q_y -> 1
                gz[n, label, k] = -a * rest * r + b * (sw * ey * r - w[label])
    acc = _losses(st, st.shape[1], eps, smooth, sw)
    if out.size > 0:
        flat = out.reshape(out.size)
        for j in range(st.shape[1]):
            flat[lo * n_pos + j] = st[_WZ, j]
    return acc


@dual(_INDEX_SIGNATURES)
def _ce_index(z, y, w, ignore, eps, s, out, gz, want):  # pragma: no cover - compiled
    """Chunks of whole rows (about _CHUNK_ELEMENTS elements), each a call of _index_rows."""
    n_rows, n_cls, n_pos = z.shape
    sw = 0.0
    for c in range(n_cls):
        sw += w[c]
    per = max(1, _CHUNK_ELEMENTS // (n_cls * n_pos))
    total = 0.0
    for chunk in prange((n_rows + per - 1) // per):
        total += _index_rows(chunk * per, min(n_rows, (chunk + 1) * per), z, y, w, ignore, eps, s, sw,
                             out, gz, want)
    return total


def by_columns(classes: int, positions: int, max_classes: int = _COLS_MAX_CLASSES) -> bool:
    """Whether a kernel runs by columns for C = ``classes``, K = ``positions`` (K = 1: up to
    ``max_classes``)."""
    return positions >= _COLS_MIN_POSITIONS or (positions == 1 and classes <= max_classes)


@block
def _index_cols(first, last, z, y, w, ignore, eps, s, sw, out, gz, want):  # pragma: no cover - compiled
    """Chunks [first, last) (_softmax_cols) of the index kernel: the formulas of _index_rows,
    each pass along the chunk's positions; returns the sum of their losses. Writes only the
    chunks' positions of out and gz."""
    n_cls = z.shape[1]
    flat = z.shape[2] == 1
    smooth = eps / n_cls
    b = s * smooth
    zt = np.empty((n_cls, cols.P), z.dtype)
    m = np.empty(cols.P, z.dtype)
    lab = np.empty(cols.P, np.int64)
    st = np.empty((8, cols.P))
    bw = np.empty(n_cls)
    for c in range(n_cls):
        bw[c] = b * w[c]
    acc = 0.0
    for chunk in range(first, last):
        n0, k0, cnt = cols.chunk_span(chunk, z)
        cols.gather(z, n0, k0, cnt, zt, m)
        for j in range(cnt):
            label = y[n0 + j, 0] if flat else y[n0, k0 + j]
            lab[j] = -1 if label == ignore else label
        for j in range(cnt):
            st[_WZ, j] = 0.0  # sum_c w_c z_c, for label smoothing
        if eps != 0.0:
            for c in range(n_cls):
                for j in range(cnt):
                    st[_WZ, j] += w[c] * np.float64(zt[c, j])
        for j in range(cnt):
            st[_ZY, j] = np.float64(zt[max(lab[j], 0), j])
        cols.exp_cols(zt, m, cnt)
        cols.rest_cols(zt, lab, cnt, st[_REST])
        for j in range(cnt):
            label = lab[j]
            if label < 0:  # ignored: contributes 0 through these neutral values
                st[_REST, j], st[_EM1, j], st[_MZ, j] = 0.0, 0.0, 0.0
                st[_ZY, j], st[_WY, j], st[_WZ, j] = 0.0, 0.0, 0.0
                st[_F, j], st[_R, j] = 0.0, 0.0
            else:
                ey = np.float64(zt[label, j])
                wy = np.float64(w[label])
                r = 1.0 / (ey + st[_REST, j])
                st[_EM1, j] = ey - 1.0
                st[_MZ, j] = np.float64(m[j]) - st[_ZY, j]
                st[_WY, j] = wy
                st[_R, j] = r
                st[_F, j] = (s * (1.0 - eps) * wy + b * sw) * r
        acc += _losses(st, cnt, eps, smooth, sw)
        if out.size > 0:
            for j in range(cnt):
                if flat:
                    out[n0 + j, 0] = st[_WZ, j]
                else:
                    out[n0, k0 + j] = st[_WZ, j]
        if want:
            cols.put_scaled(gz, n0, k0, cnt, zt, st[_F], bw)
            for j in range(cnt):
                label = lab[j]
                if label < 0:
                    for c in range(n_cls):
                        cols.put(gz, n0, k0, j, c, 0.0)
                else:  # a (q_y - 1) = -a rest / se: no cancellation as q_y -> 1
                    a = s * (1.0 - eps) * st[_WY, j]
                    r = st[_R, j]
                    value = -a * st[_REST, j] * r + b * (sw * np.float64(zt[label, j]) * r - w[label])
                    cols.put(gz, n0, k0, j, label, value)
    return acc


@dual(_INDEX_SIGNATURES)
def _ce_index_cols(z, y, w, ignore, eps, s, out, gz, want):  # pragma: no cover - compiled
    """The index kernel by columns: blocks of about _COLS_BLOCK_ELEMENTS elements, each a call
    of _index_cols."""
    n_cls = z.shape[1]
    sw = 0.0
    for c in range(n_cls):
        sw += w[c]
    count = cols.chunk_count(z)
    per = max(1, _COLS_BLOCK_ELEMENTS // (n_cls * cols.P))
    total = 0.0
    for blk in prange((count + per - 1) // per):
        total += _index_cols(blk * per, min(count, (blk + 1) * per), z, y, w, ignore, eps, s, sw,
                             out, gz, want)
    return total


@block
def _prob_rows(lo, hi, z, p, w, eps, s, out, gz, gp, want_z, want_p):  # pragma: no cover - compiled
    """Rows [lo, hi) of the probability kernel, per position: max, exp and sum (vectorised
    over classes), lse, the loss and the gradients; returns the sum of the losses."""
    n_cls, n_pos = z.shape[1], z.shape[2]
    keep = out.size > 0
    smooth = eps / n_cls
    e = np.empty(n_cls, z.dtype)  # exp(z_c - m) in z's type (see exp_row), reused by the z gradient
    acc = 0.0
    for n in range(lo, hi):
        for k in range(n_pos):
            m = row_max(z, n, k)
            se = exp_row(z, n, k, m, e, 0, -1)
            lse = m + vecmath.log(se)
            value = 0.0
            wp = 0.0
            for c in range(n_cls):
                wpc = w[c] * ((1.0 - eps) * np.float64(p[n, c, k]) + smooth)
                value -= wpc * (np.float64(z[n, c, k]) - lse)
                wp += wpc
            acc += value
            if keep:
                out[n, k] = value
            if want_p:
                for c in range(n_cls):
                    gp[n, c, k] = -s * (1.0 - eps) * w[c] * (np.float64(z[n, c, k]) - lse)
            if want_z:
                f = s * wp / se
                for c in range(n_cls):
                    wpc = w[c] * ((1.0 - eps) * np.float64(p[n, c, k]) + smooth)
                    gz[n, c, k] = f * e[c] - s * wpc
    return acc


@dual(_PROB_SIGNATURES)
def _ce_prob(z, p, w, eps, s, out, gz, gp, want_z, want_p):  # pragma: no cover - compiled
    """Chunks of whole rows (about _CHUNK_ELEMENTS elements), each a call of _prob_rows."""
    n_rows, n_cls, n_pos = z.shape
    per = max(1, _CHUNK_ELEMENTS // (n_cls * n_pos))
    total = 0.0
    for chunk in prange((n_rows + per - 1) // per):
        total += _prob_rows(chunk * per, min(n_rows, (chunk + 1) * per), z, p, w, eps, s, out, gz, gp,
                            want_z, want_p)
    return total


@block
def _prob_cols(first, last, z, p, w, eps, s, out, gz, gp, want_z, want_p):  # pragma: no cover - compiled
    """Chunks [first, last) (_softmax_cols) of the probability kernel: the formulas of
    _prob_rows, each pass along the chunk's positions (the losses still summed per class,
    -w_c p'_c (z_c - lse), no cancellation); returns the sum of their losses. Writes only the
    chunks' positions of out, gz and gp."""
    n_cls = z.shape[1]
    smooth = eps / n_cls
    zt = np.empty((n_cls, cols.P), z.dtype)
    et = np.empty((n_cls, cols.P), z.dtype)  # exp(z_c - m) in z's type (see exp_row)
    pt = np.empty((n_cls, cols.P), p.dtype)
    gt = np.empty((n_cls, cols.P))
    m = np.empty(cols.P, z.dtype)
    every = np.full(cols.P, -1, np.int64)  # rest_cols sums over every class
    one, nothing = np.ones(cols.P), np.zeros(n_cls)  # put_scaled as a copy of gt
    se, lse, wp, val = np.empty(cols.P), np.empty(cols.P), np.empty(cols.P), np.empty(cols.P)
    acc = 0.0
    for chunk in range(first, last):
        n0, k0, cnt = cols.chunk_span(chunk, z)
        cols.gather(z, n0, k0, cnt, zt, m)
        cols.copy_in(p, n0, k0, cnt, pt)
        et[:, :cnt] = zt[:, :cnt]  # the logits stay in zt; exp_cols works in place
        cols.exp_cols(et, m, cnt)
        cols.rest_cols(et, every, cnt, se)
        for j in range(cnt):
            lse[j] = np.float64(m[j]) + vecmath.log(se[j])
            wp[j] = 0.0
            val[j] = 0.0
        for c in range(n_cls):
            for j in range(cnt):
                wpc = w[c] * ((1.0 - eps) * np.float64(pt[c, j]) + smooth)
                val[j] -= wpc * (np.float64(zt[c, j]) - lse[j])
                wp[j] += wpc
        for j in range(cnt):
            acc += val[j]
        if out.size > 0:
            for j in range(cnt):
                if z.shape[2] == 1:
                    out[n0 + j, 0] = val[j]
                else:
                    out[n0, k0 + j] = val[j]
        if want_p:
            for c in range(n_cls):
                for j in range(cnt):
                    gt[c, j] = -s * (1.0 - eps) * w[c] * (np.float64(zt[c, j]) - lse[j])
            cols.put_scaled(gp, n0, k0, cnt, gt, one, nothing)
        if want_z:
            for j in range(cnt):
                wp[j] = s * wp[j] / se[j]
            for c in range(n_cls):
                for j in range(cnt):
                    wpc = w[c] * ((1.0 - eps) * np.float64(pt[c, j]) + smooth)
                    gt[c, j] = wp[j] * np.float64(et[c, j]) - s * wpc
            cols.put_scaled(gz, n0, k0, cnt, gt, one, nothing)
    return acc


@dual(_PROB_SIGNATURES)
def _ce_prob_cols(z, p, w, eps, s, out, gz, gp, want_z, want_p):  # pragma: no cover - compiled
    """The probability kernel by columns: blocks of about _COLS_BLOCK_ELEMENTS elements, each
    a call of _prob_cols."""
    count = cols.chunk_count(z)
    per = max(1, _COLS_BLOCK_ELEMENTS // (z.shape[1] * cols.P))
    total = 0.0
    for blk in prange((count + per - 1) // per):
        total += _prob_cols(blk * per, min(count, (blk + 1) * per), z, p, w, eps, s, out, gz, gp,
                            want_z, want_p)
    return total


def _as3d(a: np.ndarray) -> np.ndarray:
    """(N, C, d1..dk) -> (N, C, K) view, K = d1*...*dk (1 when k = 0)."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def _weight(call: Call, classes: int) -> np.ndarray:
    w = call.get("weight")
    return np.ones(classes, call.dtype) if w is None else w


def compute(call: Call) -> LossOutput:
    z = _as3d(call.inputs["input"])
    target = call.inputs["target"]
    n, classes, positions = z.shape
    w = _weight(call, classes)
    eps = call.params["label_smoothing"]
    pos_shape = (n, *call.inputs["input"].shape[2:])
    want_z = call.wants("input")
    gz = buffer(call, z.shape, want_z)
    if target.dtype.kind == "i":
        y = target.reshape(n, positions)
        ignore = call.params["ignore_index"]
        s = scale(call.reduction, n * positions, n)
        degenerate = False
        if call.reduction is Reduction.MEAN:
            if call.get("weight") is None:  # all weights 1: W is the exact non-ignored count
                weight_total = float(y.size - np.count_nonzero(y == ignore))
            else:
                weight_total = float(np.sum(w[y[y != ignore]], dtype=np.float64))
            degenerate = weight_total == 0.0
            s = 0.0 if degenerate else 1.0 / weight_total
        out = buffer(call, (n, positions), call.reduction is Reduction.NONE)
        kern = _ce_index_cols if by_columns(classes, positions) else _ce_index
        total = kern.call(z.size, z, y, w, ignore, eps, s, out, gz, want_z)
        loss = finish(call, math.nan if degenerate else total, s, out, pos_shape)
        grads = {"input": gz.reshape(call.inputs["input"].shape)} if want_z else {}
        return LossOutput(loss, grads)
    p = _as3d(target)
    want_p = call.wants("target")
    s = scale(call.reduction, n * positions, n)
    gp = buffer(call, p.shape, want_p)
    out = buffer(call, (n, positions), call.reduction is Reduction.NONE)
    kern = _ce_prob_cols if by_columns(classes, positions, _PROB_COLS_MAX_CLASSES) else _ce_prob
    total = kern.call(z.size, z, p, w, eps, s, out, gz, gp, want_z, want_p)
    grads = {}
    if want_z:
        grads["input"] = gz.reshape(call.inputs["input"].shape)
    if want_p:
        grads["target"] = gp.reshape(target.shape)
    return LossOutput(finish(call, total, s, out, pos_shape), grads)


def validate(call: Call) -> None:
    checks.min_rank(call, "input", 2, "(N, C, d1..dk)")
    z = call.inputs["input"]
    classes = z.shape[1]
    target = call.inputs["target"]
    if target.dtype.kind == "i":
        expected = (z.shape[0], *z.shape[2:])
        checks.shape_is(call, "target", expected, "(N, d1..dk) for class-index targets")
        checks.labels_in_range(call, "target", classes, call.params["ignore_index"])
    else:
        checks.same_shape(call, "target", "input")
        checks.values_in(call, "target", 0.0, 1.0, words="(probability targets)")
        if call.params["ignore_index"] >= 0:
            raise checks.param_error("ignore_index", "must be negative (unset) with probability "
                                     f"targets, got {call.params['ignore_index']}")
    checks.shape_is(call, "weight", (classes,), "(C,)")
    checks.nonnegative(call, "weight")


def examples(dtype: np.dtype) -> list:
    z = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], dtype)
    return [
        ({"input": z, "target": np.array([2, 0])}, {}),
        ({"input": z, "target": np.full_like(z, 1.0 / 3)}, {}),
    ]


SPEC = LossSpec(
    id="softmax_cross_entropy",
    summary="Softmax cross entropy of logits with class-index or probability targets.",
    aliases=("cross_entropy",),
    inputs=(
        InputSpec("input", Kind.FLOAT, "(N, C, d1..dk), logits", "logits; class axis is dim 1",
                  differentiable=True),
        InputSpec("target", Kind.INDEX_OR_FLOAT,
                  "(N, d1..dk) class indices, or (N, C, d1..dk) probabilities",
                  "class indices (int; never differentiated) or probabilities (float; "
                  "differentiable)", differentiable=True),
        InputSpec("weight", Kind.FLOAT, "(C,)", "per-class rescaling weight >= 0 (not "
                  "differentiated)", required=False),
    ),
    params=(
        ParamSpec("ignore_index", int, -100, "class index whose positions are ignored "
                  "(index targets); must be negative with probability targets",
                  range="any integer"),
        ParamSpec("label_smoothing", float, 0.0, "mixture weight with the uniform distribution",
                  minimum=0.0, maximum=1.0),
    ),
    loss_shape="(N, d1..dk)",
    compute=compute,
    validate=validate,
    examples=examples,
)
