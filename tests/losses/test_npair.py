"""Tests of npair (metric.md §9a)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
import lossd_client
from lossd.losses import npair as npair_module
from tests.losses._shared import case_rejections_test, split_variant, variant_id
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.npair import reference

LOSS = "npair"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (515, 8)]          # batch 1, odd, N >= 512 and N*D >= 4096 (parallel)
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
VARIANTS = [{}, {"reg_lambda": 0.0}, {"reg_lambda": 0.5}, {"labels": True},
            {"labels": True, "reg_lambda": 0.1}]


_ids = variant_id


def make(shape, dtype, seed=0, labels=False):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) * 0.7
    inputs = {"anchors": a.astype(dtype), "positives": (a + rng.standard_normal(shape) * 0.4).astype(dtype)}
    if labels:
        inputs["labels"] = rng.integers(-3, max(2, shape[0] // 3), shape[0])
    return inputs


def _split(variant):
    return split_variant(variant, "labels")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_against_reference(dtype, shape, reduction, variant):
    with_labels, params = _split(variant)
    inputs = make(shape, dtype, seed=shape[0], labels=with_labels)
    check_against_reference(LOSS, inputs, {"reduction": reduction, **params}, reference)


def test_blocked_products(monkeypatch):
    # force several row blocks (and a ragged last block)
    monkeypatch.setattr(npair_module, "BLOCK_ELEMENTS", 4 * 37)
    for with_labels in (False, True):
        inputs = make((37, 4), np.float64, seed=8, labels=with_labels)
        for reduction in REDUCTIONS:
            check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_finite_differences(variant):
    with_labels, params = _split(variant)
    inputs = make((5, 3), np.float64, seed=4, labels=with_labels)
    check_finite_differences(LOSS, inputs, {"reduction": "sum", **params})
    check_finite_differences(LOSS, inputs, {"reduction": "mean", **params})


def test_known_values():
    # orthonormal anchors, positives equal to anchors: S = I
    a = np.eye(3)
    res = lossd.evaluate(LOSS, {"anchors": a, "positives": a}, {"reg_lambda": 0.0, "reduction": "none"})
    expected = -(1 - math.log(math.e + 2))
    np.testing.assert_allclose(res.loss, [expected] * 3, rtol=1e-15)
    # labels grouping rows 0 and 1: T_0 = T_1 = (1/2, 1/2, 0)
    res = lossd.evaluate(LOSS, {"anchors": a, "positives": a, "labels": np.array([5, 5, 9])},
                         {"reg_lambda": 0.4, "reduction": "none"})
    lse = math.log(math.e + 2)
    reg = 0.25 * 0.4 * 2
    np.testing.assert_allclose(res.loss, [lse - 0.5 + reg, lse - 0.5 + reg, lse - 1 + reg], rtol=1e-15)


def test_equals_info_nce_without_normalisation():
    inputs = make((9, 4), np.float64, seed=2)
    a = lossd.evaluate(LOSS, inputs, {"reg_lambda": 0.0})
    b = lossd.evaluate("info_nce", {"query": inputs["anchors"], "positive_key": inputs["positives"]},
                       {"normalize": False, "temperature": 1.0})
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-13)
    np.testing.assert_allclose(a.grads["anchors"], b.grads["query"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.grads["positives"], b.grads["positive_key"], rtol=1e-12, atol=1e-15)


def test_tf_mean_decomposition():
    # "mean" = 1/4 lambda (mean ||a||^2 + mean ||p||^2) + mean xent
    inputs = make((6, 3), np.float64, seed=5)
    full = lossd.evaluate(LOSS, inputs, {"reg_lambda": 0.3}).loss
    xent = lossd.evaluate(LOSS, inputs, {"reg_lambda": 0.0}).loss
    a, p = inputs["anchors"], inputs["positives"]
    reg = 0.25 * 0.3 * (np.mean(np.sum(a * a, 1)) + np.mean(np.sum(p * p, 1)))
    assert full == pytest.approx(xent + reg, rel=1e-14)


def test_server_dtype(client):
    for dtype in DTYPES:
        res = client.evaluate(LOSS, make((6, 3), dtype, labels=True))
        assert res.loss.dtype == dtype and {g.dtype for g in res.grads.values()} == {np.dtype(dtype)}
        assert set(res.grads) == {"anchors", "positives"}


REJECTIONS = {
    "positives_shape": ({"positives": np.zeros((4, 2))}, {}, "inputs.positives"),
    "positives_rows": ({"positives": np.zeros((3, 3))}, {}, "inputs.positives"),
    "anchors_rank1": ({"anchors": np.zeros(4)}, {}, "inputs.anchors"),
    "anchors_rank3": ({"anchors": np.zeros((4, 3, 1)), "positives": np.zeros((4, 3, 1))}, {},
                      "inputs.anchors"),
    "labels_shape": ({"labels": np.zeros(3, np.int64)}, {}, "inputs.labels"),
    "labels_float": ({"labels": np.zeros(4)}, {}, "inputs.labels"),
    "positives_mixed": ({"positives": np.zeros((4, 3), np.float32)}, {}, "inputs.positives"),
    "anchors_inf": ({"anchors": np.full((4, 3), np.inf)}, {}, "inputs.anchors"),
    "empty": ({"anchors": np.zeros((4, 0)), "positives": np.zeros((4, 0))}, {}, "inputs.anchors"),
    "reg_negative": ({}, {"reg_lambda": -0.002}, "params.reg_lambda"),
    "reduction": ({}, {"reduction": "none_"}, "params.reduction"),
}


test_rejections = case_rejections_test(LOSS, REJECTIONS, make((4, 3), np.float64))


def test_grads_rejection(client):
    with pytest.raises(lossd_client.InvalidArgument) as exc:
        client.evaluate(LOSS, make((4, 3), np.float64, labels=True), {}, grads=["labels"])
    assert "grads" in [v.field for v in exc.value.field_violations]
