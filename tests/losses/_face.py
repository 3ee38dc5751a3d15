"""Helpers of the five face-loss tests (l_softmax, sphereface, arcface, cosface, combined_margin):
the (N, D, C) shapes, data with target cosines kept off branch thresholds, the shape/label/
zero-norm rejection cases, and the test functions every face loss runs the same way
(reference comparisons and rejections through the live server), built per loss by
``reference_tests`` and ``rejection_tests``."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
from tests.losses._shared import DTYPES, REDUCTIONS, assert_rejected, generic_rejections
from tests.losses.harness import check_against_reference

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


def param_id(params):
    """A readable test id for a params dict."""
    return ",".join(f"{k}={v}" for k, v in params.items()) or "defaults"


# the margin and lambda-schedule parameters l_softmax and sphereface share (metric.md §3a, §3b)
L_SOFTMAX_PARAM_REJECTIONS = [
    ({"margin": 4.0}, "params.margin"), ({"margin": 2.5}, "params.margin"),
    ({"margin": True}, "params.margin"), ({"margin": 0}, "params.margin"),
    ({"margin": 17}, "params.margin"), ({"margin": "4"}, "params.margin"),
    ({"lambda_": -0.1}, "params.lambda_"), ({"lambda_": math.inf}, "params.lambda_"),
    ({"iteration": -1}, "params.iteration"), ({"iteration": 3.0}, "params.iteration"),
    ({"lambda_": 1.0, "iteration": 3}, "params.lambda_"),
    ({"lambda_": 0.0, "iteration": 0}, "params.iteration"),
    ({"lambda_base": -1.0}, "params.lambda_base"), ({"lambda_gamma": -1e-9}, "params.lambda_gamma"),
    ({"lambda_power": -2.0}, "params.lambda_power"), ({"lambda_min": -5.0}, "params.lambda_min"),
    ({"s": 1.0}, "params.s"),
]


def reference_tests(loss, data, param_sets, reference, scale_k=True):
    """``test_against_reference``, ``test_large_batch``, ``test_many_classes`` and
    ``test_grads_subsets`` of one face loss: ``data(shape, dtype)`` makes its inputs; the
    tolerance factor k is the scale s (default 64) when ``scale_k``, else 1."""

    def k(params):
        return params.get("s", 64.0) if scale_k else 1.0

    @pytest.mark.parametrize("params", param_sets, ids=param_id)
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("shape", SHAPES[:2])
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_against_reference(dtype, shape, reduction, params):
        check_against_reference(loss, data(shape, dtype), {"reduction": reduction, **params}, reference,
                                k=k(params))

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_large_batch(dtype, reduction):
        check_against_reference(loss, data(SHAPES[3], dtype), {"reduction": reduction}, reference, k=k({}))

    @pytest.mark.parametrize("params", param_sets, ids=param_id)
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_many_classes(dtype, params):
        """C >= 10 000 (parallel build), every parameter set; reductions cycle over the sets."""
        reduction = REDUCTIONS[param_sets.index(params) % len(REDUCTIONS)]
        check_against_reference(loss, data(SHAPES[2], dtype), {"reduction": reduction, **params}, reference,
                                k=k(params))

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_grads_subsets(dtype):
        inputs = data((5, 4, 6), dtype)
        for grads in (["features"], ["weight"], []):
            check_against_reference(loss, inputs, {"reduction": "sum"}, reference, k=k({}), grads=grads)

    return test_against_reference, test_large_batch, test_many_classes, test_grads_subsets


def rejection_tests(loss, valid, differentiable, param_rejections):
    """``test_generic_rejections``, ``test_shape_and_label_rejections`` and
    ``test_param_rejections`` of one face loss, from one valid float64 request;
    ``param_rejections`` is a list of ``(params, field)``."""

    @pytest.mark.parametrize("inputs, params, grads, field",
                             generic_rejections(valid, differentiable, ["labels"]))
    def test_generic_rejections(client, inputs, params, grads, field):
        assert_rejected(client, loss, inputs, params, field, grads)

    @pytest.mark.parametrize("inputs, params, field", face_rejections(valid))
    def test_shape_and_label_rejections(client, inputs, params, field):
        assert_rejected(client, loss, inputs, params, field)

    @pytest.mark.parametrize("params, field", param_rejections)
    def test_param_rejections(client, params, field):
        assert_rejected(client, loss, valid, params, field)

    return test_generic_rejections, test_shape_and_label_rejections, test_param_rejections
