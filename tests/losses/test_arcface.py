"""arcface (metric.md §7a) against the float64 reference, finite differences, angles with
known answers, the fallback and easy-margin branches, the clamp, and rejections through the
live server.

Also holds the data helpers of the face-loss tests (l_softmax, sphereface, cosface,
combined_margin import ``face_inputs``, ``SHAPES`` and ``face_rejections``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.losses.test_mse import assert_alias_and_dtypes, assert_rejected, generic_rejections
from tests.reference.arcface import reference

LOSS = "arcface"
DTYPES = [np.float32, np.float64]
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
# (N, D, C): batch 1, odd sizes, C >= 10 000 (parallel build, N*C > 4096), N >= 512
SHAPES = [(1, 4, 3), (7, 5, 11), (37, 6, 10007), (520, 3, 9)]


def face_inputs(n, d, c, dtype, seed, avoid=(), gap=2e-2, scale=1.0):
    """features, weight, labels with target cosines spread over (-1, 1) (features are a random
    multiple of the label's weight row plus noise), none within ``gap`` of a value in ``avoid``
    (branch thresholds kept away from, README §9)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c, d)) * rng.uniform(0.5, 2.0, (c, 1))
    y = rng.integers(0, c, n)
    wy = w[y] / np.linalg.norm(w[y], axis=1, keepdims=True)
    x = np.empty((n, d))
    todo = np.ones(n, bool)
    while todo.any():
        k = int(todo.sum())
        cand = rng.uniform(-1.5, 2.5, (k, 1)) * wy[todo] + 0.6 * rng.standard_normal((k, d))
        x[todo] = cand
        cos = np.sum(x * wy, axis=1) / np.linalg.norm(x, axis=1)
        bad = np.zeros(n, bool)
        for a in avoid:
            bad |= np.abs(cos - a) < gap
        todo = bad
    x *= scale
    return {"features": x.astype(dtype), "weight": w.astype(dtype), "labels": y}


def face_rejections(valid):
    """The shape, label and zero-norm rejections of the five face losses: pytest params
    ``(inputs, params, field)`` built from one valid float64 request."""
    x, w, y = valid["features"], valid["weight"], valid["labels"]
    zx = x.copy()
    zx[1] = 0.0
    tiny_w = w.copy()
    tiny_w[2] = 1e-13 / math.sqrt(w.shape[1])
    cases = [
        ("features-rank1", {**valid, "features": x[0]}, "inputs.features"),
        ("features-rank3", {**valid, "features": x[None]}, "inputs.features"),
        ("weight-rank1", {**valid, "weight": w[0]}, "inputs.weight"),
        ("weight-D", {**valid, "weight": w[:, :-1].copy()}, "inputs.weight"),
        ("labels-shape", {**valid, "labels": y[:-1]}, "inputs.labels"),
        ("labels-2d", {**valid, "labels": y[:, None]}, "inputs.labels"),
        ("labels-float", {**valid, "labels": y.astype(np.float64)}, "inputs.labels"),
        ("labels-negative", {**valid, "labels": np.r_[y[:-1], -1]}, "inputs.labels"),
        ("labels-C", {**valid, "labels": np.r_[y[:-1], w.shape[0]]}, "inputs.labels"),
        ("features-zero-row", {**valid, "features": zx}, "inputs.features"),
        ("weight-tiny-row", {**valid, "weight": tiny_w}, "inputs.weight"),
    ]
    return [pytest.param(i, {}, f, id=case_id) for case_id, i, f in cases]


def assert_accepts_small_rows(loss, valid, params=None):
    """Rows just above the 1e-12 norm floor are accepted (and give finite results)."""
    x = valid["features"].copy()
    x[0] *= 1e-11 / np.linalg.norm(x[0])
    w = valid["weight"].copy()
    w[0] *= 2e-12 / np.linalg.norm(w[0])
    result = lossd.evaluate(loss, {**valid, "features": x, "weight": w}, params or {})
    assert np.isfinite(result.loss)
    assert all(np.isfinite(g).all() for g in result.grads.values())


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


def param_id(params):
    """A readable test id for a params dict."""
    return ",".join(f"{k}={v}" for k, v in params.items()) or "defaults"


@pytest.mark.parametrize("params", PARAM_SETS, ids=param_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES[:2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, params):
    check_against_reference(LOSS, _data(shape, dtype), {"reduction": reduction, **params}, reference,
                            k=params.get("s", 64.0))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_batch(dtype, reduction):
    check_against_reference(LOSS, _data(SHAPES[3], dtype), {"reduction": reduction}, reference, k=64.0)


@pytest.mark.parametrize("params", PARAM_SETS, ids=param_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_many_classes(dtype, params):
    """C >= 10 000 (parallel build), every parameter set; reductions cycle over the sets."""
    reduction = REDUCTIONS[PARAM_SETS.index(params) % len(REDUCTIONS)]
    check_against_reference(LOSS, _data(SHAPES[2], dtype), {"reduction": reduction, **params}, reference,
                            k=params.get("s", 64.0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_subsets(dtype):
    inputs = _data((5, 4, 6), dtype)
    for grads in (["features"], ["weight"], []):
        check_against_reference(LOSS, inputs, {"reduction": "sum"}, reference, k=64.0, grads=grads)


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


@pytest.mark.parametrize("inputs, params, grads, field",
                         generic_rejections(VALID, ["features"], ["labels"]))
def test_generic_rejections(client, inputs, params, grads, field):
    assert_rejected(client, LOSS, inputs, params, field, grads)


@pytest.mark.parametrize("inputs, params, field", face_rejections(VALID))
def test_shape_and_label_rejections(client, inputs, params, field):
    assert_rejected(client, LOSS, inputs, params, field)


@pytest.mark.parametrize("params, field", [
    ({"s": 0.0}, "params.s"), ({"s": -1.0}, "params.s"), ({"s": math.nan}, "params.s"),
    ({"m": -0.1}, "params.m"), ({"m": math.pi}, "params.m"), ({"m": 4.0}, "params.m"),
    ({"eps": -1e-9}, "params.eps"), ({"eps": 0.6}, "params.eps"),
    ({"easy_margin": 1}, "params.easy_margin"), ({"s": True}, "params.s"),
    ({"grad_mode": "straight"}, "params.grad_mode"), ({"grad_mode": 1}, "params.grad_mode"),
])
def test_param_rejections(client, params, field):
    assert_rejected(client, LOSS, VALID, params, field)


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "additive_angular_margin", VALID)
