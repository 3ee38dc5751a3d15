"""margin_ranking (core.md §7.6) against the float64 reference, finite differences, the
hinge at exactly 0 (slope of the active branch), +-1 labels as int or float, and
rejections (no broadcasting) through the live server."""

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
from tests.reference.margin_ranking import reference

LOSS = "margin_ranking"
MARGINS = [None, 0.7, -0.2]


def _data(shape, dtype, seed, label_dtype=np.int64, margin=0.0):
    x1 = normal(shape, dtype, seed)
    x2 = normal(shape, dtype, seed + 1)
    y = signs(shape, seed + 2, label_dtype)
    u = -y.astype(np.float64) * (x1.astype(np.float64) - x2.astype(np.float64)) + margin
    x2[np.abs(u) < 0.01] += np.asarray(0.05, dtype)  # away from the hinge
    return {"input1": x1, "input2": x2, "target": y}


@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, margin):
    label = dtype if shape[0] % 2 else np.int64
    m = 0.0 if margin is None else margin
    inputs = _data(shape, dtype, len(shape) + shape[0], label, m)
    params = {"reduction": reduction} if margin is None else {"reduction": reduction, "margin": margin}
    result = check_against_reference(LOSS, inputs, params, reference)
    assert set(result.grads) == {"input1", "input2"}


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_subsets(dtype):
    for grads in (["input1"], ["input2"], []):
        check_against_reference(LOSS, _data((6,), dtype, 5), {"reduction": "sum"}, reference, grads=grads)


@pytest.mark.parametrize("margin", [0.0, 0.6])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction, margin):
    check_finite_differences(LOSS, _data((8,), np.float64, 3, margin=margin),
                             {"reduction": reduction, "margin": margin})


@pytest.mark.parametrize("dtype", DTYPES)
def test_hinge_at_zero_takes_the_active_slope(dtype):
    x1 = np.array([0.5, -1.0, 2.0, 1.0], dtype)
    x2 = np.array([0.5, -1.0, 1.5, 3.0], dtype)
    y = np.array([1, -1, 1, 1])
    r = lossd.evaluate(LOSS, {"input1": x1, "input2": x2, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [0.0, 0.0, 0.0, 2.0], dtype, what="loss")
    np.testing.assert_array_equal(r.grads["input1"], [-1.0, 1.0, 0.0, -1.0])  # u = 0: active branch
    np.testing.assert_array_equal(r.grads["input2"], [1.0, -1.0, 0.0, 1.0])
    r = lossd.evaluate(LOSS, {"input1": x1, "input2": x2, "target": y}, {"reduction": "mean", "margin": 0.5})
    # u = [0.5, 0.5, 0 (exactly: -0.5 + 0.5), 2.5]
    assert_close(r.loss, 3.5 / 4, dtype, what="mean")
    np.testing.assert_array_equal(r.grads["input1"], np.array([-1.0, 1.0, -1.0, -1.0], dtype) / 4)


VALID = _data((4,), np.float64, 0)


test_float_labels_accepted, test_rejections, test_rejects_labels = sign_label_tests(
    LOSS, VALID, ["input1", "input2"], _data((5, 3), np.float64, 2), {"margin": 0.3})


def test_rejects_broadcasting(client):
    x2, y = VALID["input2"], VALID["target"]
    assert_rejected(client, LOSS, {**VALID, "input2": x2[:1]}, {}, "inputs.input2")  # torch broadcasts
    assert_rejected(client, LOSS, {**VALID, "input2": x2[:, None]}, {}, "inputs.input2")
    assert_rejected(client, LOSS, {**VALID, "target": y[:1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {**VALID, "target": y[None, :]}, {}, "inputs.target")
    assert_rejected(client, LOSS, VALID, {"margin": "0.1"}, "params.margin")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "margin_ranking_loss", VALID)
