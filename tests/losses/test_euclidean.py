"""euclidean (core.md §2.3, Caffe EuclideanLoss) against the float64 reference, finite
differences, Caffe's value sum ||d||^2 / (2N), and rejections through the live server."""

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
    zero_error_test,
)
from tests.losses._shared import DTYPES, assert_alias_and_dtypes, assert_rejected
from tests.losses.harness import assert_close
from tests.reference.euclidean import reference

LOSS = "euclidean"


_data = pair_data


test_against_reference = against_reference_test(LOSS, _data, reference, per_sample=True)


test_grads_subsets = grads_subsets_test(LOSS, _data, reference)


test_finite_differences = finite_differences_test(LOSS, _data((3, 2, 2), np.float64, 3))


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


test_zero_error = zero_error_test(LOSS)


test_rejections = rejections_test(LOSS, _data)


def test_rejects_shape_mismatch(client):
    inputs = _data((3, 2), np.float64, 0)
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"][:2]}, {}, "inputs.target")


def test_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, None, _data((3, 2), np.float64, 0))
