"""sphereface (metric.md §3b) against the float64 reference, finite differences, the identity
with l_softmax on normalised weight rows, the schedule defaults of the official prototxt,
invariance to the weight row norms, and rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._face import (
    L_SOFTMAX_PARAM_REJECTIONS,
    assert_accepts_small_rows,
    face_inputs,
    param_id,
    reference_tests,
    rejection_tests,
)
from tests.losses._shared import assert_alias_and_dtypes
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.sphereface import reference

LOSS = "sphereface"
PARAM_SETS = [
    {},
    {"margin": 1},
    {"margin": 2, "lambda_": 0.7},
    {"margin": 3, "iteration": 50},
    {"margin": 7, "iteration": 5, "lambda_base": 20.0, "lambda_gamma": 0.3, "lambda_power": 2.0,
     "lambda_min": 0.1},
]


def _data(shape, dtype, seed=13):
    return face_inputs(*shape, dtype, seed + sum(shape), scale=1.5)


test_against_reference, test_large_batch, test_many_classes, test_grads_subsets = reference_tests(
    LOSS, _data, PARAM_SETS, reference, scale_k=False)


@pytest.mark.parametrize("params", [{}, {"margin": 2, "reduction": "none"}, {"margin": 3, "lambda_": 0.4},
                                    {"margin": 6, "iteration": 2, "reduction": "sum"}], ids=param_id)
def test_finite_differences(params):
    check_finite_differences(LOSS, _data((4, 3, 5), np.float64, 3), params)


@pytest.mark.parametrize("params", [{}, {"margin": 3, "lambda_": 1.5}, {"margin": 1}])
def test_equals_l_softmax_on_unit_weight_rows(params):
    """Forward and feature gradient equal l_softmax's with w/|w| as the weight; the weight
    gradient is l_softmax's projected by (I - wh wh^T)/|w|."""
    inputs = _data((8, 5, 7), np.float64)
    w = inputs["weight"]
    nw = np.linalg.norm(w, axis=1, keepdims=True)
    wh = w / nw
    sphere = lossd.evaluate(LOSS, inputs, {**params, "reduction": "none"})
    lsm = lossd.evaluate("l_softmax", {**inputs, "weight": wh}, {**params, "reduction": "none"})
    np.testing.assert_allclose(sphere.loss, lsm.loss, rtol=1e-12, atol=1e-14)
    gx = lsm.grads["features"]
    np.testing.assert_allclose(sphere.grads["features"], gx, rtol=1e-10, atol=1e-12 * np.abs(gx).max())
    gw = lsm.grads["weight"]
    gw = (gw - wh * np.sum(wh * gw, axis=1, keepdims=True)) / nw
    np.testing.assert_allclose(sphere.grads["weight"], gw, rtol=1e-9, atol=1e-12 * np.abs(gw).max())


def test_weight_row_norms_do_not_matter():
    inputs = _data((6, 4, 5), np.float64)
    w = inputs["weight"] * np.array([[0.1], [3.0], [1.0], [7.0], [0.5]])
    a = lossd.evaluate(LOSS, inputs, {"reduction": "none"})
    b = lossd.evaluate(LOSS, {**inputs, "weight": w}, {"reduction": "none"})
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-12)
    np.testing.assert_allclose(b.grads["features"], a.grads["features"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("iteration, lam", [
    (0, 1000.0), (100, 1000.0 / 13.0), (1000, 1000.0 / 121.0),
    (10000, 5.0),                                              # 1000/1201 < lambda_min = 5
])
def test_official_schedule_defaults(iteration, lam):
    inputs = _data((6, 4, 5), np.float64)
    by_iteration = lossd.evaluate(LOSS, inputs, {"iteration": iteration, "reduction": "none"})
    by_lambda = lossd.evaluate(LOSS, inputs, {"lambda_": lam, "reduction": "none"})
    np.testing.assert_allclose(by_iteration.loss, by_lambda.loss, rtol=1e-13)
    np.testing.assert_allclose(by_iteration.grads["features"], by_lambda.grads["features"], rtol=1e-12,
                               atol=1e-15)


def test_accepts_boundary_values():
    inputs = _data((4, 3, 5), np.float64)
    assert_accepts_small_rows(LOSS, inputs)
    for params in ({"margin": 16}, {"lambda_": 0.0}, {"iteration": 0}):
        check_against_reference(LOSS, inputs, params, reference)


VALID = face_inputs(4, 3, 5, np.float64, 0)


test_generic_rejections, test_shape_and_label_rejections, test_param_rejections = rejection_tests(
    LOSS, VALID, ["weight"], L_SOFTMAX_PARAM_REJECTIONS)


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "a_softmax", VALID)
