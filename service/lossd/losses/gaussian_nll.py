"""gaussian_nll: Gaussian negative log likelihood (PyTorch ``F.gaussian_nll_loss``).

``input`` x (the mean) and ``target`` y: floating, identical shapes of any rank >= 1.
The variance v >= 0 is given exactly one way:

* the input tensor ``var`` (differentiable), of x's shape; or x's shape with exactly one
  dimension of size 1 where x's is larger (broadcast along it); or x's shape without its
  last dimension (x of rank >= 2; broadcast along the last dimension); or
* the scalar parameter ``var`` (a float >= 0, no gradient).

    v^ = max(v, eps),   l_i = (log v^ + (x_i - y_i)^2 / v^) / 2  (+ log(2 pi) / 2 if full)
    dR/dx_i = s (x_i - y_i) / v^,   dR/dy_i = -dR/dx_i
    dR/dv   = s (1/v^ - (x - y)^2 / v^^2) / 2, evaluated at v^ even where v < eps (PyTorch
              clamps under no_grad, so the gradient passes straight through the clamp), and
              summed over the broadcast dimension.

``l`` has x's shape; ``mean`` divides by M, ``batchmean`` by N. The var gradient is
computed per element in float64; a var of x's shape gets it stored in the request dtype
by the kernel itself, a broadcast var gets it summed over the broadcast dimension in
float64 before one rounding to the request dtype.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels import vecmath
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, blocks, broadcast_plan, gather, sink
from lossd.losses.common import finish, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec
from lossd_client.errors import FieldViolation, InvalidArgument

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@block
def _gaussian_block(i0, x, y, v, vdims, vst, v_scalar, eps, const, s, out, gx, gy, gv, gv64,
                    want_x, want_y, want_v):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_gaussian_nll`; returns their loss sum."""
    stop = min(i0 + BLOCK, x.size)
    vb = np.empty(BLOCK)
    if v.size > 0:
        gather(vb, v, vdims, vst, i0, stop)
    else:
        vb[:] = v_scalar
    # outputs not requested get a scratch (sink): unconditional stores, no aliasing check
    xb, yb, ob = x[i0:stop], y[i0:stop], sink(out, i0, stop)
    gxb, gyb, gvb = sink(gx, i0, stop), sink(gy, i0, stop), sink(gv, i0, stop)
    gv64b = sink(gv64, i0, stop)
    total = 0.0
    for k in range(stop - i0):
        vh = max(vb[k], eps)
        d = np.float64(xb[k]) - np.float64(yb[k])
        t = d / vh
        r = t * d
        value = 0.5 * (vecmath.log(vh) + r) + const
        total += value
        ob[k] = value
        gxb[k] = s * t
        gyb[k] = -s * t
        g = 0.5 * s * (1.0 - r) / vh
        gvb[k] = g
        gv64b[k] = g
    return total


@dual(for_floats(lambda f: f64(ro(f), ro(f), ro(f), ro(i64), ro(i64), f64, f64, boolean, f64, rw(f),
                               rw(f), rw(f), rw(f), rw(f64), boolean, boolean, boolean)))
def _gaussian_nll(x, y, v, vdims, vst, v_scalar, eps, full, s, out, gx, gy, gv, gv64,
                  want_x, want_y, want_v):  # pragma: no cover - compiled
    """sum_i l_i; stores l_i and the requested gradients (``gv``: dR/dv_i in x's dtype for a
    var of x's shape, ``gv64``: per element in float64 for a broadcast var; the other empty)."""
    const = HALF_LOG_2PI if full else 0.0
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _gaussian_block(b * BLOCK, x, y, v, vdims, vst, v_scalar, eps, const, s, out, gx, gy,
                                 gv, gv64, want_x, want_y, want_v)
    return total


