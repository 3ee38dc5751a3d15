"""Shared checks for loss tests: comparison with a float64 reference under the
tolerances of ../shared/losses/README.md §9, and central finite differences.

A reference is ``reference(inputs, params) -> (loss, grads)``: ``inputs`` are float64
copies (integer inputs unchanged), ``params`` holds every parameter given plus
``reduction``; ``loss`` is a float or an array, ``grads`` maps every differentiable
input given to its float64 gradient. References live in tests/reference/<id>.py,
are plain NumPy loops from the formula, and share no code with lossd.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

import lossd

Reference = Callable[[dict[str, np.ndarray], dict[str, Any]], tuple[Any, dict[str, np.ndarray]]]

TOLERANCES = {np.dtype(np.float32): (1e-4, 1e-6), np.dtype(np.float64): (1e-9, 1e-12)}


def widen(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """float64 copies of float inputs; integer inputs as they are."""
    out = {}
    for name, value in inputs.items():
        a = np.asarray(value)
        out[name] = a.astype(np.float64) if a.dtype.kind == "f" else a.copy()
    return out


def assert_close(got: np.ndarray, ref: Any, dtype: np.dtype, k: float = 1.0, what: str = "") -> None:
    """|got - ref| <= atol + rtol |ref| elementwise, atol = base * k * max finite |ref|;
    the reference is rounded to ``dtype`` first; Inf/NaN must match in place and sign."""
    ref = np.asarray(np.asarray(ref, dtype=np.float64).astype(dtype), dtype=np.float64)
    got = np.asarray(got)
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    got = got.astype(np.float64)
    rtol, base = TOLERANCES[np.dtype(dtype)]
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{what}: NaN positions")
    inf = np.isinf(ref)
    np.testing.assert_array_equal(got[inf], ref[inf], err_msg=f"{what}: Inf positions")
    scale = k * (np.max(np.abs(ref[finite])) if finite.any() else 0.0)
    if scale == 0.0:
        np.testing.assert_array_equal(got[finite], ref[finite], err_msg=f"{what}: exact zeros")
        return
    atol = base * scale
    err = np.abs(got[finite] - ref[finite])
    bound = atol + rtol * np.abs(ref[finite])
    worst = int(np.argmax(err - bound)) if err.size else 0
    assert np.all(err <= bound), (
        f"{what}: max violation at flat index {worst}: got {got[finite].ravel()[worst]!r}, "
        f"ref {ref[finite].ravel()[worst]!r}, |err| {err.ravel()[worst]:.3g} > {bound.ravel()[worst]:.3g}")


def check_against_reference(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any],
                            reference: Reference, *, k: float = 1.0,
                            grads: Any = None) -> lossd.EvaluateResult:
    """Evaluate through lossd and compare the loss and every returned gradient with the
    float64 reference run on the same (widened) values."""
    result = lossd.evaluate(loss, dict(inputs), dict(params), grads=grads)
    dtype = np.asarray(next(iter(inputs.values()))).dtype
    from lossd.losses.registry import resolve

    ref_params = {"reduction": resolve(loss).default_reduction, **params}
    ref_loss, ref_grads = reference(widen(inputs), ref_params)
    assert_close(result.loss, ref_loss, dtype, k, f"{loss} loss {params}")
    expected = set(ref_grads) if grads is None else set(grads)
    assert set(result.grads) == expected, f"{loss}: grads {set(result.grads)} != {expected}"
    for name in expected:
        assert_close(result.grads[name], ref_grads[name], dtype, k, f"{loss} d/d{name} {params}")
    return result


def scalar_objective(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    """R of README §5: the reduced loss, or the sum of the unreduced one."""
    result = lossd.evaluate(loss, dict(inputs), dict(params), grads=[])
    return float(np.sum(result.loss, dtype=np.float64))


def finite_difference(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any],
                      name: str, h: float = 1e-6) -> np.ndarray:
    """Central differences of R with respect to every element of input ``name`` (float64)."""
    base = {k: np.array(v, copy=True) for k, v in inputs.items()}
    x = base[name].astype(np.float64)
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = scalar_objective(loss, {**base, name: x}, params)
        flat[i] = old - h
        down = scalar_objective(loss, {**base, name: x}, params)
        flat[i] = old
        grad.reshape(-1)[i] = (up - down) / (2 * h)
    return grad


def check_finite_differences(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any],
                             names: Any = None, *, s: float = 1.0) -> None:
    """Every analytic gradient (float64) against central differences: rtol 1e-5,
    atol 1e-6 * max(1, s, |R|)."""
    inputs = {k: (np.asarray(v, np.float64) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
              for k, v in inputs.items()}
    result = lossd.evaluate(loss, inputs, dict(params))
    r = float(np.sum(result.loss, dtype=np.float64))
    atol = 1e-6 * max(1.0, s, abs(r))
    for name in (names or result.grads):
        numeric = finite_difference(loss, inputs, params, name)
        np.testing.assert_allclose(result.grads[name], numeric, rtol=1e-5, atol=atol,
                                   err_msg=f"{loss} d/d{name} vs finite differences {params}")
