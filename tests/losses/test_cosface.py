"""cosface (metric.md §7b) against the float64 reference, finite differences, known angles,
the identity with combined_margin (1, 0, m), and rejections through the live server."""

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
from tests.reference.cosface import reference

LOSS = "cosface"
PARAM_SETS = [{}, {"s": 7.5, "m": 0.1}, {"s": 30.0, "m": 0.0}, {"m": 1.7}]


def _data(shape, dtype, seed=5):
    return face_inputs(*shape, dtype, seed + sum(shape))


test_against_reference, test_large_batch, test_many_classes, test_grads_subsets = reference_tests(
    LOSS, _data, PARAM_SETS, reference)


@pytest.mark.parametrize("params", [{"s": 4.0}, {"s": 2.5, "m": 0.6, "reduction": "none"},
                                    {"s": 6.0, "m": 0.0, "reduction": "sum"}], ids=param_id)
def test_finite_differences(params):
    check_finite_differences(LOSS, _data((4, 3, 5), np.float64, 8), params, s=params["s"])


@pytest.mark.parametrize("theta", [0.3, 1.6, 3.0])
def test_known_angles(theta):
    """D = 2: class 0 along e0, class 1 along e1; the sample is at angle theta from class 0."""
    s, m = 9.0, 0.35
    inputs = {"features": np.array([[2.0 * math.cos(theta), 2.0 * math.sin(theta)]]),
              "weight": np.array([[3.0, 0.0], [0.0, 0.2]]), "labels": np.array([0])}
    result = lossd.evaluate(LOSS, inputs, {"s": s, "m": m, "reduction": "sum"})
    zy, z1 = s * (math.cos(theta) - m), s * math.sin(theta)
    assert result.loss == pytest.approx(math.log1p(math.exp(z1 - zy)), rel=1e-12)
    # dR/dx = s (p1 (dcos1/dx) - p1 (dcos0/dx)), dcos_j/dx = (wh_j - xh cos_j)/|x|
    p1 = 1.0 / (1.0 + math.exp(zy - z1))
    xh = np.array([math.cos(theta), math.sin(theta)])
    dc0 = (np.array([1.0, 0.0]) - xh * math.cos(theta)) / 2.0
    dc1 = (np.array([0.0, 1.0]) - xh * math.sin(theta)) / 2.0
    np.testing.assert_allclose(result.grads["features"][0], s * p1 * (dc1 - dc0), rtol=1e-10, atol=1e-14)


def test_nearly_aligned_row_is_not_clamped():
    """cosface has no clamp: at cos_iy = 1 - 5e-9 (inside arcface's masked band 1 - eps) the
    target logit still moves the class row; arcface's clamp gives it no gradient there."""
    w = np.array([[1.0, 0.0], [0.6, 0.8]])
    inputs = {"features": np.array([[2.0, 2e-4]]), "weight": w, "labels": np.array([0])}
    result = lossd.evaluate(LOSS, inputs, {"s": 5.0})
    assert np.abs(result.grads["weight"][0]).max() > 1e-5
    check_against_reference(LOSS, inputs, {"s": 5.0}, reference, k=5.0)
    arc = lossd.evaluate("arcface", inputs, {"s": 5.0, "m": 0.35})
    np.testing.assert_array_equal(arc.grads["weight"][0], [0.0, 0.0])


@pytest.mark.parametrize("m", [0.0, 0.35, 0.9])
def test_equals_combined_margin_1_0_m(m):
    """combined_margin (m1, m2, m3) = (1, 0, m) is cosface when every target cosine lies inside
    the clamp interval (metric.md §7c)."""
    inputs = _data((11, 6, 9), np.float64)
    params = {"s": 16.0, "reduction": "none"}
    a = lossd.evaluate(LOSS, inputs, {**params, "m": m})
    b = lossd.evaluate("combined_margin", inputs, {**params, "m1": 1.0, "m2": 0.0, "m3": m})
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-12, atol=1e-13)
    for name in ("features", "weight"):
        scale = np.abs(a.grads[name]).max()
        np.testing.assert_allclose(b.grads[name], a.grads[name], rtol=1e-10, atol=1e-12 * scale)


def test_accepts_boundary_values():
    inputs = _data((4, 3, 5), np.float64)
    assert_accepts_small_rows(LOSS, inputs)
    for params in ({"m": 0.0}, {"m": 5.0}, {"s": 1e-3}):
        check_against_reference(LOSS, inputs, params, reference, k=params.get("s", 64.0))


VALID = face_inputs(4, 3, 5, np.float64, 0)


PARAM_REJECTIONS = [
    ({"s": 0.0}, "params.s"), ({"s": -2.0}, "params.s"), ({"s": math.inf}, "params.s"),
    ({"m": -0.01}, "params.m"), ({"m": "0.3"}, "params.m"), ({"m": False}, "params.m"),
    ({"eps": 1e-7}, "params.eps"),
]

test_generic_rejections, test_shape_and_label_rejections, test_param_rejections = rejection_tests(
    LOSS, VALID, ["features"], PARAM_REJECTIONS)


def test_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, None, VALID)
