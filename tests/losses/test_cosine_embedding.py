"""cosine_embedding (core.md §7.5) against the float64 reference, finite differences,
zero vectors (accepted, finite), the hinge at c = margin, +-1 labels as int or float, and
rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import (
    DTYPES,
    REDUCTIONS,
    assert_alias_and_dtypes,
    assert_rejected,
    normal,
    signs,
)
from tests.losses._signs import sign_label_tests
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.cosine_embedding import reference

LOSS = "cosine_embedding"
SHAPES = [(1, 3), (9, 2), (7, 5), (65, 64)]   # (N, D); the last has 4160 elements
MARGINS = [None, 0.4, -0.3, 1.0]


def _cos(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, 1) / np.sqrt(np.sum(a * a, 1) * np.sum(b * b, 1))


def _data(shape, dtype, seed, label_dtype=np.int64, margin=0.0):
    a = normal(shape, dtype, seed)
    b = normal(shape, dtype, seed + 1)
    b[:, 0] += a[:, 0]  # some correlation, so both branches of the -1 hinge occur
    near = np.abs(_cos(a, b) - margin) < 0.01
    # keep c - margin away from 0 (the hinge): cos = 1 there, or cos = -1 when margin is 1
    b[near] = -a[near] if margin == 1.0 else a[near]
    return {"input1": a, "input2": b, "target": signs(shape[:1], seed + 2, label_dtype)}


@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, margin):
    label = dtype if shape[0] % 2 else np.int32
    m = 0.0 if margin is None else margin
    inputs = _data(shape, dtype, shape[0] + shape[1], label, m)
    params = {"reduction": reduction} if margin is None else {"reduction": reduction, "margin": margin}
    result = check_against_reference(LOSS, inputs, params, reference)
    assert set(result.grads) == {"input1", "input2"}
    if reduction == "none":
        assert result.loss.shape == (shape[0],)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_subsets(dtype):
    for grads in (["input1"], ["input2"], []):
        check_against_reference(LOSS, _data((4, 3), dtype, 5), {"reduction": "sum"}, reference, grads=grads)


@pytest.mark.parametrize("margin", [0.0, 0.5, -0.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction, margin):
    inputs = _data((4, 3), np.float64, 3, margin=margin)
    inputs["target"] = np.array([1, -1, -1, 1])
    check_finite_differences(LOSS, inputs, {"reduction": reduction, "margin": margin})


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked(dtype):
    a = np.array([[3.0, 4.0], [1.0, 0.0], [1.0, 1.0], [1.0, 0.0]], dtype)
    b = np.array([[4.0, 3.0], [0.0, 2.0], [-2.0, -2.0], [1.0, 1.0]], dtype)
    y = np.array([1, 1, -1, -1])
    c = np.array([24 / 25, 0.0, -1.0, 2 ** -0.5])
    r = lossd.evaluate(LOSS, {"input1": a, "input2": b, "target": y}, {"reduction": "none", "margin": 0.5})
    assert_close(r.loss, [1 - c[0], 1.0, 0.0, c[3] - 0.5], dtype, what="loss")
    # row 0, y = +1: -dc/da = -(b / (|a||b|) - c a / |a|^2)
    assert_close(r.grads["input1"][0], -(np.array([4.0, 3.0]) / 25 - c[0] * np.array([3.0, 4.0]) / 25),
                 dtype, what="d/da row 0")
    np.testing.assert_array_equal(r.grads["input1"][2], [0.0, 0.0])  # inactive hinge


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_vectors_accepted_and_finite(dtype):
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype)
    b = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 3.0, 4.0]], dtype)
    y = np.array([1, 1, -1, -1])
    inputs = {"input1": a, "input2": b, "target": y}
    r = check_against_reference(LOSS, inputs, {"reduction": "none"}, reference)
    assert np.all(np.isfinite(r.loss))
    assert all(np.all(np.isfinite(g)) for g in r.grads.values())
    assert_close(r.loss, [1.0, 1.0, 0.0, 0.0], dtype, what="c = 0 for zero rows")
    # row 0: -b / sqrt(S T) with S = eps: large (about 3e5 per unit of b) but finite
    assert np.abs(r.grads["input1"][0]).max() > 1e5
    # rows 2 and 3 (y = -1, margin 0): c - margin = 0 is the active branch, dc/da = b / sqrt(S T)
    assert r.grads["input1"][3].any()
    check_against_reference(LOSS, inputs, {"reduction": "mean", "margin": -0.2}, reference)


VALID = _data((3, 2), np.float64, 0)


test_float_labels_accepted, test_rejections, test_rejects_labels = sign_label_tests(
    LOSS, VALID, ["input1", "input2"], _data((5, 3), np.float64, 2), {"margin": 0.2})


def test_rejects_shapes(client):
    a, b, y = VALID["input1"], VALID["input2"], VALID["target"]
    assert_rejected(client, LOSS, {**VALID, "input1": a[0], "input2": b[0], "target": y}, {}, "inputs.input1")
    assert_rejected(client, LOSS, {**VALID, "input1": a[..., None], "input2": b[..., None]}, {},
                    "inputs.input1")
    assert_rejected(client, LOSS, {**VALID, "input2": b[:, :1]}, {}, "inputs.input2")
    assert_rejected(client, LOSS, {**VALID, "input2": b[:2]}, {}, "inputs.input2")
    assert_rejected(client, LOSS, {**VALID, "target": y[:, None]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {**VALID, "target": y[:2]}, {}, "inputs.target")


@pytest.mark.parametrize("margin", [1.5, -1.0001, "0"])
def test_rejects_margin(client, margin):
    assert_rejected(client, LOSS, VALID, {"margin": margin}, "params.margin")


def test_accepts_margin_bounds():
    for margin in (-1.0, 1.0, 1):
        lossd.evaluate(LOSS, VALID, {"margin": margin})


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "cosine_embedding_loss", VALID)
