"""poisson_nll (core.md §7.1) against the float64 reference for every parameter
combination, finite differences, hand-picked values, exp overflow to +Inf, and
rejections through the live server."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
from tests.losses._shared import (
    DTYPES,
    REDUCTIONS,
    SHAPES,
    assert_alias_and_dtypes,
    assert_rejected,
    generic_rejections,
    normal,
)
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.poisson_nll import reference

LOSS = "poisson_nll"
PARAMS = [{}, {"full": True}, {"log_input": False}, {"log_input": False, "full": True, "eps": 0.25}]


def _data(shape, dtype, seed, log_input=True):
    rng = np.random.default_rng(seed)
    y = rng.poisson(2.0, shape).astype(np.float64)
    y.reshape(-1)[::3] += 0.5  # counts need not be integers
    if log_input:
        x = normal(shape, dtype, seed + 1)
    else:
        x = rng.uniform(0.05, 3.0, shape)
        x.reshape(-1)[::11] = 0.0  # a zero rate is allowed (eps keeps the log finite)
    return {"input": np.asarray(x, dtype), "target": y.astype(dtype)}


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, params):
    inputs = _data(shape, dtype, len(shape) + shape[0], params.get("log_input", True))
    result = check_against_reference(LOSS, inputs, {**params, "reduction": reduction}, reference)
    assert set(result.grads) == {"input"}  # the target is data


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction, params):
    inputs = _data((3, 4), np.float64, 3, params.get("log_input", True))
    inputs["input"] = np.maximum(inputs["input"], 0.05)  # the rate stays above h
    check_finite_differences(LOSS, inputs, {**params, "reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked(dtype):
    x = np.array([[0.0, 1.0, 2.0]], dtype)
    y = np.array([[3.0, 2.0, 0.5]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    e = math.e
    assert_close(r.loss, [[1.0, e - 2.0, e * e - 1.0]], dtype, what="exp(x) - y x")
    assert_close(r.grads["input"], [[-2.0, e - 2.0, e * e - 0.5]], dtype, what="exp(x) - y")
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none", "full": True})
    stirling = 3 * math.log(3) - 3 + 0.5 * math.log(2 * math.pi * 3)
    stirling2 = 2 * math.log(2) - 2 + 0.5 * math.log(2 * math.pi * 2)
    assert_close(r.loss, [[1.0 + stirling, e - 2.0 + stirling2, e * e - 1.0]], dtype, what="full")
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none", "log_input": False, "eps": 0.5})
    assert_close(r.loss, [[-3 * math.log(0.5), 1 - 2 * math.log(1.5), 2 - 0.5 * math.log(2.5)]], dtype,
                 what="x - y log(x + eps)")
    assert_close(r.grads["input"], [[1 - 3 / 0.5, 1 - 2 / 1.5, 1 - 0.5 / 2.5]], dtype, what="1 - y/(x+eps)")


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_exp_overflow_is_plus_inf():
    # documented: exp(x) overflows for large log-rates; the Inf is returned, not an error
    x = np.array([[800.0, 1.0]])
    y = np.array([[2.0, 2.0]])
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    assert np.isposinf(r.loss[0, 0]) and np.isposinf(r.grads["input"][0, 0])
    assert_close(r.loss[0, 1], math.e - 2.0, np.float64, what="the other element is exact")
    assert_close(r.grads["input"][0, 1], math.e - 2.0, np.float64, what="its gradient too")
    assert np.isposinf(lossd.evaluate(LOSS, {"input": x, "target": y}).loss)
    # float32: exp(100) = 2.7e43 is finite in float64 and +Inf once rounded to float32 ...
    x32 = np.array([[100.0, 1.0]], np.float32)
    r = lossd.evaluate(LOSS, {"input": x32, "target": y.astype(np.float32)}, {"reduction": "none"})
    assert r.loss.dtype == np.float32 and np.isposinf(r.loss[0, 0]) and np.isfinite(r.loss[0, 1])
    # ... but exp(88.5) = 2.7e38 is not, and neither is its mean
    x32 = np.array([[88.5, 88.5]], np.float32)
    r = lossd.evaluate(LOSS, {"input": x32, "target": np.zeros_like(x32)})
    assert_close(r.loss, math.exp(88.5), np.float32, what="no intermediate float32 overflow")


VALID = _data((3, 2), np.float64, 0)


@pytest.mark.parametrize("inputs, params, grads, field",
                         generic_rejections(VALID, ["input"], ["target"]))
def test_rejections(client, inputs, params, grads, field):
    assert_rejected(client, LOSS, inputs, params, field, grads)


def test_rejects_domain(client):
    neg_y = VALID["target"].copy()
    neg_y[1, 1] = -1.0
    assert_rejected(client, LOSS, {**VALID, "target": neg_y}, {}, "inputs.target")
    neg_x = np.abs(VALID["input"])
    neg_x[0, 1] = -0.5
    assert_rejected(client, LOSS, {**VALID, "input": neg_x}, {"log_input": False}, "inputs.input")
    client.evaluate(LOSS, {**VALID, "input": neg_x}, {"log_input": True})  # fine for log-rates
    assert_rejected(client, LOSS, {**VALID, "target": VALID["target"][:, :1]}, {}, "inputs.target")


@pytest.mark.parametrize("name, value", [("eps", 0.0), ("eps", -1e-8), ("log_input", 1), ("full", "yes"),
                                         ("eps", True)])
def test_rejects_bad_params(client, name, value):
    assert_rejected(client, LOSS, VALID, {name: value}, f"params.{name}")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "poisson_nll_loss", VALID)
