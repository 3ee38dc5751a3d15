"""categorical_cross_entropy (core.md §3.2) against the float64 reference, finite
differences, p = 0 / q = 0 terms, and every rejection through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import assert_rejected, result_dtype_test
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.categorical_cross_entropy import reference

LOSS = "categorical_cross_entropy"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (5, 4, 3, 2), (64, 10, 8)]   # the last has 5120 elements: parallel build
REDUCTIONS = ["none", "sum", "mean", "batchmean"]


def _dist(shape, rng, zeros=0.0):
    a = rng.uniform(0.05, 1.0, shape)
    if zeros:
        a[rng.uniform(size=shape) < zeros] = 0.0
    return a / np.maximum(a.sum(axis=1, keepdims=True), 1e-300)


def _data(shape, dtype, seed=0, zeros=0.0, normalised=True):
    rng = np.random.default_rng(seed)
    q = _dist(shape, rng)
    p = _dist(shape, rng, zeros) if normalised else rng.uniform(0.0, 1.0, shape)
    return {"input": q.astype(dtype), "target": p.astype(dtype)}


@pytest.mark.parametrize("target", ["dense", "sparse", "unnormalised"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, target):
    inputs = _data(shape, dtype, seed=sum(shape), zeros=0.3 if target == "sparse" else 0.0,
                   normalised=target != "unnormalised")
    check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction):
    inputs = _data((2, 4, 3), np.float64, seed=1)
    check_finite_differences(LOSS, inputs, {"reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_probabilities(dtype):
    q = np.array([[0.0, 0.5, 0.5], [0.0, 0.0, 1.0], [0.25, 0.25, 0.5]], dtype)
    p = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": q, "target": p}, {"reduction": "none"})
    # row 0: p = 0 where q = 0 contributes 0 (not 0 * -Inf = NaN); row 1: q = 0 with p = 0.5
    # gives 0.5 * 100 (clamped log); row 2: -log 0.5
    expected = [np.log(2.0), 50.0, np.log(2.0)]
    assert_close(r.loss, expected, dtype, what="loss")
    gq = r.grads["input"].astype(np.float64)
    assert gq[0, 0] == 0.0 and gq[1, 1] == 0.0 and gq[2, 0] == 0.0 and gq[2, 1] == 0.0
    assert_close(r.grads["input"], [[0.0, -1.0, -1.0], [-0.5e12, 0.0, -0.5], [0.0, 0.0, -2.0]], dtype,
                 what="d/dinput")
    lh = -np.log(0.5)
    assert_close(r.grads["target"], [[100.0, lh, lh], [100.0, 100.0, 0.0], [2 * lh, 2 * lh, lh]], dtype,
                 what="d/dtarget")
    check_against_reference(LOSS, {"input": q, "target": p}, {"reduction": "batchmean"}, reference)


def test_equals_entropy_plus_kl():
    inputs = _data((3, 5), np.float64, seed=4)
    q, p = inputs["input"], inputs["target"]
    r = lossd.evaluate(LOSS, inputs, {"reduction": "none"})
    entropy = -(p * np.log(p)).sum(1)
    kl = (p * np.log(p / q)).sum(1)
    np.testing.assert_allclose(r.loss, entropy + kl, rtol=1e-12)


test_result_dtype_through_server = result_dtype_test(
    LOSS, lambda dtype: _data((3, 4, 2), dtype, seed=2), reference, ["input", "target"])


def test_rejections(client):
    good = _data((2, 3, 4), np.float64, seed=5)
    q, p = good["input"], good["target"]
    assert_rejected(client, LOSS, {"input": q + 1.0, "target": p}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": -q, "target": p + 0.1}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": q, "target": p + 1.0}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q, "target": p - 1.0}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q[:, 0, 0], "target": p[:, 0, 0]}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": q, "target": p[:, :2]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q, "target": p.astype(np.float32)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q, "target": np.zeros((2, 3, 4), np.int64)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q[:, :, :0], "target": p[:, :, :0]}, {}, "inputs.input")
    bad = p.copy()
    bad[1, 1, 1] = np.nan
    assert_rejected(client, LOSS, {"input": q, "target": bad}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q, "target": p}, {"reduction": "batch"}, "params.reduction")
    assert_rejected(client, LOSS, {"input": q, "target": p}, {"weight": 1.0}, "params.weight")
    assert_rejected(client, LOSS, {"input": q, "target": p}, {}, "grads", grads=["input", "weight"])
