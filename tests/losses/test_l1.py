"""l1 (core.md §2.2) against the float64 reference, finite differences, hand-picked
values (sign(0) = 0) and rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._pairwise import against_reference_test, grads_subsets_test, rejections_test
from tests.losses._shared import DTYPES, REDUCTIONS, assert_alias_and_dtypes, assert_rejected, normal
from tests.losses.harness import assert_close, check_finite_differences
from tests.reference.l1 import reference

LOSS = "l1"


def _data(shape, dtype, seed):
    x = normal(shape, dtype, seed)
    y = normal(shape, dtype, seed + 1)
    y.reshape(-1)[::5] = x.reshape(-1)[::5]  # some exact zeros of d: gradient sign(0) = 0
    return {"input": x, "target": y}


test_against_reference = against_reference_test(LOSS, _data, reference)


test_grads_subsets = grads_subsets_test(LOSS, _data, reference, reduction="mean")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction):
    x = normal((3, 4), np.float64, 3)
    y = x + np.linspace(-1, 1, 12).reshape(3, 4) + 0.05  # |d| >= 0.05, away from the kink
    check_finite_differences(LOSS, {"input": x, "target": y}, {"reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked(dtype):
    x = np.array([[1.0, -2.0, 3.0, 0.5]], dtype)
    y = np.array([[1.0, 1.0, 1.0, 0.75]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [[0.0, 3.0, 2.0, 0.25]], dtype, what="loss")
    np.testing.assert_array_equal(r.grads["input"], [[0.0, -1.0, 1.0, -1.0]])
    np.testing.assert_array_equal(r.grads["target"], [[0.0, 1.0, -1.0, 1.0]])
    r = lossd.evaluate(LOSS, {"input": x, "target": y})
    assert_close(r.loss, 5.25 / 4, dtype, what="mean")
    np.testing.assert_array_equal(r.grads["input"], np.array([[0.0, -0.25, 0.25, -0.25]], dtype))


def test_zero_error():
    x = normal((4, 3), np.float64, 9)
    r = lossd.evaluate(LOSS, {"input": x, "target": x.copy()}, {"reduction": "sum"})
    assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()


test_rejections = rejections_test(LOSS, _data)


def test_rejects_shape_mismatch(client):
    inputs = _data((3, 2), np.float64, 0)
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"].reshape(6)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"][:1]}, {}, "inputs.target")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "l1_loss", _data((3, 2), np.float64, 0))
