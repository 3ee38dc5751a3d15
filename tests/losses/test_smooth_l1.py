"""smooth_l1 (core.md §2.4) against the float64 reference for several beta, finite
differences, the switch points, beta = 0 == l1, and rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._pairwise import (
    against_reference_test,
    finite_differences_test,
    grads_subsets_test,
    rejections_test,
    shape_mismatch_test,
    spread_pair,
)
from tests.losses._shared import DTYPES, REDUCTIONS, assert_alias_and_dtypes, assert_rejected, normal
from tests.losses.harness import assert_close
from tests.reference.smooth_l1 import reference

LOSS = "smooth_l1"
BETAS = [None, 0.0, 0.37, 2.5]


def _data(shape, dtype, seed):
    x = normal(shape, dtype, seed, 1.5)
    y = normal(shape, dtype, seed + 1)
    y.reshape(-1)[::7] = x.reshape(-1)[::7]  # some d = 0
    return {"input": x, "target": y}


test_against_reference = against_reference_test(LOSS, _data, reference, "beta", BETAS)


test_grads_subsets = grads_subsets_test(LOSS, _data, reference)


test_finite_differences = finite_differences_test(LOSS, spread_pair(), "beta", [0.0, 0.5, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_switch_points(dtype):
    # beta = 0.5: d = +-beta joins 0.5 d^2 / beta = 0.25 and |d| - beta / 2 = 0.25, slope +-1
    x = np.array([[-0.5, 0.5, 0.25, 1.0, 0.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"reduction": "none", "beta": 0.5})
    assert_close(r.loss, [[0.25, 0.25, 0.0625, 0.75, 0.0]], dtype, what="loss")
    assert_close(r.grads["input"], [[-1.0, 1.0, 0.5, 1.0, 0.0]], dtype, what="dx")
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"reduction": "sum"})  # beta = 1
    assert_close(r.loss, 0.125 + 0.125 + 0.03125 + 0.5, dtype, what="default beta 1")


@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_zero_is_l1(dtype):
    inputs = _data((6, 5), dtype, 4)
    for reduction in REDUCTIONS:
        a = lossd.evaluate(LOSS, inputs, {"reduction": reduction, "beta": 0.0})
        b = lossd.evaluate("l1", inputs, {"reduction": reduction})
        if reduction == "none":
            np.testing.assert_array_equal(a.loss, b.loss)
        assert_close(a.loss, b.loss.astype(np.float64), dtype, what="loss")  # sums may reassociate
        for name in ("input", "target"):
            np.testing.assert_array_equal(a.grads[name], b.grads[name])
    assert (lossd.evaluate(LOSS, inputs, {"beta": 0.0}).grads["input"].reshape(-1)[::7] == 0).all()


def test_zero_error():
    x = normal((4, 3), np.float64, 9)
    for beta in (0.0, 1.0):
        r = lossd.evaluate(LOSS, {"input": x, "target": x.copy()}, {"beta": beta})
        assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()


test_rejections = rejections_test(LOSS, _data)


@pytest.mark.parametrize("beta", [-0.1, -1e-300, "1", True])
def test_rejects_bad_beta(client, beta):
    assert_rejected(client, LOSS, _data((3, 2), np.float64, 0), {"beta": beta}, "params.beta")


def test_accepts_integer_beta():
    a = lossd.evaluate(LOSS, _data((3, 2), np.float64, 0), {"beta": 2})
    b = lossd.evaluate(LOSS, _data((3, 2), np.float64, 0), {"beta": 2.0})
    np.testing.assert_array_equal(a.loss, b.loss)


test_rejects_shape_mismatch = shape_mismatch_test(LOSS, _data)


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "smooth_l1_loss", _data((3, 2), np.float64, 0))
