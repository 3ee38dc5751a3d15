"""Do two contenders compute the same quantity? Compact fingerprints of (loss, gradients),
small enough to send between bench processes, and their comparison.

A fingerprint holds the loss value and, per gradient, its shape, L2 norm, largest magnitude
and the values at ``SAMPLES`` positions drawn from a seed fixed by the array size (so both
sides sample the same positions). Two fingerprints agree when

    |loss_a - loss_b|        <= rtol max(|loss_a|, |loss_b|) + atol
    |norm_a - norm_b|        <= rtol norm_a + atol
    max |sample_a - sample_b| <= rtol max|grad_a| + atol           (scale-relative, README.md §9)

with ``a`` the reference (lossd).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

SAMPLES = 64
RTOL = 1e-3
ATOL = 1e-6


def fingerprint(loss: Any, grads: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able summary of a scalar loss and its gradient arrays."""
    out: dict[str, Any] = {"loss": float(np.asarray(loss, dtype=np.float64).sum()), "grads": {}}
    for name, g in grads.items():
        flat = np.asarray(g, dtype=np.float64).ravel()
        idx = np.random.default_rng(flat.size).integers(0, flat.size, SAMPLES) if flat.size else []
        out["grads"][name] = {
            "shape": list(np.shape(g)),
            "norm": float(np.sqrt(np.dot(flat, flat))) if flat.size else 0.0,
            "absmax": float(np.abs(flat).max()) if flat.size else 0.0,
            "finite": bool(np.isfinite(flat).all()),
            "samples": flat[idx].tolist(),  # JSON for the parent process
        }
    return out


def _close(a: float, b: float, scale: float, rtol: float, atol: float) -> bool:
    return bool(abs(a - b) <= rtol * scale + atol)


def compare(ref: Mapping[str, Any], other: Mapping[str, Any], rtol: float = RTOL,
            atol: float = ATOL) -> str | None:
    """None when ``other`` agrees with ``ref``; otherwise what differs (one line)."""
    la, lb = ref["loss"], other["loss"]
    if not _close(la, lb, max(abs(la), abs(lb)), rtol, atol):
        return f"loss {lb:.7g} vs lossd {la:.7g}"
    for name, ga in ref["grads"].items():
        gb = other["grads"].get(name)
        if gb is None:
            return f"no gradient of {name}"
        if gb["shape"] != ga["shape"]:
            return f"gradient of {name}: shape {gb['shape']} vs lossd {ga['shape']}"
        if gb["finite"] != ga["finite"]:
            return f"gradient of {name}: finite={gb['finite']} vs lossd finite={ga['finite']}"
        if not _close(ga["norm"], gb["norm"], ga["norm"], rtol, atol):
            return f"gradient of {name}: norm {gb['norm']:.7g} vs lossd {ga['norm']:.7g}"
        diff = float(np.abs(np.subtract(ga["samples"], gb["samples"])).max(initial=0.0))
        if diff > rtol * ga["absmax"] + atol:
            return f"gradient of {name}: sampled values differ by {diff:.3g} (max |grad| {ga['absmax']:.3g})"
    return None
