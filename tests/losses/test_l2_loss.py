"""l2_loss (core.md §2.3) against the float64 reference, finite differences, the default
reduction sum = tf.nn.l2_loss, the optional target, and rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._pairwise import grads_subsets_test, rejections_test
from tests.losses._shared import DTYPES, REDUCTIONS, SHAPES, assert_alias_and_dtypes, assert_rejected, normal
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.l2_loss import reference

LOSS = "l2_loss"


def _data(shape, dtype, seed, target=True):
    inputs = {"input": normal(shape, dtype, seed)}
    if target:
        inputs["target"] = normal(shape, dtype, seed + 1)
    return inputs


@pytest.mark.parametrize("target", [True, False], ids=["target", "no-target"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, target):
    inputs = _data(shape, dtype, len(shape) + shape[0], target)
    result = check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)
    assert set(result.grads) == ({"input", "target"} if target else {"input"})


test_grads_subsets = grads_subsets_test(LOSS, _data, reference)


@pytest.mark.parametrize("target", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction, target):
    check_finite_differences(LOSS, _data((3, 4), np.float64, 3, target), {"reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_default_reduction_is_sum_of_half_squares(dtype):
    x = np.array([[1.0, -2.0], [3.0, 0.5]], dtype)
    y = np.array([[0.5, 1.0], [-1.0, 0.5]], dtype)
    with_target = lossd.evaluate(LOSS, {"input": x, "target": y})
    assert with_target.loss.shape == ()
    assert_close(with_target.loss, (0.25 + 9.0 + 16.0 + 0.0) / 2, dtype, what="sum d^2 / 2")
    assert_close(with_target.grads["input"], [[0.5, -3.0], [4.0, 0.0]], dtype, what="dx = d")
    assert_close(with_target.grads["target"], [[-0.5, 3.0], [-4.0, 0.0]], dtype, what="dy = -d")
    without = lossd.evaluate(LOSS, {"input": x})
    assert_close(without.loss, (1.0 + 4.0 + 9.0 + 0.25) / 2, dtype, what="sum x^2 / 2")
    assert set(without.grads) == {"input"}
    np.testing.assert_array_equal(without.grads["input"], x)
    mean = lossd.evaluate(LOSS, {"input": x}, {"reduction": "mean"})
    assert_close(mean.loss, 14.25 / 8, dtype, what="mean")


def test_zero_error():
    x = normal((4, 3), np.float64, 9)
    r = lossd.evaluate(LOSS, {"input": x, "target": x.copy()})
    assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()
    r = lossd.evaluate(LOSS, {"input": np.zeros((2, 2))})
    assert r.loss == 0.0 and not r.grads["input"].any()


test_rejections = rejections_test(LOSS, _data)


def test_rejects_shape_mismatch_and_absent_target_grad(client):
    inputs = _data((3, 2), np.float64, 0)
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"][:, :1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": inputs["input"]}, {}, "grads", grads=["target"])


def test_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, None, _data((3, 2), np.float64, 0))
    assert_alias_and_dtypes(client, LOSS, None, _data((3, 2), np.float64, 0, target=False))
