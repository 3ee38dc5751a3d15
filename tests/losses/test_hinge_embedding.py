"""hinge_embedding (core.md §7.3) against the float64 reference, finite differences, the
hinge point (slope of the active branch), +-1 labels as int or float, and rejections
through the live server."""

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
    normal,
    signs,
)
from tests.losses._signs import sign_label_tests
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.hinge_embedding import reference

LOSS = "hinge_embedding"
MARGINS = [None, 0.3, -0.5, 2.0]


def _data(shape, dtype, seed, label_dtype=np.int64, margin=1.0):
    x = np.abs(normal(shape, dtype, seed, 1.5))
    near = np.abs(x - margin) < 0.01
    x[near] += np.asarray(0.05, dtype)  # keep away from the hinge
    return {"input": x, "target": signs(shape, seed + 1, label_dtype)}


@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, margin):
    label = dtype if shape[0] % 2 else np.int64  # float and int labels
    inputs = _data(shape, dtype, len(shape) + shape[0], label, 1.0 if margin is None else margin)
    params = {"reduction": reduction} if margin is None else {"reduction": reduction, "margin": margin}
    result = check_against_reference(LOSS, inputs, params, reference)
    assert set(result.grads) == {"input"}


@pytest.mark.parametrize("margin", [1.0, -0.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction, margin):
    check_finite_differences(LOSS, _data((3, 4), np.float64, 3, margin=margin),
                             {"reduction": reduction, "margin": margin})


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked_and_hinge_point(dtype):
    x = np.array([[0.5, 1.0, 1.5, 0.25, 2.0]], dtype)
    y = np.array([[-1, -1, -1, 1, 1]])
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [[0.5, 0.0, 0.0, 0.25, 2.0]], dtype, what="loss")
    # x = margin (u = 0) with y = -1: slope of the active branch, -1
    np.testing.assert_array_equal(r.grads["input"], [[-1.0, -1.0, 0.0, 1.0, 1.0]])
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"margin": 2.0, "reduction": "mean"})
    assert_close(r.loss, (1.5 + 1.0 + 0.5 + 0.25 + 2.0) / 5, dtype, what="mean")
    assert_close(r.grads["input"], np.array([[-1, -1, -1, 1, 1]]) / 5, dtype, what="d/dx")


VALID = _data((3, 2), np.float64, 0)


test_float_labels_accepted, test_rejections, test_rejects_labels = sign_label_tests(
    LOSS, VALID, ["input"], _data((5, 3), np.float64, 2), {"margin": 0.7})


def test_rejects_shapes_and_params(client):
    assert_rejected(client, LOSS, {**VALID, "target": VALID["target"][:, :1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {**VALID, "target": VALID["target"].reshape(6)}, {}, "inputs.target")
    assert_rejected(client, LOSS, VALID, {"margin": "1"}, "params.margin")
    assert_rejected(client, LOSS, VALID, {"margin": True}, "params.margin")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "hinge_embedding_loss", VALID)
