"""combined_margin (metric.md §7c) against the float64 reference, finite differences, known
angles, the identities with arcface (1, m, 0) and cosface (1, 0, m), the clamp, and
rejections through the live server."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
from tests.losses._face import (
    assert_accepts_small_rows,
    face_inputs,
    param_id,
    reference_tests,
    rejection_tests,
)
from tests.losses._shared import assert_alias_and_dtypes
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.combined_margin import reference

LOSS = "combined_margin"
PARAM_SETS = [
    {},
    {"s": 12.0, "m1": 1.35, "m2": 0.1, "m3": 0.05},
    {"s": 5.0, "m1": 0.8, "m2": 0.0, "m3": 0.0, "eps": 1e-3},
    {"m1": 2.0, "m2": 0.5, "m3": 0.3},          # m1 theta + m2 > pi for theta > 1.32: non-monotonic
]
AVOID = (1 - 1e-3, -1 + 1e-3)


def _data(shape, dtype, seed=7):
    return face_inputs(*shape, dtype, seed + sum(shape), avoid=AVOID)


test_against_reference, test_large_batch, test_many_classes, test_grads_subsets = reference_tests(
    LOSS, _data, PARAM_SETS, reference)


@pytest.mark.parametrize("params", [{"s": 4.0}, {"s": 3.0, "m1": 1.35, "m2": 0.1, "m3": 0.05,
                                                 "reduction": "none"},
                                    {"s": 2.0, "m1": 2.0, "m2": 0.5, "m3": 0.3, "eps": 1e-3}],
                         ids=param_id)
def test_finite_differences(params):
    check_finite_differences(LOSS, _data((4, 3, 5), np.float64, 9), params, s=params["s"])


@pytest.mark.parametrize("theta", [0.4, 1.9, 2.95])
def test_known_angles(theta):
    s, m1, m2, m3 = 6.0, 1.5, 0.2, 0.1
    inputs = {"features": np.array([[0.5 * math.cos(theta), 0.5 * math.sin(theta)]]),
              "weight": np.array([[4.0, 0.0], [0.0, 1.5]]), "labels": np.array([0])}
    result = lossd.evaluate(LOSS, inputs, {"s": s, "m1": m1, "m2": m2, "m3": m3, "reduction": "mean"})
    zy, z1 = s * (math.cos(m1 * theta + m2) - m3), s * math.sin(theta)
    assert result.loss == pytest.approx(math.log1p(math.exp(z1 - zy)), rel=1e-12)


def _assert_same(a, b):
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-12, atol=1e-13)
    for name in ("features", "weight"):
        scale = np.abs(a.grads[name]).max()
        np.testing.assert_allclose(b.grads[name], a.grads[name], rtol=1e-10, atol=1e-12 * scale)


@pytest.mark.parametrize("m", [0.2, 0.5, 1.1])
def test_equals_arcface_1_m_0(m):
    """(1, m, 0) is arcface with the same m and eps whenever every theta_y < pi - m."""
    inputs = face_inputs(13, 5, 8, np.float64, 4, avoid=(1 - 1e-7,))
    x, w, y = inputs["features"], inputs["weight"], inputs["labels"]
    cos = np.sum(x * w[y], 1) / np.linalg.norm(x, axis=1) / np.linalg.norm(w[y], axis=1)
    keep = cos > math.cos(math.pi - m) + 1e-3
    inputs = {"features": x[keep], "weight": w, "labels": y[keep]}
    assert keep.sum() >= 5
    params = {"s": 20.0, "reduction": "none", "eps": 1e-7}
    a = lossd.evaluate("arcface", inputs, {**params, "m": m})
    b = lossd.evaluate(LOSS, inputs, {**params, "m1": 1.0, "m2": m, "m3": 0.0})
    _assert_same(a, b)
    # with a row past pi - m they differ: arcface falls back, combined_margin does not
    bad = face_inputs(1, 5, 8, np.float64, 1)
    bad["features"] = -bad["weight"][bad["labels"]] + 1e-3
    a = lossd.evaluate("arcface", bad, {**params, "m": m})
    b = lossd.evaluate(LOSS, bad, {**params, "m1": 1.0, "m2": m, "m3": 0.0})
    assert abs(float(a.loss[0] - b.loss[0])) > 1.0


def test_equals_cosface_1_0_m():
    inputs = _data((9, 4, 7), np.float64)
    params = {"s": 10.0, "reduction": "sum"}
    _assert_same(lossd.evaluate("cosface", inputs, {**params, "m": 0.4}),
                 lossd.evaluate(LOSS, inputs, {**params, "m1": 1.0, "m2": 0.0, "m3": 0.4}))


def test_clamp_masks_target_gradient():
    """cos_iy = 1 lies outside [-1 + eps, 1 - eps]: the target logit gives no gradient."""
    w = np.array([[1.0, 0.0], [0.6, 0.8]])
    inputs = {"features": np.array([[2.0, 0.0]]), "weight": w, "labels": np.array([0])}
    result = lossd.evaluate(LOSS, inputs, {"s": 5.0, "reduction": "sum"})
    np.testing.assert_array_equal(result.grads["weight"][0], [0.0, 0.0])
    assert np.isfinite(result.grads["features"]).all()
    check_against_reference(LOSS, inputs, {"s": 5.0}, reference, k=5.0)


def test_accepts_boundary_values():
    inputs = _data((4, 3, 5), np.float64)
    assert_accepts_small_rows(LOSS, inputs)
    for params in ({"m2": 0.0, "m3": 0.0}, {"eps": 0.0}, {"eps": 0.5}, {"m1": 1e-3}, {"m2": 4.0}):
        check_against_reference(LOSS, inputs, params, reference, k=64.0)


VALID = face_inputs(4, 3, 5, np.float64, 0)


PARAM_REJECTIONS = [
    ({"s": 0.0}, "params.s"), ({"m1": 0.0}, "params.m1"), ({"m1": -1.0}, "params.m1"),
    ({"m2": -0.1}, "params.m2"), ({"m3": -0.1}, "params.m3"), ({"eps": 0.51}, "params.eps"),
    ({"eps": -1e-9}, "params.eps"), ({"m": 0.5}, "params.m"), ({"m2": math.nan}, "params.m2"),
]

test_generic_rejections, test_shape_and_label_rejections, test_param_rejections = rejection_tests(
    LOSS, VALID, ["weight"], PARAM_REJECTIONS)


def test_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, None, VALID)
