"""mse (core.md §2.1) against the float64 reference, finite differences, hand-picked
values and rejections through the live server.

This module also holds the small helpers the other regression-loss tests of this group
import (shapes, data, the rejection assertion, the generic rejection cases)."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
import lossd_client
from tests.losses.harness import (
    assert_close,
    check_against_reference,
    check_finite_differences,
)
from tests.reference.mse import reference

LOSS = "mse"
DTYPES = [np.float32, np.float64]
# batch 1, rank 1 (odd), rank 3 (odd), 4160 elements (runs the parallel build)
SHAPES = [(1, 3), (9,), (7, 3, 5), (65, 64)]
REDUCTIONS = ["none", "sum", "mean", "batchmean"]


def normal(shape, dtype, seed, scale=1.0):
    """Reproducible normal data in ``dtype``."""
    return (scale * np.random.default_rng(seed).normal(size=shape)).astype(dtype)


def signs(shape, seed, dtype=np.int64):
    """Reproducible +-1 labels in ``dtype`` (int or float)."""
    return np.where(np.random.default_rng(seed).random(shape) < 0.5, -1, 1).astype(dtype)


def assert_rejected(client, loss, inputs, params, field, grads=None):
    """The live server answers INVALID_ARGUMENT naming ``field`` in the message and the
    field violations."""
    with pytest.raises(lossd_client.InvalidArgument) as exc:
        client.evaluate(loss, inputs, params, grads=grads)
    assert field in exc.value.message, exc.value.message
    assert field in [v.field for v in exc.value.field_violations], exc.value.field_violations


def generic_rejections(inputs, differentiable, nondifferentiable=()):
    """README §6 cases every loss rejects, built from one valid float64 request:
    ``(id, inputs, params, grads, field)``."""
    first = next(iter(inputs))
    floats = [k for k, v in inputs.items() if np.asarray(v).dtype.kind == "f"]
    cases = [
        ("missing", {k: v for k, v in inputs.items() if k != first}, {}, None, f"inputs.{first}"),
        ("unknown-input", {**inputs, "bogus": inputs[first]}, {}, None, "inputs.bogus"),
        ("scalar-0d", {**inputs, first: np.float64(1.0)}, {}, None, f"inputs.{first}"),
        ("empty", {**inputs, first: np.zeros((0,) + np.shape(inputs[first])[1:])}, {}, None,
         f"inputs.{first}"),
        ("int-input", {**inputs, first: np.ones(np.shape(inputs[first]), np.int64)}, {}, None,
         f"inputs.{first}"),
        ("float16", {**inputs, first: np.asarray(inputs[first], np.float16)}, {}, None,
         f"inputs.{first}"),
        ("unknown-param", inputs, {"bogus": 1.0}, None, "params.bogus"),
        ("bad-reduction", inputs, {"reduction": "avg"}, None, "params.reduction"),
        ("grads-twice", inputs, {}, [differentiable[0]] * 2, "grads"),
        ("grads-absent", inputs, {}, ["nope"], "grads"),
    ]
    for name in floats[1:]:
        cases.append((f"mixed-{name}", {**inputs, name: np.asarray(inputs[name], np.float32)}, {}, None,
                      f"inputs.{name}"))
    for name in floats:
        for bad in (np.nan, np.inf, -np.inf):
            a = np.array(inputs[name], dtype=np.float64, copy=True)
            a.reshape(-1)[-1] = bad
            cases.append((f"{bad}-{name}", {**inputs, name: a}, {}, None, f"inputs.{name}"))
    for name in nondifferentiable:
        cases.append((f"grads-nondiff-{name}", inputs, {}, [name], "grads"))
    return [pytest.param(i, p, g, f, id=case_id) for case_id, i, p, g, f in cases]


def assert_alias_and_dtypes(client, loss, alias, inputs64):
    """The alias names the id; float32 and float64 requests come back in their dtype."""
    for dtype in (np.float32, np.float64):
        inputs = {k: (np.asarray(v, dtype) if np.asarray(v).dtype.kind == "f" else v)
                  for k, v in inputs64.items()}
        result = client.evaluate(alias or loss, inputs, {"reduction": "none"})
        assert result.loss_id == loss
        assert result.loss.dtype == dtype
        assert result.grads and all(g.dtype == dtype for g in result.grads.values())
        direct = lossd.evaluate(loss, inputs, {"reduction": "none"})
        np.testing.assert_array_equal(result.loss, direct.loss)


# ---------------------------------------------------------------------------------------------
# mse itself


def _data(shape, dtype, seed):
    return {"input": normal(shape, dtype, seed), "target": normal(shape, dtype, seed + 1)}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction):
    check_against_reference(LOSS, _data(shape, dtype, len(shape) + shape[0]), {"reduction": reduction},
                            reference)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_subsets(dtype):
    inputs = _data((4, 3), dtype, 5)
    for grads in (["input"], ["target"], []):
        check_against_reference(LOSS, inputs, {"reduction": "sum"}, reference, grads=grads)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction):
    check_finite_differences(LOSS, _data((3, 4), np.float64, 11), {"reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked(dtype):
    x = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, 4.0]], dtype)
    y = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [[0.0, 9.0, 4.0], [0.25, 0.0, 16.0]], dtype, what="loss")
    assert_close(r.grads["input"], [[0.0, -6.0, 4.0], [1.0, 0.0, 8.0]], dtype, what="dx")
    assert_close(r.grads["target"], [[0.0, 6.0, -4.0], [-1.0, 0.0, -8.0]], dtype, what="dy")
    r = lossd.evaluate(LOSS, {"input": x, "target": y})
    assert_close(r.loss, 29.25 / 6, dtype, what="mean")
    assert_close(r.grads["input"], np.array([[0.0, -6.0, 4.0], [1.0, 0.0, 8.0]]) / 6, dtype, what="dx")
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "batchmean"})
    assert_close(r.loss, 29.25 / 2, dtype, what="batchmean")


def test_zero_error_is_exactly_zero():
    x = normal((5, 3), np.float64, 2)
    r = lossd.evaluate(LOSS, {"input": x, "target": x.copy()})
    assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_float32_no_intermediate_overflow():
    # d^2 = 4e38 is beyond float32 (the sum is +Inf as expected), but the mean 2e38 is
    # not: the float64 computation has no intermediate overflow
    x = np.array([[2e19, 0.0]], np.float32)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"reduction": "sum"})
    assert np.isposinf(r.loss)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)})
    assert_close(r.loss, 2e38, np.float32, what="mean")


@pytest.mark.parametrize("inputs, params, grads, field",
                         generic_rejections(_data((3, 2), np.float64, 0), ["input", "target"]))
def test_rejections(client, inputs, params, grads, field):
    assert_rejected(client, LOSS, inputs, params, field, grads)


def test_rejects_shape_mismatch(client):
    inputs = _data((3, 2), np.float64, 0)
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"][:, :1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"].T.copy()}, {}, "inputs.target")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "mse_loss", _data((3, 2), np.float64, 0))


def bad_sign_labels(target):
    """+-1 label arrays that must be rejected (for a float64 request), as pytest params."""
    t = np.asarray(target, np.int64)
    cases = []
    for case_id, value, dtype in [("zero", 0, np.int64), ("two", 2, np.int32), ("half", 0.5, np.float64),
                                  ("minus-two", -2.0, np.float64)]:
        a = t.astype(dtype)
        a.reshape(-1)[-1] = value
        cases.append(pytest.param(a, id=case_id))
    cases.append(pytest.param(t.astype(np.float32), id="float32-in-float64-request"))
    cases.append(pytest.param(t > 0, id="bool"))
    cases.append(pytest.param(t.astype(np.int8), id="int8"))
    return cases


def assert_float_signs_accepted(loss, inputs, params=None):
    """The +-1 target in the request's float dtype (and int32) gives the int64 result."""
    for dtype in (np.float32, np.float64):
        base = {k: (np.asarray(v, dtype) if k != "target" else np.asarray(v, np.int64))
                for k, v in inputs.items()}
        ref = lossd.evaluate(loss, base, {**(params or {}), "reduction": "none"})
        for tdtype in (dtype, np.int32):
            got = lossd.evaluate(loss, {**base, "target": base["target"].astype(tdtype)},
                                 {**(params or {}), "reduction": "none"})
            np.testing.assert_array_equal(got.loss, ref.loss)
            assert got.grads.keys() == ref.grads.keys() and "target" not in got.grads
            for name in ref.grads:
                np.testing.assert_array_equal(got.grads[name], ref.grads[name])
