"""l_softmax (metric.md §3a) against the float64 reference, finite differences, the official
hard-coded m <= 4 polynomials on a dense grid of angles, the annealing schedule, m = 1 and
lambda -> inf as plain softmax, and rejections through the live server."""

from __future__ import annotations

import math

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
from tests.reference.l_softmax import reference

LOSS = "l_softmax"
PARAM_SETS = [
    {},
    {"margin": 1},
    {"margin": 2, "lambda_": 0.7},
    {"margin": 3, "iteration": 20000, "lambda_base": 50.0, "lambda_gamma": 1e-3, "lambda_power": 1.5,
     "lambda_min": 0.25},
    {"margin": 16, "lambda_": 3.0},
]


def _data(shape, dtype, seed=11):
    return face_inputs(*shape, dtype, seed + sum(shape), scale=0.7)


test_against_reference, test_large_batch, test_many_classes, test_grads_subsets = reference_tests(
    LOSS, _data, PARAM_SETS, reference, scale_k=False)


@pytest.mark.parametrize("params", [{}, {"margin": 2, "reduction": "none"}, {"margin": 3, "lambda_": 0.4},
                                    {"margin": 5, "iteration": 7, "reduction": "sum"}], ids=param_id)
def test_finite_differences(params):
    check_finite_differences(LOSS, _data((4, 3, 5), np.float64, 2), params)


def official_psi(c, m):
    """The official Caffe layer's hard-coded m <= 4 target polynomials (sign tricks)."""
    s0 = np.sign(c)
    if m == 1:
        return c
    if m == 2:
        return 2.0 * s0 * c ** 2 - 1.0
    if m == 3:
        s1 = np.sign(np.abs(c) - 0.5)
        s2 = s0 * (1.0 + s1) - 2.0
        return s1 * (4.0 * c ** 3 - 3.0 * c) + s2
    s3 = s0 * np.sign(2.0 * c ** 2 - 1.0)
    s4 = 2.0 * s0 + s3 - 3.0
    return s3 * (8.0 * c ** 4 - 8.0 * c ** 2 + 1.0) + s4


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_official_polynomials_on_angle_grid(m):
    """psi on 2000 angles in (0, pi), read back from the loss: with |x| = |w| = 1, D = 3, class 1
    orthogonal to every sample (logit 0) and label 0, l = softplus(-psi(cos theta))."""
    theta = np.linspace(0.0, math.pi, 2002)[1:-1]
    theta = theta[np.min(np.abs(theta[:, None] * m / math.pi - np.arange(1, m)[None, :]), axis=1,
                         initial=1.0) > 1e-6]           # off the region boundaries (k ties)
    x = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], axis=1)
    w = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    result = lossd.evaluate(LOSS, {"features": x, "weight": w, "labels": np.zeros(len(theta), np.int64)},
                            {"margin": m, "reduction": "none"})
    psi = -np.log(np.expm1(result.loss))
    np.testing.assert_allclose(psi, official_psi(np.cos(theta), m), rtol=1e-9, atol=1e-9)
    # psi decreases monotonically from 1 to 1 - 2m over (0, pi)
    assert np.all(np.diff(psi) < 0)
    assert psi[0] == pytest.approx(1.0, abs=1e-4) and psi[-1] == pytest.approx(1 - 2 * m, abs=1e-3)


def _plain_softmax(inputs):
    z = inputs["features"] @ inputs["weight"].T
    y = inputs["labels"]
    mx = z.max(axis=1, keepdims=True)
    lse = mx[:, 0] + np.log(np.sum(np.exp(z - mx), axis=1))
    p = np.exp(z - lse[:, None])
    p[np.arange(len(y)), y] -= 1.0
    return lse - z[np.arange(len(y)), y], p @ inputs["weight"], p.T @ inputs["features"]


@pytest.mark.parametrize("params, rtol", [({"margin": 1}, 1e-12), ({"margin": 1, "lambda_": 2.0}, 1e-12),
                                          ({"margin": 4, "lambda_": 1e9}, 1e-7)])
