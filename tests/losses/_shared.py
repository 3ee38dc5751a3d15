"""Helpers shared by the loss tests of tests/losses: dtypes, reductions and shapes, reproducible
data, the rejection assertion through the live server, the generic rejection cases of
README §6, the alias/dtype check and the +-1 label checks."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
import lossd_client
from tests.losses.harness import assert_close, widen

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


def variant_id(variant):
    """A readable test id for a variant dict."""
    return "-".join(f"{k}={variant[k]}" for k in variant) or "default"


def split_variant(variant, flag):
    """``(variant[flag] or False, the other entries)``: a variant that mixes a data switch
    (e.g. "labels": with a labels input) with loss parameters."""
    params = dict(variant)
    return params.pop(flag, False), params


def case_rejections_test(loss, cases, valid):
    """``test_rejections`` over named cases ``{id: (input overrides, params, field)}`` applied
    to one valid request, through the live server."""

    @pytest.mark.parametrize("case", list(cases))
    def test_rejections(client, case):
        over, params, field = cases[case]
        assert_rejected(client, loss, {**valid, **over}, params, field)

    return test_rejections


def result_dtype_test(loss, data, reference, grads=None):
    """``test_result_dtype_through_server``: for every reduction the live server answers in the
    request's dtype (loss and every gradient; the gradient names are ``grads`` when given) and
    the loss matches the float64 reference; ``data(dtype)`` makes the request."""
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_result_dtype_through_server(client, dtype):
        inputs = data(dtype)
        for reduction in REDUCTIONS:
            result = client.evaluate(loss, inputs, {"reduction": reduction})
            assert result.loss.dtype == dtype
            if grads is not None:
                assert set(result.grads) == set(grads)
            assert all(g.dtype == dtype for g in result.grads.values())
            ref, _ = reference(widen(inputs), {"reduction": reduction})
            assert_close(result.loss, ref, np.dtype(dtype), what=reduction)

    return test_result_dtype_through_server
