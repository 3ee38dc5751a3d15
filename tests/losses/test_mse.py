"""mse (core.md §2.1) against the float64 reference, finite differences, hand-picked
values and rejections through the live server."""

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
from tests.losses.harness import (
    assert_close,
    check_against_reference,
    check_finite_differences,
)
from tests.reference.mse import reference

LOSS = "mse"


def _data(shape, dtype, seed):
    return {"input": normal(shape, dtype, seed), "target": normal(shape, dtype, seed + 1)}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction):
    check_against_reference(LOSS, _data(shape, dtype, len(shape) + shape[0]), {"reduction": reduction},
                            reference)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_subsets(dtype):
    inputs = _data((4, 3), dtype, 5)
    for grads in (["input"], ["target"], []):
        check_against_reference(LOSS, inputs, {"reduction": "sum"}, reference, grads=grads)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction):
    check_finite_differences(LOSS, _data((3, 4), np.float64, 11), {"reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked(dtype):
    x = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, 4.0]], dtype)
    y = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [[0.0, 9.0, 4.0], [0.25, 0.0, 16.0]], dtype, what="loss")
    assert_close(r.grads["input"], [[0.0, -6.0, 4.0], [1.0, 0.0, 8.0]], dtype, what="dx")
    assert_close(r.grads["target"], [[0.0, 6.0, -4.0], [-1.0, 0.0, -8.0]], dtype, what="dy")
    r = lossd.evaluate(LOSS, {"input": x, "target": y})
    assert_close(r.loss, 29.25 / 6, dtype, what="mean")
    assert_close(r.grads["input"], np.array([[0.0, -6.0, 4.0], [1.0, 0.0, 8.0]]) / 6, dtype, what="dx")
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "batchmean"})
    assert_close(r.loss, 29.25 / 2, dtype, what="batchmean")


def test_zero_error_is_exactly_zero():
    x = normal((5, 3), np.float64, 2)
    r = lossd.evaluate(LOSS, {"input": x, "target": x.copy()})
    assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_float32_no_intermediate_overflow():
    # d^2 = 4e38 is beyond float32 (the sum is +Inf as expected), but the mean 2e38 is
    # not: the float64 computation has no intermediate overflow
    x = np.array([[2e19, 0.0]], np.float32)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"reduction": "sum"})
    assert np.isposinf(r.loss)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)})
    assert_close(r.loss, 2e38, np.float32, what="mean")


@pytest.mark.parametrize("inputs, params, grads, field",
                         generic_rejections(_data((3, 2), np.float64, 0), ["input", "target"]))
def test_rejections(client, inputs, params, grads, field):
    assert_rejected(client, LOSS, inputs, params, field, grads)


def test_rejects_shape_mismatch(client):
    inputs = _data((3, 2), np.float64, 0)
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"][:, :1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"].T.copy()}, {}, "inputs.target")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "mse_loss", _data((3, 2), np.float64, 0))
