"""Float64 reference of gaussian_nll (core.md §7.2). ``var`` is an input tensor (same
shape, one dimension of size 1, or the input shape without its last dimension) or the
scalar parameter ``var``. The var gradient is evaluated at the clamped variance and
summed over the broadcast dimension."""

from __future__ import annotations

import math

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    eps = float(params.get("eps", 1e-6))
    full = params.get("full", False)
    v = inputs.get("var")
    if v is None:
        v_full = np.full(x.shape, float(params["var"]))
    else:
        v_full = v.reshape(x.shape[:-1] + (1,)) if v.ndim == x.ndim - 1 else v
        v_full = np.broadcast_to(v_full, x.shape)
    ell = np.empty_like(x)
    gx = np.empty_like(x)
    gv_full = np.empty_like(x)
    for i in np.ndindex(x.shape):
        vh = max(v_full[i], eps)
        d = x[i] - y[i]
        ell[i] = 0.5 * (math.log(vh) + d * d / vh) + (0.5 * math.log(2 * math.pi) if full else 0.0)
        gx[i] = d / vh
        gv_full[i] = 0.5 * (1.0 / vh - d * d / (vh * vh))
    grads = {"input": gx, "target": -gx}
    if v is not None:
        shape = v.shape if v.ndim == x.ndim else x.shape[:-1] + (1,)
        axes = tuple(k for k in range(x.ndim) if shape[k] == 1 and x.shape[k] != 1)
        grads["var"] = gv_full.sum(axis=axes, keepdims=True).reshape(v.shape)
    return reduced(ell, grads, params["reduction"], x.shape[0])