def test_plain_softmax_limits(params, rtol):
    """m = 1 is plain softmax over x w^T (any lambda); lambda -> inf tends to it too."""
    inputs = _data((9, 4, 6), np.float64)
    result = lossd.evaluate(LOSS, inputs, {**params, "reduction": "none"})
    loss, gx, gw = _plain_softmax(inputs)
    np.testing.assert_allclose(result.loss, loss, rtol=rtol, atol=1e-14)
    np.testing.assert_allclose(result.grads["features"], gx, rtol=rtol, atol=rtol * np.abs(gx).max())
    np.testing.assert_allclose(result.grads["weight"], gw, rtol=rtol, atol=rtol * np.abs(gw).max())


@pytest.mark.parametrize("iteration, params, lam", [
    (0, {}, 1000.0),                                            # official defaults at it = 0
    (1, {}, 1000.0 * (1 + 2.5e-5) ** -35),
    (10000, {}, 1000.0 * 1.25 ** -35),                          # 0.40565...
    (100000, {}, 1000.0 * 3.5 ** -35),                          # 9.9e-17: lambda_min 0 keeps it
    (100000, {"lambda_min": 0.5}, 0.5),                         # the floor
    (40, {"lambda_base": 10.0, "lambda_gamma": 0.05, "lambda_power": 2.0}, 10.0 / 9.0),
])
def test_annealing_schedule(iteration, params, lam):
    """``iteration`` gives the same result as ``lambda_`` set to the schedule's value."""
    inputs = _data((6, 4, 5), np.float64)
    by_iteration = lossd.evaluate(LOSS, inputs, {"iteration": iteration, **params, "reduction": "none"})
    by_lambda = lossd.evaluate(LOSS, inputs, {"lambda_": lam, **params, "reduction": "none"})
    np.testing.assert_allclose(by_iteration.loss, by_lambda.loss, rtol=1e-13)
    np.testing.assert_allclose(by_iteration.grads["weight"], by_lambda.grads["weight"], rtol=1e-12,
                               atol=1e-15)


def test_schedule_params_without_iteration_have_no_effect():
    inputs = _data((6, 4, 5), np.float64)
    a = lossd.evaluate(LOSS, inputs, {"reduction": "none"})
    b = lossd.evaluate(LOSS, inputs, {"reduction": "none", "lambda_base": 3.0, "lambda_min": 9.0})
    np.testing.assert_array_equal(a.loss, b.loss)


def test_known_angle_m4():
    """theta = 100 deg, m = 4: k = floor(400/180) = 2, psi = cos(400 deg) - 4."""
    t = math.radians(100.0)
    x = np.array([[2.0 * math.cos(t), 2.0 * math.sin(t), 0.0]])
    w = np.array([[1.5, 0.0, 0.0], [0.0, 0.0, 0.8]])
    result = lossd.evaluate(LOSS, {"features": x, "weight": w, "labels": np.array([0])}, {"reduction": "sum"})
    zy = 2.0 * 1.5 * (math.cos(4 * t) - 4.0)
    assert result.loss == pytest.approx(math.log1p(math.exp(-zy)), rel=1e-12)


def test_accepts_boundary_values():
    inputs = _data((4, 3, 5), np.float64)
    assert_accepts_small_rows(LOSS, inputs)
    for params in ({"margin": 1}, {"margin": 16}, {"lambda_": 0.0}, {"iteration": 0},
                   {"iteration": 5, "lambda_base": 0.0, "lambda_gamma": 0.0, "lambda_power": 0.0}):
        check_against_reference(LOSS, inputs, params, reference)


VALID = face_inputs(4, 3, 5, np.float64, 0)


test_generic_rejections, test_shape_and_label_rejections, test_param_rejections = rejection_tests(
    LOSS, VALID, ["features"], L_SOFTMAX_PARAM_REJECTIONS)


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "large_margin_softmax", VALID)
