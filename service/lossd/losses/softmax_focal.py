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

import numpy as np

from lossd.core import checks
from lossd.kernels import vecmath
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses import _softmax_cols as cols
from lossd.losses._softmax_rows import exp_row, nll_from_rest, row_max
from lossd.losses.common import buffer, finish, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

#: rows per chunk target about this many elements: the chunk's scratch (exp(z - m) of every row
#: in z's float type, and a few float64 per-row values) stays in the L1/L2 cache.
_CHUNK_ELEMENTS = 4096
#: per-row values kept between the passes
_EY, _EM1, _REST, _MZ, _A, _VALUE, _COEF, _SE, _U = range(9)
#: at most this many classes run by columns (_softmax_cols; measured, float32, one thread,
#: rows -> columns: (65536, 10) 8.1 -> 5.4 ms,
#: (20480, 32) 5.1 -> 3.8 ms, (16384, 40) 4.6 -> 4.2 ms, (10240, 64) 2.7 -> 3.4 ms)
_COLS_MAX_CLASSES = 40
#: a block of the column kernel (its scratch allocated once) spans about this many elements
_COLS_BLOCK_ELEMENTS = 16384


@block
def _terms(st, count, gamma, r):  # pragma: no cover - compiled
    """Pass (2) of both layouts: for rows j < count of st, the loss from _EY, _EM1, _REST, _MZ
    and _A (u = rest / se, p_y = e_y / se, no expm1 or pow calls); stores _VALUE, _COEF (r a B),
    _SE and _U; returns the sum of the losses. One float64 build serves every kernel."""
    acc = 0.0
    for j in range(count):
        ey, rest, a = st[_EY, j], st[_REST, j], st[_A, j]
        se = ey + rest
        lp = -nll_from_rest(st[_EM1, j], rest, st[_MZ, j])
        u = rest / se
        py = ey / se
        ug = vecmath.exp(gamma * vecmath.log(u))
        ug = ug if u > 0.0 else (1.0 if gamma == 0.0 else 0.0)
        value = -a * ug * lp
        bracket = -ug + (gamma * py * (lp / u) * ug if u > 0.0 else 0.0)
        st[_VALUE, j], st[_COEF, j], st[_SE, j], st[_U, j] = value, r * a * bracket, se, u
        acc += value
    return acc


@block
def _focal_rows(lo, hi, z, y, class_alpha, per_class, alpha, gamma, r, out, gz,
                want):  # pragma: no cover - compiled
    """Rows [lo, hi): (1) per row max, exp(z - m) into the scratch t and rest = sum_{k != y} e_k
    (vectorised over classes), (2) loss and gradient coefficient vectorised over the rows
    (_terms), (3) the gradient rows. Writes rows lo..hi-1 of out and gz only; returns the sum
    of the losses."""
    c = z.shape[1]
    t = np.empty((hi - lo) * c, z.dtype)  # exp(z - m) in z's type (see exp_row)
    st = np.empty((9, hi - lo))
    for i in range(lo, hi):
        j = i - lo
        label = y[i]
        m = row_max(z, i, 0)
        st[_REST, j] = exp_row(z, i, 0, m, t, j * c, label)
        st[_MZ, j] = m - np.float64(z[i, label, 0])
        st[_EY, j] = t[j * c + label]
        st[_EM1, j] = t[j * c + label] - 1.0
        st[_A, j] = np.float64(class_alpha[label]) if per_class else alpha
    acc = _terms(st, hi - lo, gamma, r)
    if want:
        for i in range(lo, hi):
            j = i - lo
            f = -st[_COEF, j] / st[_SE, j]
            for k in range(c):
                gz[i, k] = f * t[j * c + k]
            gz[i, y[i]] = st[_COEF, j] * st[_U, j]
    if out.size > 0:
        for j in range(hi - lo):
            out[lo + j] = st[_VALUE, j]
    return acc


