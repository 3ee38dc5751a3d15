"""l2_distance (core.md §2.3) against the float64 reference, finite differences, the zero
row (gradient 0), overflow/underflow-free norms, and rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._pairwise import (
    against_reference_test,
    finite_differences_test,
    grads_subsets_test,
    pair_data,
    rejections_test,
    shape_mismatch_test,
)
from tests.losses._shared import DTYPES, assert_alias_and_dtypes
from tests.losses.harness import assert_close
from tests.reference.l2_distance import reference

LOSS = "l2_distance"


_data = pair_data


test_against_reference = against_reference_test(LOSS, _data, reference, per_sample=True)


test_grads_subsets = grads_subsets_test(LOSS, _data, reference)


test_finite_differences = finite_differences_test(LOSS, _data((3, 2, 2), np.float64, 3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked_and_zero_row(dtype):
    x = np.array([[3.0, 4.0], [1.0, 1.0], [0.0, -2.0]], dtype)
    y = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype)  # row 1: d = 0
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [5.0, 0.0, 2.0], dtype, what="norms")
    assert_close(r.grads["input"], [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], dtype, what="dx")
    assert_close(r.grads["target"], [[-0.6, -0.8], [0.0, 0.0], [0.0, 1.0]], dtype, what="dy")
    assert not r.grads["input"][1].any()
    r = lossd.evaluate(LOSS, {"input": x, "target": y})
    assert_close(r.loss, 7.0 / 3, dtype, what="mean over N")
    r = lossd.evaluate(LOSS, {"input": x[1:2], "target": y[1:2]})
    assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1e160, 1e300])
def test_no_overflow_or_underflow_of_squares(scale):
    x = np.array([[3.0, 4.0], [-1.0, 0.0]]) * scale
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"reduction": "none"})
    assert_close(r.loss, [5.0 * scale, scale], np.float64, what="norm")
    assert_close(r.grads["input"], [[0.6, 0.8], [-1.0, 0.0]], np.float64, what="direction")


def test_float32_values_beyond_sqrt_of_max():
    x = np.array([[3e30, 4e30]], np.float32)  # squares overflow float32, not float64
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)})
    assert_close(r.loss, 5e30, np.float32, what="norm")
    assert_close(r.grads["input"], [[0.6, 0.8]], np.float32, what="direction")


test_rejections = rejections_test(LOSS, _data)


test_rejects_shape_mismatch = shape_mismatch_test(LOSS, _data)


def test_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, None, _data((3, 2), np.float64, 0))
