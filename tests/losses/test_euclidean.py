"""euclidean (core.md §2.3, Caffe EuclideanLoss) against the float64 reference, finite
differences, Caffe's value sum ||d||^2 / (2N), and rejections through the live server."""

from __future__ import annotations

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
from tests.reference.euclidean import reference

LOSS = "euclidean"


def _data(shape, dtype, seed):
    return {"input": normal(shape, dtype, seed), "target": normal(shape, dtype, seed + 1)}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction):
    inputs = _data(shape, dtype, len(shape) + shape[0])
    result = check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)
    if reduction == "none":
        assert result.loss.shape == (shape[0],)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_subsets(dtype):
    for grads in (["input"], ["target"], []):
        check_against_reference(LOSS, _data((4, 3), dtype, 5), {"reduction": "sum"}, reference, grads=grads)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction):
    check_finite_differences(LOSS, _data((3, 2, 2), np.float64, 3), {"reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_caffe_value(dtype):
    x = np.array([[3.0, 4.0], [1.0, 1.0], [0.0, -2.0]], dtype)
    y = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": y})  # default mean = sum ||d||^2 / (2N)
    assert_close(r.loss, (25.0 + 0.0 + 4.0) / 6, dtype, what="Caffe value")
    assert_close(r.grads["input"], (x - y) / 3, dtype, what="dx = d / N")
    assert_close(r.grads["target"], (y - x) / 3, dtype, what="dy = -d / N")
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [12.5, 0.0, 2.0], dtype, what="per sample")


def test_zero_error():
    x = normal((4, 3), np.float64, 9)
    r = lossd.evaluate(LOSS, {"input": x, "target": x.copy()})
    assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()


@pytest.mark.parametrize("inputs, params, grads, field",
                         generic_rejections(_data((3, 2), np.float64, 0), ["input", "target"]))
def test_rejections(client, inputs, params, grads, field):
    assert_rejected(client, LOSS, inputs, params, field, grads)


def test_rejects_shape_mismatch(client):
    inputs = _data((3, 2), np.float64, 0)
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"][:2]}, {}, "inputs.target")


def test_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, None, _data((3, 2), np.float64, 0))
