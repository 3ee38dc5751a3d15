"""Tests of triplet_batch_hard (metric.md §5b)."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
import lossd_client
from tests.losses._shared import case_rejections_test, variant_id
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.triplet_batch_hard import reference

LOSS = "triplet_batch_hard"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (9, 4)]                    # batch 1 (no valid anchor), odd
LARGE = (521, 9)                             # N >= 512, N*D >= 4096 (parallel build)
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
VARIANTS = [{}, {"margin": 0.0}, {"margin": 2.0}, {"soft": True}, {"soft": True, "margin": 0.0},
            {"squared": True, "margin": 1.0}, {"squared": True, "soft": True}]


_ids = variant_id


LARGE_VARIANTS = [{}, {"soft": True, "margin": 0.0}, {"squared": True, "soft": True},
                  {"squared": True, "margin": 2.0}]


def make(shape, dtype, seed=0, classes=None):
    rng = np.random.default_rng(seed)
    n, _ = shape
    classes = classes or max(2, n // 6)
    labels = rng.integers(0, classes, n) * 7 - 3          # arbitrary integer values
    if n > 2:
        labels[-1] = 1000                                 # a singleton: invalid anchor
    return {"embeddings": (rng.standard_normal(shape) * 0.5).astype(dtype), "labels": labels}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_against_reference(dtype, shape, reduction, variant):
    inputs = make(shape, dtype, seed=shape[0])
    check_against_reference(LOSS, inputs, {"reduction": reduction, **variant}, reference)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", LARGE_VARIANTS, ids=_ids)
def test_large_batch(dtype, reduction, variant):
    inputs = make(LARGE, dtype, seed=LARGE[0])
    check_against_reference(LOSS, inputs, {"reduction": reduction, **variant}, reference)


def assert_away_from_kinks(inputs, variant):
    """No ties in the mining and no hinge at z = 0 within 1e-3 (README §9 test points)."""
    x, y = inputs["embeddings"], inputs["labels"]
    d = np.sqrt(np.sum((x[:, None] - x[None]) ** 2, axis=2))
    if variant.get("squared"):
        d = d * d
    for i in range(len(x)):
        pos = np.sort(d[i][(y == y[i]) & (np.arange(len(x)) != i)])
        neg = np.sort(d[i][y != y[i]])
        if len(pos) == 0 or len(neg) == 0:
            continue
        assert len(pos) < 2 or pos[-1] - pos[-2] > 1e-3
        assert len(neg) < 2 or neg[1] - neg[0] > 1e-3
        assert abs(variant.get("margin", 0.3) + pos[-1] - neg[0]) > 1e-3


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_finite_differences(variant):
    inputs = make((8, 3), np.float64, seed=12, classes=3)
    assert_away_from_kinks(inputs, variant)
    for reduction in ("sum", "mean", "batchmean"):
        check_finite_differences(LOSS, inputs, {"reduction": reduction, **variant})


def test_mean_divides_by_valid_anchors():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    y = np.array([0, 0, 1, 2])                     # anchors 2 and 3 have no positive
    inputs = {"embeddings": x, "labels": y}
    none = lossd.evaluate(LOSS, inputs, {"margin": 3.0, "reduction": "none"})
    # anchor 0: d+ = 1, d- = 2 -> 2; anchor 1: d+ = 1, d- = sqrt(5) -> 4 - sqrt(5)
    np.testing.assert_allclose(none.loss, [2.0, 4.0 - np.sqrt(5.0), 0.0, 0.0], rtol=1e-15)
    mean = lossd.evaluate(LOSS, inputs, {"margin": 3.0})
    batchmean = lossd.evaluate(LOSS, inputs, {"margin": 3.0, "reduction": "batchmean"})
    assert mean.loss == pytest.approx((6.0 - np.sqrt(5.0)) / 2, rel=1e-15)
    assert batchmean.loss == pytest.approx((6.0 - np.sqrt(5.0)) / 4, rel=1e-15)
    np.testing.assert_allclose(mean.grads["embeddings"] * 2, batchmean.grads["embeddings"] * 4, rtol=1e-15)
    # the hardest negative of anchor 0 is x_2 (distance 2), not x_3
    g = lossd.evaluate(LOSS, inputs, {"margin": 3.0, "reduction": "none"}).grads["embeddings"]
    np.testing.assert_allclose(g[0], [-1.0, 0.0] - np.array([0.0, -1.0]) + [-1.0, 0.0], rtol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_no_valid_anchor(reduction, dtype):
    cases = [{"embeddings": np.ones((1, 4), dtype), "labels": np.array([3])},
             {"embeddings": np.arange(6, dtype=dtype).reshape(3, 2), "labels": np.array([1, 1, 1])},
             {"embeddings": np.arange(6, dtype=dtype).reshape(3, 2), "labels": np.array([1, 2, 3])}]
    for inputs in cases:
        res = lossd.evaluate(LOSS, inputs, {"reduction": reduction, "soft": True})
        assert res.loss.dtype == dtype
        assert np.all(res.loss == 0.0)
        assert np.all(res.grads["embeddings"] == 0.0)


def test_margin_makes_loss_zero():
    # two tight clusters far apart
    x = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.0, 0.1]], np.float32)
    res = lossd.evaluate(LOSS, {"embeddings": x, "labels": np.array([4, 4, 9, 9])}, {"margin": 1.0})
    assert res.loss == 0.0 and not np.any(res.grads["embeddings"])
    # hinge exactly at 0 is active (slope 1): d+ = 1, d- = 2, margin 1
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 3.5]])
    res = lossd.evaluate(LOSS, {"embeddings": x, "labels": np.array([0, 0, 1, 1])},
                         {"margin": 1.0, "reduction": "none"})
    assert res.loss[0] == 0.0
    assert np.any(res.grads["embeddings"][0] != 0.0)


@pytest.mark.parametrize("scale", [4e19, 1e-19])
def test_gram_overflow_and_underflow(scale):
    # float32 products overflow (or underflow) in the Gram matrix that filters the mining
    # candidates; the exact float64 distances must still pick the hardest pairs
    inputs = make((40, 5), np.float32, seed=5)
    inputs["embeddings"] = (inputs["embeddings"].astype(np.float64) * scale).astype(np.float32)
    for reduction in ("none", "sum"):
        check_against_reference(LOSS, inputs, {"reduction": reduction, "margin": 0.0}, reference)


def test_duplicate_embeddings_zero_distance():
    x = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
    res = lossd.evaluate(LOSS, {"embeddings": x, "labels": np.array([0, 0, 1, 1])}, {"reduction": "none"})
    assert np.all(np.isfinite(res.grads["embeddings"]))
    check_against_reference(LOSS, {"embeddings": x, "labels": np.array([0, 0, 1, 1])}, {}, reference)


def test_int32_labels_and_server_dtype(client):
    for dtype in DTYPES:
        inputs = make((10, 3), dtype, seed=3)
        inputs["labels"] = inputs["labels"].astype(np.int32)
        res = client.evaluate(LOSS, inputs, {"soft": True})
        assert res.loss.dtype == dtype and res.grads["embeddings"].dtype == dtype
        wide = {"embeddings": inputs["embeddings"].astype(np.float64), "labels": inputs["labels"]}
        ref, _ = reference(wide, {"soft": True, "reduction": "mean"})
        assert res.loss == pytest.approx(ref, rel=1e-4 if dtype == np.float32 else 1e-9)


REJECTIONS = {
    "labels_float": ({"labels": np.zeros(5)}, {}, "inputs.labels"),
    "labels_shape": ({"labels": np.zeros(4, np.int64)}, {}, "inputs.labels"),
    "labels_rank2": ({"labels": np.zeros((5, 1), np.int64)}, {}, "inputs.labels"),
    "embeddings_rank1": ({"embeddings": np.zeros(5)}, {}, "inputs.embeddings"),
    "embeddings_rank3": ({"embeddings": np.zeros((5, 2, 1))}, {}, "inputs.embeddings"),
    "embeddings_empty": ({"embeddings": np.zeros((5, 0))}, {}, "inputs.embeddings"),
    "embeddings_nan": ({"embeddings": np.full((5, 3), np.nan)}, {}, "inputs.embeddings"),
    "embeddings_int": ({"embeddings": np.zeros((5, 3), np.int64)}, {}, "inputs.embeddings"),
    "margin_negative": ({}, {"margin": -0.1}, "params.margin"),
    "soft_string": ({}, {"soft": "true"}, "params.soft"),
    "squared_int": ({}, {"squared": 0}, "params.squared"),
    "reduction": ({}, {"reduction": "valid_mean"}, "params.reduction"),
    "unknown": ({}, {"p": 2.0}, "params.p"),
}


test_rejections = case_rejections_test(LOSS, REJECTIONS, make((5, 3), np.float64))


def test_grads_rejection(client):
    with pytest.raises(lossd_client.InvalidArgument) as exc:
        client.evaluate(LOSS, make((5, 3), np.float64), {}, grads=["labels"])
    assert "grads" in [v.field for v in exc.value.field_violations]