def _signatures(gz_ndim: int) -> list:
    """(z, y, class_alpha, per_class, alpha, gamma, r, out, gz, want) -> loss sum, per float type."""
    return for_floats(lambda f: f64(ro(f, 3), ro(i64), ro(f), boolean, f64, f64, f64, rw(f), rw(f, gz_ndim),
                                    boolean))


@dual(_signatures(2))
def _softmax_focal(z, y, class_alpha, per_class, alpha, gamma, r, out, gz,
                   want):  # pragma: no cover - compiled
    """z: (N, C, 1). Chunks of whole rows (about _CHUNK_ELEMENTS elements), each a call of
    _focal_rows."""
    n, c, _ = z.shape
    per = max(1, _CHUNK_ELEMENTS // c)
    total = 0.0
    for chunk in prange((n + per - 1) // per):
        total += _focal_rows(chunk * per, min(n, (chunk + 1) * per), z, y, class_alpha, per_class, alpha,
                             gamma, r, out, gz, want)
    return total


@block
def _focal_cols(first, last, z, y, class_alpha, per_class, alpha, gamma, r, out, gz,
                want):  # pragma: no cover - compiled
    """Chunks [first, last) (_softmax_cols, K = 1) of the focal kernel: the passes of
    _focal_rows, each along the chunk's rows. Writes only those rows of out and gz (N, C, 1);
    returns the sum of their losses."""
    c = z.shape[1]
    zt = np.empty((c, cols.P), z.dtype)
    m = np.empty(cols.P, z.dtype)
    lab = np.empty(cols.P, np.int64)
    st = np.empty((9, cols.P))
    nothing = np.zeros(c)
    acc = 0.0
    for chunk in range(first, last):
        n0, _, cnt = cols.chunk_span(chunk, z)
        cols.gather(z, n0, 0, cnt, zt, m)
        for j in range(cnt):
            label = y[n0 + j]
            lab[j] = label
            st[_MZ, j] = np.float64(m[j]) - np.float64(zt[label, j])
            st[_A, j] = np.float64(class_alpha[label]) if per_class else alpha
        cols.exp_cols(zt, m, cnt)
        cols.rest_cols(zt, lab, cnt, st[_REST])
        for j in range(cnt):
            ey = np.float64(zt[lab[j], j])
            st[_EY, j] = ey
            st[_EM1, j] = ey - 1.0
        acc += _terms(st, cnt, gamma, r)
        if want:
            for j in range(cnt):
                st[_SE, j] = -st[_COEF, j] / st[_SE, j]
            cols.put_scaled(gz, n0, 0, cnt, zt, st[_SE], nothing)
            for j in range(cnt):
                cols.put(gz, n0, 0, j, lab[j], st[_COEF, j] * st[_U, j])
        if out.size > 0:
            for j in range(cnt):
                out[n0 + j] = st[_VALUE, j]
    return acc


@dual(_signatures(3))
def _softmax_focal_cols(z, y, class_alpha, per_class, alpha, gamma, r, out, gz,
                        want):  # pragma: no cover - compiled
    """z, gz: (N, C, 1) with C <= _COLS_MAX_CLASSES. Blocks of about _COLS_BLOCK_ELEMENTS
    elements, each a call of _focal_cols."""
    count = cols.chunk_count(z)
    per = max(1, _COLS_BLOCK_ELEMENTS // (z.shape[1] * cols.P))
    total = 0.0
    for blk in prange((count + per - 1) // per):
        total += _focal_cols(blk * per, min(count, (blk + 1) * per), z, y, class_alpha, per_class, alpha,
                             gamma, r, out, gz, want)
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
    args = (y, class_alpha, per_class, call.params["alpha"], call.params["gamma"], r, out)
    if z.shape[1] <= _COLS_MAX_CLASSES:
        total = _softmax_focal_cols.call(z.size, z.reshape(n, -1, 1), *args, gz.reshape(*gz.shape, 1),
                                         call.wants("logits"))
    else:
        total = _softmax_focal.call(z.size, z.reshape(n, -1, 1), *args, gz, call.wants("logits"))
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
