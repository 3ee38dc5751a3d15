"""arcface (metric.md §7a) against the float64 reference, finite differences, angles with
known answers, the fallback and easy-margin branches, the clamp, and rejections through the
live server."""

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
from tests.reference.arcface import reference

LOSS = "arcface"
ARC_AVOID = (math.cos(math.pi - 0.5), math.cos(math.pi - 0.3), 0.0)
PARAM_SETS = [
    {},
    {"easy_margin": True},
    {"grad_mode": "straight_through"},
    {"s": 8.5, "m": 0.3, "eps": 1e-3},
    {"s": 2.0, "m": 1.2, "easy_margin": True, "grad_mode": "straight_through"},
]
AVOID = ARC_AVOID + (math.cos(math.pi - 1.2), 1 - 1e-3, -1 + 1e-3)


def _data(shape, dtype, seed=3):
    return face_inputs(*shape, dtype, seed + sum(shape), avoid=AVOID)


test_against_reference, test_large_batch, test_many_classes, test_grads_subsets = reference_tests(
    LOSS, _data, PARAM_SETS, reference)


# straight_through is not the true gradient by design: no finite differences for it
@pytest.mark.parametrize("params", [PARAM_SETS[0], PARAM_SETS[1], PARAM_SETS[3],
                                    {"reduction": "none", "s": 3.0, "m": 0.2}],
                         ids=param_id)
def test_finite_differences(params):
    # moderate s keeps R well conditioned for h = 1e-6; branches at least 2e-2 away
    params = {"s": 4.0, **params}
    check_finite_differences(LOSS, _data((4, 3, 5), np.float64, 21), params, s=params["s"])


def _two_class(theta, dtype=np.float64):
    """D = 2, class 0 along e0, class 1 along e1 (rows of different norms); the sample makes
    the angle theta with class 0 and has label 0."""
    w = np.array([[2.0, 0.0], [0.0, 0.5]], dtype)
    x = np.array([[3.0 * math.cos(theta), 3.0 * math.sin(theta)]], dtype)
    return {"features": x, "weight": w, "labels": np.array([0])}


@pytest.mark.parametrize("theta, easy, expect_t", [
    (0.7, False, lambda t, m: math.cos(t + m)),                  # margin branch
    (2.9, False, lambda t, m: math.cos(t) - m * math.sin(m)),    # theta > pi - m: fallback
    (2.5, False, lambda t, m: math.cos(t + m)),                  # theta < pi - m = 2.64
    (1.8, True, lambda t, m: math.cos(t)),                       # easy margin: theta > pi/2
    (1.2, True, lambda t, m: math.cos(t + m)),
])
def test_known_angles(theta, easy, expect_t):
    s, m = 10.0, 0.5
    result = lossd.evaluate(LOSS, _two_class(theta), {"s": s, "m": m, "easy_margin": easy,
                                                      "reduction": "sum"})
    zy = s * expect_t(theta, m)
    z1 = s * math.sin(theta)                     # cos of the angle to class 1 (e1)
    expected = math.log1p(math.exp(z1 - zy))
    assert result.loss == pytest.approx(expected, rel=1e-12)


def test_fallback_is_discontinuous_and_finite():
    """Across c = cos(pi - m) the target logit jumps from -1 to -cos m - m sin m (§7a)."""
    m, d = 0.5, 1e-4
    th = math.pi - m
    got = {}
    for side, theta in (("margin", th - d), ("fallback", th + d)):
        result = lossd.evaluate(LOSS, _two_class(theta), {"s": 1.0, "m": m, "reduction": "sum"})
        zy = math.cos(theta + m) if side == "margin" else math.cos(theta) - m * math.sin(m)
        assert result.loss == pytest.approx(math.log1p(math.exp(math.sin(theta) - zy)), rel=1e-12)
        assert np.isfinite(result.grads["features"]).all()
        got[side] = zy
    assert got["margin"] == pytest.approx(-1.0, abs=1e-6)
    assert got["fallback"] == pytest.approx(-math.cos(m) - m * math.sin(m), abs=1e-4)


