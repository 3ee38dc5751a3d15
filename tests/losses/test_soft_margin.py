"""soft_margin (core.md §7.4) against the float64 reference, finite differences, exact
values at large |x| (no Inf), +-1 labels as int or float, and rejections through the
live server."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
from tests.losses._shared import (
    DTYPES,
    REDUCTIONS,
    SHAPES,
    assert_alias_and_dtypes,
    assert_rejected,
    normal,
    signs,
)
from tests.losses._signs import sign_label_tests
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.soft_margin import reference

LOSS = "soft_margin"


def _data(shape, dtype, seed, label_dtype=np.int64, scale=2.0):
    return {"input": normal(shape, dtype, seed, scale), "target": signs(shape, seed + 1, label_dtype)}


@pytest.mark.parametrize("label", ["int64", "int32", "float"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, label):
    label_dtype = dtype if label == "float" else np.dtype(label)
    inputs = _data(shape, dtype, len(shape) + shape[0], label_dtype)
    result = check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)
    assert set(result.grads) == {"input"}


@pytest.mark.parametrize("dtype", DTYPES)
def test_wide_range_against_reference(dtype):
    check_against_reference(LOSS, _data((40, 5), dtype, 8, scale=300.0), {"reduction": "none"}, reference)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction):
    check_finite_differences(LOSS, _data((3, 4), np.float64, 3), {"reduction": reduction})


def test_large_inputs_are_exact():
    x = np.array([[1000.0, -1000.0, 800.0, 0.0]])
    y = np.array([[-1, -1, 1, 1]])
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    # softplus(1000) = 1000 exactly (PyTorch's literal log(1 + exp(1000)) is +Inf)
    np.testing.assert_array_equal(r.loss, [[1000.0, 0.0, 0.0, math.log(2.0)]])
    np.testing.assert_array_equal(r.grads["input"], [[1.0, 0.0, -0.0, -0.5]])
    x32 = np.array([[200.0, 1e30]], np.float32)  # exp(200) overflows float32 and float64 is fine
    r = lossd.evaluate(LOSS, {"input": x32, "target": np.array([[-1, -1]])}, {"reduction": "none"})
    np.testing.assert_array_equal(r.loss, np.array([[200.0, 1e30]], np.float32))
    assert np.all(np.isfinite(lossd.evaluate(LOSS, {"input": x32, "target": np.array([[-1, -1]])}).loss))


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked(dtype):
    x = np.array([[0.0, 1.0, -2.0]], dtype)
    y = np.array([[1.0, 1.0, 1.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "sum"})
    assert_close(r.loss, math.log(2) + math.log1p(math.exp(-1)) + math.log1p(math.exp(2)), dtype)
    assert_close(r.grads["input"], [[-0.5, -1 / (1 + math.e), -1 / (1 + math.exp(-2))]], dtype)


VALID = _data((3, 2), np.float64, 0)


test_float_labels_accepted, test_rejections, test_rejects_labels = sign_label_tests(
    LOSS, VALID, ["input"], _data((5, 3), np.float64, 2))


def test_rejects_shapes(client):
    assert_rejected(client, LOSS, {**VALID, "target": VALID["target"][:1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, VALID, {"margin": 1.0}, "params.margin")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "soft_margin_loss", VALID)
