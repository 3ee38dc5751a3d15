"""nll_loss: negative log-likelihood of log-probabilities (PyTorch ``F.nll_loss``).

``input`` x: log-probabilities (N, C, d1..dk) (not checked to be <= 0 or normalised);
``target`` y: class indices (N, d1..dk) in [0, C) or equal to ``ignore_index``;
``weight`` w: (C,), >= 0, default ones (not differentiated). Per position i:

    l_i = -w_{y_i} x_{i, y_i}                  (0 at ignored positions)
    dR/dx_{i,c} = -s w_{y_i} [c = y_i]          (0 at ignored positions)

``mean`` is the weighted mean: s = 1/W, W = sum of w_{y_i} over non-ignored positions;
W = 0 gives a NaN loss and all-zero gradients. ``batchmean``: s = 1/N; none/sum: s = 1.
softmax_cross_entropy(z, y) == nll_loss(log_softmax(z), y).
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.losses.common import buffer, finish
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

#: rows per chunk target about this many elements of x (a parallel task's share of gx pages)
_CHUNK_ELEMENTS = 1 << 14


@block
def _nll_rows(lo, hi, x, y, w, ignore, s, out, gx, want):  # pragma: no cover - compiled
    """Rows [lo, hi): losses into out, -s w_y into the target entries of gx (which arrives
    zero-filled); returns the sum of the losses. Writes rows lo..hi-1 only."""
    n_pos = x.shape[2]
    keep = out.size > 0
    acc = 0.0
    for n in range(lo, hi):
        for k in range(n_pos):
            label = y[n, k]
            if label == ignore:
                if keep:
                    out[n, k] = 0.0
                continue
            wy = np.float64(w[label])
            value = -wy * np.float64(x[n, label, k])
            acc += value
            if keep:
                out[n, k] = value
            if want:
                gx[n, label, k] = -s * wy
    return acc


@dual(for_floats(lambda f: f64(ro(f, 3), ro(i64, 2), ro(f), i64, f64, rw(f, 2), rw(f, 3), boolean)))
def _nll(x, y, w, ignore, s, out, gx, want):  # pragma: no cover - compiled
    """Chunks of whole rows (about _CHUNK_ELEMENTS elements of x), each a call of _nll_rows."""
    n_rows, n_cls, n_pos = x.shape
    per = max(1, _CHUNK_ELEMENTS // max(1, n_cls * n_pos))
    total = 0.0
    for chunk in prange((n_rows + per - 1) // per):
        total += _nll_rows(chunk * per, min(n_rows, (chunk + 1) * per), x, y, w, ignore, s, out, gx, want)
    return total


def compute(call: Call) -> LossOutput:
    shape = call.inputs["input"].shape
    x = call.inputs["input"].reshape(shape[0], shape[1], -1)
    n, classes, positions = x.shape
    y = call.inputs["target"].reshape(n, positions)
    w = call.get("weight")
    unweighted = w is None
    w = np.ones(classes, call.dtype) if w is None else w
    ignore = call.params["ignore_index"]
    s = scale(call.reduction, n * positions, n)
    degenerate = False
    if call.reduction is Reduction.MEAN:
        if unweighted:  # all weights 1: W is the (exact) count of non-ignored positions
            weight_total = float(y.size - np.count_nonzero(y == ignore))
        else:
            weight_total = float(np.sum(w[y[y != ignore]], dtype=np.float64))
        degenerate = weight_total == 0.0
        s = 0.0 if degenerate else 1.0 / weight_total
    want = call.wants("input")
    out = buffer(call, (n, positions), call.reduction is Reduction.NONE)
    # np.zeros (calloc: lazily zeroed pages) + writing only the N*K target entries beats
    # writing all N*C*K entries in the kernel (bench/micro_kernels.py).
    gx = np.zeros(x.shape, call.dtype) if want else buffer(call, x.shape, False)
    # work: one entry per position, plus (gradient) the page faults that zero gx's pages on
    # first touch: by gx's size, so that 2 threads share them (4096x1000: the serial build ran)
    total = _nll.call(gx.size if want else y.size, x, y, w, ignore, s, out, gx, want)
    loss = finish(call, math.nan if degenerate else total, s, out, (n, *shape[2:]))
    return LossOutput(loss, {"input": gx.reshape(shape)} if want else {})


def validate(call: Call) -> None:
    checks.min_rank(call, "input", 2, "(N, C, d1..dk)")
    x = call.inputs["input"]
    checks.shape_is(call, "target", (x.shape[0], *x.shape[2:]), "(N, d1..dk)")
    checks.labels_in_range(call, "target", x.shape[1], call.params["ignore_index"])
    checks.shape_is(call, "weight", (x.shape[1],), "(C,)")
    checks.nonnegative(call, "weight")


def examples(dtype: np.dtype) -> list:
    x = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]], dtype))
    return [({"input": x, "target": np.array([2, 0])}, {}),
            ({"input": x, "target": np.array([1, -100]), "weight": np.array([1.0, 2.0, 0.5], dtype)},
             {"reduction": "none"})]


SPEC = LossSpec(
    id="nll_loss",
    summary="Negative log-likelihood of log-probabilities with class-index targets.",
    inputs=(
        InputSpec("input", Kind.FLOAT, "(N, C, d1..dk), log-probabilities",
                  "log-probabilities; class axis is dim 1", differentiable=True),
        InputSpec("target", Kind.INDEX, "(N, d1..dk), values in [0, C) or ignore_index",
                  "class indices (never differentiated)"),
        InputSpec("weight", Kind.FLOAT, "(C,)", "per-class rescaling weight >= 0 (not differentiated)",
                  required=False),
    ),
    params=(
        ParamSpec("ignore_index", int, -100, "class index whose positions are ignored (may lie in [0, C))",
                  range="any integer"),
    ),
    loss_shape="(N, d1..dk)",
    compute=compute,
    validate=validate,
    examples=examples,
)