def test_clamp_masks_target_gradient():
    """A feature exactly along its class row: cos = 1 > 1 - eps, T is constant, the target
    logit gives no gradient and the result is finite; only the other logit contributes."""
    w = np.array([[1.0, 0.0], [0.6, 0.8]])
    x = np.array([[2.0, 0.0]])
    inputs = {"features": x, "weight": w, "labels": np.array([0])}
    s, m, eps = 5.0, 0.5, 1e-7
    result = lossd.evaluate(LOSS, inputs, {"s": s, "m": m, "reduction": "sum"})
    c = 1.0 - eps
    zy = s * (c * math.cos(m) - math.sqrt(1 - c * c) * math.sin(m))
    z1 = s * 0.6
    p1 = 1.0 / (1.0 + math.exp(zy - z1))
    assert result.loss == pytest.approx(math.log1p(math.exp(z1 - zy)), rel=1e-12)
    # dR/dcos_01 = s p1; d cos_01 / dx = (wh1 - xh cos_01)/|x| = ((0.6, 0.8) - (0.6, 0))/2
    np.testing.assert_allclose(result.grads["features"], [[0.0, s * p1 * 0.4]], rtol=1e-12, atol=1e-15)
    # weight row 0 only feels the target logit, which is clamped: zero gradient
    np.testing.assert_array_equal(result.grads["weight"][0], [0.0, 0.0])
    check_against_reference(LOSS, inputs, {"s": s, "m": m}, reference, k=s)


def test_straight_through_same_forward():
    inputs = _data((9, 5, 13), np.float64)
    exact = lossd.evaluate(LOSS, inputs, {"reduction": "none"})
    st = lossd.evaluate(LOSS, inputs, {"reduction": "none", "grad_mode": "straight_through"})
    np.testing.assert_array_equal(exact.loss, st.loss)
    assert not np.allclose(exact.grads["features"], st.grads["features"])


def test_zero_margin_is_normalised_softmax():
    """m = 0 (no clamp influence away from |cos| = 1): plain softmax over s cos."""
    inputs = _data((6, 4, 7), np.float64)
    s = 3.0
    result = lossd.evaluate(LOSS, inputs, {"s": s, "m": 0.0, "reduction": "none"})
    x, w, y = inputs["features"], inputs["weight"], inputs["labels"]
    z = s * (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    lse = np.log(np.sum(np.exp(z), axis=1))
    np.testing.assert_allclose(result.loss, lse - z[np.arange(6), y], rtol=1e-12)


def test_scale_invariance_of_rows():
    """Rescaling a feature row or a weight row leaves the loss unchanged and scales its
    gradient by the inverse factor (the loss only sees directions)."""
    inputs = _data((5, 4, 6), np.float64)
    base = lossd.evaluate(LOSS, inputs, {"reduction": "none"})
    x = inputs["features"].copy()
    x[2] *= 7.0
    w = inputs["weight"].copy()
    w[1] *= 0.25
    scaled = lossd.evaluate(LOSS, {**inputs, "features": x, "weight": w}, {"reduction": "none"})
    np.testing.assert_allclose(scaled.loss, base.loss, rtol=1e-12)
    np.testing.assert_allclose(scaled.grads["features"][2], base.grads["features"][2] / 7.0, rtol=1e-9)
    np.testing.assert_allclose(scaled.grads["weight"][1], base.grads["weight"][1] / 0.25, rtol=1e-9)


def test_accepts_boundary_values():
    inputs = _data((4, 3, 5), np.float64)
    assert_accepts_small_rows(LOSS, inputs)
    for params in ({"m": 0.0}, {"eps": 0.0}, {"eps": 0.5}, {"m": 3.14}, {"s": 1e-3}):
        check_against_reference(LOSS, inputs, params, reference, k=params.get("s", 64.0))


VALID = face_inputs(4, 3, 5, np.float64, 0)


PARAM_REJECTIONS = [
    ({"s": 0.0}, "params.s"), ({"s": -1.0}, "params.s"), ({"s": math.nan}, "params.s"),
    ({"m": -0.1}, "params.m"), ({"m": math.pi}, "params.m"), ({"m": 4.0}, "params.m"),
    ({"eps": -1e-9}, "params.eps"), ({"eps": 0.6}, "params.eps"),
    ({"easy_margin": 1}, "params.easy_margin"), ({"s": True}, "params.s"),
    ({"grad_mode": "straight"}, "params.grad_mode"), ({"grad_mode": 1}, "params.grad_mode"),
]

test_generic_rejections, test_shape_and_label_rejections, test_param_rejections = rejection_tests(
    LOSS, VALID, ["features"], PARAM_REJECTIONS)


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "additive_angular_margin", VALID)
