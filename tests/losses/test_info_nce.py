"""Tests of info_nce (metric.md §9b)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
import lossd_client
from lossd.losses import info_nce as info_nce_module
from tests.losses._shared import case_rejections_test, split_variant, variant_id
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.info_nce import reference

LOSS = "info_nce"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3, 2), (7, 5, 3), (515, 8, 33)]       # (N, D, M): batch 1, odd, N >= 512 (parallel)
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
VARIANTS = [{}, {"temperature": 1.0}, {"normalize": False, "temperature": 0.7}, {"negatives": True},
            {"negatives": True, "normalize": False, "temperature": 2.0},
            {"negatives": True, "temperature": 0.05}]


_ids = variant_id


def make(shape, dtype, seed=0, negatives=False):
    rng = np.random.default_rng(seed)
    n, d, m = shape
    q = rng.standard_normal((n, d))
    inputs = {"query": q.astype(dtype), "positive_key": (q + rng.standard_normal((n, d)) * 0.8).astype(dtype)}
    if negatives:
        inputs["negative_keys"] = rng.standard_normal((m, d)).astype(dtype)
    return inputs


def _split(variant):
    return split_variant(variant, "negatives")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_against_reference(dtype, shape, reduction, variant):
    negatives, params = _split(variant)
    inputs = make(shape, dtype, seed=shape[0], negatives=negatives)
    if not params.get("normalize", True):
        inputs = {k: (v * 0.3).astype(dtype) for k, v in inputs.items()}
    check_against_reference(LOSS, inputs, {"reduction": reduction, **params}, reference)


def test_blocked_products(monkeypatch):
    monkeypatch.setattr(info_nce_module, "BLOCK_ELEMENTS", 60)
    for negatives in (False, True):
        inputs = make((23, 4, 5), np.float64, seed=8, negatives=negatives)
        for reduction in REDUCTIONS:
            check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_finite_differences(variant):
    negatives, params = _split(variant)
    inputs = make((4, 3, 3), np.float64, seed=4, negatives=negatives)
    check_finite_differences(LOSS, inputs, {"reduction": "sum", **params})
    check_finite_differences(LOSS, inputs, {"reduction": "mean", **params})


def test_known_angles():
    # unit query; positive at angle 0, negatives at 90 and 180 degrees
    q = np.array([[1.0, 0.0]])
    k = np.array([[3.0, 0.0]])
    neg = np.array([[0.0, 2.0], [-5.0, 0.0]])
    res = lossd.evaluate(LOSS, {"query": q, "positive_key": k, "negative_keys": neg},
                         {"temperature": 0.5, "reduction": "none"})
    expected = -2.0 + math.log(math.exp(2.0) + 1.0 + math.exp(-2.0))
    np.testing.assert_allclose(res.loss, [expected], rtol=1e-15)
    # gradient of q is orthogonal to q (normalisation backward) and the positive key
    # gradient is parallel to q, hence 0 after normalisation of the collinear key
    assert abs(float(res.grads["query"][0] @ q[0])) < 1e-15
    np.testing.assert_allclose(res.grads["positive_key"], [[0.0, 0.0]], atol=1e-15)
    # scale invariance with normalisation
    res2 = lossd.evaluate(LOSS, {"query": q * 7, "positive_key": k, "negative_keys": neg * 0.1},
                          {"temperature": 0.5, "reduction": "none"})
    np.testing.assert_allclose(res2.loss, res.loss, rtol=1e-14)


def test_without_negatives_other_positives_are_negatives():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    res = lossd.evaluate(LOSS, {"query": q, "positive_key": q.copy()},
                         {"temperature": 1.0, "reduction": "none"})
    np.testing.assert_allclose(res.loss, [math.log(1 + math.exp(-1.0))] * 2, rtol=1e-15)


def test_server_dtype(client):
    for dtype in DTYPES:
        res = client.evaluate(LOSS, make((6, 3, 4), dtype, negatives=True))
        assert res.loss.dtype == dtype and {g.dtype for g in res.grads.values()} == {np.dtype(dtype)}
        assert set(res.grads) == {"query", "positive_key", "negative_keys"}


def test_zero_row_accepted_without_normalize(client):
    inputs = make((3, 2, 2), np.float64, negatives=True)
    inputs["negative_keys"] = np.zeros((2, 2))
    res = client.evaluate(LOSS, inputs, {"normalize": False})
    assert np.isfinite(res.loss)


REJECTIONS = {
    "query_zero_row": ({"query": np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])}, {}, "inputs.query"),
    "key_tiny_row": ({"positive_key": np.array([[1.0, 0.0], [1e-13, 0.0], [1.0, 1.0]])}, {},
                     "inputs.positive_key"),
    "negative_zero_row": ({"negative_keys": np.zeros((2, 2))}, {}, "inputs.negative_keys"),
    "negative_dim": ({"negative_keys": np.ones((2, 3))}, {}, "inputs.negative_keys"),
    "negative_rank1": ({"negative_keys": np.ones(2)}, {}, "inputs.negative_keys"),
    "negative_mixed": ({"negative_keys": np.ones((2, 2), np.float32)}, {}, "inputs.negative_keys"),
    "key_shape": ({"positive_key": np.ones((2, 2))}, {}, "inputs.positive_key"),
    "query_rank3": ({"query": np.ones((3, 2, 1))}, {}, "inputs.query"),
    "query_nan": ({"query": np.full((3, 2), np.nan)}, {}, "inputs.query"),
    "temperature_zero": ({}, {"temperature": 0.0}, "params.temperature"),
    "temperature_negative": ({}, {"temperature": -0.1}, "params.temperature"),
    "normalize_int": ({}, {"normalize": 1}, "params.normalize"),
    "reduction": ({}, {"reduction": "average"}, "params.reduction"),
    "negative_mode": ({}, {"negative_mode": "paired"}, "params.negative_mode"),
}


test_rejections = case_rejections_test(LOSS, REJECTIONS, make((3, 2, 2), np.float64, negatives=True))


def test_grads_rejection(client):
    with pytest.raises(lossd_client.InvalidArgument) as exc:
        client.evaluate(LOSS, make((3, 2, 2), np.float64), {}, grads=["negative_keys"])
    assert "grads" in [v.field for v in exc.value.field_violations]


@pytest.mark.parametrize("negatives", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_matches_info_nce_pytorch_formula(negatives, normalize):
    # RElbers/info-nce-pytorch (negative_mode="unpaired"), written out in torch
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    inputs = make((7, 4, 5), np.float64, seed=13, negatives=negatives)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    q, k = t["query"], t["positive_key"]
    n = t.get("negative_keys")
    if normalize:
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        n = None if n is None else F.normalize(n, dim=-1)
    if n is None:
        logits = q @ k.T
        labels = torch.arange(len(q))
    else:
        pos = torch.sum(q * k, dim=1, keepdim=True)
        logits = torch.cat([pos, q @ n.T], dim=1)
        labels = torch.zeros(len(q), dtype=torch.long)
    loss = F.cross_entropy(logits / 0.1, labels)
    loss.backward()
    res = lossd.evaluate(LOSS, inputs, {"normalize": normalize})
    np.testing.assert_allclose(res.loss, loss.detach().numpy(), rtol=1e-10)
    for name, v in t.items():
        np.testing.assert_allclose(res.grads[name], v.grad.numpy(), rtol=1e-9, atol=1e-12)