def _layout(x_shape: tuple[int, ...], v_shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(inner, block) so that flat element i of x uses var[(i // block) * inner + i % inner],
    or None when var's shape is not an accepted form. x is viewed as (A, B, C) with var
    broadcast along B: inner = C, block = B * C."""
    if v_shape == x_shape:
        return 1, 1
    if len(x_shape) >= 2 and v_shape == x_shape[:-1]:
        axis = len(x_shape) - 1
    elif len(v_shape) == len(x_shape):
        differ = [k for k in range(len(x_shape)) if v_shape[k] != x_shape[k]]
        if len(differ) != 1 or v_shape[differ[0]] != 1:
            return None
        axis = differ[0]
    else:
        return None
    inner = math.prod(x_shape[axis + 1:])
    return inner, inner * x_shape[axis]


def compute(call: Call) -> LossOutput:
    x = call.inputs["input"]
    size = x.size
    var = call.get("var")
    if var is None:
        inner, block, v_scalar = 1, size, call.params["var"]
        vdims, vst = broadcast_plan(x.shape, None)
    else:
        (inner, block), v_scalar = _layout(x.shape, var.shape), 0.0
        # var of x's shape without the last dimension broadcasts along it: a trailing 1
        aligned = var if var.ndim == x.ndim else var.reshape(var.shape + (1,))
        vdims, vst = broadcast_plan(x.shape, aligned)
    s = scale(call.reduction, size, call.n)
    out = loss_buffer(call, size)
    names = ("input", "target")
    gx, gy = _elementwise.grad_buffers(call, (x.reshape(-1),) * 2, names)
    want_v = call.wants("var")
    per_element = block == 1  # var has x's size: no sum, the kernel rounds each element once
    gv = np.empty(size if want_v and per_element else 0, call.dtype)
    gv64 = np.empty(size if want_v and not per_element else 0, np.float64)
    total = _gaussian_nll.call(size, x.reshape(-1), call.inputs["target"].reshape(-1),
                               _elementwise.flat(call, "var"), vdims, vst, float(v_scalar),
                               call.params["eps"], call.params["full"], s, out, gx, gy, gv, gv64,
                               call.wants("input"), call.wants("target"), want_v)
    grads = _elementwise.shaped_grads(call, names, (gx, gy))
    if want_v and per_element:
        grads["var"] = gv.reshape(var.shape)
    elif want_v:
        summed = gv64.reshape(size // block, block // inner, inner).sum(axis=1)
        grads["var"] = summed.astype(call.dtype).reshape(var.shape)
    return LossOutput(finish(call, total, s, out, x.shape), grads)


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")
    var = call.get("var")
    if (var is None) == (call.params["var"] is None):
        words = "both were given" if var is not None else "neither was given"
        why = (f"give the variance exactly once, as the input tensor var or as the scalar "
               f"parameter var; {words}")
        raise InvalidArgument(f"inputs.var, params.var: {why}",
                              [FieldViolation("inputs.var", why), FieldViolation("params.var", why)])
    if var is not None:
        x = call.inputs["input"]
        if _layout(x.shape, var.shape) is None:
            raise checks.input_error(
                "var", f"expected the shape of input {checks.shape_str(x.shape)}, that shape with "
                       f"exactly one dimension of size 1, or that shape without its last dimension "
                       f"(input of rank >= 2); got {checks.shape_str(var.shape)}")
        checks.nonnegative(call, "var")


def examples(dtype: np.dtype) -> list:
    x = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    y = x[::-1].copy()
    return [({"input": x, "target": y, "var": np.array([[0.5], [2.0]], dtype)}, {}),
            ({"input": x, "target": y}, {"var": 0.7, "full": True})]


SPEC = LossSpec(
    id="gaussian_nll",
    summary="Gaussian negative log likelihood with a variance tensor (broadcastable) or scalar.",
    aliases=("gaussian_nll_loss",),
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...)", "predicted mean", differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input", "observation", differentiable=True),
        InputSpec("var", Kind.FLOAT,
                  "shape of input, or with one dimension of size 1, or without the last dimension",
                  "predicted variance >= 0 (give this or the parameter var, not both)",
                  differentiable=True, required=False),
    ),
    params=(
        ParamSpec("var", float, None, "a scalar variance >= 0 instead of the var input (no gradient)",
                  minimum=0.0, range="real in [0, inf); exactly one of the input var and this"),
        ParamSpec("full", bool, False, "add the constant log(2 pi) / 2"),
        ParamSpec("eps", float, 1e-6, "lower clamp of the variance", minimum=0.0,
                  exclusive_minimum=True),
    ),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
)
